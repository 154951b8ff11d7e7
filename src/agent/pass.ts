/**
 * One pass: tokens for every scope, then every runner under its lock, then the metrics file and
 * the state documents (the heartbeat). Returns the exit code a `check` should end with.
 */
import { AbortedError, ExitCode, errorMessage, type ExitCodeValue } from "../shared/errors.ts";
import { scopeKey } from "../shared/scope.ts";
import type { AgentContext, PassState } from "./context.ts";
import { refreshScopes } from "./token-step.ts";
import { agentConditions } from "./alert-rules.ts";
import { checkRunner } from "./runner-step.ts";
import { prefetchServiceStates } from "./service-batch.ts";
import { buildMetricsDocument, stateDocument, writeMetricsFile } from "./metrics-file.ts";
import type { MetricsDocument } from "../shared/types.ts";

const CREDENTIAL_WARN_DAYS = 7;
/**
 * A holder refreshes its lock's mtime every half of this, so only a crashed holder's lock goes
 * stale: a check killed mid-pass blocks the next one for 90 s, while a VM pause or a slow disk
 * shorter than that never lets a second process in.
 */
const LOCK_STALE_MS = 90_000;

export interface PassResult {
  exitCode: ExitCodeValue;
  metrics: MetricsDocument | null;
  aborted: boolean;
  /**
   * Why the exit code is not 0, as one line naming the runner (or scope) and the fix: the CLI
   * prints it to stderr (SPEC 3: every non-zero exit prints one line). Null when the pass is ok.
   */
  error: string | null;
}

async function reportCredentials(ctx: AgentContext): Promise<void> {
  const t = ctx.telemetry;
  if (t.clockSkewSeconds !== null) {
    ctx.log.warn({ skew_seconds: t.clockSkewSeconds }, `local clock is ${t.clockSkewSeconds}s off GitHub's: fix NTP (App JWTs and the runner's own OAuth break past a few minutes)`);
    await ctx.events.emit("clock.skew", null, null, { skew_seconds: t.clockSkewSeconds });
    t.clockSkewSeconds = null;
  }
  if (t.credentialExpiresAt) {
    const days = (t.credentialExpiresAt.getTime() - ctx.now()) / 86_400_000;
    if (days < CREDENTIAL_WARN_DAYS) {
      ctx.log.warn({ expires_at: t.credentialExpiresAt.toISOString() }, `the GitHub token expires in ${Math.max(0, Math.floor(days))} days: renew GITHUB_TOKEN before it does`);
      await ctx.events.emit("credentials.expiring", null, null, { expires_at: t.credentialExpiresAt.toISOString() });
    }
    t.credentialExpiresAt = null;
  }
}

