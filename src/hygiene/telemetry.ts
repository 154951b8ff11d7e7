/**
 * Hygiene's counters and gauges for the daemon's /metrics (src/hygiene/metrics.ts): repairs by
 * runner, kind and outcome, and each runner's version age. Kept apart from AgentTelemetry so this
 * capability's series live in one place.
 */
export const REPAIR_KINDS = ["labels", "group", "session"] as const;
export type RepairKind = (typeof REPAIR_KINDS)[number];
export const REPAIR_OUTCOMES = ["success", "failure"] as const;

export class HygieneTelemetry {
  /** Repairs by `runner \0 kind \0 outcome`, this process. */
  readonly repairs = new Map<string, number>();
  /** Days since the release after the runner's version (0 when current), by runner; absent when unknown. */
  readonly versionAgeDays = new Map<string, number>();

  repair(runner: string, kind: RepairKind, ok: boolean): void {
    const key = `${runner}\u0000${kind}\u0000${ok ? "success" : "failure"}`;
    this.repairs.set(key, (this.repairs.get(key) ?? 0) + 1);
  }

  versionAge(runner: string, days: number | null): void {
    if (days === null) this.versionAgeDays.delete(runner);
    else this.versionAgeDays.set(runner, days);
  }
}
