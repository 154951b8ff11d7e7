/**
 * (Re-)registration, exactly the procedure of SPEC 5: never stop a busy runner; stop the service;
 * move the registration aside; take a valid token; refuse a name that is online under an id this
 * host never had; config.sh with the token in the environment only; verify `.runner`; start the
 * service; confirm online. Files are put back whenever configuration fails.
 */
import { childLogger } from "../shared/logger.ts";
import { AbortedError, RegistrationError, errorMessage } from "../shared/errors.ts";
import { sleep } from "../shared/backoff.ts";
import { scopeKey } from "../shared/scope.ts";
import type { RunnerConfig } from "../config/types.ts";
import { moveAside, restore, discard, type MovedAside } from "../runner/aside.ts";
import { runConfigure, outputTail } from "../runner/configure.ts";
import { readLocalState } from "../runner/files.ts";
import { mustLock } from "./runner-lock.ts";
import { localJobRunning } from "../runner/local-signals.ts";
import type { ServiceControl } from "../runner/service.ts";
import type { CachedToken } from "../github/token-cache.ts";
import { ensureToken } from "./token-step.ts";
import { runnersNamed } from "./name-check.ts";
import type { AgentContext, PassState } from "./context.ts";
import type { RunnerMemory } from "./state-store.ts";
import type { SystemUser } from "../privsep/index.ts";

/** A cached token this close to expiry is not handed to config.sh. */
const MIN_TOKEN_LIFE_MS = 60_000;

export type RegisterOutcome =
  | { kind: "registered"; agentId: number }
  | { kind: "deferred_busy" }
  | { kind: "would_register" }
  | { kind: "failed"; step: string; error: string };

export interface RegisterInput {
  runner: RunnerConfig;
  /** The user config.sh runs as (SPEC 15). */
  runAs: SystemUser;
  memory: RunnerMemory;
  service: ServiceControl;
  serviceActive: boolean;
  reason: string;
  /** The current registration's id, when one is on disk. */
  agentId: number | null;
  /** Busy flag from this pass's status call, if one was made. */
  apiBusy: boolean | null;
}

/** One runner's status by id: from GitHub, or in fleet mode without credentials from RTR_GITHUB. */
function runnerLookup(ctx: AgentContext, signal: AbortSignal): ((scope: RunnerConfig["scope"], id: number) => Promise<{ status: string; busy: boolean } | null>) | null {
  if (ctx.github) return (scope, id) => ctx.github!.getRunner(scope, id, signal);
  if (ctx.fleet) return (scope, id) => ctx.fleet!.runner(scope, id);
  return null;
}

async function isBusy(ctx: AgentContext, pass: PassState, input: RegisterInput): Promise<boolean> {
  if (await localJobRunning(ctx.runtime, input.runner.dir)) return true;
  if (input.apiBusy !== null) return input.apiBusy;
  const lookup = runnerLookup(ctx, pass.signal);
  if (input.agentId && lookup) {
    // Stopping a runner cancels its job: ask GitHub now rather than trust an old answer. When
    // GitHub cannot say, assume busy: a deferred registration costs a pass, a killed job costs a job.
    try {
      const api = await lookup(input.runner.scope, input.agentId);
      return api?.busy ?? false;
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      ctx.log.warn({ runner: input.runner.name }, `cannot tell whether the runner is running a job (${errorMessage(err)}): treating it as busy`);
      return true;
    }
  }
  return false;
}

async function confirmOnline(ctx: AgentContext, pass: PassState, runner: RunnerConfig, agentId: number): Promise<boolean> {
  const lookup = runnerLookup(ctx, pass.signal);
  if (!lookup) return true;
  const deadline = ctx.now() + ctx.config.refresh.onlineTimeout * 1000;
  for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
    const api = await lookup(runner.scope, agentId).catch((err) => {
      if (err instanceof AbortedError) throw err;
      return null;
    });
    if (api?.status === "online") return true;
    if (ctx.now() + delay > deadline) return false;
    await sleep(delay, pass.signal).catch(() => {
      throw new AbortedError("stopped while waiting for the runner to come online");
    });
  }
}

