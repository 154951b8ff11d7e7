/**
 * The rules of SPEC 9, kept per runner: silent agent, failure streak, expired token. Each runner's
 * alerts are re-derived only when it is looked at again (its state changed, or the periodic sweep
 * for the time-based rules), so an evaluation costs what changed, not the fleet; the list of all
 * firing alerts is rebuilt only when some runner's alerts changed.
 */
import type { StateDocument } from "../shared/types.ts";
import type { CollectorAlert } from "./types.ts";

/** What the rules read of a runner: its latest document and when KV stored it. */
export interface RuleInput {
  doc: StateDocument;
  /** When the KV entry was written, by the NATS server's clock (epoch ms). */
  updatedAt: number;
  /** Seconds without state after which the runner counts as stale. */
  staleAfter: number;
}

/** The same order as the API's runner list: by host, then runner, as `localeCompare` orders them. */
const collator = new Intl.Collator();

export class RunnerAlerts {
  /** Each runner's firing alerts (only runners with any), by KV key, in rule order. */
  private readonly firing = new Map<string, CollectorAlert[]>();
  /** First time each alert condition was seen, so `startsAt` stays put while it lasts. */
  private readonly since = new Map<string, number>();
  /** Every firing alert, ordered; null when a runner's alerts changed since it was built. */
  private all: CollectorAlert[] | null = [];

  constructor(private readonly afterConsecutiveFailures: number) {}

  /** Re-derives one runner's alerts; `input` undefined when the runner is gone. */
  update(key: string, input: RuleInput | undefined, nowMs: number): void {
    const before = this.firing.get(key);
    // Most runners are healthy most of the time: they cost a few comparisons and no allocation.
    if (!input || !this.fires(input, nowMs)) {
      if (!before) return;
      this.firing.delete(key);
      for (const a of before) this.since.delete(a.key);
      this.all = null;
      return;
    }
    const now = this.derive(input, nowMs);
    if (before) for (const a of before) if (!now.some((n) => n.key === a.key)) this.since.delete(a.key);
    this.firing.set(key, now);
    this.all = null;
  }

  /** Every firing alert, by host and runner; the same array while nothing changed. */
  list(): CollectorAlert[] {
    if (this.all) return this.all;
    const all: CollectorAlert[] = [];
    for (const alerts of this.firing.values()) all.push(...alerts);
    // Stable: a runner's alerts keep their rule order.
    all.sort((a, b) => collator.compare(a.host, b.host) || collator.compare(a.runner, b.runner));
    return (this.all = all);
  }

  private stale(r: RuleInput, nowMs: number): boolean {
    return nowMs - r.updatedAt > r.staleAfter * 1000;
  }

  private expired(r: RuleInput, nowMs: number): boolean {
    const expires = r.doc.token_expires_at;
    return expires !== null && expires !== undefined && expires < nowMs / 1000 && r.doc.status !== "held";
  }

  private fires(r: RuleInput, nowMs: number): boolean {
    return this.stale(r, nowMs) || (r.doc.consecutive_failures ?? 0) >= this.afterConsecutiveFailures || this.expired(r, nowMs);
  }

  private derive(r: RuleInput, nowMs: number): CollectorAlert[] {
    const out: CollectorAlert[] = [];
    const { doc } = r;
    const base = { host: doc.host, runner: doc.name, scope: doc.scope ?? null };
    if (this.stale(r, nowMs)) {
      const silentFor = Math.round((nowMs - r.updatedAt) / 1000);
      out.push(this.alert("agent_silent", base, "critical", `agent ${doc.host} silent for ${silentFor}s (no state for longer than ${r.staleAfter}s)`, { last_seen: new Date(r.updatedAt).toISOString(), stale_after_seconds: r.staleAfter }, nowMs));
      // A silent agent's last report says nothing current: the other rules wait for news.
      return out;
    }
    const failures = doc.consecutive_failures ?? 0;
    if (failures >= this.afterConsecutiveFailures) {
      out.push(this.alert("consecutive_failures", base, "error", `${doc.name} on ${doc.host}: ${failures} consecutive failures: ${doc.last_error ?? "see the agent log"}`, { consecutive_failures: failures, last_error: doc.last_error, status: doc.status }, nowMs));
    }
    if (this.expired(r, nowMs)) {
      const expires = doc.token_expires_at as number;
      out.push(this.alert("token_expired", base, "error", `${doc.name} on ${doc.host}: registration token expired ${Math.round(nowMs / 1000 - expires)}s ago and was not refreshed`, { token_expires_at: expires }, nowMs));
    }
    return out;
  }

  private alert(rule: CollectorAlert["rule"], base: Pick<CollectorAlert, "host" | "runner" | "scope">, severity: CollectorAlert["severity"], summary: string, details: Record<string, unknown>, nowMs: number): CollectorAlert {
    const key = `${rule}/${base.host}/${base.runner}`;
    let since = this.since.get(key);
    if (since === undefined) this.since.set(key, (since = nowMs));
    return { key, rule, severity, summary, startsAt: new Date(since).toISOString(), details, ...base };
  }
}
