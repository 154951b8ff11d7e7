/**
 * History per host and per runner (issue 19: "per host or runner on its own page"). The fleet's
 * rollups (history.ts) are a few hundred buckets in all; here there is one set per host and per
 * runner, so the layout is compact and fixed: coarser buckets than the fleet's, typed arrays
 * instead of objects, and a cap on how many hosts and runners are kept (least recently active
 * dropped first). A key costs under 1 KiB whatever happens to it.
 */
import type { Window } from "./history.ts";

/** What a host or runner page charts: counts of events (gauges stay fleet-wide). */
export const LOCAL_SERIES = ["refreshed", "refresh_failed", "registered", "reregistered", "pool_jobs"] as const;
export type LocalSeries = (typeof LOCAL_SERIES)[number];

/** Coarser than the fleet's: 12 + 24 + 28 buckets per key. */
export const LOCAL_WINDOWS: Record<Window, { bucketMs: number; buckets: number }> = {
  "1h": { bucketMs: 5 * 60_000, buckets: 12 },
  "24h": { bucketMs: 3_600_000, buckets: 24 },
  "7d": { bucketMs: 6 * 3_600_000, buckets: 28 },
};
const WINDOW_LIST = Object.entries(LOCAL_WINDOWS) as [Window, { bucketMs: number; buckets: number }][];
/** Where each window's buckets start in a key's arrays. */
const OFFSET: Record<Window, number> = { "1h": 0, "24h": 12, "7d": 36 };
const SLOTS = 64;
const SERIES_INDEX = new Map<LocalSeries, number>(LOCAL_SERIES.map((s, i) => [s, i]));
const COUNT_MAX = 0xffff;

/**
 * One key's buckets. A slot holds the bucket whose number (time / bucketMs) is in `stamp`; a
 * write for another number clears it first, so time moving on needs no rotation pass and an
 * event arriving late (replay at start) lands where it belongs or is dropped when too old.
 */
class KeyBuckets {
  readonly stamp = new Int32Array(SLOTS).fill(-1);
  readonly counts = new Uint16Array(SLOTS * LOCAL_SERIES.length);

  add(series: number, atMs: number, nowMs: number): void {
    for (const [window, { bucketMs, buckets }] of WINDOW_LIST) {
      const num = Math.floor(atMs / bucketMs);
      const newest = Math.floor(nowMs / bucketMs);
      if (num <= newest - buckets || num > newest + 1) continue;
      const slot = OFFSET[window] + (num % buckets);
      if (this.stamp[slot] !== num) {
        this.stamp[slot] = num;
        this.counts.fill(0, slot * LOCAL_SERIES.length, (slot + 1) * LOCAL_SERIES.length);
      }
      const at = slot * LOCAL_SERIES.length + series;
      if (this.counts[at] < COUNT_MAX) this.counts[at]++;
    }
  }

  points(series: number, window: Window, nowMs: number): { t: number; v: number }[] {
    const { bucketMs, buckets } = LOCAL_WINDOWS[window];
    const newest = Math.floor(nowMs / bucketMs);
    const out: { t: number; v: number }[] = [];
    for (let num = newest - buckets + 1; num <= newest; num++) {
      const slot = OFFSET[window] + (num % buckets);
      out.push({ t: num * bucketMs, v: this.stamp[slot] === num ? this.counts[slot * LOCAL_SERIES.length + series] : 0 });
    }
    return out;
  }
}

/** Buckets per key, at most `cap` keys; the key least recently written to goes first. */
export class LocalHistory {
  private readonly keys = new Map<string, KeyBuckets>();

  constructor(readonly cap: number) {}

  get size(): number {
    return this.keys.size;
  }

  add(key: string, series: LocalSeries, atMs: number, nowMs: number): void {
    let b = this.keys.get(key);
    if (b) {
      this.keys.delete(key); // re-inserted below: Map order is recency
    } else {
      b = new KeyBuckets();
      if (this.keys.size >= this.cap) this.keys.delete(this.keys.keys().next().value as string);
    }
    this.keys.set(key, b);
    b.add(SERIES_INDEX.get(series)!, atMs, nowMs);
  }

  /** Whether anything was counted for the key (within the cap). */
  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** One point per bucket, oldest first; zeros for a key never seen or dropped. */
  points(key: string, series: LocalSeries, window: Window, nowMs: number): { t: number; v: number }[] {
    const b = this.keys.get(key) ?? EMPTY;
    return b.points(SERIES_INDEX.get(series)!, window, nowMs);
  }
}

const EMPTY = new KeyBuckets();
