/**
 * The metrics file (SPEC 7): the seed's top-level fields plus `runners[]`, built from what the
 * state dir remembers (so a cron `check` and a daemon write the same picture), written atomically
 * with mode 0644. No secrets: it holds times, counts and error texts already scrubbed.
 */
import { redactValue } from "../shared/redact.ts";
import { scopeKey, scopeName, scopeKind } from "../shared/scope.ts";
import type { MetricsDocument, RunnerReport, StateDocument } from "../shared/types.ts";
import type { AgentContext } from "./context.ts";
import type { RunnerMemory, ScopeMemory } from "./state-store.ts";

/**
 * What this pass already holds: each runner's memory as it saved it, each scope's token expiry as
 * the token step left it. Anything missing (a runner skipped for its lock) is read from the state dir.
 */
export interface PassFacts {
  runners: Map<string, RunnerMemory>;
  tokenExpiry: Map<string, Date | null>;
}

export async function buildMetricsDocument(ctx: AgentContext, facts?: PassFacts): Promise<MetricsDocument> {
  const { config, store, tokens } = ctx;
  const scopes = new Map<string, { memory: ScopeMemory; expiresAt: number | null }>();
  for (const r of config.runners) {
    const key = scopeKey(r.scope);
    if (scopes.has(key)) continue;
    const expiry = facts?.tokenExpiry.has(key) ? facts.tokenExpiry.get(key)! : ((await tokens.read(r.scope))?.expiresAt ?? null);
    scopes.set(key, { memory: await store.loadScope(r.scope), expiresAt: expiry ? Math.floor(expiry.getTime() / 1000) : null });
  }
  const runners: RunnerReport[] = [];
  for (const r of config.runners) {
    const memory: RunnerMemory = facts?.runners.get(r.dir) ?? (await store.loadRunner(r.dir));
    const scope = scopes.get(scopeKey(r.scope))!;
    runners.push({
      name: r.name,
      dir: r.dir,
      scope: r.scope,
      ephemeral: r.ephemeral,
      registered: memory.registered,
      agent_id: memory.agentId,
      service_active: memory.serviceActive,
      online: memory.online,
      busy: memory.busy,
      token_expires_at: scope.expiresAt,
      last_refresh_timestamp: scope.memory.lastRefresh,
      total_refreshes: scope.memory.totalRefreshes,
      failed_refreshes: scope.memory.failedRefreshes,
      consecutive_failures: memory.consecutiveFailures,
      registrations: memory.registrations,
      status: memory.status,
      last_error: memory.lastError,
    });
  }
  const scopeList = [...scopes.values()];
  const sum = (f: (s: ScopeMemory) => number) => scopeList.reduce((n, s) => n + f(s.memory), 0);
  const expiries = scopeList.map((s) => s.expiresAt).filter((x): x is number => x !== null);
  const refreshes = scopeList.map((s) => s.memory.lastRefresh).filter((x): x is number => x !== null);
  const first = config.runners[0];
  return redactValue({
    version: 1,
    last_check_timestamp: Math.floor(ctx.now() / 1000),
    last_refresh_timestamp: refreshes.length ? Math.max(...refreshes) : null,
    total_refreshes: sum((s) => s.totalRefreshes),
    failed_refreshes: sum((s) => s.failedRefreshes),
    consecutive_failures: Math.max(0, ...runners.map((r) => r.consecutive_failures)),
    runner_org: first && scopeKind(first.scope) === "org" ? scopeName(first.scope) : null,
    runner_name: first?.name ?? null,
    token_expires_at: expiries.length ? Math.min(...expiries) : null,
    interval: config.refresh.interval,
    threshold: config.refresh.threshold,
    alert_after_failures: config.alerts.afterConsecutiveFailures,
    host: config.host,
    runners,
    ...(ctx.pools ? { pools: ctx.pools.reports() } : {}),
  });
}

export async function writeMetricsFile(ctx: AgentContext, doc: MetricsDocument): Promise<void> {
  if (ctx.config.dryRun) return;
  const path = ctx.config.state.metricsFile;
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  // Rewritten every pass: the rename need not be durable (a crash keeps the previous, whole file).
  // Its dir is made only when missing (the first pass, or removed by hand), not asked for every pass.
  await ctx.runtime.files.writeAtomic(path, text, 0o644, { syncDir: false }).catch(async (err) => {
    if ((err as { code?: string }).code !== "ENOENT") throw err;
    await ctx.runtime.files.mkdir(path.replace(/\/[^/]*$/, "") || "/", 0o755);
    await ctx.runtime.files.writeAtomic(path, text, 0o644, { syncDir: false });
  });
}

export function stateDocument(doc: MetricsDocument, report: RunnerReport, time: Date): StateDocument {
  return { ...report, v: 1, host: doc.host, time: time.toISOString(), interval: doc.interval };
}
