/**
 * Hygiene's alert conditions for the agent's rules (src/agent/alert-rules.ts): a runner version
 * 28 days behind (pending from 21), a deprecation GitHub really enforces, and a session conflict
 * with the same name online on another host.
 */
import type { AlertCondition } from "../alerts/engine.ts";
import type { AgentContext } from "../agent/context.ts";
import { loadHygiene } from "./memory.ts";
import { VERSION_ALERT_DAYS, VERSION_WARN_DAYS } from "./version.ts";

export async function hygieneConditions(ctx: AgentContext): Promise<AlertCondition[]> {
  const host = ctx.config.host;
  const out: AlertCondition[] = [];
  for (const runner of ctx.config.runners) {
    const m = await loadHygiene(ctx, runner.dir);
    const age = m.versionAgeDays;
    const genuine = m.deprecationVerdict === "genuine";
    if ((age !== null && age >= VERSION_WARN_DAYS) || genuine) {
      out.push({
        key: `runner_version_stale/${host}/${runner.name}`,
        rule: "runner_version_stale",
        host,
        runner: runner.name,
        scope: runner.scope,
        severity: "error",
        summary: genuine
          ? `runner ${runner.name} v${m.version ?? "?"} is deprecated at GitHub and receives no jobs: update the runner`
          : `runner ${runner.name} v${m.version} is ${age} days behind the release after it: GitHub stops sending it jobs at 30 days; update the runner`,
        details: { version: m.version, age_days: age, deprecated: genuine },
        state: genuine || (age !== null && age >= VERSION_ALERT_DAYS) ? "firing" : "pending",
      });
    }
    if (m.sessionElsewhere) {
      out.push({
        key: `runner_session_conflict/${host}/${runner.name}`,
        rule: "runner_session_conflict",
        host,
        runner: runner.name,
        scope: runner.scope,
        severity: "error",
        summary: `runner ${runner.name} runs on ${host} and on another host under the same name: its service on ${host} stopped on "A session for this runner already exists"; give one of them another name`,
        details: { hosts: [host, "another host"] },
        state: "firing",
      });
    }
  }
  return out;
}
