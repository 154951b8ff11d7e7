/**
 * What hygiene remembers between passes and processes, in `<state dir>/hygiene/`: one small file
 * per runner (written under that runner's lock, like the agent's own memory) and shared caches
 * (runner group ids per org, actions/runner's latest release). Missing or unreadable files are
 * not fatal: hygiene re-learns them from the runner dir and GitHub.
 */
import { join } from "node:path";
import { encodeToken } from "../shared/scope.ts";
import type { AgentContext } from "../agent/context.ts";

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

export async function readJsonFile<T>(ctx: AgentContext, path: string, empty: () => T): Promise<T> {
  try {
    return { ...empty(), ...(JSON.parse(await ctx.runtime.files.readText(path)) as Partial<T>) };
  } catch {
    return empty();
  }
}

/** Atomic, and never in --dry-run (SPEC 3: no file written except logs). */
export async function writeJsonFile(ctx: AgentContext, path: string, value: unknown): Promise<void> {
  if (ctx.config.dryRun) return;
  await ctx.runtime.files.mkdir(join(path, ".."), 0o750);
  await ctx.runtime.files.writeAtomic(path, `${JSON.stringify(value, null, 2)}\n`, 0o640);
}

const runnerFile = (ctx: AgentContext, runnerDir: string) => join(hygieneDir(ctx), `runner-${encodeToken(runnerDir)}.json`);

export function loadHygiene(ctx: AgentContext, runnerDir: string): Promise<HygieneMemory> {
  return readJsonFile(ctx, runnerFile(ctx, runnerDir), emptyHygieneMemory);
}

export function saveHygiene(ctx: AgentContext, runnerDir: string, memory: HygieneMemory): Promise<void> {
  return writeJsonFile(ctx, runnerFile(ctx, runnerDir), memory);
}
