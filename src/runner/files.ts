/**
 * Reads the runner's own files (SPEC 5). .NET writes them as UTF-8, often with a BOM; the
 * `_migrated` variants take precedence when present, as they do for the runner itself.
 */
import { join } from "node:path";
import type { FileStat, Runtime } from "../runtime/types.ts";

export const REGISTRATION_FILES = [".runner", ".runner_migrated", ".credentials", ".credentials_migrated", ".credentials_rsaparams"] as const;
export const HOLD_FILE = ".rtr-hold";
/** Every file the agent reads or moves in a runner dir (the runner's user can replace any of them). */
const READ_FILES = [...REGISTRATION_FILES, ".service", HOLD_FILE] as const;

export interface RunnerFile {
  agentId: number;
  agentName?: string;
  poolId?: number;
  poolName?: string;
  serverUrl?: string;
  gitHubUrl?: string;
  workFolder?: string;
  ephemeral?: boolean;
  disableUpdate?: boolean;
}

export interface LocalRunnerState {
  dirExists: boolean;
  /**
   * Why the agent will not touch this dir: the dir or one of its files is a symbolic link. The
   * runner's user (and its jobs) can plant one, and the agent may run as root: following it would
   * read or move files anywhere (SPEC 15).
   */
  refused: string | null;
  /** `.runner` or `.runner_migrated` exists (as the runner itself sees "configured"). */
  configured: boolean;
  /** The parsed runner file, when readable. */
  runner: RunnerFile | null;
  /** Why a present `.runner` could not be used (empty, truncated, not JSON, no agentId). */
  runnerProblem: string | null;
  hasCredentials: boolean;
  /** The systemd unit from `.service`, if installed. */
  serviceUnit: string | null;
  held: boolean;
  /** mtime of the runner file (registration time when the agent did not register it itself). */
  runnerFileMtime: number | null;
  /** The identity (inode, size, mtime) of the dir and each file read here: changes when anybody writes one. */
  fingerprint: string;
}

export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

async function readOptional(runtime: Runtime, path: string): Promise<string | null> {
  try {
    return await runtime.files.readText(path);
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return null;
    throw err;
  }
}

export function parseRunnerFile(text: string, fileName: string): { runner: RunnerFile | null; problem: string | null } {
  const body = stripBom(text).trim();
  if (!body) return { runner: null, problem: `${fileName} is empty` };
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    return { runner: null, problem: `${fileName} is not valid JSON (truncated or corrupted)` };
  }
  const agentId = (data as { agentId?: unknown })?.agentId;
  const id = typeof agentId === "string" && /^\d+$/.test(agentId) ? Number(agentId) : agentId;
  if (typeof id !== "number" || !Number.isInteger(id) || id <= 0) return { runner: null, problem: `${fileName} has no agentId` };
  return { runner: { ...(data as RunnerFile), agentId: id }, problem: null };
}

const ABSENT: Omit<LocalRunnerState, "dirExists" | "refused" | "fingerprint"> = { configured: false, runner: null, runnerProblem: null, hasCredentials: false, serviceUnit: null, held: false, runnerFileMtime: null };

const identity = (s: FileStat | null | undefined) => (s ? `${s.isSymbolicLink ? "l" : ""}${s.ino ?? "?"}:${s.size}:${s.mtimeMs}` : "-");

/** The lstat of each file the agent reads or moves (null: absent), and a symbolic link among them, described. */
async function inspect(runtime: Runtime, dir: string, dirLstat?: FileStat | null): Promise<{ refused: string | null; stats: Map<string, FileStat | null>; fingerprint: string }> {
  const stats = new Map<string, FileStat | null>();
  const dirStat = dirLstat === undefined ? await runtime.files.lstat(dir) : dirLstat;
  if (dirStat?.isSymbolicLink) return { refused: `runner dir ${dir} is a symbolic link: set runners[].dir to the real path`, stats, fingerprint: identity(dirStat) };
  const all = await Promise.all(READ_FILES.map((name) => runtime.files.lstat(join(dir, name))));
  READ_FILES.forEach((name, i) => stats.set(name, all[i]));
  const link = READ_FILES.find((name) => stats.get(name)?.isSymbolicLink);
  const refused = link ? `${join(dir, link)} is a symbolic link: the agent never follows links in a runner dir; remove it (and find out who made it)` : null;
  // The dir by inode only: its mtime moves with every entry made in it (the lock dir, a job's files).
  return { refused, stats, fingerprint: [`${dirStat?.ino ?? "-"}`, ...all.map(identity)].join(" ") };
}

