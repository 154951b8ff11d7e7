/**
 * The pass learns every systemd runner unit's state before the runners are checked, as cheaply
 * as it can be known for sure:
 * - a unit systemd last reported active, whose main process (MainPID, the same pid with the same
 *   start time) still runs, is active: a runner unit is `Type=simple`, so it leaves `active` only
 *   when that process exits. One read of /proc/<pid>/stat, no process started;
 * - every other unit (never asked, found inactive, its main process gone or replaced) is asked
 *   in one `systemctl show` for all of them, which also gives the main process to watch next.
 * So a stopped service is noticed in the first pass after its main process exits, and a healthy
 * host starts no process per pass (issue 18). Each runner's check takes its unit's state from here
 * while it is fresh; a state older than MAX_AGE_MS (a pass slowed by a registration) is asked again.
 */
import { readServiceUnit } from "../runner/files.ts";
import { isRunnerUnitName, systemdUnits, type ServiceState } from "../runner/service.ts";
import type { AgentContext, PassState } from "./context.ts";

const MAX_AGE_MS = 10_000;

/** Per agent context: each unit's main process as systemd last reported it while active. */
const mainProcesses = new WeakMap<AgentContext, Map<string, { pid: number; start: string }>>();

export async function prefetchServiceStates(ctx: AgentContext, pass: PassState): Promise<void> {
  const units = new Set<string>();
  for (const runner of ctx.config.runners) {
    if (runner.service.kind !== "systemd" && runner.service.kind !== "auto") continue;
    const unit = await readServiceUnit(ctx.runtime, runner.dir).catch(() => null);
    if (unit && isRunnerUnitName(unit)) units.add(unit);
  }
  if (units.size === 0) return;
  let mains = mainProcesses.get(ctx);
  if (!mains) mainProcesses.set(ctx, (mains = new Map()));
  const states = new Map<string, ServiceState>();
  const ask: string[] = [];
  for (const unit of units) {
    const main = mains.get(unit);
    if (main && (await ctx.runtime.processStart(main.pid)) === main.start) states.set(unit, "active");
    else {
      mains.delete(unit);
      ask.push(unit);
    }
  }
  if (ask.length > 0) {
    for (const [unit, info] of await systemdUnits(ctx.runtime, ask)) {
      states.set(unit, info.state);
      const start = info.state === "active" && info.mainPid > 0 ? await ctx.runtime.processStart(info.mainPid) : null;
      if (start) mains.set(unit, { pid: info.mainPid, start });
    }
  }
  // Units no longer configured are forgotten.
  for (const unit of mains.keys()) if (!units.has(unit)) mains.delete(unit);
  pass.serviceStates = { at: ctx.now(), states };
}

/** The unit's state from this pass's batch, when there is a fresh one. */
export function prefetchedServiceState(ctx: AgentContext, pass: PassState, unit: string | null): ServiceState | undefined {
  const batch = pass.serviceStates;
  if (!unit || !batch || ctx.now() - batch.at > MAX_AGE_MS) return undefined;
  return batch.states.get(unit);
}

