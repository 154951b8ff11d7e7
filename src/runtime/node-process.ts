/** Child processes and /proc for Node (Deno runs the same code through its node: layer). */
import { spawn as nodeSpawn } from "node:child_process";
import { promises as fs } from "node:fs";
import process from "node:process";
import type { ChildHandle, ProcessInfo, SpawnOptions, SpawnResult } from "./types.ts";

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

export function buildEnv(extra: Record<string, string | undefined> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
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
    // runuser keeps the environment (so the token stays out of argv) and needs no setuid helper.
    file = "runuser";
    argv = ["-u", options.user, "--", command, ...args];
  }
  const max = options.maxOutput ?? DEFAULT_MAX_OUTPUT;
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    const child = nodeSpawn(file, argv, {
      cwd: options.cwd,
      env: buildEnv(options.env),
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
