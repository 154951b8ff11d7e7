/**
 * One runner in one pass (SPEC 5): read the files, the service and (rate-aware) the API; then the
 * mildest remedy that fits. Held → nothing. Intact but its service down → start the service.
 * Registration only when `.runner` is missing or unreadable, the registration is confirmed gone,
 * a re-registration is pending, `on-refresh` asks for it, or the service stayed down past
 * offlineGrace although starting it was tried.
 */
import { childLogger } from "../shared/logger.ts";
import { AbortedError, errorMessage } from "../shared/errors.ts";
import { backoffDelay } from "../shared/backoff.ts";
import { scopeKey } from "../shared/scope.ts";
import type { RunnerConfig } from "../config/types.ts";
import { readLocalState, runnerFilesFingerprint } from "../runner/files.ts";
import { scanDiag } from "../runner/local-signals.ts";
import { createServiceControl, isRunnerUnitName, type ServiceControl } from "../runner/service.ts";
import { RunAsError } from "../privsep/index.ts";
import type { RunnerApiState } from "../github/client.ts";
import { register } from "./register.ts";
import { prefetchedServiceState } from "./service-batch.ts";
import { markerFresh } from "../fleet/agent-client.ts";
import { runHygiene } from "../hygiene/index.ts";
import type { AgentContext, PassState } from "./context.ts";
import type { RunnerMemory } from "./state-store.ts";
import { mustLock } from "./runner-lock.ts";

const nowSeconds = (ctx: AgentContext) => Math.floor(ctx.now() / 1000);

/** The status call: due every statusInterval, sooner when local signals show trouble. */
async function apiStatus(
  ctx: AgentContext,
  pass: PassState,
  runner: RunnerConfig,
  agentId: number,
  memory: RunnerMemory,
  trouble: boolean,
  fileMtime: number | null,
): Promise<{ api: RunnerApiState | null | undefined; deleted: boolean }> {
  const log = childLogger(ctx.log, { runner: runner.name });
  if (ctx.fleet) {
    const fromFleet = await fleetStatus(ctx, runner, agentId, memory, fileMtime).catch((err) => {
      log.warn(`fleet status unavailable (${errorMessage(err)})`);
      return null;
    });
    if (fromFleet && !(fromFleet.deleted && ctx.github)) return fromFleet;
    if (!ctx.github) return { api: undefined, deleted: false };
    // The collector's poll is stale: fall back to this agent's own (rate-aware) status calls. Or
    // it no longer lists the runner: an agent with credentials confirms that itself, one call
    // before a re-registration that may stop the runner.
    if (fromFleet?.deleted) trouble = true;
  }
  const due = memory.lastStatusCheck === null || nowSeconds(ctx) - memory.lastStatusCheck >= ctx.config.github.statusInterval;
  if (!ctx.github || (!due && !trouble)) return { api: undefined, deleted: false };
  let api: RunnerApiState | null;
  // Conditional on the last answer's ETag: a 304 (runner unchanged) does not count against the rate limit.
  const kept = memory.statusAnswer?.runner.id === agentId ? memory.statusAnswer : null;
  try {
    const res = await ctx.github.getRunnerConditional(runner.scope, agentId, pass.signal, kept?.etag);
    api = res.notModified ? kept!.runner : res.runner;
    if (!res.notModified) memory.statusAnswer = res.runner && res.etag ? { etag: res.etag, runner: res.runner } : null;
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    log.warn(`status call failed: ${errorMessage(err)}`);
    return { api: undefined, deleted: false };
  }
  memory.lastStatusCheck = nowSeconds(ctx);
  if (api) {
    memory.api = { id: api.id, status: api.status, busy: api.busy, checkedAt: memory.lastStatusCheck };
    return { api, deleted: false };
  }
  // GitHub also answers 404 to a credential that cannot see the scope: believe it only when a
  // scope-level call succeeded in this pass, so a revoked credential never re-registers a fleet.
  const key = scopeKey(runner.scope);
  if (!pass.scopeConfirmed.has(key)) {
    try {
      await ctx.github.findRunnersByName(runner.scope, runner.name, pass.signal);
      pass.scopeConfirmed.add(key);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      log.warn(`GitHub answered 404 for runner id ${agentId}, but the scope itself could not be read (${errorMessage(err)}): not treating the registration as deleted`);
      return { api: undefined, deleted: false };
    }
  }
  memory.api = null;
  log.warn(`GitHub has no runner with id ${agentId}: the registration was deleted`);
  return { api: null, deleted: true };
}

/**
 * Fleet mode (SPEC 9): the runner's status from RTR_GITHUB, judged by the scope's poll marker. A
 * runner missing from a poll that started after its registration counts as deleted: the poller
 * deletes a key only once GitHub confirms the runner gone, and the marker's `started` is that of
 * the last listing no churn could have skipped a runner in. Returns null when the poll is older
 * than three intervals (the caller may fall back to its own calls).
 */
