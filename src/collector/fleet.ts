/**
 * The collector's fleet view: the latest state per runner from KV (with the server's write time),
 * a bounded ring of recent events, counts by type, a bounded set of seen event ids (JetStream
 * delivers at least once), counts of what was dropped as untrustworthy, and the rules of SPEC 9.
 */
import type { Envelope, StateDocument } from "../shared/types.ts";
import { stateKey } from "../nats/subjects.ts";
import type { CollectorAlert, FleetRunner } from "./types.ts";
import { RunnerAlerts } from "./rules.ts";
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

/** Updated in place on every put: a heartbeat allocates no entry. */
interface Entry {
  key: string;
  doc: StateDocument;
  updatedAt: number;
  /** Seconds, from the document's interval (or collector.staleAfter). */
  staleAfter: number;
}

/** The API's order: by host, then runner, as `localeCompare` orders them (a collator is much faster). */
const collator = new Intl.Collator();
const byName = (a: Entry, b: Entry) => collator.compare(a.doc.host, b.doc.host) || collator.compare(a.doc.name, b.doc.name);

export class FleetState {
  private readonly entries = new Map<string, Entry>();
  /** Each host's pools (key `<encoded host>.=`), with the server's write time. */
  private readonly poolDocs = new Map<string, { doc: PoolsDocument; updatedAt: number }>();
  private readonly ring: Envelope[] = [];
  private readonly counts = new Map<string, number>();
  private readonly seen = new Set<string>();
  private readonly rules: RunnerAlerts;
  /** Runners put or deleted since the rules last looked at them. */
  private readonly dirty = new Set<string>();
  /** Entries sorted by name; null after a runner came or went (a heartbeat keeps the order). */
  private sorted: Entry[] | null = [];
  private readonly dropped = new Map<string, number>(STATE_DROP_REASONS.map((r) => [r, 0]));
  private readonly loggedDrops = new OncePerKey();
  private readonly loggedForgeries = new OncePerKey();

  constructor(private readonly options: FleetOptions) {
    this.rules = new RunnerAlerts(options.afterConsecutiveFailures);
  }

  /** Takes a document already checked against its key (see validate.ts checkStateDocument). */
  putState(key: string, doc: StateDocument, updatedAt: number): void {
    const entry = this.entries.get(key);
    if (entry) {
      // The key names host and runner, so the sorted order still holds.
      entry.doc = doc;
      entry.updatedAt = updatedAt;
      entry.staleAfter = this.staleAfter(doc);
    } else {
      this.entries.set(key, { key, doc, updatedAt, staleAfter: this.staleAfter(doc) });
      this.sorted = null;
    }
    this.dirty.add(key);
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
    if (this.entries.delete(key)) this.sorted = null;
    this.dirty.add(key);
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

  private toRunner(e: Entry, nowMs: number): FleetRunner {
    return { key: e.key, host: e.doc.host, runner: e.doc.name, state: e.doc, updatedAt: e.updatedAt, staleAfter: e.staleAfter, stale: nowMs - e.updatedAt > e.staleAfter * 1000 };
  }

  /** Every runner, by host then runner name (the order is kept between calls while no runner comes or goes). */
  runners(nowMs: number): FleetRunner[] {
    this.sorted ??= [...this.entries.values()].sort(byName);
    return this.sorted.map((e) => this.toRunner(e, nowMs));
  }

  /** One runner, found by its key. */
  runner(host: string, runner: string, nowMs: number): FleetRunner | undefined {
    const e = this.entries.get(stateKey(host, runner));
    return e && e.doc.host === host && e.doc.name === runner ? this.toRunner(e, nowMs) : undefined;
  }

  /**
   * The conditions that hold now (SPEC 9), every runner looked at: silent agents and expired tokens
   * appear with time alone, so this runs periodically. The same array while nothing changed.
   */
  alerts(nowMs: number): CollectorAlert[] {
    this.changedAlerts(nowMs);
    for (const e of this.entries.values()) this.rules.update(e.key, e, nowMs);
    return this.rules.list();
  }

  /** The same, looking only at the runners put or deleted since the last look: for each batch of changes. */
  changedAlerts(nowMs: number): CollectorAlert[] {
    for (const key of this.dirty) this.rules.update(key, this.entries.get(key), nowMs);
    this.dirty.clear();
    return this.rules.list();
  }
}
