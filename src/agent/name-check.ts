/**
 * SPEC 5 step 5: before `--replace`, who else holds the name? `--replace` takes a name from
 * whichever runner has it, online or not, so an answer from stale data lets two hosts fight over
 * one name. The agent's own credentials ask GitHub (`?name=`, live, one call per registration);
 * without them, fleet mode's RTR_GITHUB answers only while the collector's poll is fresh. Anything
 * less fails the step `name_lookup` rather than guess.
 */
import { RegistrationError, errorMessage } from "../shared/errors.ts";
import { scopeKey } from "../shared/scope.ts";
import type { RunnerConfig } from "../config/types.ts";
import { markerFresh } from "../fleet/agent-client.ts";
import type { AgentContext } from "./context.ts";

export interface NamedRunner {
  id: number;
  status: "online" | "offline";
}

/** Runners of the scope with this runner's name; throws RegistrationError (step name_lookup). */
export async function runnersNamed(ctx: AgentContext, runner: RunnerConfig, signal: AbortSignal): Promise<NamedRunner[]> {
  const scope = scopeKey(runner.scope);
  if (ctx.github) {
    try {
      return await ctx.github.findRunnersByName(runner.scope, runner.name, signal);
    } catch (err) {
      throw new RegistrationError(`cannot look the name "${runner.name}" up at GitHub (${errorMessage(err)}): not replacing a runner that may be online elsewhere`, "name_lookup", { cause: err });
    }
  }
  if (!ctx.fleet) throw new RegistrationError(`no way to look the name "${runner.name}" up: give the agent github.auth or fleet.enabled`, "name_lookup");
  const fleet = ctx.fleet;
  let marker;
  try {
    marker = await fleet.marker(runner.scope);
  } catch (err) {
    throw new RegistrationError(`cannot read the collector's poll of ${scope} to look the name "${runner.name}" up (${errorMessage(err)}): not replacing a runner that may be online elsewhere; check NATS, or give the agent its own github.auth`, "name_lookup", { cause: err });
  }
  if (!markerFresh(marker, ctx.config.fleet.pollInterval, ctx.now())) {
    const age = marker ? `last finished ${marker.finished}` : "has never run";
    throw new RegistrationError(
      `cannot tell whether a runner named "${runner.name}" is online on another host: the collector's poll of ${scope} ${age} (fresh means within 3 × fleet.pollInterval = ${3 * ctx.config.fleet.pollInterval}s) and this agent has no GitHub credentials of its own: check the leading collector (its fleet.scopes must list ${scope}), or give the agent github.auth`,
      "name_lookup",
    );
  }
  try {
    return await fleet.findByName(runner.scope, runner.name);
  } catch (err) {
    throw new RegistrationError(`cannot read RTR_GITHUB to look the name "${runner.name}" up (${errorMessage(err)}): not replacing a runner that may be online elsewhere`, "name_lookup", { cause: err });
  }
}
