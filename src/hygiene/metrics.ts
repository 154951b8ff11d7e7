/**
 * Hygiene's Prometheus series on the agent's /metrics (SPEC 11 style: known label sets start at 0,
 * an unknown value has no sample):
 * - runner_token_hygiene_repairs_total{runner,kind,outcome}: labels, group and session repairs;
 * - rtr_runner_version_age_days{runner}: days since the release after the runner's version (0 when current).
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { REPAIR_KINDS, REPAIR_OUTCOMES, type HygieneTelemetry } from "./telemetry.ts";

export function registerHygieneMetrics(registers: Registry[], runners: readonly string[], telemetry: HygieneTelemetry): void {
  new Counter({
    name: "runner_token_hygiene_repairs_total",
    help: "Runner hygiene repairs made in place (labels, group, session) by runner, kind and outcome, this process.",
    labelNames: ["runner", "kind", "outcome"] as const,
    registers,
    collect() {
      this.reset();
      for (const runner of runners) for (const kind of REPAIR_KINDS) for (const outcome of REPAIR_OUTCOMES) this.inc({ runner, kind, outcome }, 0);
      for (const [key, n] of telemetry.repairs) {
        const [runner, kind, outcome] = key.split("\u0000");
        this.inc({ runner, kind, outcome }, n);
      }
    },
  });
  new Gauge({
    name: "rtr_runner_version_age_days",
    help: "Days since the actions/runner release after this runner's version came out (0 when current; no sample when the version or the release is unknown).",
    labelNames: ["runner"] as const,
    registers,
    collect() {
      this.reset();
      for (const [runner, days] of telemetry.versionAgeDays) this.set({ runner }, days);
    },
  });
}
