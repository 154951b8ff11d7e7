/**
 * The on-disk outbox (SPEC 8): events not yet acknowledged by JetStream. Append-only JSON lines,
 * fsync'd before the append returns, so a kill -9 loses nothing that was handed to it. A drain
 * first seals the current file (renames it under the append lock, so no appender holds it open),
 * then replays sealed files oldest first and deletes each once every event in it is acknowledged.
 * Shared by every process of one state dir (a cron `check` and a daemon) through two locks.
 *
 * Bounded (default 100,000 events): when full, the oldest `token.refreshed` events go first, then
 * other routine events; failure events are never dropped. Every drop is counted.
 */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";
import type { Envelope, EventType } from "../shared/types.ts";

export const DEFAULT_OUTBOX_LIMIT = 100_000;
const CURRENT = "current.jsonl";
const KEPT_TYPES: ReadonlySet<EventType> = new Set(["token.refresh_failed", "runner.registration_failed", "runner.name_conflict"]);
const LOCK_WAIT_MS = 30_000;
const PENDING_CACHE_MS = 1000;

/** Sends a batch in order; returns how many from the start of the batch were acknowledged. */
export type BatchSender = (events: Envelope[]) => Promise<number>;

export class Outbox {
  private count: number | null = null;
  private countedAt = 0;
  private sealCounter = 0;

  constructor(
    private readonly runtime: Runtime,
    readonly dir: string,
    private readonly limit = DEFAULT_OUTBOX_LIMIT,
  ) {}

  private lockPath(name: string): string {
    return join(this.dir, `.lock-${name}`);
  }

  private async withLock<T>(name: string, waitMs: number, fn: () => Promise<T>): Promise<T | undefined> {
    await this.runtime.files.mkdir(this.dir, 0o700);
    const release = await this.runtime.files.lock(this.lockPath(name), waitMs, 30_000);
    if (!release) return undefined;
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  private async files(): Promise<string[]> {
    let names: string[];
    try {
      names = await this.runtime.files.readdir(this.dir);
    } catch {
      return [];
    }
    const sealed = names.filter((n) => n.startsWith("sealed-") && n.endsWith(".jsonl")).sort();
    return names.includes(CURRENT) ? [...sealed, CURRENT] : sealed;
  }

  private async read(file: string): Promise<Envelope[]> {
    let text: string;
    try {
      text = await this.runtime.files.readText(join(this.dir, file));
    } catch {
      return [];
    }
    const events: Envelope[] = [];
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        events.push(JSON.parse(line) as Envelope);
      } catch {
        // A line torn by a crash mid-append was never acknowledged to its caller: skip it.
      }
    }
    return events;
  }

  /**
   * Events waiting. Read from disk (a cron `check` may have appended), but at most once a second:
   * a /metrics scrape must not re-read an outbox of 100,000 events every time.
   */
  async pending(): Promise<number> {
    if (this.count !== null && Date.now() - this.countedAt < PENDING_CACHE_MS) return this.count;
    let n = 0;
    for (const f of await this.files()) n += (await this.read(f)).length;
    this.count = n;
    this.countedAt = Date.now();
    return n;
  }

  async dropped(): Promise<number> {
    return Number((await this.runtime.files.readText(join(this.dir, "dropped")).catch(() => "0")).trim()) || 0;
  }

  async append(events: Envelope[]): Promise<void> {
    if (events.length === 0) return;
    const done = await this.withLock("append", LOCK_WAIT_MS, async () => {
      this.count ??= await this.pending();
      await this.runtime.files.appendDurable(join(this.dir, CURRENT), events.map((e) => JSON.stringify(e)).join("\n") + "\n");
      this.count += events.length;
      // Never compact under a running drain (it reads the sealed files); the drain shrinks it anyway.
      if (this.count > this.limit) await this.withLock("drain", 0, () => this.compact());
      return true;
    });
    if (!done) throw new Error(`outbox ${this.dir} is locked by another process for over ${LOCK_WAIT_MS / 1000}s: remove ${this.lockPath("append")}.lock if no agent runs`);
  }

  /** Called under both locks: rewrites the outbox within its limit. */
  private async compact(): Promise<void> {
    const files = await this.files();
    const events = (await Promise.all(files.map((f) => this.read(f)))).flat();
    let excess = events.length - this.limit;
    const drop = new Set<number>();
    for (const pass of [(e: Envelope) => e.type === "token.refreshed", (e: Envelope) => !KEPT_TYPES.has(e.type)]) {
      for (let i = 0; i < events.length && excess > 0; i++) {
        if (!drop.has(i) && pass(events[i])) {
          drop.add(i);
          excess--;
        }
      }
    }
    if (drop.size === 0) return;
    const kept = events.filter((_, i) => !drop.has(i));
    const name = this.sealedName();
    await this.runtime.files.writeAtomic(join(this.dir, name), kept.map((e) => JSON.stringify(e)).join("\n") + (kept.length ? "\n" : ""), 0o600);
    for (const f of files) if (f !== name) await this.runtime.files.remove(join(this.dir, f));
    await this.runtime.files.writeAtomic(join(this.dir, "dropped"), `${(await this.dropped()) + drop.size}\n`, 0o600);
    this.count = kept.length;
  }

  private sealedName(): string {
    // Lexical order is age order: fixed-width time, then a per-process counter.
    return `sealed-${String(Date.now()).padStart(15, "0")}-${String(this.sealCounter++).padStart(6, "0")}.jsonl`;
  }

  /**
   * Replays everything in order through `send`. Stops at the first batch not fully acknowledged
   * (the rest stays for the next drain). Returns how many were sent and how many remain.
   */
  async drain(send: BatchSender, batchSize = 256): Promise<{ sent: number; remaining: number }> {
    let sent = 0;
    const result = await this.withLock("drain", 0, async () => {
      for (;;) {
        await this.withLock("append", LOCK_WAIT_MS, async () => {
          if (await this.runtime.files.stat(join(this.dir, CURRENT))) await this.runtime.files.rename(join(this.dir, CURRENT), join(this.dir, this.sealedName()));
        });
        const sealed = (await this.files()).filter((f) => f !== CURRENT);
        if (sealed.length === 0) return { sent, remaining: 0 };
        for (const file of sealed) {
          const events = await this.read(file);
          let i = 0;
          while (i < events.length) {
            const batch = events.slice(i, i + batchSize);
            const acked = await send(batch).catch(() => 0);
            i += acked;
            sent += acked;
            if (acked < batch.length) {
              const rest = events.slice(i);
              await this.runtime.files.writeAtomic(join(this.dir, file), rest.map((e) => JSON.stringify(e)).join("\n") + "\n", 0o600);
              this.count = null;
              return { sent, remaining: await this.pending() };
            }
          }
          await this.runtime.files.remove(join(this.dir, file));
        }
        this.count = null;
      }
    });
    return result ?? { sent: 0, remaining: await this.pending() };
  }
}
