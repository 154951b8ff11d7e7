/**
 * Runner versions (issue 17): how far behind actions/runner's newest release each runner is.
 * GitHub stops sending jobs to a runner that has not taken a release within 30 days, so the agent
 * warns (log + `runner.version_stale`) at 21 days and alerts (rule `runner_version_stale`) at 28.
 * A "deprecated and cannot receive messages" line in `_diag` is judged real or a broker 403.
 */
import type { Logger } from "../shared/logger.ts";
import type { RunnerConfig } from "../config/types.ts";
import type { DiagFinding } from "../runner/local-signals.ts";
import { readNewestDiag } from "../runner/local-signals.ts";
import type { AgentContext, PassState } from "../agent/context.ts";
import { mustLock } from "../agent/runner-lock.ts";
import type { HygieneMemory } from "./memory.ts";
import { latestRelease, versionAgeDays, type ReleaseCache } from "./releases.ts";
import { readRunnerVersion } from "./runner-version.ts";
import { findDeprecation, judgeDeprecation } from "./deprecation.ts";

export const VERSION_WARN_DAYS = 21;
export const VERSION_ALERT_DAYS = 28;
const TAIL = 64 * 1024;

export async function checkVersion(ctx: AgentContext, pass: PassState, runner: RunnerConfig, findings: readonly DiagFinding[], memory: HygieneMemory, log: Logger): Promise<void> {
  const local = await readRunnerVersion(ctx.runtime, runner.dir, { log: memory.versionLog, version: memory.version });
  if (local?.version !== memory.version) memory.versionWarned = null;
  memory.version = local?.version ?? null;
  memory.versionSource = local?.source ?? null;
  memory.versionLog = local?.log ?? null;
  // Only a runner whose version is known costs a release lookup (one a day for the whole host).
  const release: ReleaseCache | null = local && ctx.github ? await latestRelease(ctx, pass, runner.scope, log) : null;
  const age = local && release ? versionAgeDays(local.version, release, ctx.now()) : null;
  memory.versionAgeDays = age;
  ctx.telemetry.hygiene.versionAge(runner.name, age);

  const level = age === null ? null : age >= VERSION_ALERT_DAYS ? "alert" : age >= VERSION_WARN_DAYS ? "warn" : null;
  if (level === null) memory.versionWarned = null;
  else if (memory.versionWarned !== level && !(memory.versionWarned === "alert" && level === "warn")) {
    await mustLock(pass);
    memory.versionWarned = level;
    log.warn(
      { version: local!.version, latest: release!.latest, age_days: age },
      `runner v${local!.version} is ${age} days behind the release after it (newest: v${release!.latest}): GitHub stops sending jobs after 30 days; update the runner (or drop --disableupdate)`,
    );
    await ctx.events.emit("runner.version_stale", runner.name, runner.scope, { version: local!.version, latest: release!.latest, age_days: age, level, source: local!.source });
  }

  // The log is read whole only when scanDiag saw the notice in it.
  const diag = findings.includes("version_deprecated") ? await readNewestDiag(ctx.runtime, runner.dir) : null;
  const notice = diag ? findDeprecation(diag.text.slice(-TAIL)) : null;
  if (!notice) {
    memory.deprecationJudged = null;
    memory.deprecationVerdict = null;
    return;
  }
  const judged = `${diag!.name}:${notice.version}`;
  if (memory.deprecationJudged === judged) return;
  await mustLock(pass);
  const verdict = judgeDeprecation(notice, release?.latest ?? null, release ? versionAgeDays(notice.version, release, ctx.now()) : null);
  memory.deprecationJudged = judged;
  memory.deprecationVerdict = verdict.kind;
  const text = `runner log says v${notice.version} "is deprecated and cannot receive messages": ${verdict.kind === "genuine" ? "genuine" : "false positive"}: ${verdict.reason}`;
  if (verdict.kind === "genuine") log.error({ version: notice.version }, text);
  else log.warn({ version: notice.version }, text);
  await ctx.events.emit("runner.version_deprecated", runner.name, runner.scope, { version: notice.version, verdict: verdict.kind, broker_forbidden: notice.brokerForbidden, reason: verdict.reason });
}
