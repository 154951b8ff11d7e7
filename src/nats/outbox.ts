/**
 * The on-disk outbox (SPEC 8): events not yet acknowledged by JetStream. Append-only JSON lines
 * (format: outbox-lines.ts), fsync'd before the append returns, so a kill -9 loses nothing that
 * was handed to it; a line torn by a crash is skipped and the next append starts on a fresh line.
 * A drain first seals the current file (renames it under the append lock, so no appender holds it
 * open), then replays sealed files oldest first and deletes each once every event in it is
 * acknowledged. Shared by every process of one state dir (a cron `check` and a daemon) through
 * two locks.
 *
 * Appends never re-read the outbox: each process keeps an index (events and lines per file, each
 * stream's last event) and re-reads only a file another process changed since (size or mtime).
 * Identical failures in a row are coalesced into one event with a count.
 *
 * Bounded (default 100,000 events): when full, the oldest `token.refreshed` events go first, then
 * other routine events, then the oldest failures; every drop is counted. Each compaction makes
 * room for a tenth of the limit, so a full outbox is rewritten once per limit/10 appends, not on
 * every one.
 */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";
import type { Envelope } from "../shared/types.ts";
import { coalesceKey, parseOutboxFile, pickDrops, repeatLine, serialize, streamOf, type Tail } from "./outbox-lines.ts";

export const DEFAULT_OUTBOX_LIMIT = 100_000;
const CURRENT = "current.jsonl";
const LOCK_WAIT_MS = 30_000;

/** Sends a batch in order; returns how many from the start of the batch were acknowledged. */
export type BatchSender = (events: Envelope[]) => Promise<number>;

/** What this process knows of one outbox file, valid while its size and mtime are unchanged. */
interface FileEntry {
  size: number;
  mtimeMs: number;
  events: number;
  lines: number;
}

export class OutboxLockedError extends Error {
  override name = "OutboxLockedError";
}

export class Outbox {
  private readonly entries = new Map<string, FileEntry>();
  /** Each stream's last event in the current file (repeats fold into it). */
  private tails = new Map<string, Tail>();
  private cleanEnd = true;
  /** Index reads and changes within this process, one at a time (a /metrics scrape vs an append). */
  private serial: Promise<unknown> = Promise.resolve();
  private readonly lowWater: number;

  constructor(
    private readonly runtime: Runtime,
    readonly dir: string,
    private readonly limit = DEFAULT_OUTBOX_LIMIT,
  ) {
    this.lowWater = Math.max(1, limit - Math.max(1, Math.floor(limit / 10)));
  }

  private path(name: string): string {
    return join(this.dir, name);
  }