export async function register(ctx: AgentContext, pass: PassState, input: RegisterInput): Promise<RegisterOutcome> {
  const { runner, memory, service } = input;
  const log = childLogger(ctx.log, { runner: runner.name });
  if (ctx.config.dryRun) {
    log.info({ reason: input.reason }, `dry run: would register ${runner.name} (${input.reason})${input.serviceActive ? " after stopping its service" : ""}`);
    return { kind: "would_register" };
  }
  // From here on the runner changes (or a deferral is recorded): under its lock.
  await mustLock(pass);
  if (await isBusy(ctx, pass, input)) {
    memory.pendingReregister ??= { reason: input.reason, since: Math.floor(ctx.now() / 1000) };
    log.info({ reason: input.reason }, "runner is busy: registration deferred to a later pass (a running job is never interrupted)");
    await ctx.events.emit("runner.deferred_busy", runner.name, runner.scope, { reason: input.reason });
    return { kind: "deferred_busy" };
  }
  if (pass.signal.aborted) throw new AbortedError();

  let stoppedService = false;
  const fail = async (step: string, err: unknown, moved: MovedAside | null): Promise<RegisterOutcome> => {
    if (moved) {
      try {
        await restore(ctx.runtime, moved);
      } catch (restoreErr) {
        log.error({ aside: moved.asideDir }, `could not put the old registration back: ${errorMessage(restoreErr)}: the files are in ${moved.asideDir}`);
      }
    }
    // The old registration is back: so is its service, rather than a runner down until next pass.
    if (stoppedService) {
      const started = await service.start();
      if (started.code !== 0) log.warn(`could not restart the ${service.kind} service after the failed registration: exit ${started.code}`);
    }
    return { kind: "failed", step, error: errorMessage(err) };
  };

  // The token step already failed for this scope in this pass, after its own retries: minting
  // again at once would repeat a 401/403 that is not retried, ignore a retry-after longer than
  // maxRetryWait, and break "--max-retries N means at most N requests". Go on only with a cached
  // token that is still valid; else fail before the service is stopped or a file is moved.
  const tokenStep = pass.tokenResults.get(scopeKey(runner.scope));
  let stillValid: CachedToken | null = null;
  if (tokenStep && !tokenStep.ok) {
    const cached = await ctx.tokens.read(runner.scope);
    if (!cached || cached.expiresAt.getTime() - ctx.now() < MIN_TOKEN_LIFE_MS) {
      return fail("token", new Error(tokenStep.error ?? "the registration token could not be refreshed"), null);
    }
    stillValid = cached;
  }

  if (input.serviceActive && service.kind !== "none") {
    const stopped = await service.stop();
    if (stopped.code !== 0) return fail("stop_service", new Error(`could not stop the service (${service.kind}): ${outputTail(stopped.stdout, stopped.stderr, 3) || `exit ${stopped.code}`}`), null);
    stoppedService = true;
  }

  let moved: MovedAside;
  try {
    moved = await moveAside(ctx.runtime, runner.dir, ctx.store.asideDir(runner.dir));
  } catch (err) {
    return fail("move_aside", new Error(`cannot move the registration files aside (${(err as { code?: string }).code ?? errorMessage(err)}): is ${runner.dir} writable by this user?`), null);
  }
  if (moved.previousAgentId && !memory.knownIds.includes(moved.previousAgentId)) memory.knownIds.push(moved.previousAgentId);

  // From here on, the registration is in flight: finish it (config.sh is bounded by its timeout)
  // rather than leave the runner half-configured when a signal arrives.
  const critical = new AbortController();
  const criticalPass: PassState = { ...pass, signal: critical.signal };
  let token: CachedToken;
  try {
    token = stillValid ?? (await ensureToken(ctx, criticalPass, runner.scope));
  } catch (err) {
    return fail("token", err, moved);
  }

  if (ctx.github || ctx.fleet) {
    try {
      // Live from GitHub, or from a fresh fleet poll: never from stale data (name-check.ts).
      const sameName = await runnersNamed(ctx, runner, critical.signal);
      pass.scopeConfirmed.add(scopeKey(runner.scope));
      const foreign = sameName.find((r) => r.status === "online" && !memory.knownIds.includes(r.id));
      if (foreign) {
        const error = `a runner named "${runner.name}" is online at GitHub under id ${foreign.id}, which this host never had: refusing --replace (two hosts must not fight over one name): rename one of them (runners[].name)`;
        await ctx.events.emit("runner.name_conflict", runner.name, runner.scope, { other_id: foreign.id });
        return fail("name_conflict", new Error(error), moved);
      }
    } catch (err) {
      return fail("name_lookup", err, moved);
    }
  }

  try {
    await runConfigure(ctx.runtime, runner, token.token, { timeoutSeconds: ctx.config.refresh.configureTimeout, user: input.runAs });
  } catch (err) {
    return fail((err as RegistrationError).step ?? "configure", err, moved);
  }
  const local = await readLocalState(ctx.runtime, runner.dir);
  if (!local.runner) {
    return fail("verify", new Error(`config.sh exited 0 but ${local.runnerProblem ?? ".runner was not written"}: the runner was not configured`), moved);
  }
  const agentId = local.runner.agentId;
  await discard(ctx.runtime, moved);
  memory.knownIds = [...new Set([...memory.knownIds, agentId])].slice(-20);
  memory.registrations++;
  memory.registeredAt = Math.floor(ctx.now() / 1000);
  // A registration just made is as good as a status call: the next one is due a statusInterval on.
  memory.lastStatusCheck = memory.registeredAt;
  memory.pendingReregister = null;
  memory.downSince = null;
  memory.serviceStartTries = 0;
  memory.offlineSince = null;
  memory.offlineWarned = false;
  memory.diagFindings = [];
  log.info({ agent_id: agentId, reason: input.reason }, `runner ${runner.name} registered (id ${agentId})`);

  if (service.kind !== "none") {
    const started = await service.start();
    if (started.code !== 0) {
      return { kind: "failed", step: "start_service", error: `registered as id ${agentId}, but the service did not start: ${outputTail(started.stdout, started.stderr, 3) || `exit ${started.code}`}` };
    }
    try {
      if (!(await confirmOnline(ctx, pass, runner, agentId))) {
        return { kind: "failed", step: "confirm_online", error: `registered as id ${agentId} and started, but GitHub did not show it online within refresh.onlineTimeout (${ctx.config.refresh.onlineTimeout}s): see the runner's _diag logs` };
      }
    } catch (err) {
      if (!(err instanceof AbortedError)) throw err;
      log.info("stopping: not waiting for the new registration to show online");
    }
  }
  return { kind: "registered", agentId };
}
