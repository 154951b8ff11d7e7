/** The documents the agent writes and publishes (SPEC 7 and 8). */
import type { Scope } from "./scope.ts";

export type RunnerStatus = "ok" | "refreshing" | "deferred_busy" | "failing" | "unregistered" | "held";

import type { PoolReport } from "../pool/report.ts";

export const EVENT_TYPES = [
  "token.refreshed",
  "token.refresh_failed",
  "runner.registered",
  "runner.registration_failed",
  "runner.deferred_busy",
  "runner.offline",
  "runner.name_conflict",
  "runner.service_started",
  "runner.diag",
  /** Runner hygiene (src/hygiene): repairs made in place, and what it could not repair. */
  "runner.labels_repaired",
  "runner.group_repaired",
  "runner.version_stale",
  "runner.version_deprecated",
  "runner.session_repaired",
  "runner.session_conflict",
  /** Ephemeral JIT pools (src/pool, SPEC 14). */
  "pool.runner_started",
  "pool.runner_exited",
  "pool.launch_failed",
  "pool.drained",
  "pool.resumed",
  "clock.skew",
  "credentials.expiring",
  "agent.started",
  "agent.stopped",
  /** Published by the collector's token broker, on the requesting host's subject (docs/fleet.md). */
  "broker.refused",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface Envelope {
  v: 1;
  id: string;
  seq: number;
  type: EventType;
  time: string;
  host: string;
  runner: string | null;
  scope: Scope | null;
  agent: { version: string; runtime: string };
  data: Record<string, unknown>;
}

/** One runner in the metrics file (SPEC 7). */
export interface RunnerReport {
  name: string;
  dir: string;
  scope: Scope;
  ephemeral: boolean;
  registered: boolean;
  agent_id: number | null;
  service_active: boolean | null;
  online: boolean | null;
  busy: boolean | null;
  token_expires_at: number | null;
  last_refresh_timestamp: number | null;
  total_refreshes: number;
  failed_refreshes: number;
  consecutive_failures: number;
  registrations: number;
  status: RunnerStatus;
  last_error: string | null;
}

export interface MetricsDocument {
  version: 1;
  last_check_timestamp: number;
  last_refresh_timestamp: number | null;
  total_refreshes: number;
  failed_refreshes: number;
  consecutive_failures: number;
  runner_org: string | null;
  runner_name: string | null;
  token_expires_at: number | null;
  interval: number;
  threshold: number;
  alert_after_failures: number;
  host: string;
  runners: RunnerReport[];
  /** Ephemeral JIT pools (SPEC 14), when configured and run by the daemon. */
  pools?: PoolReport[];
}

/** The KV state document: a runner's report plus who and when (SPEC 8). */
export interface StateDocument extends RunnerReport {
  v: 1;
  host: string;
  time: string;
  interval: number;
}

/** A host's pools (SPEC 14), put under RTR_STATE key `<encoded host>.=` beside its runners' state. */
export interface PoolsStateDocument {
  v: 1;
  host: string;
  time: string;
  pools: PoolReport[];
}

/** Where events and state documents go: the log, NATS (with its outbox), or both. */
export interface Publisher {
  publishEvent(event: Envelope): Promise<void>;
  putState(doc: StateDocument): Promise<void>;
  /** The host's pools, for the collector's host page and charts (publishers without KV skip it). */
  putPools?(doc: PoolsStateDocument): Promise<void>;
  close(): Promise<void>;
  /** Events waiting to be delivered (the NATS outbox depth); 0 when there is no queue. */
  pending?(): Promise<number>;
}
