/** What the collector knows, as the HTTP layer and the alert engine see it (SPEC 9). */
import type { Envelope, StateDocument } from "../shared/types.ts";
import type { History } from "./history.ts";
import type { PoolsDocument } from "./validate.ts";
import type { GitHubAppTelemetry } from "../agent/telemetry.ts";

export interface FleetRunner {
  /** KV key `<encoded host>.<encoded runner>`. */
  key: string;
  host: string;
  runner: string;
  state: StateDocument;
  /** When the KV entry was written, by the NATS server's clock (epoch ms). */
  updatedAt: number;
  /** No state for longer than staleAfter (the agent is silent). */
  stale: boolean;
  /** Seconds after which this runner counts as stale. */
  staleAfter: number;
}

export type CollectorRule = "agent_silent" | "consecutive_failures" | "token_expired";

/** A condition a rule found; the alert engine turns these into notifications. */
export interface CollectorAlert {
  /** `<rule>/<host>/<runner>` (SPEC 10). */
  key: string;
  rule: CollectorRule;
  host: string;
  runner: string;
  scope: StateDocument["scope"] | null;
  severity: "critical" | "error" | "warning" | "info";
  summary: string;
  /** When the condition was first seen (ISO). */
  startsAt: string;
  details: Record<string, unknown>;
}

export interface EventQuery {
  limit: number;
  type?: string;
  host?: string;
}

/** Read side of the collector, consumed by src/http/collector-app.ts. */
export interface CollectorView {
  runners(): FleetRunner[];
  runner(host: string, runner: string): FleetRunner | undefined;
  /** Recent events from the stream itself (every collector answers the same), newest last. */
  events(query: EventQuery): Promise<Envelope[]>;
  /** Events this process handled recently (bounded ring), newest last. */
  recentEvents(limit: number): Envelope[];
  alerts(): CollectorAlert[];
  /**
   * Events handled by type since start: known types by name, `_unknown` for other types,
   * `_invalid` for malformed, `_duplicate` for repeats, `_host_mismatch` for forged hosts.
   */
  eventCounts(): ReadonlyMap<string, number>;
  /** State documents dropped since start, by reason (validate.ts STATE_DROP_REASONS). */
  documentsDropped?(): ReadonlyMap<string, number>;
  health(): { ok: boolean; reason: string | null };
  /** Alert deliveries by plugin and outcome (absent when no plugin is configured). */
  alertDeliveries?(): { plugin: string; outcome: string; count: number }[];
  /** The dashboard's rollups, registration history and alert transitions (issue 19). */
  history?(): History;
  /** Each host's latest pools report (SPEC 14), when its agent runs pools. */
  pools?(): HostPools[];
  /** Grows whenever something a page shows may have changed (the SSE feed pushes then). */
  changes?(): number;
  /** Token requests the fleet broker refused since start, by reason (fleet/authz.ts REFUSAL_REASONS). */
  brokerRefusals?(): ReadonlyMap<string, number>;
  /** The fleet poller's GitHub Apps (budget, failovers), while it runs with App credentials. */
  githubApps?(): GitHubAppTelemetry | null;
}

export interface HostPools {
  host: string;
  doc: PoolsDocument;
  /** When the KV entry was written, by the NATS server's clock (epoch ms). */
  updatedAt: number;
}
