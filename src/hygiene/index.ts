/**
 * Runner hygiene, one step in the runner check (issue 17): labels, runner group, version and
 * session conflicts, each repaired in the mildest way (an API call, a service start), never by
 * re-registering, and each repair said (event + metric + log). Called only for a registered
 * runner that needs no registration in this pass: a re-registration fixes labels and group itself.
 */
import { AbortedError, errorMessage } from "../shared/errors.ts";
import { childLogger } from "../shared/logger.ts";
import type { RunnerConfig } from "../config/types.ts";
import type { RunnerApiState } from "../github/client.ts";
import type { DiagFinding } from "../runner/local-signals.ts";
import type { ServiceControl } from "../runner/service.ts";
import type { AgentContext, PassState } from "../agent/context.ts";
import { hygieneFileIdentity, loadHygiene, saveHygiene } from "./memory.ts";
import { isLockSignal, mustLock } from "../agent/runner-lock.ts";
import { repairLabels } from "./labels.ts";
import { repairGroup } from "./groups.ts";
import { checkVersion } from "./version.ts";
import { repairSession } from "./session.ts";

export interface HygieneInput {
  runner: RunnerConfig;
  /** GitHub's runner object from this pass's status call; undefined when none was made. */
  api: RunnerApiState | null | undefined;
  /** GitHub's last known status (this pass or remembered), null when unknown. */
  status: "online" | "offline" | null;
  service: ServiceControl;
  serviceState: "active" | "inactive" | "unknown";
  findings: readonly DiagFinding[];
}

export interface HygieneResult {
  /** The session step took charge of the inactive service: the runner step must not start it. */
  serviceHandled: boolean;
}

export async function runHygiene(ctx: AgentContext, pass: PassState, input: HygieneInput): Promise<HygieneResult> {
  const { runner, api } = input;
  const log = childLogger(ctx.log, { runner: runner.name, step: "hygiene" });
  const memory = await loadHygiene(ctx, runner.dir);
  const loaded = hygieneFileIdentity(ctx, runner.dir);
  pass.runnerLock?.observe("the runner's hygiene memory", loaded.value, loaded.again);
  let serviceHandled = false;
  // Each step on its own: one failing (a GitHub outage, an unreadable log) never skips the others.
  const step = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof AbortedError || isLockSignal(err)) throw err;
      log.warn(`hygiene ${name} check failed: ${errorMessage(err)}`);
    }
  };
  const save = () =>
    saveHygiene(ctx, runner.dir, memory, () => mustLock(pass)).catch((err) => {
      if (isLockSignal(err)) throw err;
      log.warn(`cannot save hygiene state: ${errorMessage(err)}`);
    });
  try {
    // Labels and group only from a fresh status answer: the status call is already rate-aware
    // (once per github.statusInterval), so hygiene adds no reads of its own to find drift. Not in
    // fleet mode: there the status comes from the collector's poll every pass (without label
    // types or group), and agents are meant to make no GitHub reads of their own.
    if (api && !ctx.fleet) {
      await step("labels", () => repairLabels(ctx, pass, runner, api, log));
      await step("group", () => repairGroup(ctx, pass, runner, api, log));
    }
    await step("version", () => checkVersion(ctx, pass, runner, input.findings, memory, log));
    await step("session", async () => {
      serviceHandled = await repairSession(ctx, pass, input, memory, log);
    });
  } catch (err) {
    // The runner is checked again under its lock (or not at all), or the agent is stopping and
    // what was read without the lock is not worth waiting for it: this memory is not saved.
    const stoppedUnlocked = err instanceof AbortedError && pass.runnerLock != null && !pass.runnerLock.held;
    if (isLockSignal(err) || stoppedUnlocked) throw err;
    await save();
    throw err;
  }
  await save();
  return { serviceHandled };
}
