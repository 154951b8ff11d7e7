/**
 * The collector's Prometheus metrics (SPEC 11): the agent's per-runner series with `host` and
 * `runner` labels, plus fleet-wide counts. Every value is computed from the view at scrape time
 * (collect callbacks that reset and refill), so a runner removed from KV disappears from the next
 * scrape instead of lingering with its last value.
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { CollectorView, FleetRunner } from "../collector/types.ts";
import { scopeKey } from "../shared/scope.ts";
import { EVENT_TYPES, type RunnerStatus } from "../shared/types.ts";
import { EVENT_COUNT_EXTRAS, STATE_DROP_REASONS, eventTypeLabel } from "../collector/validate.ts";
import { REFUSAL_REASONS, type RefusalReason } from "../fleet/authz.ts";
import { registerGitHubAppMetrics } from "./github-app-metrics.ts";

/** `stale` is the collector's own status: a silent agent's last report no longer says much. */
export const FLEET_STATUSES = ["ok", "refreshing", "deferred_busy", "failing", "unregistered", "held", "stale"] as const;
export type FleetStatus = RunnerStatus | "stale";

/** Every `type` label: the known types plus the view's counters (see CollectorView.eventCounts). */
const COLLECTOR_EVENT_TYPES = [...EVENT_TYPES, ...EVENT_COUNT_EXTRAS] as const;

/**
 * Calls `fn` for each runner, skipping one that throws: a runner whose state cannot be read must
 * cost its own samples only, never the whole scrape.
 */
function eachRunner(view: CollectorView, fn: (r: FleetRunner) => void): void {
  for (const r of view.runners()) {
    try {
      fn(r);
    } catch {
      // Its samples are missing; the documents that get this far were validated (validate.ts).
    }
  }
}

export function fleetStatus(r: FleetRunner): FleetStatus {
  return r.stale ? "stale" : r.state.status;
}

/**
 * Timestamps are epoch seconds; agents write integers, but anything that arrives fractional is
 * floored so the text format never depends on how a float prints.
 */
function seconds(value: number): number {
  return Math.floor(value);
}

function bool(value: boolean): number {
  return value ? 1 : 0;
}

