/**
 * Keeps one registration token ready per scope (SPEC 1 job 1): refreshed `threshold` seconds
 * before it expires, under a per-scope lock so a cron `check` and a daemon never both mint.
 */
import { errorMessage } from "../shared/errors.ts";
import { scopeKey, type Scope } from "../shared/scope.ts";
import { needsRefresh, type CachedToken } from "../github/token-cache.ts";
import type { RegistrationToken } from "../github/client.ts";
import type { AgentContext, PassState, ScopeTokenResult } from "./context.ts";

/** A fresh token for this scope: the cached one when valid past the threshold, else a new one. */
export async function ensureToken(ctx: AgentContext, pass: PassState, scope: Scope, options: { leadSeconds?: number; cached?: CachedToken | null } = {}): Promise<CachedToken> {
  const { config, tokens, store, log } = ctx;
  const key = scopeKey(scope);
  const cached = options.cached !== undefined ? options.cached : await tokens.read(scope);
  const threshold = config.refresh.threshold;
  if (!needsRefresh(cached, ctx.now(), threshold, options.leadSeconds)) return cached!;
  if (config.dryRun) {
    log.info({ scope: key }, `dry run: would mint a registration token for ${key}`);
    if (cached) return cached;
    throw new Error(`dry run: no cached token for ${key}, and minting one is a POST`);
  }
  if (!ctx.github && !ctx.fleet) throw new Error(`no GitHub credentials to mint a token for ${key}`);

  const release = await ctx.runtime.files.lock(store.lockPath("scope", key), config.refresh.lockTimeout * 1000, 30_000, pass.signal);
  if (!release) throw new Error(`another agent held the token lock for ${key} past refresh.lockTimeout`);
  try {
    // Another process may have refreshed while we waited for the lock.
    const again = await tokens.read(scope);
    if (!needsRefresh(again, ctx.now(), threshold, options.leadSeconds)) return again!;
    const memory = await store.loadScope(scope);
    const started = ctx.now();
    try {
      const { token: minted, source } = await obtainToken(ctx, pass, scope);
      await tokens.write(scope, minted);
      pass.scopeConfirmed.add(key);
      memory.totalRefreshes++;
      memory.consecutiveFailures = 0;
      memory.lastRefresh = Math.floor(ctx.now() / 1000);
      memory.lastError = null;
      await store.saveScope(scope, memory);
      ctx.telemetry.refreshDuration(key, (ctx.now() - started) / 1000, true);
      log.info({ scope: key, expires_at: minted.expiresAt.toISOString(), duration_ms: ctx.now() - started }, `registration token refreshed for ${key}`);
      await ctx.events.emit("token.refreshed", null, scope, { expires_at: minted.expiresAt.toISOString(), source });
      return minted;
    } catch (err) {
      if (pass.signal.aborted) throw err;
      ctx.telemetry.refreshDuration(key, (ctx.now() - started) / 1000, false);
      memory.failedRefreshes++;
      memory.consecutiveFailures++;
      memory.lastError = errorMessage(err);
      await store.saveScope(scope, memory);
      log.error({ scope: key, consecutive_failures: memory.consecutiveFailures }, errorMessage(err));
      await ctx.events.emit("token.refresh_failed", null, scope, {
        error: errorMessage(err),
        attempt: config.refresh.maxRetries,
        consecutive_failures: memory.consecutiveFailures,
      });
      throw err;
    }
  } finally {
    await release();
  }
}

/**
 * Fleet mode asks the collector's broker first (one token per scope for the whole fleet); without
 * an answer, an agent with its own credentials mints itself, one without fails with a clear error.
 */
async function obtainToken(ctx: AgentContext, pass: PassState, scope: Scope): Promise<{ token: RegistrationToken; source: "broker" | "github" }> {
  if (ctx.fleet) {
    try {
      return { token: await ctx.fleet.token(scope, null), source: "broker" };
    } catch (err) {
      if (!ctx.github) {
        throw new Error(`fleet token broker unreachable (${errorMessage(err)}) and this agent has no GitHub credentials of its own: check the collector (its fleet.scopes must list ${scopeKey(scope)}) and NATS, or set GITHUB_TOKEN as a fallback`);
      }
      ctx.log.warn({ scope: scopeKey(scope) }, `fleet token broker unreachable (${errorMessage(err)}): minting with this agent's own credentials`);
    }
  }
  return { token: await ctx.github!.mintRegistrationToken(scope, pass.signal), source: "github" };
}

/** The token step of a pass, for every scope; failures are recorded, not thrown. */
export async function refreshScopes(ctx: AgentContext, pass: PassState, leadSeconds: number): Promise<void> {
  const seen = new Map<string, Scope>();
  for (const r of ctx.config.runners) seen.set(scopeKey(r.scope), r.scope);
  for (const [key, scope] of seen) {
    if (pass.signal.aborted) return;
    const before = await ctx.tokens.read(scope);
    let result: ScopeTokenResult;
    if (ctx.config.dryRun && needsRefresh(before, ctx.now(), ctx.config.refresh.threshold)) {
      ctx.log.info({ scope: key }, `dry run: would mint a registration token for ${key}`);
      pass.tokenResults.set(key, { ok: true, refreshed: false, expiresAt: before?.expiresAt ?? null, error: null });
      continue;
    }
    try {
      const token = await ensureToken(ctx, pass, scope, { leadSeconds, cached: before });
      result = { ok: true, refreshed: !before || token.token !== before.token, expiresAt: token.expiresAt, error: null };
    } catch (err) {
      if (pass.signal.aborted) return;
      result = { ok: false, refreshed: false, expiresAt: before?.expiresAt ?? null, error: errorMessage(err) };
    }
    pass.tokenResults.set(key, result);
  }
}
