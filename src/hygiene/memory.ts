/**
 * What hygiene remembers between passes and processes, in `<state dir>/hygiene/`: one small file
 * per runner (written under that runner's lock, like the agent's own memory) and shared caches
 * (runner group ids per org, actions/runner's latest release). Missing or unreadable files are
 * not fatal: hygiene re-learns them from the runner dir and GitHub.
 */
import { join } from "node:path";
import { encodeToken } from "../shared/scope.ts";
import type { AgentContext } from "../agent/context.ts";
import type { FileStat } from "../runtime/types.ts";
import { fileIdentity } from "../agent/runner-lock.ts";

export interface HygieneMemory {
  /** The runner's version as last read from its dir, and where it was read. */
  version: string | null;
  versionSource: "bin-link" | "diag" | null;
  /** The diag log `version` was read from (read again only when a newer log appears). */
  versionLog: string | null;
  /** Days since the release after `version` came out (0 when current); null when not known. */
  versionAgeDays: number | null;
  /** The level already reported for `version` (once per level, not once per pass). */
  versionWarned: "warn" | "alert" | null;
  /** The `_diag` deprecation notice already judged (its log file), and the verdict. */
  deprecationJudged: string | null;
  deprecationVerdict: "genuine" | "broker_403" | null;
  /** Session conflicts: restarts tried since the conflict first showed, and when the last was. */
  sessionRestarts: number;
  lastSessionRestart: number | null;
  /** GitHub showed the runner online while this host's service was down: the name runs elsewhere. */
  sessionElsewhere: boolean;
}

export function emptyHygieneMemory(): HygieneMemory {
  return {
    version: null,
    versionSource: null,
    versionLog: null,
    versionAgeDays: null,
    versionWarned: null,
    deprecationJudged: null,
    deprecationVerdict: null,
    sessionRestarts: 0,
    lastSessionRestart: null,
    sessionElsewhere: false,
  };
}

export function hygieneDir(ctx: AgentContext): string {
  return join(ctx.store.dir, "hygiene");
}

export async function readJsonFile<T>(ctx: AgentContext, path: string, empty: () => T, seen?: (text: string | null) => void): Promise<T> {
  let text: string;
  try {
    text = await ctx.runtime.files.readText(path);
  } catch {
    seen?.(null);
    return empty();
  }
  seen?.(text);
  try {
    return { ...empty(), ...(JSON.parse(text) as Partial<T>) };
  } catch {
    return empty();
  }
}

const jsonText = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** Atomic, and never in --dry-run (SPEC 3: no file written except logs). */
export async function writeJsonFile(ctx: AgentContext, path: string, value: unknown, text = jsonText(value)): Promise<void> {
  if (ctx.config.dryRun) return;
  await ctx.runtime.files.mkdir(join(path, ".."), 0o750);
  await ctx.runtime.files.writeAtomic(path, text, 0o640);
}

const runnerFile = (ctx: AgentContext, runnerDir: string) => join(hygieneDir(ctx), `runner-${encodeToken(runnerDir)}.json`);

/**
 * Each runner file's text as this process last read or wrote it, with the file's identity then
 * (inode, size, mtime): a save of an unchanged memory writes nothing (most passes change nothing,
 * and a write costs two fsyncs), and a file nobody replaced since is not read again (writes are
 * renames: a new inode). Every save follows a load of the same file, and the runner's lock, taken
 * before a save, checks that nobody wrote the file since that load (runner-lock.ts).
 */
const runnerTexts = new Map<string, { text: string; stat: FileStat | null }>();
const MAX_TEXTS = 4096;

function remember(path: string, text: string | null, stat: FileStat | null): void {
  runnerTexts.delete(path);
  if (text === null) return;
  if (runnerTexts.size >= MAX_TEXTS) runnerTexts.delete(runnerTexts.keys().next().value!);
  runnerTexts.set(path, { text, stat });
}

const sameFile = (a: FileStat | null | undefined, b: FileStat | null | undefined) => Boolean(a && b && a.ino !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs);

/** The runner's hygiene file's identity as loaded, and how to take it again (for the runner's lock). */
export function hygieneFileIdentity(ctx: AgentContext, runnerDir: string): { value: string; again: () => Promise<string> } {
  const path = runnerFile(ctx, runnerDir);
  return { value: fileIdentity(runnerTexts.get(path)?.stat), again: async () => fileIdentity(await ctx.runtime.files.stat(path)) };
}

export async function loadHygiene(ctx: AgentContext, runnerDir: string): Promise<HygieneMemory> {
  const path = runnerFile(ctx, runnerDir);
  const stat = await ctx.runtime.files.stat(path).catch(() => null);
  const known = runnerTexts.get(path);
  if (known && sameFile(known.stat, stat)) {
    try {
      return { ...emptyHygieneMemory(), ...(JSON.parse(known.text) as Partial<HygieneMemory>) };
    } catch {
      return emptyHygieneMemory();
    }
  }
  return readJsonFile(ctx, path, emptyHygieneMemory, (text) => remember(path, text, stat));
}

/** Saves a memory that changed, calling `beforeWrite` (the runner's lock: runner-lock.ts) first. */
export async function saveHygiene(ctx: AgentContext, runnerDir: string, memory: HygieneMemory, beforeWrite: () => Promise<void> = async () => {}): Promise<void> {
  const path = runnerFile(ctx, runnerDir);
  const text = jsonText(memory);
  if (ctx.config.dryRun || runnerTexts.get(path)?.text === text) return;
  await beforeWrite();
  await writeJsonFile(ctx, path, memory, text);
  remember(path, text, await ctx.runtime.files.stat(path).catch(() => null));
}
