/**
 * Session conflicts (issue 17): "A session for this runner already exists". The listener retries
 * for about four minutes, exits 5, and the wrappers turn that into a clean exit: the service
 * stays down and nothing restarts it (actions/runner#1506, #3677). Two causes, two answers:
 * - the same name runs on another host (GitHub shows the runner online while this host's service
 *   is inactive): never start it here (two listeners would fight over one registration); alert
 *   naming both hosts;
 * - a stale session of this host's own listener (GitHub shows it offline): start the service once
 *   the session has expired, measured from the log's last write (the listener's exit), with a
 *   doubling wait while the conflict keeps coming back.
 */
import { errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { RunnerConfig } from "../config/types.ts";
import type { DiagFinding } from "../runner/local-signals.ts";
import { findNewestDiag } from "../runner/local-signals.ts";
import type { ServiceControl } from "../runner/service.ts";
import type { AgentContext, PassState } from "../agent/context.ts";
import { mustLock } from "../agent/runner-lock.ts";
import type { HygieneMemory } from "./memory.ts";

/** GitHub drops a session a few minutes after its listener stops polling (inferred from #1506). */
export const SESSION_EXPIRY_SECONDS = 300;
const MAX_WAIT_SECONDS = 3600;

export interface SessionInput {
  runner: RunnerConfig;
  service: ServiceControl;
  serviceState: "active" | "inactive" | "unknown";
  findings: readonly DiagFinding[];
  /** GitHub's last known status of the runner, or null when unknown. */
  status: "online" | "offline" | null;
}

/**
 * What the agent can say of the other host: GitHub's runner object does not name hosts, and an
 * agent reads no other host's state (NATS permissions), so "another host"; the collector, which
 * sees every host's state, names it on the runner's page ("same name on", docs/troubleshooting.md).
 */
const OTHER_HOST = "another host";

/** Returns true when it took charge of the service (the runner step must not start it itself). */
export async function repairSession(ctx: AgentContext, pass: PassState, input: SessionInput, memory: HygieneMemory, log: Logger): Promise<boolean> {
  const { runner, service } = input;
  if (!input.findings.includes("session_conflict")) {
    memory.sessionRestarts = 0;
    memory.lastSessionRestart = null;
    memory.sessionElsewhere = false;
    return false;
  }
  if (input.serviceState !== "inactive" || service.kind === "none") {
    memory.sessionElsewhere = false;
    return false;
  }
  const host = ctx.config.host;
  if (input.status === "online") {
    if (!memory.sessionElsewhere) {
      await mustLock(pass);
      memory.sessionElsewhere = true;
      const hosts = [host, OTHER_HOST];
      log.error({ hosts }, `a session for runner ${runner.name} already exists and GitHub shows it online while the service on ${host} is down: the same name runs on ${hosts[1]}; not starting it here (two listeners would fight over one registration): give one of them another name`);
      await ctx.events.emit("runner.session_conflict", runner.name, runner.scope, { hosts, status: "online_elsewhere" });
    }
    return true;
  }
  memory.sessionElsewhere = false;
  const diag = await findNewestDiag(ctx.runtime, runner.dir);
  const now = Math.floor(ctx.now() / 1000);
  const exitedAt = diag ? Math.floor(diag.mtimeMs / 1000) : now;
  const wait = Math.min(MAX_WAIT_SECONDS, SESSION_EXPIRY_SECONDS * 2 ** memory.sessionRestarts);
  const since = Math.max(exitedAt, memory.lastSessionRestart ?? 0);
  if (now - since < wait) {
    log.info({ wait_seconds: wait - (now - since) }, `session conflict: waiting for the old session to expire before starting the ${service.kind} service`);
    return true;
  }
  if (ctx.config.dryRun) {
    log.info(`dry run: would start the ${service.kind} service after a session conflict`);
    return true;
  }
  await mustLock(pass);
  memory.sessionRestarts++;
  memory.lastSessionRestart = now;
  const result = await service.start().catch((err) => ({ code: -1, error: errorMessage(err) }));
  if (result.code === 0) {
    ctx.telemetry.hygiene.repair(runner.name, "session", true);
    log.info({ tries: memory.sessionRestarts }, `the listener had exited on a session conflict and the old session has expired: started the ${service.kind} service`);
    await ctx.events.emit("runner.session_repaired", runner.name, runner.scope, { tries: memory.sessionRestarts, waited_seconds: now - exitedAt });
  } else {
    ctx.telemetry.hygiene.repair(runner.name, "session", false);
    log.warn({ tries: memory.sessionRestarts }, `could not start the ${service.kind} service after a session conflict: exit ${result.code}`);
  }
  return true;
}
