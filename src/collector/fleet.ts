/**
 * The collector's fleet view: the latest state per runner from KV (with the server's write time),
 * a bounded ring of recent events, counts by type, a bounded set of seen event ids (JetStream
 * delivers at least once), counts of what was dropped as untrustworthy, and the rules of SPEC 9.
 */
import type { Envelope, StateDocument } from "../shared/types.ts";
import type { CollectorAlert, FleetRunner } from "./types.ts";
import { eventTypeLabel, STATE_DROP_REASONS, type PoolsDocument, type StateDropReason } from "./validate.ts";

/** Keys remembered for "log once": beyond this, drops are still counted but no longer logged. */
const MAX_LOGGED_KEYS = 10_000;

/**
 * Remembers what was already logged, so an agent that puts a bad document every pass (or a
 * forger) leaves one log line per key, not one per put.
 */
class OncePerKey {
  private readonly seen = new Map<string, string>();
  /** True the first time `key` shows `what` (log it then). */
  first(key: string, what: string): boolean {
    if (this.seen.get(key) === what) return false;
    if (!this.seen.has(key) && this.seen.size >= MAX_LOGGED_KEYS) return false;
    this.seen.set(key, what);
    return true;
  }
  /** The key is healthy again: its next problem is news. */
  forget(key: string): void {
    this.seen.delete(key);
  }
}

export interface FleetOptions {
  /** collector.staleAfter; default per runner: 3 × its reported interval + 60 s. */
  staleAfter?: number;
  afterConsecutiveFailures: number;
  ringSize?: number;
  seenIds?: number;
}

interface Entry {
  key: string;
  doc: StateDocument;
  updatedAt: number;
}

export class FleetState {
  private readonly entries = new Map<string, Entry>();
  /** Each host's pools (key `<encoded host>.=`), with the server's write time. */
  private readonly poolDocs = new Map<string, { doc: PoolsDocument; updatedAt: number }>();
  private readonly ring: Envelope[] = [];
  private readonly counts = new Map<string, number>();
  private readonly seen = new Set<string>();
  /** First time each alert condition was seen, so `startsAt` stays put while it lasts. */
  private readonly since = new Map<string, number>();
  private readonly dropped = new Map<string, number>(STATE_DROP_REASONS.map((r) => [r, 0]));
  private readonly loggedDrops = new OncePerKey();
  private readonly loggedForgeries = new OncePerKey();

  constructor(private readonly options: FleetOptions) {}

  /** Takes a document already checked against its key (see validate.ts checkStateDocument). */
  putState(key: string, doc: StateDocument, updatedAt: number): void {
    this.entries.set(key, { key, doc, updatedAt });
    this.loggedDrops.forget(key);
  }

  putPools(key: string, doc: PoolsDocument, updatedAt: number): void {
    this.poolDocs.set(key, { doc, updatedAt });
    this.loggedDrops.forget(key);
  }

  deletePools(key: string): void {
    this.poolDocs.delete(key);
  }

  /** Every host's latest pools document. */
  pools(): { host: string; doc: PoolsDocument; updatedAt: number }[] {
    return [...this.poolDocs.values()].map((p) => ({ host: p.doc.host, ...p }));
  }

  deleteState(key: string): void {
    this.entries.delete(key);
    this.loggedDrops.forget(key);
  }

  /**
   * Counts a state document that was not accepted. The key's last good document (if any) stays:
   * a forger's garbage must not hide the real runner, and a runner whose agent only sends garbage
   * goes stale and alerts as silent. True the first time for this key and reason (log it then).
   */
  dropState(key: string, reason: StateDropReason): boolean {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    return this.loggedDrops.first(key, reason);
  }

  /** State documents dropped since start, by reason (every reason present, from 0). */
  documentsDropped(): ReadonlyMap<string, number> {
    return this.dropped;
  }

