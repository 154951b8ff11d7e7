/**
 * Ephemeral JIT runner pools (SPEC 14), the one entry point the daemon calls: start (resolve
 * groups, settle what a crashed agent left), a loop that keeps every pool full, clean-ups every
 * github.statusInterval, and stop (idle runners go, busy ones finish).
 */
import { ConfigError, errorMessage } from "../shared/errors.ts";
import { sleep } from "../shared/backoff.ts";
import type { Logger } from "../shared/logger.ts";
import type { Runtime } from "../runtime/types.ts";
import type { AgentConfig } from "../config/types.ts";
import type { RunnerSource } from "./source.ts";
import type { EventEmitter } from "../agent/events.ts";
import { lookupUser } from "../privsep/users.ts";
import { Pool } from "./pool.ts";
import { PoolStore } from "./store.ts";
import type { PoolReport } from "./report.ts";

export type { PoolReport } from "./report.ts";
export { PoolStore } from "./store.ts";
export { BrokerSource, DirectSource } from "./source.ts";

/** How often the pools look at their runners (job state, drain requests, relaunches). */
const TICK_MS = 2000;

export class PoolManager {
  private pools: Pool[] = [];
  private loop: Promise<void> | null = null;
  private readonly stopLoop = new AbortController();
  private wakeUp: (() => void) | null = null;
  /** A runner exited while the pools were being ticked: look again at once instead of sleeping. */
  private wakeRequested = false;

  constructor(
    private readonly deps: { runtime: Runtime; config: AgentConfig; log: Logger; source: RunnerSource; events: EventEmitter; now: () => number },
  ) {}

  /** Throws a ConfigError (exit 78) for what only GitHub can tell: a group that does not exist. */
  async start(signal: AbortSignal): Promise<void> {
    const { runtime, config } = this.deps;
    const store = new PoolStore(runtime, config.state.dir);
    for (const [i, pc] of config.pools.entries()) {
      const user = await lookupUser(runtime, pc.runAs);
      if (!user) throw new ConfigError(`pools[${i}].runAs: there is no user "${pc.runAs}" on this host`);
      const where = `${config.configFile ?? "configuration"}: pools[${i}]`;
      const pool = new Pool(pc, where, { ...this.deps, store, host: config.host, user, wake: () => this.wake() });
      await pool.start(signal);
      this.pools.push(pool);
    }
    this.loop = this.run(AbortSignal.any([signal, this.stopLoop.signal]));
  }

  private async run(signal: AbortSignal): Promise<void> {
    let lastCleanUp = this.deps.now();
    while (!signal.aborted) {
      this.wakeRequested = false;
      for (const pool of this.pools) {
        await pool.tick(signal).catch((err) => this.deps.log.error({ pool: pool.config.name }, `pool ${pool.config.name}: ${errorMessage(err)}`));
      }
      if (this.deps.now() - lastCleanUp >= this.deps.config.github.statusInterval * 1000) {
        lastCleanUp = this.deps.now();
        for (const pool of this.pools) {
          await pool.cleanUp(signal).catch((err) => this.deps.log.warn({ pool: pool.config.name }, `pool ${pool.config.name}: clean-up at GitHub failed: ${errorMessage(err)}`));
        }
      }
      // Until the next tick, or at once when a runner exits (a finished job's slot is refilled now).
      if (!this.wakeRequested) await Promise.race([sleep(TICK_MS, signal).catch(() => {}), new Promise<void>((resolve) => (this.wakeUp = resolve))]);
      this.wakeUp = null;
    }
  }

  private wake(): void {
    this.wakeRequested = true;
    this.wakeUp?.();
  }

  /** SIGTERM: idle runners are deleted and stopped; busy ones finish (TimeoutStopSec bounds it). */
  async stop(): Promise<void> {
    this.stopLoop.abort();
    await this.loop;
    const signal = AbortSignal.timeout(120_000);
    const busy = this.pools.reduce((n, p) => n + p.busy, 0);
    if (busy) this.deps.log.info({ busy }, `waiting for ${busy} pool runner(s) to finish their job`);
    await Promise.all(this.pools.map((p) => p.stop(signal)));
  }

  reports(): PoolReport[] {
    return this.pools.map((p) => p.report());
  }

  /** Pools whose launches keep failing, for the agent's alert rules. */
  failing(): { pool: string; scope: PoolReport["scope"]; failures: number }[] {
    return this.pools.map((p) => p.report()).map((r) => ({ pool: r.name, scope: r.scope, failures: r.consecutive_failures }));
  }
}
