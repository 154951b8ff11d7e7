/**
 * Per-App series (`github.auth.app`/`apps`), the same in the agent's and the collector's
 * registries: each App's remaining budget and how often a request failed over away from it.
 * Labelled by App id only: the key never leaves the process.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { GitHubAppTelemetry } from "../agent/telemetry.ts";

const FAILOVER_REASONS = ["rate_limit", "revoked"] as const;

export function registerGitHubAppMetrics(registers: Registry[], apps: () => GitHubAppTelemetry | null): void {
  new Gauge({
    name: "rtr_github_app_ratelimit_remaining",
    help: "Requests left in the current rate-limit window per GitHub App, from its installation's last answer (no sample before one).",
    labelNames: ["app_id"] as const,
    registers,
    collect() {
      this.reset();
      for (const [id, n] of apps()?.remaining ?? []) this.set({ app_id: String(id) }, n);
    },
  });
  new Counter({
    name: "rtr_github_app_failovers_total",
    help: "Requests that went on through another GitHub App because this one was rate-limited or refused (revoked, suspended), this process.",
    labelNames: ["app_id", "reason"] as const,
    registers,
    collect() {
      this.reset();
      const t = apps();
      if (!t) return;
      for (const id of t.ids) for (const reason of FAILOVER_REASONS) this.inc({ app_id: String(id), reason }, 0);
      for (const [key, n] of t.failovers) {
        const [id, reason] = key.split("\u0000");
        this.inc({ app_id: id, reason }, n);
      }
    },
  });
}
