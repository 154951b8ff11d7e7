/**
 * What the agent remembers between passes and processes, in the state dir. One small file per
 * runner (written under that runner's lock, taken when a pass changes it: runner-lock.ts) and one
 * per scope (under the scope's lock), so a cron `check` and a daemon on one host never overwrite
 * each other's memory.
 */
import { join } from "node:path";
import { encodeToken, scopeKey, type Scope } from "../shared/scope.ts";
import type { RunnerStatus } from "../shared/types.ts";
import type { FileStat, Runtime } from "../runtime/types.ts";
import type { RunnerApiState } from "../github/client.ts";

export interface RunnerMemory {
  /** Every agentId this host registered or found in files it moved aside (name-conflict check). */
  knownIds: number[];
  registrations: number;
  /** Epoch seconds of the last registration this agent made. */
  registeredAt: number | null;
  pendingReregister: { reason: string; since: number } | null;
  lastStatusCheck: number | null;
  api: { id: number; status: "online" | "offline"; busy: boolean; checkedAt: number } | null;
  /** The last 200 answer of the status call with its ETag: the next call is conditional (a 304 is free). */
  statusAnswer: { etag: string; runner: RunnerApiState } | null;
  /** First pass that saw the service inactive (for offlineGrace). */
  downSince: number | null;
  serviceStartTries: number;
  lastServiceStart: number | null;
  /** First pass that saw the runner offline at GitHub (for offlineWarnAfter). */
  offlineSince: number | null;
  offlineWarned: boolean;
  diagFindings: string[];
  consecutiveFailures: number;
  lastError: string | null;
  status: RunnerStatus;
  registered: boolean;
  agentId: number | null;
  serviceActive: boolean | null;
  online: boolean | null;
  busy: boolean | null;
}

export interface ScopeMemory {
  totalRefreshes: number;
  failedRefreshes: number;
  consecutiveFailures: number;
  lastRefresh: number | null;
  lastError: string | null;
}

export function emptyRunnerMemory(): RunnerMemory {
  return {
    knownIds: [],
    registrations: 0,
    registeredAt: null,
    pendingReregister: null,
    lastStatusCheck: null,
    api: null,
    statusAnswer: null,
    downSince: null,
    serviceStartTries: 0,
    lastServiceStart: null,
    offlineSince: null,
    offlineWarned: false,
    diagFindings: [],
    consecutiveFailures: 0,
    lastError: null,
    status: "unregistered",
    registered: false,
    agentId: null,
    serviceActive: null,
    online: null,
    busy: null,
  };
}

export function emptyScopeMemory(): ScopeMemory {
  return { totalRefreshes: 0, failedRefreshes: 0, consecutiveFailures: 0, lastRefresh: null, lastError: null };
}

const jsonText = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export class StateStore {
  constructor(
    private readonly runtime: Runtime,
    readonly dir: string,
    /** --dry-run writes nothing. */
    private readonly readOnly: boolean,
  ) {}

  runnerFile(runnerDir: string): string {
    return join(this.dir, "runners", `${encodeToken(runnerDir)}.json`);
  }
  scopeFile(scope: Scope): string {
    return join(this.dir, "scopes", `${encodeToken(scopeKey(scope))}.json`);
  }
  lockPath(kind: "scope" | "seq", name: string): string {
    return join(this.dir, "locks", `${kind}-${encodeToken(name)}`);
  }
  asideDir(runnerDir: string): string {
    return join(this.dir, "aside", encodeToken(runnerDir));
  }

  /**
   * The text each file had when this process last read or wrote it, with the file's identity then
   * (inode, size, mtime): an unchanged memory is not rewritten, and a file nobody replaced since is
   * not read again (every write here is a rename, so a new inode).
   */
  private readonly texts = new Map<string, { text: string; stat: FileStat | null }>();

  private async readJson<T>(path: string, empty: () => T): Promise<T> {
    let text: string;
    try {
      const stat = await this.runtime.files.stat(path);
      const known = this.texts.get(path);
      if (stat && known?.stat && stat.ino !== undefined && known.stat.ino === stat.ino && known.stat.size === stat.size && known.stat.mtimeMs === stat.mtimeMs) text = known.text;
      else {
        text = await this.runtime.files.readText(path);
        this.texts.set(path, { text, stat });
      }
    } catch {
      this.texts.delete(path);
      // Missing or unreadable memory is not fatal: the agent re-learns it from files and GitHub.
      return empty();
    }
    try {
      return { ...empty(), ...(JSON.parse(text) as Partial<T>) };
    } catch {
      return empty();
    }
  }

  /**
   * Atomic (and fsync'd); skipped when the text is what this process just read or wrote there
   * (a save follows a load; the runner's lock, taken before the save, checks that nobody wrote
   * the file in between: runner-lock.ts).
   */
  private async writeJson(path: string, value: unknown): Promise<void> {
    if (this.readOnly) return;
    const text = jsonText(value);
    if (this.texts.get(path)?.text === text) return;
    await this.runtime.files.mkdir(join(path, ".."), 0o750);
    await this.runtime.files.writeAtomic(path, text, 0o640);
    this.texts.set(path, { text, stat: await this.runtime.files.stat(path).catch(() => null) });
  }

  /** The file's identity when this process last read or wrote it (null: absent, or not read yet). */
  knownStat(path: string): FileStat | null {
    return this.texts.get(path)?.stat ?? null;
  }

  /** Whether saving this memory would write anything (it differs from what this process last read or wrote). */
  runnerChanged(runnerDir: string, memory: RunnerMemory): boolean {
    return !this.readOnly && this.texts.get(this.runnerFile(runnerDir))?.text !== jsonText(memory);
  }

  loadRunner(runnerDir: string): Promise<RunnerMemory> {
    return this.readJson(this.runnerFile(runnerDir), emptyRunnerMemory);
  }
  saveRunner(runnerDir: string, memory: RunnerMemory): Promise<void> {
    return this.writeJson(this.runnerFile(runnerDir), memory);
  }
  loadScope(scope: Scope): Promise<ScopeMemory> {
    return this.readJson(this.scopeFile(scope), emptyScopeMemory);
  }
  saveScope(scope: Scope, memory: ScopeMemory): Promise<void> {
    return this.writeJson(this.scopeFile(scope), memory);
  }

  /** Next event sequence number, persisted across restarts and shared by every process of this state dir. */
  async nextSeq(): Promise<number> {
    const path = join(this.dir, "seq");
    if (this.readOnly) return 0;
    const release = await this.runtime.files.lock(this.lockPath("seq", "events"), 30_000, 10_000);
    if (!release) throw new Error(`state dir ${this.dir}: the event sequence lock is stuck: remove ${this.lockPath("seq", "events")}.lock`);
    try {
      const current = Number((await this.runtime.files.readText(path).catch(() => "0")).trim()) || 0;
      await this.runtime.files.writeAtomic(path, `${current + 1}\n`, 0o640);
      return current + 1;
    } finally {
      await release();
    }
  }
}