/** The identity of the runner dir and of every file the agent reads there (LocalRunnerState.fingerprint). */
export async function runnerFilesFingerprint(runtime: Runtime, dir: string): Promise<string> {
  return (await inspect(runtime, dir)).fingerprint;
}

/** A symbolic link among the dir and the files the agent reads or moves, described; else null. */
export async function findSymlink(runtime: Runtime, dir: string): Promise<string | null> {
  return (await inspect(runtime, dir)).refused;
}

/**
 * Texts of the runner's small files as last read, by path, valid while size and mtime are those
 * of the lstat taken before the read: a pass re-reads only what changed since the last one.
 */
const texts = new Map<string, { size: number; mtimeMs: number; text: string }>();
const MAX_CACHED_TEXTS = 4096;

async function readUnlessUnchanged(runtime: Runtime, path: string, stat: FileStat | null | undefined): Promise<string | null> {
  if (!stat) {
    texts.delete(path);
    return null;
  }
  const known = texts.get(path);
  if (known && known.size === stat.size && known.mtimeMs === stat.mtimeMs) return known.text;
  const text = await readOptional(runtime, path);
  texts.delete(path);
  if (text !== null) {
    if (texts.size >= MAX_CACHED_TEXTS) texts.delete(texts.keys().next().value!);
    texts.set(path, { size: stat.size, mtimeMs: stat.mtimeMs, text });
  }
  return text;
}

/**
 * Only the systemd unit named in `.service` (for one `systemctl show` per pass), null when there
 * is none; never through a symbolic link.
 */
export async function readServiceUnit(runtime: Runtime, dir: string): Promise<string | null> {
  if ((await runtime.files.lstat(dir))?.isSymbolicLink) return null;
  const stat = await runtime.files.lstat(join(dir, ".service"));
  if (!stat?.isFile) return null;
  const text = await readUnlessUnchanged(runtime, join(dir, ".service"), stat);
  return text ? stripBom(text).trim() || null : null;
}

export async function readLocalState(runtime: Runtime, dir: string): Promise<LocalRunnerState> {
  // One lstat: a link is refused by inspect (it names it), anything but a directory is no runner dir.
  const stat = await runtime.files.lstat(dir);
  if (!stat || (!stat.isDirectory && !stat.isSymbolicLink)) return { dirExists: false, refused: null, ...ABSENT, fingerprint: "-" };
  const { refused, stats, fingerprint } = await inspect(runtime, dir, stat);
  if (refused) return { dirExists: true, refused, ...ABSENT, fingerprint };
  // No file here is a link (inspect refused those): each lstat is the file's own stat.
  const migrated = await readUnlessUnchanged(runtime, join(dir, ".runner_migrated"), stats.get(".runner_migrated"));
  const plain = migrated === null ? await readUnlessUnchanged(runtime, join(dir, ".runner"), stats.get(".runner")) : null;
  const runnerText = migrated ?? plain;
  const runnerName = migrated !== null ? ".runner_migrated" : ".runner";
  const parsed = runnerText === null ? { runner: null, problem: null } : parseRunnerFile(runnerText, runnerName);
  const creds = stats.get(".credentials_migrated") ?? stats.get(".credentials");
  const service = await readUnlessUnchanged(runtime, join(dir, ".service"), stats.get(".service"));
  const runnerStat = runnerText === null ? null : stats.get(runnerName);
  return {
    dirExists: true,
    refused: null,
    configured: runnerText !== null,
    runner: parsed.runner,
    runnerProblem: parsed.problem,
    hasCredentials: Boolean(creds),
    serviceUnit: service ? stripBom(service).trim() || null : null,
    held: Boolean(stats.get(HOLD_FILE)),
    runnerFileMtime: runnerStat ? Math.floor(runnerStat.mtimeMs / 1000) : null,
    fingerprint,
  };
}
