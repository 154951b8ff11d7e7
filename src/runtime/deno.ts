/**
 * The Deno implementation of the runtime seam. Files, child processes and /proc go through
 * Deno's node: compatibility layer (the same code as on Node, proven by the Deno test suite);
 * env, argv, signals, hostname, output and exit use Deno's own APIs.
 */
import { nodeFiles } from "./node-files.ts";
import { listProcesses, processStart, spawnProcess, startProcess, startServiceChild, signalGroup } from "./node-process.ts";
import { lookupUserName } from "./node.ts";
import { serveDeno } from "./deno-server.ts";
import type { Runtime } from "./types.ts";

// Declared here, not from lib.deno: the same sources type-check with tsc for Node.
declare const Deno: {
  args: string[];
  version: { deno: string };
  env: { toObject(): Record<string, string>; get(name: string): string | undefined };
  cwd(): string;
  hostname(): string;
  uid(): number | null;
  addSignalListener(signal: string, handler: () => void): void;
  removeSignalListener(signal: string, handler: () => void): void;
  stdout: { writeSync(data: Uint8Array): number; isTerminal(): boolean };
  stderr: { writeSync(data: Uint8Array): number };
  exit(code: number): never;
  execPath(): string;
};

function writeAll(stream: { writeSync(data: Uint8Array): number }, text: string): void {
  let data = new TextEncoder().encode(text);
  while (data.length > 0) data = data.subarray(stream.writeSync(data));
}

export function createDenoRuntime(): Runtime {
  return {
    name: "deno",
    version: Deno.version.deno,
    argv: Deno.args,
    env: Deno.env.toObject(),
    cwd: Deno.cwd(),
    files: nodeFiles,
    hostname: () => Deno.hostname(),
    homedir: () => Deno.env.get("HOME") ?? "/",
    uid: () => Deno.uid() ?? -1,
    userName: lookupUserName,
    spawn: spawnProcess,
    execPath: Deno.execPath(),
    startProcess,
    startServiceChild,
    signalGroup,
    processes: listProcesses,
    processStart,
    serve: serveDeno,
    onSignal(signal, handler) {
      Deno.addSignalListener(signal, handler);
      return () => Deno.removeSignalListener(signal, handler);
    },
    writeStdout: (text) => writeAll(Deno.stdout, text),
    stdoutIsTerminal: () => Deno.stdout.isTerminal(),
    writeStderr: (text) => writeAll(Deno.stderr, text),
    exit: (code) => Deno.exit(code),
  };
}
