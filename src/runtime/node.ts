/** The Node implementation of the runtime seam. */
import { hostname, homedir, userInfo } from "node:os";
import { promises as fs } from "node:fs";
import process from "node:process";
import { nodeFiles } from "./node-files.ts";
import { listProcesses, processStart, spawnProcess, startProcess, startServiceChild, signalGroup } from "./node-process.ts";
import { nodeFetch } from "./node-fetch.ts";
import type { Runtime } from "./types.ts";

export async function lookupUserName(uid: number): Promise<string | null> {
  try {
    const passwd = await fs.readFile("/etc/passwd", "utf8");
    for (const line of passwd.split("\n")) {
      const parts = line.split(":");
      if (parts.length > 2 && Number(parts[2]) === uid) return parts[0];
    }
  } catch {
    // No passwd file (containers): fall through.
  }
  return null;
}

export function createNodeRuntime(): Runtime {
  return {
    name: "node",
    version: process.versions.node,
    argv: process.argv.slice(2),
    env: process.env,
    cwd: process.cwd(),
    files: nodeFiles,
    hostname: () => hostname(),
    homedir: () => homedir(),
    uid: () => (typeof process.getuid === "function" ? process.getuid() : userInfo().uid),
    userName: lookupUserName,
    spawn: spawnProcess,
    execPath: process.execPath,
    startProcess,
    startServiceChild,
    signalGroup,
    processes: listProcesses,
    processStart,
    fetch: nodeFetch,
    // Loaded when the daemon serves: @hono/node-server touches fetch's globals at load (undici).
    serve: (handler, options) => import("./node-server.ts").then((m) => m.serveNode(handler, options)),
    onSignal(signal, handler) {
      process.on(signal, handler);
      return () => process.off(signal, handler);
    },
    writeStdout: (text) => void process.stdout.write(text),
    stdoutIsTerminal: () => process.stdout.isTTY === true,
    writeStderr: (text) => void process.stderr.write(text),
    exit(code): never {
      process.exitCode = code;
      // Let stdout drain before leaving: a piped `status --json` must not be cut short.
      process.stdout.write("", () => process.exit(code));
      return undefined as never;
    },
  };
}
