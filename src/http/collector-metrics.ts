/**
 * The collector's Prometheus metrics (SPEC 11): the agent's per-runner series with `host` and
 * `runner` labels and the runners by status (collector-metrics-runners.ts), plus the collector's
 * own counts (here). Every value is computed from the view at scrape time, so a runner removed
 * from KV disappears from the next scrape instead of lingering with its last value.
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { CollectorView, FleetRunner } from "../collector/types.ts";
import { EVENT_TYPES, type RunnerStatus } from "../shared/types.ts";
import { EVENT_COUNT_EXTRAS, STATE_DROP_REASONS, eventTypeLabel } from "../collector/validate.ts";
import { REFUSAL_REASONS, type RefusalReason } from "../fleet/authz.ts";
import { registerGitHubAppMetrics } from "./github-app-metrics.ts";

/** `stale` is the collector's own status: a silent agent's last report no longer says much. */
export const FLEET_STATUSES = ["ok", "refreshing", "deferred_busy", "failing", "unregistered", "held", "stale"] as const;
export type FleetStatus = RunnerStatus | "stale";

/** Every `type` label: the known types plus the view's counters (see CollectorView.eventCounts). */
const COLLECTOR_EVENT_TYPES = [...EVENT_TYPES, ...EVENT_COUNT_EXTRAS] as const;

export function fleetStatus(r: FleetRunner): FleetStatus {
  return r.stale ? "stale" : r.state.status;
}

/**
 * A registry of its own per app (the global one would mix in, or clash with, other apps' series)
 * for the families whose label sets are bounded: event counts, drops, refusals, GitHub Apps,
 * alerts. The per-runner families and the counts by status come from collector-metrics-runners.ts,
 * which streams them ahead of this registry's text.
 */
export function createCollectorRegistry(view: CollectorView): Registry {
  const registry = new Registry();
  const registers = [registry];

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
