/**
 * What the broker does with a refused request besides the `{error}` reply: counts it (every one,
 * by reason), and at most once a minute per (host, scope, reason) logs it and publishes a
 * `broker.refused` event on the requesting host's subject, so a misconfigured or hostile client
 * shows up on the dashboard and in alerts without flooding either. Never a token: a refusal
 * carries the reason, the hosts and the scope only.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { scopeKey } from "../shared/scope.ts";
import type { Envelope } from "../shared/types.ts";
import { VERSION } from "../shared/version.ts";
import { eventSubject } from "../nats/subjects.ts";
import { REFUSAL_REASONS, type Decision, type RefusalReason } from "./authz.ts";

const REPORT_EVERY_MS = 60_000;
const MAX_REMEMBERED = 10_000;

type Refusal = Extract<Decision, { ok: false }>;

export function refusalEvent(refusal: Refusal, collector: { host: string; runtime: string }, now: Date): Envelope {
  return {
    v: 1,
    id: crypto.randomUUID(),
    // Not part of the host's own sequence (that belongs to its state dir): 0 says "from the collector".
    seq: 0,
    type: "broker.refused",
    time: now.toISOString(),
    host: refusal.host ?? "unknown",
    runner: null,
    scope: refusal.scope,
    agent: { version: VERSION, runtime: collector.runtime },
    data: {
      reason: refusal.reason,
      error: refusal.error,
      scope: refusal.scope ? scopeKey(refusal.scope) : null,
      requested_host: refusal.claimedHost,
      inbox_host: refusal.inboxHost,
      collector: collector.host,
    },
  };
}

export class RefusalReporter {
  /** Every refusal since start, by reason. */
  readonly counts = new Map<RefusalReason, number>(REFUSAL_REASONS.map((r) => [r, 0]));
  private readonly lastReported = new Map<string, number>();

  constructor(
    private readonly options: { nc: NatsConnection; prefix: string; log: Logger; collector: { host: string; runtime: string }; now: () => number },
  ) {}

  report(refusal: Refusal): void {
    this.counts.set(refusal.reason, (this.counts.get(refusal.reason) ?? 0) + 1);
    const key = `${refusal.reason}|${refusal.host}|${refusal.scope ? scopeKey(refusal.scope) : ""}`;
    const now = this.options.now();
    const last = this.lastReported.get(key);
    if (last !== undefined && now - last < REPORT_EVERY_MS) return;
    if (this.lastReported.size >= MAX_REMEMBERED) this.lastReported.clear();
    this.lastReported.set(key, now);
    const scope = refusal.scope ? scopeKey(refusal.scope) : "?";
    this.options.log.warn({ reason: refusal.reason, host: refusal.host, scope }, `token broker refused a request from ${refusal.host ?? "an unknown host"} for ${scope}: ${refusal.error}`);
    const event = refusalEvent(refusal, this.options.collector, new Date(now));
    const data = new TextEncoder().encode(JSON.stringify(event));
    jetstream(this.options.nc)
      .publish(eventSubject(this.options.prefix, event), data, { msgID: event.id, timeout: 5000 })
      .catch((err) => this.options.log.warn({ reason: refusal.reason }, `could not publish broker.refused: ${errorMessage(err)}`));
  }
}