async function fleetStatus(ctx: AgentContext, runner: RunnerConfig, agentId: number, memory: RunnerMemory, fileMtime: number | null): Promise<{ api: RunnerApiState | null | undefined; deleted: boolean } | null> {
  const fleet = ctx.fleet!;
  const marker = await fleet.marker(runner.scope);
  if (!markerFresh(marker, ctx.config.fleet.pollInterval, ctx.now())) return null;
  const entry = await fleet.runner(runner.scope, agentId);
  memory.lastStatusCheck = nowSeconds(ctx);
  if (entry) {
    const api: RunnerApiState = { id: entry.id, name: entry.name, status: entry.status, busy: entry.busy, labels: entry.labels };
    memory.api = { id: api.id, status: api.status, busy: api.busy, checkedAt: memory.lastStatusCheck };
    return { api, deleted: false };
  }
  // The later of the two: a .runner rewritten by hand since the agent last registered is newer.
  const registeredAt = Math.max(memory.registeredAt ?? 0, fileMtime ?? 0);
  // Both are whole seconds (rounded down): the poll must have started after that whole second,
  // or a runner registered in the same second as the poll began would count as deleted.
  if (Date.parse(marker!.started) >= (registeredAt + 1) * 1000) {
    memory.api = null;
    ctx.log.warn({ runner: runner.name }, `the collector's poll of ${scopeKey(runner.scope)} no longer lists runner id ${agentId}: ${ctx.github ? "confirming with GitHub" : "the registration was deleted"}`);
    return { api: null, deleted: true };
  }
  // Registered after that poll started: not listed yet, not deleted.
  return { api: undefined, deleted: false };
}

/** Starts an inactive service, with backoff between tries. Returns whether it was tried now. */
async function startService(ctx: AgentContext, pass: PassState, runner: RunnerConfig, service: ServiceControl, memory: RunnerMemory): Promise<void> {
  const wait = memory.serviceStartTries === 0 ? 0 : backoffDelay(memory.serviceStartTries, ctx.config.refresh.interval, 3600, () => 1);
  if (memory.lastServiceStart !== null && nowSeconds(ctx) - memory.lastServiceStart < wait) return;
  const log = childLogger(ctx.log, { runner: runner.name });
  if (ctx.config.dryRun) {
    log.info(`dry run: would start the ${service.kind} service`);
    return;
  }
  await mustLock(pass);
  memory.serviceStartTries++;
  memory.lastServiceStart = nowSeconds(ctx);
  const result = await service.start();
  if (result.code === 0) {
    log.info({ tries: memory.serviceStartTries }, `service was inactive with an intact registration: started it (${service.kind})`);
    await ctx.events.emit("runner.service_started", runner.name, runner.scope, { tries: memory.serviceStartTries });
  } else {
    log.warn({ tries: memory.serviceStartTries }, `could not start the ${service.kind} service: exit ${result.code}`);
  }
}

async function trackOffline(ctx: AgentContext, pass: PassState, runner: RunnerConfig, memory: RunnerMemory, api: RunnerApiState | null | undefined): Promise<void> {
  const status = api?.status ?? memory.api?.status;
  if (status !== "offline") {
    memory.offlineSince = null;
    memory.offlineWarned = false;
    return;
  }
  memory.offlineSince ??= nowSeconds(ctx);
  const offlineFor = nowSeconds(ctx) - memory.offlineSince;
  if (!memory.offlineWarned && offlineFor >= runner.offlineWarnAfter) {
    await mustLock(pass);
    memory.offlineWarned = true;
    ctx.log.warn({ runner: runner.name }, `runner has been offline for ${Math.round(offlineFor / 3600)}h: GitHub deletes self-hosted runners offline for 14 days (1 day if ephemeral)`);
    await ctx.events.emit("runner.offline", runner.name, runner.scope, { since: new Date(memory.offlineSince * 1000).toISOString() });
  }
}

