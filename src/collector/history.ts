/**
 * The dashboard's history (issue 19): bounded in-memory rollups of what the fleet did, over 1 h,
 * 24 h and 7 d, plus each runner's registration history and a ring of alert transitions. Built
 * from the events the collector reads (rebuilt from the stream at start, within its retention), so
 * a page never scans the stream. Everything here is bounded whatever the fleet does: a fixed
 * number of buckets per window, a cap on remembered runners and transitions.
 */
import type { Envelope } from "../shared/types.ts";
import { LocalHistory, type LocalSeries } from "./history-local.ts";

/** Counted per bucket from events. */
export const COUNTED = ["refreshed", "refresh_failed", "registered", "reregistered", "pool_jobs"] as const;
/** Sampled per bucket (the highest value seen in it). */
export const SAMPLED = ["alerts_firing", "pool_idle", "pool_busy"] as const;
export type Series = (typeof COUNTED)[number] | (typeof SAMPLED)[number];

export const WINDOWS = { "1h": { bucketMs: 60_000, buckets: 60 }, "24h": { bucketMs: 15 * 60_000, buckets: 96 }, "7d": { bucketMs: 3_600_000, buckets: 168 } } as const;
export type Window = keyof typeof WINDOWS;
export const WINDOW_NAMES = Object.keys(WINDOWS) as Window[];

/** Reasons that mean a runner's first registration rather than a repair. */
const FIRST_REGISTRATION = new Set(["new", "not_configured"]);
const REGISTRATIONS_PER_RUNNER = 20;
const RUNNERS_REMEMBERED = 50_000;
const TRANSITIONS = 2000;
/** Hosts and runners with charts of their own (history-local.ts: under 1 KiB each). */
const HOSTS_CHARTED = 10_000;
const RUNNERS_CHARTED = 20_000;
/** The stream's newest events, for pages: every collector sees all of them (not its share). */
const RECENT_EVENTS = 1000;

export interface Registration {
  time: string;
  agentId: number | null;
  reason: string;
}

export interface AlertTransition {
  key: string;
  rule: string;
  host: string;
  runner: string | null;
  state: "firing" | "resolved";
  at: string;
  summary: string;
  /** For a resolve: how long the alert fired. */
  firedSeconds?: number;
}

type Bucket = Partial<Record<Series, number>>;

class Rollup {
  /** Bucket start (epoch ms) → values; at most `buckets` entries, oldest dropped. */
  private readonly data = new Map<number, Bucket>();
  constructor(
    readonly bucketMs: number,
    readonly buckets: number,
  ) {}

  private bucket(atMs: number, nowMs: number): Bucket | null {
    const start = Math.floor(atMs / this.bucketMs) * this.bucketMs;
    if (start <= nowMs - this.bucketMs * this.buckets || start > nowMs + this.bucketMs) return null;
    let b = this.data.get(start);
    if (!b) {
      b = {};
      this.data.set(start, b);
      this.prune(nowMs);
    }
    return b;
  }

  private prune(nowMs: number): void {
    const oldest = Math.floor(nowMs / this.bucketMs) * this.bucketMs - this.bucketMs * (this.buckets - 1);
    for (const k of this.data.keys()) if (k < oldest) this.data.delete(k);
  }

  add(series: Series, atMs: number, nowMs: number, n = 1): void {
    const b = this.bucket(atMs, nowMs);
    if (b) b[series] = (b[series] ?? 0) + n;
  }

  sample(series: Series, atMs: number, value: number): void {
    const b = this.bucket(atMs, atMs);
    if (b) b[series] = Math.max(b[series] ?? 0, value);
  }

  /** One point per bucket, oldest first, zeros where nothing happened. */
  points(series: Series, nowMs: number): { t: number; v: number }[] {
    const last = Math.floor(nowMs / this.bucketMs) * this.bucketMs;
    const out: { t: number; v: number }[] = [];
    for (let i = this.buckets - 1; i >= 0; i--) {
      const t = last - i * this.bucketMs;
      out.push({ t, v: this.data.get(t)?.[series] ?? 0 });
    }
    return out;
  }
}

