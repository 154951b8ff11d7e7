/**
 * The per-runner lock (SPEC 5: cron and daemon on one host never register at once), taken only
 * when a pass is about to change something (issue 18). Most passes only read: the runner's files,
 * the service's state, the agent's memory. They run without the lock; the first step that would
 * change something (start a service, register, repair labels, emit an event, save memory) calls
 * `ensure()`, which takes the lock there and then checks that nothing the pass had read changed
 * since (another process may have held the lock in between). Unchanged: the pass goes on, its
 * reads still hold under the lock. Changed: `RunnerChanged`, and the runner is checked again from
 * the start under the lock. A quiet pass thus costs no mkdir/rmdir of the lock directory, a
 * journal transaction each on the runner's file system.
 */
import { AbortedError, ExitCode, LockTimeoutError, RtrError } from "../shared/errors.ts";
import type { FileStat } from "../runtime/types.ts";
import type { RunnerConfig } from "../config/types.ts";
import type { AgentContext } from "./context.ts";

/**
 * A holder refreshes its lock's mtime every half of this, so only a crashed holder's lock goes
 * stale: a check killed mid-pass blocks the next one for 90 s, while a VM pause or a slow disk
 * shorter than that never lets a second process in.
 */
const LOCK_STALE_MS = 90_000;

/** Another agent held the runner's lock past refresh.lockTimeout. */
export class RunnerLockTimeout extends LockTimeoutError {
  constructor(readonly dir: string) {
    super(`another runner-token-refresh held the lock on ${dir} past refresh.lockTimeout`);
    this.name = "RunnerLockTimeout";
  }
}

/** The lock could not be taken at all (the dir is not writable by this user). */
export class RunnerLockFailed extends RtrError {
  constructor(dir: string, options: { cause: unknown }) {
    super(`cannot lock ${dir}: check that the dir exists and is writable by this user`, ExitCode.failed, options);
    this.name = "RunnerLockFailed";
  }
}

/** What the pass read without the lock changed before it got the lock: check the runner again. */
export class RunnerChanged extends RtrError {
  constructor(readonly what: string) {
    super(`${what} changed while the runner was checked without its lock`, ExitCode.ok);
    this.name = "RunnerChanged";
  }
}

/** Errors that end a runner's unlocked attempt: never swallowed by a step's own error handling. */
export const isLockSignal = (err: unknown) => err instanceof RunnerChanged || err instanceof RunnerLockTimeout || err instanceof RunnerLockFailed;

/** A file's identity for "did anybody write it": every writer renames a new file in (a new inode). */
export function fileIdentity(stat: FileStat | null | undefined): string {
  return stat ? `${stat.ino ?? "?"}:${stat.size}:${stat.mtimeMs}` : "absent";
}

interface Observation {
  value: string;
  again: () => Promise<string>;
}

export class RunnerLock {
  private release: (() => Promise<void>) | null = null;
  private heldNow = false;
  private readonly observed = new Map<string, Observation>();

  constructor(
    private readonly ctx: AgentContext,
    private readonly runner: RunnerConfig,
    private readonly signal: AbortSignal,
  ) {}

  get held(): boolean {
    return this.heldNow;
  }

  /**
   * Something the pass read, as it read it, and how to read it again: `ensure()` compares. Reads
   * made once the lock is held need no record (nobody else can change them then).
   */
  observe(what: string, value: string, again: () => Promise<string>): void {
    if (!this.heldNow) this.observed.set(what, { value, again });
  }

  /** Takes the lock unless held; throws RunnerChanged when an observed read no longer holds. */
  async ensure(): Promise<void> {
    if (this.heldNow) return;
    const { ctx, runner } = this;
    // --dry-run changes nothing, and a missing dir has nothing to protect (the lock would
    // mkdir -p it and config.sh would be blamed): no lock, as before issue 18.
    const nothingToProtect = ctx.config.dryRun || (await ctx.runtime.files.stat(runner.dir).catch(() => "unreadable")) === null;
    if (!nothingToProtect) {
      const release = await ctx.runtime.files.lock(`${runner.dir}/.rtr-lock`, ctx.config.refresh.lockTimeout * 1000, LOCK_STALE_MS, this.signal).catch((err) => {
        throw new RunnerLockFailed(runner.dir, { cause: err });
      });
      if (release === null) throw this.signal.aborted ? new AbortedError() : new RunnerLockTimeout(runner.dir);
      this.release = release;
    }
    this.heldNow = true;
    const observed = [...this.observed];
    this.observed.clear();
    for (const [what, o] of observed) {
      if ((await o.again().catch(() => "unreadable")) !== o.value) throw new RunnerChanged(what);
    }
  }

  async close(): Promise<void> {
    const release = this.release;
    this.release = null;
    this.heldNow = false;
    this.observed.clear();
    await release?.();
  }
}

/** Before a step changes anything: takes the runner's lock (a no-op when held or outside a runner check). */
export async function mustLock(pass: { runnerLock?: RunnerLock | null }): Promise<void> {
  await pass.runnerLock?.ensure();
}