export async function runPass(ctx: AgentContext, signal: AbortSignal, options: { leadSeconds?: number } = {}): Promise<PassResult> {
  const pass: PassState = { signal, scopeConfirmed: new Set(), tokenResults: new Map() };
  let failed = false;
  let lockTimedOut: string | null = null;
  let aborted = false;
  const problems: string[] = [];
  try {
    await refreshScopes(ctx, pass, options.leadSeconds ?? 0);
    await prefetchServiceStates(ctx, pass);
    for (const runner of ctx.config.runners) {
      if (signal.aborted) break;
      const lockTimeout = ctx.config.refresh.lockTimeout * 1000;
      // The lock would mkdir -p a missing runner dir (and then blame config.sh): skip it, so
      // checkRunner reports the missing dir itself; there is nothing in it to protect.
      const dirMissing = (await ctx.runtime.files.stat(runner.dir).catch(() => "unreadable")) === null;
      const release = ctx.config.dryRun || dirMissing ? async () => {} : await ctx.runtime.files.lock(`${runner.dir}/.rtr-lock`, lockTimeout, LOCK_STALE_MS, signal).catch((err) => {
        ctx.log.error({ runner: runner.name }, `cannot lock ${runner.dir}: ${errorMessage(err)}: is the dir writable by this user?`);
        return undefined;
      });
      if (release === null && signal.aborted) break;
      if (release === null) {
        lockTimedOut ??= `another runner-token-refresh held the lock on ${runner.dir} past refresh.lockTimeout (${ctx.config.refresh.lockTimeout}s): let it finish, or raise refresh.lockTimeout`;
        ctx.log.warn({ runner: runner.name }, `another agent held the lock on ${runner.dir} past refresh.lockTimeout: ${ctx.mode === "daemon" ? "skipping it for one interval" : "giving up"}`);
        continue;
      }
      const memory = await ctx.store.loadRunner(runner.dir);
      try {
        let ok: boolean;
        if (!release) {
          memory.status = "failing";
          memory.lastError = `cannot lock ${runner.dir}: check that the dir exists and is writable by this user`;
          ok = false;
        } else {
          try {
            ok = await checkRunner(ctx, pass, runner, memory);
          } catch (err) {
            if (err instanceof AbortedError) throw err;
            // One runner's I/O trouble (EACCES on .runner, ENOSPC) must not cost the others their pass.
            const code = (err as { code?: string }).code;
            memory.status = "failing";
            memory.lastError = `${errorMessage(err)}${code === "EACCES" || code === "EPERM" ? `: give this user access to ${runner.dir}` : ""}`;
            ctx.log.error({ runner: runner.name }, memory.lastError);
            ok = false;
          }
        }
        const token = pass.tokenResults.get(scopeKey(runner.scope));
        if (token && !token.ok) {
          ok = false;
          memory.status = memory.status === "ok" ? "failing" : memory.status;
          memory.lastError = token.error;
        }
        if (ok) {
          if (memory.status !== "deferred_busy") memory.consecutiveFailures = 0;
          if (memory.status === "ok") memory.lastError = null;
        } else {
          memory.consecutiveFailures++;
          failed = true;
          problems.push(`${runner.name}: ${memory.lastError ?? "failed"}`);
        }
      } catch (err) {
        if (!(err instanceof AbortedError)) throw err;
        aborted = true;
      } finally {
        await ctx.store.saveRunner(runner.dir, memory).catch((err) => ctx.log.error({ runner: runner.name }, `cannot save state for ${runner.name}: ${errorMessage(err)}`));
        await release?.();
      }
    }
    await reportCredentials(ctx);
  } catch (err) {
    if (!(err instanceof AbortedError)) throw err;
    aborted = true;
  }
  aborted ||= signal.aborted;
  for (const [key, result] of pass.tokenResults) {
    if (result.ok) continue;
    failed = true;
    // A runner that failed for its scope's token already quotes the same error.
    if (!problems.some((p) => result.error && p.endsWith(result.error))) problems.push(`${key}: ${result.error ?? "token refresh failed"}`);
  }

  const metrics = await buildMetricsDocument(ctx);
  await writeMetricsFile(ctx, metrics);
  const time = new Date(ctx.now());
  // All at once: the publisher sends them pipelined, one round trip for every runner.
  await Promise.all(
    metrics.runners.map((report) => ctx.events.publisher.putState(stateDocument(metrics, report, time)).catch((err) => ctx.log.warn(`could not publish state: ${errorMessage(err)}`))),
  );
  // Pools for the collector's host page and charts (issue 19), beside the runners' state.
  if (metrics.pools?.length) {
    await ctx.events.publisher.putPools?.({ v: 1, host: metrics.host, time: time.toISOString(), pools: metrics.pools }).catch((err) => ctx.log.warn(`could not publish pools: ${errorMessage(err)}`));
  }
  if (ctx.alerts) {
    try {
      await ctx.alerts.evaluate(await agentConditions(ctx, metrics));
    } catch (err) {
      ctx.log.error(`alert evaluation failed: ${errorMessage(err)}`);
    }
  }
  const exitCode = lockTimedOut && ctx.mode === "check" ? ExitCode.lockTimeout : failed ? ExitCode.failed : ExitCode.ok;
  const error =
    exitCode === ExitCode.lockTimeout
      ? lockTimedOut
      : exitCode === ExitCode.failed
        ? `${problems[0] ?? "the pass failed"}${problems.length > 1 ? ` (and ${problems.length - 1} more: see the log)` : ""}`
        : null;
  return { exitCode, metrics, aborted, error };
}
