/**
 * The pass asks systemd once for every runner unit (`systemctl show`, one process) instead of
 * one `systemctl is-active` per runner. Each runner's check takes its unit's state from here while
 * it is fresh; a state older than MAX_AGE_MS (a pass slowed by a registration) is asked again.
 */
import { readServiceUnit } from "../runner/files.ts";
import { isRunnerUnitName, systemdUnitStates, type ServiceState } from "../runner/service.ts";
import type { AgentContext, PassState } from "./context.ts";

const MAX_AGE_MS = 10_000;

export async function prefetchServiceStates(ctx: AgentContext, pass: PassState): Promise<void> {
  const units: string[] = [];
  for (const runner of ctx.config.runners) {
    if (runner.service.kind !== "systemd" && runner.service.kind !== "auto") continue;
    const unit = await readServiceUnit(ctx.runtime, runner.dir).catch(() => null);
    if (unit && isRunnerUnitName(unit)) units.push(unit);
  }
  if (units.length === 0) return;
  pass.serviceStates = { at: ctx.now(), states: await systemdUnitStates(ctx.runtime, units) };
}

/** The unit's state from this pass's batch, when there is a fresh one. */
export function prefetchedServiceState(ctx: AgentContext, pass: PassState, unit: string | null): ServiceState | undefined {
  const batch = pass.serviceStates;
  if (!unit || !batch || ctx.now() - batch.at > MAX_AGE_MS) return undefined;
  return batch.states.get(unit);
}
