/**
 * The pool alert rule (SPEC 14): `pool_launch_failures/<host>/<pool>`, pending while launches
 * fail, firing at alerts.afterConsecutiveFailures, resolved by the next launch that works.
 */
import type { AlertCondition } from "../alerts/engine.ts";
import type { AgentContext } from "../agent/context.ts";

export function poolConditions(ctx: AgentContext): AlertCondition[] {
  const threshold = ctx.config.alerts.afterConsecutiveFailures;
  const host = ctx.config.host;
  return (ctx.pools?.reports() ?? [])
    .filter((p) => p.consecutive_failures > 0)
    .map((p) => ({
      key: `pool_launch_failures/${host}/${p.name}`,
      rule: "pool_launch_failures",
      host,
      runner: null,
      scope: p.scope,
      severity: "error" as const,
      summary: `pool ${p.name}: ${p.consecutive_failures} runner launch${p.consecutive_failures > 1 ? "es" : ""} in a row failed (${p.runners.idle + p.runners.busy} of ${p.size} runners live)`,
      details: { pool: p.name, consecutive_failures: p.consecutive_failures, launch_failures_total: p.launch_failures_total, size: p.size, runners: p.slots.map((s) => s.name) },
      state: p.consecutive_failures >= threshold ? ("firing" as const) : ("pending" as const),
    }));
}
