// A synthetic fleet for page and filter tests and the dashboard benchmark: `n` runners over n/10
// hosts, three orgs, a mix of statuses, some pool runners, a few stale.
import type { FleetRunner } from "../../src/collector/types.ts";
import type { RunnerStatus, StateDocument } from "../../src/shared/types.ts";

const STATUSES: RunnerStatus[] = ["ok", "ok", "ok", "ok", "ok", "ok", "refreshing", "deferred_busy", "failing", "unregistered", "held"];

export function fixtureRunner(i: number, nowMs: number, over: Partial<StateDocument> = {}): FleetRunner {
  const host = `ci-${String(Math.floor(i / 10)).padStart(4, "0")}.example.com`;
  const name = i % 7 === 0 ? `build-${host.slice(0, 7)}-${i % 10}-0a1b2c3d` : `runner-${String(i).padStart(5, "0")}${i % 13 === 0 ? "-gpu" : ""}`;
  const status = STATUSES[i % STATUSES.length];
  const state: StateDocument = {
    v: 1, host, time: new Date(nowMs - 30_000).toISOString(), interval: 60, name, dir: `/srv/runners/${name}`,
    scope: { org: ["acme", "globex", "initech"][i % 3] }, ephemeral: i % 7 === 0, registered: status !== "unregistered", agent_id: 1000 + i,
    service_active: true, online: true, busy: i % 4 === 0, token_expires_at: nowMs / 1000 + 600 + (i % 3000), last_refresh_timestamp: nowMs / 1000 - 600,
    total_refreshes: 10, failed_refreshes: status === "failing" ? 3 : 0, consecutive_failures: status === "failing" ? 3 : 0, registrations: 1, status,
    last_error: status === "failing" ? "GitHub answered 502 Bad Gateway" : null, ...over,
  };
  const stale = i % 50 === 49;
  return { key: `${host}.${name}`, host, runner: name, state, updatedAt: stale ? nowMs - 3_600_000 : nowMs - 30_000, stale, staleAfter: 240 };
}

export function fixtureFleet(n: number, nowMs: number): FleetRunner[] {
  return Array.from({ length: n }, (_, i) => fixtureRunner(i, nowMs));
}
