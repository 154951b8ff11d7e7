/**
 * Who a runner's programs (config.sh, svc.sh, custom service commands, run.sh) run as (SPEC 15):
 * `runAs`, else the owner of the runner dir. Jobs run as that user, so it must never be the
 * agent's own user (a job would read the agent's credentials), and a root-owned runner dir is
 * refused unless `runAs: root` says that is meant.
 */
import { ConfigError } from "../shared/errors.ts";
import type { Runtime } from "../runtime/types.ts";
import type { RunnerConfig } from "../config/types.ts";
import { lookupUser, type SystemUser } from "./users.ts";

/** A runner whose user cannot be settled: the runner is not touched (exit 78 at start). */
export class RunAsError extends ConfigError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RunAsError";
  }
}

const UNIT_HINT = "run the agent as root with the shipped unit (systemd/runner-token-refresh.service; docs/security.md)";

/**
 * The runner's user, or null when its dir does not exist (the runner step reports that itself).
 * `where` names the config entry in messages, e.g. "runners[1]".
 */
export async function resolveRunAs(runtime: Runtime, runner: RunnerConfig, where: string): Promise<SystemUser | null> {
  const agentUid = runtime.uid();
  if (runner.runAs) {
    const user = await lookupUser(runtime, runner.runAs);
    if (!user) throw new RunAsError(`${where}.runAs: there is no user "${runner.runAs}" on this host: create it, or set runAs to the user the runner's jobs run as`);
    if (agentUid !== 0 && user.uid !== agentUid) {
      throw new RunAsError(`${where}.runAs: the agent runs as uid ${agentUid} and cannot start config.sh as "${user.name}": ${UNIT_HINT}`);
    }
    // An explicit runAs equal to the agent's user (or root) is the operator accepting the risk.
    return user;
  }
  const stat = await runtime.files.stat(runner.dir);
  if (!stat) return null;
  if (stat.uid === 0 && agentUid === 0) {
    throw new RunAsError(`${where}: ${runner.dir} is owned by root, so config.sh and the runner's jobs would run as root: chown it to the runner's user, or set ${where}.runAs (runAs: root to accept that)`);
  }
  const owner = await lookupUser(runtime, stat.uid);
  if (!owner) throw new RunAsError(`${where}: ${runner.dir} is owned by uid ${stat.uid}, which has no user entry: chown it to the runner's user or set ${where}.runAs`);
  if (agentUid !== 0 && owner.uid === agentUid) {
    throw new RunAsError(
      `${where}: ${runner.dir} belongs to "${owner.name}", the agent's own user, so the runner's jobs could read the agent's credentials: ${UNIT_HINT}, or set ${where}.runAs: ${owner.name} to accept that on a host where no untrusted job runs`,
    );
  }
  if (agentUid !== 0) throw new RunAsError(`${where}: the agent runs as uid ${agentUid} and cannot start config.sh as "${owner.name}", the owner of ${runner.dir}: ${UNIT_HINT}`);
  return owner;
}

/** Spawn options for a program of this runner: a user switch only when it is another user. */
export function switchTo(runtime: Runtime, user: SystemUser): { name: string; uid: number; gid: number } | undefined {
  return user.uid === runtime.uid() ? undefined : { name: user.name, uid: user.uid, gid: user.gid };
}
