/**
 * The runtime seam: everything that differs between Node and Deno, and everything that touches
 * the operating system, goes through this interface. Shared code receives a Runtime and never
 * reaches for `process`, `Deno` or node: modules of its own (scripts/check-seam.mjs enforces it).
 */
import type { PreparedRoute } from "./prepared.ts";

export interface SpawnOptions {
  cwd?: string;
  /** Extra environment on top of the inherited one; `undefined` values remove a variable. */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Run as this user (the agent must be root): through setpriv, with its groups. */
  user?: { name: string; uid: number; gid: number };
  /**
   * false: the child gets only `env`, nothing of the agent's own environment (SPEC 15: programs
   * run as a runner's user see the one token they need and nothing else).
   */
  inheritEnv?: boolean;
  /** Killing the child group when aborted. */
  signal?: AbortSignal;
  /** How much of stdout/stderr to keep (the tail), bytes. */
  maxOutput?: number;
}

export interface SpawnResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The program could not be started at all (ENOENT, EACCES). */
  spawnError?: { code: string; message: string };
}

/** A long-running child (the demo's nats-server): output kept, stopped on request. */
export interface ChildHandle {
  pid: number;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** How a long-running child of the agent (a pool's run.sh) is started. */
export interface ServiceChildOptions {
  cwd: string;
  env: Record<string, string>;
  /** Run as this user (the agent must be root). */
  user?: { name: string; uid: number; gid: number };
  /** Each line of its output, as it comes. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
}

/** A long-running child in its own process group (so a signal reaches everything it started). */
export interface ServiceChild {
  pid: number;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** Signals the whole process group. */
  signal(signal: "SIGINT" | "SIGTERM" | "SIGKILL"): void;
}

export interface FileStat {
  isFile: boolean;
  isDirectory: boolean;
  /** Only ever true from lstat (stat follows links). */
  isSymbolicLink: boolean;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  size: number;
  /** The inode: a file replaced by rename (every atomic write) has a new one. */
  ino?: number;
}

export interface ProcessInfo {
  pid: number;
  cmdline: string[];
  exe: string | null;
  cwd: string | null;
}

export interface RuntimeFiles {
  readText(path: string): Promise<string>;
  /** The last `maxBytes` of a regular file (all of a smaller one), as UTF-8; never waits on a FIFO. */
  readTail(path: string, maxBytes: number): Promise<string>;
  /**
   * Atomic: temp file in the same dir, fsync, rename. `mode` defaults to 0o644. `syncDir: false`
   * skips the directory fsync after the rename (still never torn; a crash may keep the old file).
   * A symbolic link at `path` is followed unless `replaceLink` says to replace the link itself
   * (for files in dirs another user can write: a planted link must not steer the write).
   */
  writeAtomic(path: string, data: string, mode?: number, options?: { syncDir?: boolean; replaceLink?: boolean }): Promise<void>;
  /** Append and fsync (for append-only logs such as the outbox). */
  appendDurable(path: string, data: string): Promise<void>;
  mkdir(path: string, mode?: number): Promise<void>;
  stat(path: string): Promise<FileStat | null>;
  /** Like stat, but a symbolic link is described itself, not followed. */
  lstat(path: string): Promise<FileStat | null>;
  readdir(path: string): Promise<string[]>;
  rename(from: string, to: string): Promise<void>;
  copyFile(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  /** A hard link `to` of the file `from` (pool slots share the template's files). */
  link(from: string, to: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  /** Throws when the directory cannot be written by this process. */
  assertWritable(path: string): Promise<void>;
  /**
   * Exclusive cross-process lock on `path`; resolves to a release function, or null on timeout or
   * when `signal` fires while waiting (a daemon told to stop does not wait out lockTimeout).
   */
  lock(path: string, timeoutMs: number, staleMs?: number, signal?: AbortSignal): Promise<(() => Promise<void>) | null>;
}

export interface HttpServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface ServeOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  /** Routes answered from prepared bytes before `handler` (the agent's /metrics). */
  prepared?: readonly PreparedRoute[];
}

export interface Runtime {
  readonly name: "node" | "deno";
  readonly version: string;
  readonly argv: string[];
  readonly env: Record<string, string | undefined>;
  readonly cwd: string;
  readonly files: RuntimeFiles;
  hostname(): string;
  homedir(): string;
  uid(): number;
  /** User name for a uid (for runAs defaults); null when unknown. */
  userName(uid: number): Promise<string | null>;
  spawn(command: string, args: string[], options?: SpawnOptions): Promise<SpawnResult>;
  /** Starts a program that keeps running (the demo's nats-server); it dies with us. */
  startProcess(command: string, args: string[], options?: { cwd?: string; env?: Record<string, string | undefined> }): ChildHandle;
  /** Starts a long-running child with exactly `env` (nothing inherited), optionally as another user. */
  startServiceChild(command: string, args: string[], options: ServiceChildOptions): ServiceChild;
  /** The interpreter running this program (node or deno), for scripts the program writes. */
  readonly execPath: string;
  processes(): Promise<ProcessInfo[]>;
  /**
   * What identifies a running process beyond its pid (its start time since boot, from
   * /proc/<pid>/stat), so that a reused pid is never taken for the same process; null when no
   * such process runs (a zombie counts as gone) or /proc cannot tell.
   */
  processStart(pid: number): Promise<string | null>;
  /** Sends a signal to a process group (a pool runner left behind by an earlier agent); false when gone. */
  signalGroup(pgid: number, signal: "SIGINT" | "SIGTERM" | "SIGKILL"): boolean;
  /** The HTTP client the GitHub client uses; absent: the global fetch (Deno's is native; Node's is replaced, node-fetch.ts). */
  fetch?: typeof fetch;
  /** Serves HTTP (hono's `app.fetch`) on hostname:port, prepared routes first. */
  serve(handler: FetchHandler, options: ServeOptions): Promise<HttpServer>;
  onSignal(signal: "SIGTERM" | "SIGINT" | "SIGHUP", handler: () => void): () => void;
  writeStdout(text: string): void;
  /** True when stdout is a terminal (colours are for people, not for pipes). */
  stdoutIsTerminal?(): boolean;
  writeStderr(text: string): void;
  exit(code: number): never;
}