  /** Counts an event whose host is not its subject's; true the first time for this subject host. */
  dropForgedEvent(subjectHost: string): boolean {
    this.count("_host_mismatch");
    return this.loggedForgeries.first(subjectHost, "host_mismatch");
  }

  count(type: string): void {
    this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
  }

  /** Records a delivered event; false when its id was already handled (a redelivery). */
  recordEvent(event: Envelope): boolean {
    if (this.seen.has(event.id)) {
      this.count("_duplicate");
      return false;
    }
    this.seen.add(event.id);
    if (this.seen.size > (this.options.seenIds ?? 100_000)) this.seen.delete(this.seen.values().next().value as string);
    this.count(eventTypeLabel(event.type));
    this.ring.push(event);
    if (this.ring.length > (this.options.ringSize ?? 1000)) this.ring.shift();
    return true;
  }

  eventCounts(): ReadonlyMap<string, number> {
    return this.counts;
  }

  recentEvents(limit: number): Envelope[] {
    return this.ring.slice(-limit);
  }

  private staleAfter(doc: StateDocument): number {
    return this.options.staleAfter ?? 3 * (doc.interval || 60) + 60;
  }

  runners(nowMs: number): FleetRunner[] {
    return [...this.entries.values()]
      .map((e) => {
        const staleAfter = this.staleAfter(e.doc);
        return { key: e.key, host: e.doc.host, runner: e.doc.name, state: e.doc, updatedAt: e.updatedAt, staleAfter, stale: nowMs - e.updatedAt > staleAfter * 1000 };
      })
      .sort((a, b) => a.host.localeCompare(b.host) || a.runner.localeCompare(b.runner));
  }

  /** The conditions that hold now (SPEC 9): silent agent, failure streak, expired token. */
  alerts(nowMs: number): CollectorAlert[] {
    const out: CollectorAlert[] = [];
    const nowSeconds = nowMs / 1000;
    for (const r of this.runners(nowMs)) {
      const base = { host: r.host, runner: r.runner, scope: r.state.scope ?? null };
      if (r.stale) {
        const silentFor = Math.round((nowMs - r.updatedAt) / 1000);
        out.push(this.alert("agent_silent", r, "critical", `agent ${r.host} silent for ${silentFor}s (no state for longer than ${r.staleAfter}s)`, { last_seen: new Date(r.updatedAt).toISOString(), stale_after_seconds: r.staleAfter }, nowMs, base));
        // A silent agent's last report says nothing current: the other rules wait for news.
        continue;
      }
      const failures = r.state.consecutive_failures ?? 0;
      if (failures >= this.options.afterConsecutiveFailures) {
        out.push(this.alert("consecutive_failures", r, "error", `${r.runner} on ${r.host}: ${failures} consecutive failures: ${r.state.last_error ?? "see the agent log"}`, { consecutive_failures: failures, last_error: r.state.last_error, status: r.state.status }, nowMs, base));
      }
      const expires = r.state.token_expires_at;
      if (expires !== null && expires !== undefined && expires < nowSeconds && r.state.status !== "held") {
        out.push(this.alert("token_expired", r, "error", `${r.runner} on ${r.host}: registration token expired ${Math.round(nowSeconds - expires)}s ago and was not refreshed`, { token_expires_at: expires }, nowMs, base));
      }
    }
    const live = new Set(out.map((a) => a.key));
    for (const key of this.since.keys()) if (!live.has(key)) this.since.delete(key);
    return out;
  }

  private alert(rule: CollectorAlert["rule"], r: FleetRunner, severity: CollectorAlert["severity"], summary: string, details: Record<string, unknown>, nowMs: number, base: Pick<CollectorAlert, "host" | "runner" | "scope">): CollectorAlert {
    const key = `${rule}/${r.host}/${r.runner}`;
    if (!this.since.has(key)) this.since.set(key, nowMs);
    return { key, rule, severity, summary, startsAt: new Date(this.since.get(key)!).toISOString(), details, ...base };
  }
}
