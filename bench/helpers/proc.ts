// What the benchmarks read about a process: CPU time and RSS from /proc (any runtime, no help from
// the process itself), a spawned child whose output lines can be awaited, and small statistics.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { AsyncLocalStorage } from "node:async_hooks";
import process from "node:process";

/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on Linux x86 and arm). */
const TICKS_PER_SECOND = 100;

export interface ProcSample {
  /** user + system CPU time of the whole process (every thread), milliseconds. */
  cpuMs: number;
  /** The same for the main thread alone (where JavaScript runs). */
  mainThreadCpuMs: number;
  rssBytes: number;
  /** When the sample was taken (performance.now()). */
  at: number;
}

function cpuTicks(statPath: string): number {
  const stat = readFileSync(statPath, "utf8");
  // Fields after the command name (which may hold spaces) start at state (field 3).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime
}

export function procSample(pid: number): ProcSample {
  const ms = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return { cpuMs: ms(cpuTicks(`/proc/${pid}/stat`)), mainThreadCpuMs: ms(cpuTicks(`/proc/${pid}/task/${pid}/stat`)), rssBytes: rssKb * 1024, at: performance.now() };
}

export const MiB = 1024 * 1024;

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export const median = (values: number[]) => percentile(values, 50);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Child {
  child: ChildProcess;
  pid: number;
  /** Everything printed so far (stdout and stderr), bounded to the last 2 MB. */
  output(): string;
  /** Resolves with the first line matching `re` (already printed or yet to come). */
  waitForLine(re: RegExp, timeoutMs: number, what?: string): Promise<string>;
  /** Counts the lines matching `re` printed so far. */
  count(re: RegExp): number;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Everything a benchmark started that must not outlive it, even when its time box cut it short:
 * each benchmark (timeBox) gets its own set, found through the async context, so closing one
 * benchmark's leftovers never touches another's running beside it.
 */
type Closer = () => Promise<void>;
const scopes = new AsyncLocalStorage<Set<Closer>>();
const outside = new Set<Closer>();

/** Registers `close` to run when the benchmark ends unless the benchmark ran it itself first. */
export function guard<T extends { close(): Promise<void> }>(resource: T): T {
  const set = scopes.getStore() ?? outside;
  const close = resource.close.bind(resource);
  let done: Promise<void> | null = null;
  const once = () => (done ??= close().catch(() => {}));
  set.add(once);
  resource.close = () => {
    set.delete(once);
    return once();
  };
  return resource;
}

async function closeAll(set: Set<Closer>): Promise<void> {
  for (const close of [...set].reverse()) {
    set.delete(close);
    await close();
  }
}

/** Closes whatever was started outside any time box (the run's own leftovers). */
export function closeLeftovers(): Promise<void> {
  return closeAll(outside);
}

export function spawnChild(argv: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Child {
  const child = spawn(argv[0], argv.slice(1), {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let partial = "";
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const onData = (d: string) => {
    out = (out + d).slice(-2_000_000);
    const parts = (partial + d).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
    if (lines.length > 200_000) lines.splice(0, 100_000);
  };
  child.stdout!.setEncoding("utf8").on("data", onData);
  child.stderr!.setEncoding("utf8").on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const handle: Child = {
    child,
    pid: child.pid!,
    output: () => out,
    count: (re) => lines.filter((l) => re.test(l)).length,
    waitForLine(re, timeoutMs, what) {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { re, resolve: (l: string) => (clearTimeout(timer), resolve(l)) };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what ?? re} from ${argv.join(" ")}: ${out.slice(-1500)}`));
        }, timeoutMs);
        waiters.push(w);
        exited.then((code) => {
          if (!waiters.includes(w)) return;
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`${argv.join(" ")} exited ${code} before ${what ?? re}: ${out.slice(-1500)}`));
        });
      });
    },
    exited,
    kill(signal = "SIGTERM") {
      if (!gone()) {
        try {
          process.kill(child.pid!, signal);
        } catch {
          // already gone
        }
      }
    },
    async stop(graceMs = 5000) {
      if (gone()) return;
      handle.kill("SIGTERM");
      const timer = setTimeout(() => handle.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  const guarded = guard({ close: () => handle.stop(1000) });
  void exited.then(() => guarded.close());
  return handle;
}

/**
 * Runs `fn` at most `ms`; past that the benchmark fails with a clear message instead of hanging,
 * and whatever it started (guarded servers, spawned children) is closed.
 */
export async function timeBox<T>(name: string, ms: number, fn: () => Promise<T>): Promise<T> {
  const mine = new Set<Closer>();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: time box of ${Math.round(ms / 1000)} s exceeded`)), ms);
  });
  try {
    return await Promise.race([scopes.run(mine, fn), deadline]);
  } finally {
    clearTimeout(timer);
    await closeAll(mine);
  }
}
