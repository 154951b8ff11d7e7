/** Pool metrics (SPEC 14) on the agent's /metrics, from the pools' reports. */
import { Counter, Gauge, type Registry } from "prom-client";
import type { PoolReport } from "../pool/report.ts";

const STATES = ["idle", "busy", "starting"] as const;

export function registerPoolMetrics(registers: Registry[], reports: () => PoolReport[]): void {
  const gauge = (name: string, help: string, value: (r: PoolReport) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["pool"] as const,
      registers,
      collect() {
        this.reset();
        for (const r of reports()) this.set({ pool: r.name }, value(r));
      },
    });
  const counter = (name: string, help: string, value: (r: PoolReport) => number) =>
    new Counter({
      name,
      help,
      labelNames: ["pool"] as const,
      registers,
      collect() {
        this.reset();
        for (const r of reports()) this.inc({ pool: r.name }, value(r));
      },
    });
  gauge("rtr_pool_size", "Runners a pool keeps idle or busy at all times (its size).", (r) => r.size);
  new Gauge({
    name: "rtr_pool_runners",
    help: "A pool's live runners by state (idle, busy, starting).",
    labelNames: ["pool", "state"] as const,
    registers,
    collect() {
      this.reset();
      for (const r of reports()) for (const state of STATES) this.set({ pool: r.name, state }, r.runners[state]);
    },
  });
  counter("rtr_pool_jobs_total", "Jobs a pool's runners ran, this process.", (r) => r.jobs_total);
  counter("rtr_pool_launch_failures_total", "Runner launches that failed (GitHub, slot dir, or run.sh exiting without a job), this process.", (r) => r.launch_failures_total);
  counter("rtr_pool_idle_expired_total", "Unused runners GitHub removed, relaunched, this process.", (r) => r.idle_expired_total);
}