/** A registry of its own per app: the global one would mix in (or clash with) other apps' series. */
export function createCollectorRegistry(view: CollectorView): Registry {
  const registry = new Registry();
  const registers = [registry];
  const runnerLabels = ["host", "runner"] as const;
  const scopedLabels = ["host", "runner", "scope"] as const;

  // One snapshot per metric: each collect callback reads the view once, synchronously.
  const perRunner = (
    name: string,
    help: string,
    value: (r: FleetRunner) => number | null,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames: runnerLabels,
      registers,
      collect() {
        this.reset();
        eachRunner(view, (r) => {
          const v = value(r);
          // null means "not known" (e.g. no GitHub status yet): no sample rather than a false 0.
          if (v !== null) this.set({ host: r.host, runner: r.runner }, v);
        });
      },
    });
  };
  const perRunnerScoped = (name: string, help: string, value: (r: FleetRunner) => number | null): void => {
    new Gauge({
      name,
      help,
      labelNames: scopedLabels,
      registers,
      collect() {
        this.reset();
        eachRunner(view, (r) => {
          const v = value(r);
          if (v !== null) this.set({ host: r.host, runner: r.runner, scope: scopeKey(r.state.scope) }, v);
        });
      },
    });
  };

  perRunnerScoped(
    "runner_token_expiry_timestamp_seconds",
    "When the runner's scope registration token expires (epoch seconds).",
    (r) => (r.state.token_expires_at === null ? null : seconds(r.state.token_expires_at)),
  );
  perRunner(
    "runner_token_last_check_timestamp_seconds",
    "When the agent last checked this runner (epoch seconds, the agent's clock).",
    (r) => {
      // The state document's `time` is the agent's pass; fall back to the KV write time.
      const t = Date.parse(r.state.time);
      return seconds((Number.isFinite(t) ? t : r.updatedAt) / 1000);
    },
  );
  perRunnerScoped(
    "runner_token_last_refresh_timestamp_seconds",
    "When the runner's scope registration token was last refreshed (epoch seconds).",
    (r) => (r.state.last_refresh_timestamp === null ? null : seconds(r.state.last_refresh_timestamp)),
  );
  perRunner("runner_token_consecutive_failures", "Consecutive failed passes for this runner.", (r) => r.state.consecutive_failures);
  perRunner("runner_registered", "1 when the runner is registered.", (r) => bool(r.state.registered));
  perRunner("runner_online", "1 when GitHub reports the runner online (absent when unknown).", (r) =>
    r.state.online === null ? null : bool(r.state.online),
  );
  perRunner("runner_busy", "1 when the runner is running a job (absent when unknown).", (r) =>
    r.state.busy === null ? null : bool(r.state.busy),
  );

  // The agent owns these counts (total_refreshes counts successful mints, failed_refreshes failed
  // ones) and we only mirror them, so a counter with a collect callback that re-sets the value.
  // They are per scope on the agent: runners sharing a host and scope repeat the same numbers.
  new Counter({
    name: "runner_token_refreshes_total",
    help: "Registration token refreshes by outcome, as the runner's agent counted them for its scope.",
    labelNames: ["host", "runner", "scope", "outcome"] as const,
    registers,
    collect() {
      this.reset();
      eachRunner(view, (r) => {
        const labels = { host: r.host, runner: r.runner, scope: scopeKey(r.state.scope) };
        const success = Math.max(0, r.state.total_refreshes);
        const failure = Math.max(0, r.state.failed_refreshes);
        this.inc({ ...labels, outcome: "success" }, success);
        this.inc({ ...labels, outcome: "failure" }, failure);
      });
    },
  });

  new Gauge({
    name: "runner_token_fleet_runners",
    help: "Runners by status; a stale runner counts only as stale.",
    labelNames: ["status"] as const,
    registers,
    collect() {
      const counts = new Map<string, number>(FLEET_STATUSES.map((s) => [s, 0]));
      eachRunner(view, (r) => {
        const s = fleetStatus(r);
        // Only known statuses become labels (validation guarantees it; this keeps the set bounded).
        if (counts.has(s)) counts.set(s, (counts.get(s) ?? 0) + 1);
      });
      this.reset();
      for (const [status, n] of counts) this.set({ status }, n);
    },
  });

  new Counter({
    name: "runner_token_collector_events_total",
    help: "Events this collector handled, by type (_unknown: a type this version does not know, _invalid: malformed, _duplicate: redelivered, _host_mismatch: host not that of the subject, dropped).",
    labelNames: ["type"] as const,
    registers,
    collect() {
      const counts = new Map<string, number>(COLLECTOR_EVENT_TYPES.map((t) => [t, 0]));
      // Any other key folds into _unknown, so no value from outside ever becomes a label.
      for (const [type, n] of view.eventCounts()) {
        const label = counts.has(type) ? type : eventTypeLabel(type);
        counts.set(label, (counts.get(label) ?? 0) + n);
      }
      this.reset();
      for (const [type, n] of counts) this.inc({ type }, Math.max(0, n));
    },
  });

  new Counter({
    name: "runner_token_collector_documents_dropped_total",
    help: "State documents this collector dropped, by reason (not_json, too_large, unknown_version, invalid, key_mismatch: host/runner not those of the KV key).",
    labelNames: ["reason"] as const,
    registers,
    collect() {
      const counts = new Map<string, number>(STATE_DROP_REASONS.map((r) => [r, 0]));
      for (const [reason, n] of view.documentsDropped?.() ?? []) if (counts.has(reason)) counts.set(reason, n);
      this.reset();
      for (const [reason, n] of counts) this.inc({ reason }, Math.max(0, n));
    },
  });

  new Counter({
    name: "runner_token_broker_refusals_total",
    help: "Token requests the fleet broker refused, by reason (bad_request, no_inbox, host_mismatch, scope_not_brokered, host_not_allowed); docs/fleet.md.",
    labelNames: ["reason"] as const,
    registers,
    collect() {
      const counts = new Map<string, number>(REFUSAL_REASONS.map((r) => [r, 0]));
      for (const [reason, n] of view.brokerRefusals?.() ?? []) if (counts.has(reason as RefusalReason)) counts.set(reason as RefusalReason, n);
      this.reset();
      for (const [reason, n] of counts) this.inc({ reason }, Math.max(0, n));
    },
  });

  registerGitHubAppMetrics(registers, () => view.githubApps?.() ?? null);

  new Gauge({
    name: "runner_token_collector_alerts_firing",
    help: "Alert conditions that hold now.",
    registers,
    collect() {
      this.set(view.alerts().length);
    },
  });

  new Counter({
    name: "runner_token_alert_notifications_total",
    help: "Alert notifications by plugin and outcome (success, failure, retry, skipped), this process.",
    labelNames: ["plugin", "outcome"] as const,
    registers,
    collect() {
      this.reset();
      for (const d of view.alertDeliveries?.() ?? []) this.inc({ plugin: d.plugin, outcome: d.outcome }, d.count);
    },
  });

  return registry;
}