export class History {
  private readonly rollups = new Map<Window, Rollup>(WINDOW_NAMES.map((w) => [w, new Rollup(WINDOWS[w].bucketMs, WINDOWS[w].buckets)]));
  private readonly registrations = new Map<string, Registration[]>();
  private readonly transitions: AlertTransition[] = [];
  private readonly recent: Envelope[] = [];
  private readonly hosts = new LocalHistory(HOSTS_CHARTED);
  private readonly runners = new LocalHistory(RUNNERS_CHARTED);
  /** The last stream sequence fed in, so a restarted feed resumes after it and counts nothing twice. */
  lastSeq = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes one event from the stream (any order within the windows; `seq` is the stream's). */
  record(e: Envelope, streamSeq?: number): void {
    if (streamSeq !== undefined) this.lastSeq = Math.max(this.lastSeq, streamSeq);
    const at = Date.parse(e.time);
    if (!Number.isFinite(at)) return;
    const data = (e.data ?? {}) as Record<string, unknown>;
    const series = this.seriesOf(e, data);
    const nowMs = this.now();
    if (series) {
      for (const r of this.rollups.values()) r.add(series, at, nowMs);
      const local = series as LocalSeries; // every counted series is charted per host and runner
      this.hosts.add(e.host, local, at, nowMs);
      if (e.runner !== null) this.runners.add(runnerKey(e.host, e.runner), local, at, nowMs);
    }
    if (e.type === "runner.registered" && e.runner !== null) this.remember(e, data);
    this.recent.push(e);
    if (this.recent.length > RECENT_EVENTS) this.recent.shift();
  }

  /** The newest events read from the stream (at most RECENT_EVENTS), newest last. */
  recentEvents(limit: number): Envelope[] {
    return this.recent.slice(-limit);
  }

  private seriesOf(e: Envelope, data: Record<string, unknown>): Series | null {
    switch (e.type) {
      case "token.refreshed":
        return "refreshed";
      case "token.refresh_failed":
        return "refresh_failed";
      case "runner.registered":
        return typeof data.reason === "string" && !FIRST_REGISTRATION.has(data.reason) ? "reregistered" : "registered";
      case "pool.runner_exited":
        return data.job === true ? "pool_jobs" : null;
      default:
        return null;
    }
  }

  private remember(e: Envelope, data: Record<string, unknown>): void {
    const key = runnerKey(e.host, e.runner!);
    let list = this.registrations.get(key);
    if (!list) {
      if (this.registrations.size >= RUNNERS_REMEMBERED) this.registrations.delete(this.registrations.keys().next().value as string);
      list = [];
      this.registrations.set(key, list);
    }
    list.push({ time: e.time, agentId: typeof data.agent_id === "number" ? data.agent_id : null, reason: typeof data.reason === "string" ? data.reason : "unknown" });
    list.sort((a, b) => a.time.localeCompare(b.time));
    if (list.length > REGISTRATIONS_PER_RUNNER) list.splice(0, list.length - REGISTRATIONS_PER_RUNNER);
  }

  /** A value that holds now (alerts firing, pool runners idle or busy), kept as the bucket's maximum. */
  sample(series: Series, value: number, atMs = this.now()): void {
    for (const r of this.rollups.values()) r.sample(series, atMs, value);
  }

  points(series: Series, window: Window): { t: number; v: number }[] {
    return this.rollups.get(window)!.points(series, this.now());
  }

  /** A host's counted series (every event from it, its runners' included); null when none is kept. */
  hostPoints(host: string, series: LocalSeries, window: Window): { t: number; v: number }[] | null {
    return this.hosts.has(host) ? this.hosts.points(host, series, window, this.now()) : null;
  }

  /** A runner's counted series (events that name it); null when none is kept. */
  runnerPoints(host: string, runner: string, series: LocalSeries, window: Window): { t: number; v: number }[] | null {
    const key = runnerKey(host, runner);
    return this.runners.has(key) ? this.runners.points(key, series, window, this.now()) : null;
  }

  /** The runner's registrations, oldest first (the last REGISTRATIONS_PER_RUNNER). */
  registrationsOf(host: string, runner: string): Registration[] {
    return [...(this.registrations.get(runnerKey(host, runner)) ?? [])];
  }

  alertChanged(t: AlertTransition): void {
    this.transitions.push(t);
    if (this.transitions.length > TRANSITIONS) this.transitions.shift();
  }

  /** Alert transitions, newest last, optionally for one host (and runner). */
  alertTransitions(host?: string, runner?: string): AlertTransition[] {
    return this.transitions.filter((t) => (host === undefined || t.host === host) && (runner === undefined || t.runner === runner));
  }
}

function runnerKey(host: string, runner: string): string {
  return `${host}\u0000${runner}`;
}
