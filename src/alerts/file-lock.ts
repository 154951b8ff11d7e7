/**
 * Cross-process coordination for the agent's alerts.json (SharedAlertStore): one lock around every
 * read-modify-write, and a liveness lock per process, so a claim on an alert ("my notifications of
 * it are in flight") is honoured while its process runs and taken over once it died.
 */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";
import type { SharedAlertStore } from "./engine.ts";

/** A change is a read and an atomic write: waiting longer than this means a stuck holder. */
const LOCK_WAIT_MS = 30_000;
const LOCK_STALE_MS = 10_000;
/**
 * A killed process's claims are taken over this long after its lock stopped being refreshed;
 * proper-lockfile refreshes it every half of this while the process runs.
 */
const OWNER_STALE_MS = 20_000;
const OWNERS = "alert-owners";
const OWNER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class AlertStateLockError extends Error {
  override name = "AlertStateLockError";
}

export class FileAlertLock implements SharedAlertStore {
  readonly owner = crypto.randomUUID();
  private held: Promise<(() => Promise<void>) | null> | null = null;

  constructor(
    private readonly runtime: Runtime,
    private readonly stateDir: string,
  ) {}

  private ownerPath(owner: string): string {
    return join(this.stateDir, OWNERS, owner);
  }

  async lock(): Promise<() => Promise<void>> {
    await this.runtime.files.mkdir(this.stateDir, 0o750);
    if (!this.held) {
      // Alive from our first change on, for as long as we run (or until close()).
      this.held = this.runtime.files.lock(this.ownerPath(this.owner), 0, OWNER_STALE_MS);
      await this.held;
      await this.sweep();
    }
    const path = join(this.stateDir, ".lock-alerts");
    let release: (() => Promise<void>) | null;
    try {
      release = await this.runtime.files.lock(path, LOCK_WAIT_MS, LOCK_STALE_MS);
    } catch (err) {
      throw new AlertStateLockError(`cannot lock the alert state in ${this.stateDir}: check that the state dir is writable by the agent's user`, { cause: err });
    }
    if (!release) throw new AlertStateLockError(`the alert state in ${this.stateDir} is locked by another process for over ${LOCK_WAIT_MS / 1000}s: remove ${path}.lock if no agent runs`);
    return release;
  }

  async alive(owner: string): Promise<boolean> {
    if (owner === this.owner) return true;
    // The id names a file: anything else is no process of ours (and never a path to follow).
    if (!OWNER_ID.test(owner)) return false;
    const release = await this.runtime.files.lock(this.ownerPath(owner), 0, OWNER_STALE_MS).catch(() => null);
    if (!release) return true;
    await release();
    await this.forget(owner);
    return false;
  }

  /** Removes what processes that died left behind (their liveness locks), once per process. */
  private async sweep(): Promise<void> {
    const names = await this.runtime.files.readdir(join(this.stateDir, OWNERS)).catch(() => [] as string[]);
    for (const name of names) if (OWNER_ID.test(name) && name !== this.owner) await this.alive(name);
  }

  private async forget(owner: string): Promise<void> {
    await this.runtime.files.remove(`${this.ownerPath(owner)}.lock`).catch(() => {});
    await this.runtime.files.remove(this.ownerPath(owner)).catch(() => {});
  }

  async close(): Promise<void> {
    const held = this.held;
    this.held = null;
    const release = await held;
    if (!release) return;
    await release();
    await this.forget(this.owner);
  }
}