export async function checkRunner(ctx: AgentContext, pass: PassState, runner: RunnerConfig, memory: RunnerMemory): Promise<boolean> {
  const log = childLogger(ctx.log, { runner: runner.name });
  const local = await readLocalState(ctx.runtime, runner.dir);
  pass.runnerLock?.observe("the runner's files", local.fingerprint, () => runnerFilesFingerprint(ctx.runtime, runner.dir));
  if (!local.dirExists) {
    memory.status = "failing";
    memory.registered = false;
    memory.lastError = `runner dir ${runner.dir} does not exist: unpack the runner there or fix runners[].dir`;
    log.error(memory.lastError);
    return false;
  }
  if (local.refused) {
    memory.status = "failing";
    memory.lastError = local.refused;
    log.error(memory.lastError);
    return false;
  }
  memory.registered = Boolean(local.runner);
  memory.agentId = local.runner?.agentId ?? null;
  if (local.held) {
    memory.status = "held";
    log.info("runner is held (.rtr-hold): left alone");
    return true;
  }
  let runAs;
  try {
    runAs = await ctx.privsep.runAs(runner);
  } catch (err) {
    if (!(err instanceof RunAsError)) throw err;
    memory.status = "failing";
    memory.lastError = err.message;
    log.error(memory.lastError);
    return false;
  }
  if (!runAs) throw new Error(`runner dir ${runner.dir} disappeared during the pass`);
  const service = createServiceControl(ctx.runtime, runner.service, runner.dir, local.serviceUnit, runAs, prefetchedServiceState(ctx, pass, local.serviceUnit));
  if (service.kind === "systemd" && local.serviceUnit && !isRunnerUnitName(local.serviceUnit)) {
    memory.status = "failing";
    memory.lastError = `${runner.dir}/.service names "${local.serviceUnit.slice(0, 80)}", not an actions.runner.*.service unit: the agent will not start or stop it; reinstall the runner's service (svc.sh install) or set runners[].service`;
    log.error(memory.lastError);
    return false;
  }
  const serviceState = await service.status();
  memory.serviceActive = serviceState === "unknown" ? null : serviceState === "active";

  const findings = local.runner ? await scanDiag(ctx.runtime, runner.dir) : [];
  const newFindings = findings.filter((f) => !memory.diagFindings.includes(f));
  if (newFindings.length) await mustLock(pass);
  for (const finding of newFindings) {
    log.warn({ finding }, `runner log shows ${finding.replace(/_/g, " ")}`);
    await ctx.events.emit("runner.diag", runner.name, runner.scope, { finding });
  }
  memory.diagFindings = findings;

  const trouble = !local.runner || serviceState === "inactive" || memory.pendingReregister !== null || findings.length > 0;
  const { api, deleted } = local.runner ? await apiStatus(ctx, pass, runner, local.runner.agentId, memory, trouble, local.runnerFileMtime) : { api: undefined, deleted: false };
  const known = api ?? (api === undefined && memory.api?.id === local.runner?.agentId ? memory.api : null);
  memory.online = known ? known.status === "online" : null;
  memory.busy = known ? known.busy : null;

  const tokenResult = pass.tokenResults.get(scopeKey(runner.scope));
  let reason: string | null = null;
  if (!local.configured) reason = "not_configured";
  else if (!local.runner) reason = "local_files_corrupt";
  else if (deleted) reason = "deleted_on_github";
  else if (memory.pendingReregister) reason = memory.pendingReregister.reason;
  else if (ctx.config.refresh.reregister === "on-refresh" && tokenResult?.refreshed) reason = "on_refresh";

  // Hygiene (src/hygiene): labels, group, version, session conflicts, repaired in place. Not
  // before a registration: config.sh sets labels and group itself.
  const hygiene = !reason && local.runner ? await runHygiene(ctx, pass, { runner, api, status: known?.status ?? null, service, serviceState, findings }) : null;

  if (!reason && service.kind !== "none") {
    if (serviceState === "inactive") {
      memory.downSince ??= nowSeconds(ctx);
      const downFor = nowSeconds(ctx) - memory.downSince;
      const onlineElsewhere = known?.status === "online";
      // A session conflict: hygiene waits for the old session to expire, or refuses to fight another host.
      if (hygiene?.serviceHandled) log.debug("service left to the session-conflict repair");
      else if (!onlineElsewhere && memory.serviceStartTries > 0 && downFor >= runner.offlineGrace) reason = "offline_grace";
      else await startService(ctx, pass, runner, service, memory);
    } else if (serviceState === "active") {
      memory.downSince = null;
      memory.serviceStartTries = 0;
    }
  }
  await trackOffline(ctx, pass, runner, memory, api);

  if (local.runnerProblem) log.warn(`${local.runnerProblem}: re-registering`);
  if (!reason) {
    memory.status = tokenResult && !tokenResult.ok ? "failing" : "ok";
    return tokenResult?.ok ?? true;
  }

  const outcome = await register(ctx, pass, {
    runner,
    runAs,
    memory,
    service,
    serviceActive: serviceState === "active",
    reason,
    agentId: local.runner?.agentId ?? null,
    apiBusy: api ? api.busy : null,
  });
  switch (outcome.kind) {
    case "registered":
      memory.registered = true;
      memory.agentId = outcome.agentId;
      memory.status = "ok";
      ctx.telemetry.registration(runner.name, reason, true);
      await ctx.events.emit("runner.registered", runner.name, runner.scope, { agent_id: outcome.agentId, reason });
      return true;
    case "deferred_busy":
      memory.status = "deferred_busy";
      return true;
    case "would_register":
      memory.status = "unregistered";
      return true;
    case "failed": {
      memory.status = "failing";
      ctx.telemetry.registration(runner.name, reason, false);
      const failures = memory.consecutiveFailures + 1;
      log.error({ step: outcome.step, consecutive_failures: failures }, `registration failed at ${outcome.step}: ${outcome.error}`);
      await ctx.events.emit("runner.registration_failed", runner.name, runner.scope, { step: outcome.step, error: outcome.error, consecutive_failures: failures, reason });
      memory.lastError = outcome.error;
      return false;
    }
  }
}
