/**
 * Label drift (issue 17): the runner's custom labels at GitHub differ from runners[].labels. One
 * `PUT {scope}/actions/runners/{id}/labels` replaces them all; config.sh cannot relabel a
 * registered runner, and re-registering (service stop, config.sh) for a label is never the mild
 * way. `labels` absent from the config means "leave labels alone" (runner.manageLabels false).
 */
import { AbortedError, errorMessage } from "../shared/errors.ts";
import { scopeApiPath } from "../shared/scope.ts";
import type { Logger } from "../shared/logger.ts";
import type { RunnerConfig } from "../config/types.ts";
import type { RunnerApiState } from "../github/client.ts";
import type { AgentContext, PassState } from "../agent/context.ts";
import { mustLock } from "../agent/runner-lock.ts";

/** Labels compare without case, as GitHub matches them; first spelling kept. */
function caseless(labels: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of labels) if (!out.has(l.toLowerCase())) out.set(l.toLowerCase(), l);
  return out;
}

/**
 * The custom labels wanted and those GitHub has, both without names that are read-only on this
 * runner (config.sh's self-hosted/OS/architecture): a config listing `linux` must not loop
 * forever against a read-only `Linux` that no PUT can change.
 */
export function labelDrift(wanted: readonly string[], api: RunnerApiState): { want: string[]; have: string[]; drifted: boolean } | null {
  if (api.customLabels === undefined) return null;
  const readOnly = new Set((api.readOnlyLabels ?? []).map((l) => l.toLowerCase()));
  const want = [...caseless(wanted).entries()].filter(([k]) => !readOnly.has(k));
  const have = [...caseless(api.customLabels).entries()].filter(([k]) => !readOnly.has(k));
  const haveKeys = new Set(have.map(([k]) => k));
  const drifted = want.length !== have.length || want.some(([k]) => !haveKeys.has(k));
  return { want: want.map(([, v]) => v), have: have.map(([, v]) => v), drifted };
}

export async function repairLabels(ctx: AgentContext, pass: PassState, runner: RunnerConfig, api: RunnerApiState, log: Logger): Promise<void> {
  if (!runner.manageLabels || !ctx.github) return;
  const drift = labelDrift(runner.labels, api);
  if (!drift?.drifted) return;
  const before = api.customLabels ?? [];
  if (ctx.config.dryRun) {
    log.info({ before, after: drift.want }, `dry run: would set runner id ${api.id}'s custom labels to [${drift.want.join(", ")}]`);
    return;
  }
  await mustLock(pass);
  try {
    await ctx.github.rest("runner-labels", runner.scope, `PUT ${scopeApiPath(runner.scope)}/actions/runners/{runner_id}/labels`, { runner_id: api.id, labels: drift.want }, pass.signal);
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    ctx.telemetry.hygiene.repair(runner.name, "labels", false);
    log.warn({ before, after: drift.want }, `could not repair the runner's labels: ${errorMessage(err)}`);
    return;
  }
  ctx.telemetry.hygiene.repair(runner.name, "labels", true);
  log.info({ before, after: drift.want }, `custom labels at GitHub differed from runners[].labels: set them with one label call (no config.sh, service untouched)`);
  await ctx.events.emit("runner.labels_repaired", runner.name, runner.scope, { agent_id: api.id, before, after: drift.want });
}
