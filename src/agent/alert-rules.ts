/**
 * The agent's local alert rules (SPEC 10): token refresh failures per scope, registration
 * failures per runner, and a runner offline long enough that GitHub will delete it. Pending below
 * alerts.afterConsecutiveFailures, firing at it.
 */
import { scopeKey, type Scope } from "../shared/scope.ts";
import type { MetricsDocument } from "../shared/types.ts";
import type { AlertCondition } from "../alerts/engine.ts";
import type { AgentContext } from "./context.ts";
import { hygieneConditions } from "../hygiene/alerts.ts";
import { poolConditions } from "../pool/alerts.ts";

export async function agentConditions(ctx: AgentContext, metrics: MetricsDocument): Promise<AlertCondition[]> {
  const threshold = ctx.config.alerts.afterConsecutiveFailures;
  const host = ctx.config.host;
  const out: AlertCondition[] = [];
  const tokenFailing = new Set<string>();
  const scopes = new Map<string, Scope>();
  for (const r of ctx.config.runners) scopes.set(scopeKey(r.scope), r.scope);
  for (const [key, scope] of scopes) {
    const memory = await ctx.store.loadScope(scope);
    const failures = memory.consecutiveFailures;
    if (failures === 0) continue;
    tokenFailing.add(key);
    out.push({
      key: `refresh_failures/${host}/${key}`,
      rule: "refresh_failures",
      host,
      runner: null,
      scope,
      severity: "error",
      summary: `registration token refresh for ${key} failed ${failures} time${failures > 1 ? "s" : ""} in a row: ${memory.lastError ?? "see the agent log"}`,
      // One alert for the scope, so it names the runners it stands for (SPEC 10).
      details: { runners: ctx.config.runners.filter((r) => scopeKey(r.scope) === key).map((r) => r.name), consecutive_failures: failures, last_error: memory.lastError, failed_refreshes: memory.failedRefreshes },
      state: failures >= threshold ? "firing" : "pending",
    });
  }
  for (const [i, r] of metrics.runners.entries()) {
    const runner = ctx.config.runners[i];
    // A token failure already alerts for the scope: one incident, one page.
    if (r.consecutive_failures > 0 && !tokenFailing.has(scopeKey(r.scope))) {
      out.push({
        key: `registration_failures/${host}/${r.name}`,
        rule: "registration_failures",
        host,
        runner: r.name,
        scope: r.scope,
        severity: "error",
        summary: `runner ${r.name} failed ${r.consecutive_failures} time${r.consecutive_failures > 1 ? "s" : ""} in a row: ${r.last_error ?? "see the agent log"}`,
        details: { consecutive_failures: r.consecutive_failures, last_error: r.last_error, status: r.status, dir: r.dir },
        state: r.consecutive_failures >= threshold ? "firing" : "pending",
      });
    }
    const memory = runner ? await ctx.store.loadRunner(runner.dir) : null;
    if (memory?.offlineWarned && memory.offlineSince !== null) {
      const days = Math.floor((ctx.now() / 1000 - memory.offlineSince) / 86400);
      out.push({
        key: `runner_offline/${host}/${r.name}`,
        rule: "runner_offline",
        host,
        runner: r.name,
        scope: r.scope,
        severity: "warning",
        summary: `runner ${r.name} has been offline for ${days} day${days === 1 ? "" : "s"}: GitHub deletes self-hosted runners offline for 14 days`,
        details: { offline_since: new Date(memory.offlineSince * 1000).toISOString() },
        state: "firing",
      });
    }
  }
  // Runner hygiene: a stale runner version, a session conflict with the name online elsewhere.
  out.push(...(await hygieneConditions(ctx)));
  out.push(...poolConditions(ctx));
  return out;
}
