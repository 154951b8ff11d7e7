/**
 * The collector's fleet view: the latest state per runner from KV (with the server's write time),
 * a bounded ring of recent events, counts by type, a bounded set of seen event ids (JetStream
 * delivers at least once), and the rules of SPEC 9.
 */
import type { Envelope, StateDocument } from "../shared/types.ts";
import type { CollectorAlert, FleetRunner } from "./types.ts";

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
  private readonly ring: Envelope[] = [];
  private readonly counts = new Map<string, number>();
  private readonly seen = new Set<string>();
  /** First time each alert condition was seen, so `startsAt` stays put while it lasts. */
  private readonly since = new Map<string, number>();

  constructor(private readonly options: FleetOptions) {}

  putState(key: string, doc: StateDocument, updatedAt: number): void {
    this.entries.set(key, { key, doc, updatedAt });
  }

  deleteState(key: string): void {
    this.entries.delete(key);
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
    this.count(event.type);
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

/** Accepts only what an agent of this version sends (v 1, with id, type, host, seq). */
export function parseEnvelope(data: Uint8Array): Envelope | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
  const e = value as Partial<Envelope>;
  if (!e || typeof e !== "object" || e.v !== 1 || typeof e.id !== "string" || typeof e.type !== "string" || typeof e.host !== "string" || typeof e.seq !== "number") return null;
  return e as Envelope;
}

export function parseStateDocument(text: string): StateDocument | null {
  try {
    const doc = JSON.parse(text) as Partial<StateDocument>;
    if (!doc || doc.v !== 1 || typeof doc.host !== "string" || typeof doc.name !== "string") return null;
    return doc as StateDocument;
  } catch {
    return null;
  }
}
