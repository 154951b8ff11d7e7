/**
 * Privilege separation (SPEC 15), the one entry point the agent uses: who each runner's programs
 * run as, with what environment, and the start-up proof that none of those users can read what
 * the agent guards.
 */
import type { Runtime } from "../runtime/types.ts";
import type { AgentConfig, RunnerConfig } from "../config/types.ts";
import type { Logger } from "../shared/logger.ts";
import { resolveRunAs } from "./run-as.ts";
import { assertSecretsUnreadable } from "./secret-files.ts";
import type { SystemUser } from "./users.ts";

export { RunAsError, switchTo } from "./run-as.ts";
export { runnerEnv } from "./child-env.ts";
export { SecretExposedError } from "./secret-files.ts";
export type { SystemUser } from "./users.ts";

export class Privsep {
  private readonly cache = new Map<string, { owner: number | null; user: SystemUser | null }>();

  constructor(
    private readonly runtime: Runtime,
    private readonly config: AgentConfig,
  ) {}

  private where(runner: RunnerConfig): string {
    const file = this.config.configFile ? `${this.config.configFile}: ` : "";
    return `${file}runners[${Math.max(0, this.config.runners.indexOf(runner))}]`;
  }

  /**
   * The user the runner's programs run as; null while its dir does not exist. Throws RunAsError
   * (a config error) when it cannot be settled safely. Re-resolved when the dir's owner changes.
   */
  async runAs(runner: RunnerConfig): Promise<SystemUser | null> {
    const owner = (await this.runtime.files.stat(runner.dir).catch(() => null))?.uid ?? null;
    const hit = this.cache.get(runner.dir);
    if (hit && hit.owner === owner) return hit.user;
    const user = await resolveRunAs(this.runtime, runner, this.where(runner));
    this.cache.set(runner.dir, { owner, user });
    return user;
  }

  /**
   * At start (check and daemon): every runner whose dir exists has a safe user, and no such user
   * (other than root or the agent itself) can read a secret, the state dir or the token cache.
   */
  async verify(log: Logger): Promise<void> {
    const users = new Map<number, { user: SystemUser; where: string }>();
    for (const runner of this.config.runners) {
      const user = await this.runAs(runner);
      if (!user) continue;
      if (user.uid === 0 || user.uid === this.runtime.uid()) {
        log.warn({ runner: runner.name }, `${this.where(runner)} runs as "${user.name}"${user.uid === 0 ? " (root)" : ", the agent's own user"}: its jobs can read the agent's credentials (runAs says so explicitly)`);
        continue;
      }
      if (!users.has(user.uid)) users.set(user.uid, { user, where: this.where(runner) });
    }
    if (this.runtime.uid() !== 0 || !users.size) return;
    await assertSecretsUnreadable(this.runtime, this.config, [...users.values()]);
  }
}
