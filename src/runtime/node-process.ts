/** Child processes and /proc for Node (Deno runs the same code through its node: layer). */
import { spawn as nodeSpawn } from "node:child_process";
import { Buffer } from "node:buffer";
import { closeSync, openSync, promises as fs, readSync } from "node:fs";
import process from "node:process";
import type { ChildHandle, ProcessInfo, ServiceChild, ServiceChildOptions, SpawnOptions, SpawnResult } from "./types.ts";

/** /proc/<pid>/stat is read into this (a few hundred bytes; the agent reads one at a time). */
const procBuffer = Buffer.alloc(4096);

export function startProcess(command: string, args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): ChildHandle {
  let output = "";
  const child = nodeSpawn(command, args, { cwd: options.cwd, env: buildEnv(options.env), stdio: ["ignore", "pipe", "pipe"] });
  const keep = (d: Buffer) => (output = keepTail(output, d.toString("utf8"), DEFAULT_MAX_OUTPUT));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => {
    child.on("error", (err) => {
      output += `\n${err.message}`;
      resolve(null);
    });
    child.on("exit", (code) => resolve(code));
  });
  // Whatever happens to us, the child goes too (a demo must not leave a nats-server behind).
  const onExit = () => child.kill("SIGKILL");
  process.once("exit", onExit);
  return {
    pid: child.pid ?? -1,
    output: () => output,
    exited,
    async stop() {
      process.off("exit", onExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

const DEFAULT_MAX_OUTPUT = 64 * 1024;

function keepTail(current: string, chunk: string, max: number): string {
  const next = current + chunk;
  return next.length > max ? next.slice(next.length - max) : next;
}

export function buildEnv(extra: Record<string, string | undefined> | undefined, inherit = true): Record<string, string> {
  const env: Record<string, string> = {};
  if (inherit) for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function spawnProcess(command: string, args: string[], options: SpawnOptions = {}): Promise<SpawnResult> {
  let file = command;
  let argv = args;
  if (options.user) {
    // setpriv (util-linux) switches uid, gid and supplementary groups and execs the program with
    // exactly the environment given: no PAM session, no login shell, the token never in argv.
    file = "setpriv";
    argv = [`--reuid=${options.user.uid}`, `--regid=${options.user.gid}`, "--init-groups", "--", command, ...args];
  }
  const max = options.maxOutput ?? DEFAULT_MAX_OUTPUT;
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    const child = nodeSpawn(file, argv, {
      cwd: options.cwd,
      env: buildEnv(options.env, options.inheritEnv !== false),
      stdio: ["ignore", "pipe", "pipe"],
      // Own process group, so a timeout kills config.sh and everything it started.
      detached: true,
    });
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          killGroup();
        }, options.timeoutMs)
      : undefined;
    const onAbort = () => killGroup();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout = keepTail(stdout, d, max)));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr = keepTail(stderr, d, max)));
    const finish = (result: SpawnResult) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve(result);
    };
    child.on("error", (err: NodeJS.ErrnoException) => {
      finish({ code: null, signal: null, stdout, stderr, timedOut, spawnError: { code: err.code ?? "ERROR", message: err.message } });
    });
    child.on("close", (code, signal) => finish({ code, signal, stdout, stderr, timedOut }));
  });
}

/** Processes visible in /proc (Linux); an empty list elsewhere. */
export async function listProcesses(): Promise<ProcessInfo[]> {
  let entries: string[];
  try {
    entries = await fs.readdir("/proc");
  } catch {
    return [];
  }
  const out: ProcessInfo[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const raw = await fs.readFile(`/proc/${entry}/cmdline`, "utf8");
      const cmdline = raw.split("\0").filter(Boolean);
      const exe = await fs.readlink(`/proc/${entry}/exe`).catch(() => null);
      const cwd = await fs.readlink(`/proc/${entry}/cwd`).catch(() => null);
      out.push({ pid: Number(entry), cmdline, exe, cwd });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** /proc/<pid>/stat's start time (field 22), null for a zombie or a process that is not there. */
export async function processStart(pid: number): Promise<string | null> {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  let stat: string;
  try {
    // A few hundred bytes, read synchronously in one call (see node-files.ts on why small reads are).
    const fd = openSync(`/proc/${pid}/stat`, "r");
    try {
      stat = procBuffer.toString("latin1", 0, readSync(fd, procBuffer, 0, procBuffer.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields 3… follow the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X" || !fields[19]) return null;
  return fields[19];
}

/** A pool's run.sh: own process group, exact environment, output line by line to the agent's log. */
export function startServiceChild(command: string, args: string[], options: ServiceChildOptions): ServiceChild {
  const file = options.user ? "setpriv" : command;
  const argv = options.user ? [`--reuid=${options.user.uid}`, `--regid=${options.user.gid}`, "--init-groups", "--", command, ...args] : args;
  const child = nodeSpawn(file, argv, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  for (const stream of ["stdout", "stderr"] as const) {
    let partial = "";
    child[stream]?.setEncoding("utf8").on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) options.onLine?.(line.trimEnd(), stream);
    });
    child[stream]?.on("end", () => {
      if (partial.trim()) options.onLine?.(partial.trimEnd(), stream);
      partial = "";
    });
  }
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.on("error", () => resolve({ code: null, signal: null }));
    child.on("close", (code, signal) => resolve({ code, signal }));
  });
  return {
    pid: child.pid ?? -1,
    exited,
    signal(sig) {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // The group is gone already.
      }
    },
  };
}

export function signalGroup(pgid: number, signal: "SIGINT" | "SIGTERM" | "SIGKILL"): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
