/** Everything one pass needs, built once per process by the CLI (and by tests). */
import type { Runtime } from "../runtime/types.ts";
import type { AgentConfig } from "../config/types.ts";
import type { Logger } from "../shared/logger.ts";
import type { GitHubClient } from "../github/client.ts";
import type { TokenCache } from "../github/token-cache.ts";
import type { EventEmitter } from "./events.ts";
import type { StateStore } from "./state-store.ts";
import type { AgentTelemetry } from "./telemetry.ts";
import type { AlertHost } from "../alerts/host.ts";
import type { FleetAgentClient } from "../fleet/agent-client.ts";
import type { Privsep } from "../privsep/index.ts";
import type { PoolManager } from "../pool/index.ts";
import type { ServiceState } from "../runner/service.ts";
import type { RunnerLock } from "./runner-lock.ts";

export interface AgentContext {
  runtime: Runtime;
  config: AgentConfig;
  log: Logger;
  /** Null only in fleet mode without own credentials (a later issue). */
  github: GitHubClient | null;
  tokens: TokenCache;
  store: StateStore;
  events: EventEmitter;
  telemetry: AgentTelemetry;
  /** "check" waits lockTimeout and exits 75; "daemon" skips a locked runner for one interval. */
  mode: "check" | "daemon";
  /** Local alerts, when alerts.plugins is configured (never in --dry-run). */
  alerts: AlertHost | null;
  /** Fleet mode: status from RTR_GITHUB and tokens from the collector's broker. */
  fleet: FleetAgentClient | null;
  /** Who each runner's programs run as, and with what environment (SPEC 15). */
  privsep: Privsep;
  /** Ephemeral JIT pools (SPEC 14); run by the daemon only. */
  pools: PoolManager | null;
  now: () => number;
}

/** Per-pass facts shared between the token step and the runner step. */
export interface PassState {
  signal: AbortSignal;
  /** Scopes where a scope-level GitHub call (mint or list) succeeded in this pass (SPEC 5 404 rule). */
  scopeConfirmed: Set<string>;
  tokenResults: Map<string, ScopeTokenResult>;
  /** Systemd runner units' states, asked once for the whole pass (service-batch.ts). */
  serviceStates?: { at: number; states: Map<string, ServiceState> };
  /** The lock of the runner being checked, taken by the first step that changes something (runner-lock.ts). */
  runnerLock?: RunnerLock | null;
}

export interface ScopeTokenResult {
  ok: boolean;
  refreshed: boolean;
  expiresAt: Date | null;
  error: string | null;
}
