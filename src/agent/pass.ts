/**
 * One pass: tokens for every scope, then every runner (under its lock once a step changes
 * something: runner-lock.ts), then the metrics file and the state documents (the heartbeat).
 * Returns the exit code a `check` should end with.
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
import type { RunnerConfig } from "../config/types.ts";
import type { RunnerMemory } from "./state-store.ts";
import { fileIdentity, isLockSignal, RunnerChanged, RunnerLock, RunnerLockFailed, RunnerLockTimeout } from "./runner-lock.ts";

const CREDENTIAL_WARN_DAYS = 7;
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

type RunnerOutcome = { kind: "checked"; problem: string | null; memory: RunnerMemory } | { kind: "lock_timeout" } | { kind: "aborted" };

/**
 * One runner: checked without its lock, which is taken only when the check is about to change
 * something (runner-lock.ts). Memory that changed is saved under the lock; when what the check
 * read changed before it got the lock, the runner is checked again from the start, under it.
 */
async function checkRunnerLocking(ctx: AgentContext, pass: PassState, runner: RunnerConfig, lock: RunnerLock): Promise<RunnerOutcome> {
  for (;;) {
    const memory = await ctx.store.loadRunner(runner.dir);
    const memoryFile = ctx.store.runnerFile(runner.dir);
    lock.observe("the agent's memory of the runner", fileIdentity(ctx.store.knownStat(memoryFile)), async () => fileIdentity(await ctx.runtime.files.stat(memoryFile)));
    let ok: boolean;
    let lockFailed = false;
    try {
      ok = await checkRunnerSafely(ctx, pass, runner, memory);
    } catch (err) {
      if (err instanceof RunnerChanged) {
        ctx.log.debug({ runner: runner.name }, `${err.message}: checking it again under the lock`);
        continue;
      }
      if (err instanceof RunnerLockTimeout) return { kind: "lock_timeout" };
      if (err instanceof AbortedError) {
        // Stopped mid-check: what a locked step did is saved; an unlocked read is not worth waiting for the lock.
        if (lock.held) await saveMemory(ctx, runner, memory);
        return { kind: "aborted" };
      }
      if (!(err instanceof RunnerLockFailed)) throw err;
      logLockFailure(ctx, runner, err);
      memory.status = "failing";
      memory.lastError = err.message;
      ok = false;
      lockFailed = true;
    }
    let problem = settle(pass, runner, memory, ok);
    try {
      // Two processes never save over each other: a changed memory is written under the lock.
      if (!lock.held && !lockFailed && ctx.store.runnerChanged(runner.dir, memory)) await lock.ensure();
    } catch (err) {
      if (err instanceof RunnerChanged) continue;
      if (err instanceof RunnerLockTimeout) return { kind: "lock_timeout" };
      if (err instanceof AbortedError) return { kind: "aborted" };
      if (!(err instanceof RunnerLockFailed)) throw err;
      // Saved anyway: the failure must show in status and metrics.
      logLockFailure(ctx, runner, err);
      if (problem === null) {
        memory.status = "failing";
        memory.lastError = err.message;
        memory.consecutiveFailures++;
        problem = err.message;
      }
    }
    await saveMemory(ctx, runner, memory);
    return { kind: "checked", problem, memory };
  }
}

function logLockFailure(ctx: AgentContext, runner: RunnerConfig, err: RunnerLockFailed): void {
  ctx.log.error({ runner: runner.name }, `cannot lock ${runner.dir}: ${errorMessage(err.cause)}: is the dir writable by this user?`);
}

/** checkRunner, with one runner's I/O trouble (EACCES on .runner, ENOSPC) recorded instead of thrown. */
async function checkRunnerSafely(ctx: AgentContext, pass: PassState, runner: RunnerConfig, memory: RunnerMemory): Promise<boolean> {
  try {
    return await checkRunner(ctx, pass, runner, memory);
  } catch (err) {
    if (err instanceof AbortedError || isLockSignal(err)) throw err;
    // One runner's trouble must not cost the others their pass.
    const code = (err as { code?: string }).code;
    memory.status = "failing";
    memory.lastError = `${errorMessage(err)}${code === "EACCES" || code === "EPERM" ? `: give this user access to ${runner.dir}` : ""}`;
    ctx.log.error({ runner: runner.name }, memory.lastError);
    return false;
  }
}

/** The runner's outcome with its scope's token folded in; returns the problem to report, or null. */
function settle(pass: PassState, runner: RunnerConfig, memory: RunnerMemory, ok: boolean): string | null {
  const token = pass.tokenResults.get(scopeKey(runner.scope));
  if (token && !token.ok) {
    ok = false;
    memory.status = memory.status === "ok" ? "failing" : memory.status;
    memory.lastError = token.error;
  }
  if (ok) {
    if (memory.status !== "deferred_busy") memory.consecutiveFailures = 0;
    if (memory.status === "ok") memory.lastError = null;
    return null;
  }
  memory.consecutiveFailures++;
  return memory.lastError ?? "failed";
}

async function saveMemory(ctx: AgentContext, runner: RunnerConfig, memory: RunnerMemory): Promise<void> {
  await ctx.store.saveRunner(runner.dir, memory).catch((err) => ctx.log.error({ runner: runner.name }, `cannot save state for ${runner.name}: ${errorMessage(err)}`));
}

export async function runPass(ctx: AgentContext, signal: AbortSignal, options: { leadSeconds?: number } = {}): Promise<PassResult> {
  const pass: PassState = { signal, scopeConfirmed: new Set(), tokenResults: new Map() };
  let failed = false;
  let lockTimedOut: string | null = null;
  let aborted = false;
  const problems: string[] = [];
  /** Each runner's memory as this pass left it (the metrics file shows it without reading it again). */
  const checked = new Map<string, RunnerMemory>();
  try {
    await refreshScopes(ctx, pass, options.leadSeconds ?? 0);
    await prefetchServiceStates(ctx, pass);
    for (const runner of ctx.config.runners) {
      if (signal.aborted) break;
      const lock = new RunnerLock(ctx, runner, signal);
      pass.runnerLock = lock;
      try {
        const outcome = await checkRunnerLocking(ctx, pass, runner, lock);
        if (outcome.kind === "checked") checked.set(runner.dir, outcome.memory);
        if (outcome.kind === "aborted") aborted = true;
        else if (outcome.kind === "lock_timeout") {
          lockTimedOut ??= `another runner-token-refresh held the lock on ${runner.dir} past refresh.lockTimeout (${ctx.config.refresh.lockTimeout}s): let it finish, or raise refresh.lockTimeout`;
          ctx.log.warn({ runner: runner.name }, `another agent held the lock on ${runner.dir} past refresh.lockTimeout: ${ctx.mode === "daemon" ? "skipping it for one interval" : "giving up"}`);
        } else if (outcome.problem) {
          failed = true;
          problems.push(`${runner.name}: ${outcome.problem}`);
        }
      } finally {
        pass.runnerLock = null;
        await lock.close();
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

  const tokenExpiry = new Map([...pass.tokenResults].map(([key, r]) => [key, r.expiresAt] as const));
  const metrics = await buildMetricsDocument(ctx, { runners: checked, tokenExpiry });
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