  private lockPath(name: string): string {
    return join(this.dir, `.lock-${name}`);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.serial.then(fn, fn);
    this.serial = next.catch(() => {});
    return next;
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

  private async read(name: string): Promise<ReturnType<typeof parseOutboxFile> | null> {
    try {
      return parseOutboxFile(await this.runtime.files.readText(this.path(name)));
    } catch {
      return null;
    }
  }

  /** Records a file as this process just wrote it (or forgets it when it is gone). */
  private async remember(name: string, events: number, lines: number): Promise<void> {
    const st = await this.runtime.files.stat(this.path(name));
    if (st) this.entries.set(name, { size: st.size, mtimeMs: st.mtimeMs, events, lines });
    else this.entries.delete(name);
  }

  /** Brings the index up to date: re-reads only files that changed since this process saw them. */
  private async sync(): Promise<void> {
    const names = await this.files();
    for (const name of [...this.entries.keys()]) if (!names.includes(name)) this.entries.delete(name);
    if (!names.includes(CURRENT)) {
      this.tails = new Map();
      this.cleanEnd = true;
    }
    for (const name of names) {
      const st = await this.runtime.files.stat(this.path(name));
      const known = this.entries.get(name);
      if (!st || (known && known.size === st.size && known.mtimeMs === st.mtimeMs)) continue;
      const parsed = await this.read(name);
      if (!parsed) continue;
      // The stat from before the read: if the file grew meanwhile, the next sync reads it again.
      this.entries.set(name, { size: st.size, mtimeMs: st.mtimeMs, events: parsed.events.length, lines: parsed.lines });
      if (name === CURRENT) {
        this.tails = parsed.tails;
        this.cleanEnd = parsed.cleanEnd;
      }
    }
  }

  private total(field: "events" | "lines"): number {
    let n = 0;
    for (const e of this.entries.values()) n += e[field];
    return n;
  }

  /** Events waiting (a coalesced run counts once). Cheap: a readdir and a stat per file. */
  pending(): Promise<number> {
    return this.exclusive(async () => {
      await this.sync();
      return this.total("events");
    });
  }

  async dropped(): Promise<number> {
    return Number((await this.runtime.files.readText(this.path("dropped")).catch(() => "0")).trim()) || 0;
  }

  async append(events: Envelope[]): Promise<void> {
    if (events.length === 0) return;
    const done = await this.exclusive(() =>
      this.withLock("append", LOCK_WAIT_MS, async () => {
        await this.sync();
        const lines: string[] = [];
        let added = 0;
        for (const e of events) {
          const stream = streamOf(e);
          const key = coalesceKey(e);
          const tail = this.tails.get(stream);
          if (key !== null && tail?.key === key) {
            lines.push(repeatLine(tail, e));
            continue;
          }
          const { coalesced: _, ...data } = e.data ?? {};
          this.tails.set(stream, { id: e.id, key, data });
          lines.push(JSON.stringify(e));
          added++;
        }
        // After a torn line (a crash mid-append), start on a fresh line so this one stays whole.
        const text = `${this.cleanEnd ? "" : "\n"}${lines.join("\n")}\n`;
        const before = this.entries.get(CURRENT) ?? { events: 0, lines: 0 };
        await this.runtime.files.appendDurable(this.path(CURRENT), text);
        this.cleanEnd = true;
        await this.remember(CURRENT, before.events + added, before.lines + lines.length);
        // Never compact under a running drain (it reads the sealed files); the drain shrinks it anyway.
        if (this.total("events") > this.limit || this.total("lines") > 2 * this.limit) await this.withLock("drain", 0, () => this.compact());
        return true;
      }),
    );
    if (!done) throw new OutboxLockedError(`outbox ${this.dir} is locked by another process for over ${LOCK_WAIT_MS / 1000}s: remove ${this.lockPath("append")}.lock if no agent runs`);
  }

  /**
   * Under both locks: folds repeats into their events and, when over the limit, drops down to the
   * low-water mark. Each file is replaced atomically, so a crash leaves every file whole.
   */
  private async compact(): Promise<void> {
    const names = await this.files();
    const parsed = await Promise.all(names.map(async (name) => ({ name, file: await this.read(name) })));
    const all = parsed.flatMap(({ file }) => file?.events ?? []);
    const drop = pickDrops(all, all.length > this.limit ? all.length - this.lowWater : 0);
    let offset = 0;
    for (const { name, file } of parsed) {
      if (!file) continue;
      const kept = file.events.filter((_, i) => !drop.has(offset + i));
      offset += file.events.length;
      if (kept.length === file.lines) continue;
      if (kept.length === 0) await this.runtime.files.remove(this.path(name));
      else await this.runtime.files.writeAtomic(this.path(name), serialize(kept), 0o600);
      await this.remember(name, kept.length, kept.length);
      if (name === CURRENT) {
        const rewritten = parseOutboxFile(serialize(kept));
        this.tails = rewritten.tails;
        this.cleanEnd = true;
      }
    }
    if (drop.size > 0) await this.runtime.files.writeAtomic(this.path("dropped"), `${(await this.dropped()) + drop.size}\n`, 0o600);
  }

  /** Under the append lock: a name after every sealed file there (lexical order is age order). */
  private async sealedName(): Promise<string> {
    const newest = (await this.files()).filter((f) => f !== CURRENT).pop();
    const last = newest ? Number(newest.slice("sealed-".length, "sealed-".length + 15)) || 0 : 0;
    const id = crypto.randomUUID().slice(0, 8);
    return `sealed-${String(Math.max(Date.now(), last + 1)).padStart(15, "0")}-${id}.jsonl`;
  }

  /** Seals the current file, if any, so appends go to a new one while the drain replays. */
  private seal(): Promise<void> {
    return this.exclusive(async () => {
      await this.withLock("append", LOCK_WAIT_MS, async () => {
        await this.sync();
        if (!(await this.runtime.files.stat(this.path(CURRENT)))) return;
        const name = await this.sealedName();
        await this.runtime.files.rename(this.path(CURRENT), this.path(name));
        const entry = this.entries.get(CURRENT);
        this.entries.delete(CURRENT);
        if (entry) this.entries.set(name, entry);
        // A repeat must never point at an event that may already be on its way to NATS.
        this.tails = new Map();
        this.cleanEnd = true;
      });
    });
  }

  /**
   * Replays everything in order through `send`. Stops at the first batch not fully acknowledged
   * (the rest stays for the next drain). Returns how many were sent and how many remain.
   */
  async drain(send: BatchSender, batchSize = 256): Promise<{ sent: number; remaining: number }> {
    let sent = 0;
    const result = await this.withLock("drain", 0, async () => {
      for (;;) {
        await this.seal();
        const sealed = (await this.files()).filter((f) => f !== CURRENT);
        if (sealed.length === 0) return { sent, remaining: 0 };
        for (const file of sealed) {
          const events = (await this.read(file))?.events ?? [];
          let i = 0;
          while (i < events.length) {
            const batch = events.slice(i, i + batchSize);
            const acked = await send(batch).catch(() => 0);
            i += acked;
            sent += acked;
            if (acked < batch.length) {
              const rest = events.slice(i);
              await this.runtime.files.writeAtomic(this.path(file), serialize(rest), 0o600);
              await this.exclusive(() => this.remember(file, rest.length, rest.length));
              return { sent, remaining: await this.pending() };
            }
          }
          await this.runtime.files.remove(this.path(file));
          await this.exclusive(async () => void this.entries.delete(file));
        }
      }
    });
    return result ?? { sent: 0, remaining: await this.pending() };
  }
}
