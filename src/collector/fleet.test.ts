import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import type { StateDocument } from "../shared/types.ts";
import { stateKey } from "../nats/subjects.ts";
import { FleetState } from "./fleet.ts";

const T0 = Date.parse("2026-12-07T06:00:00.000Z");

function doc(host: string, name: string, over: Partial<StateDocument> = {}): StateDocument {
  return {
    v: 1, host, name, time: new Date(T0).toISOString(), interval: 60, dir: `/srv/${name}`, scope: { org: "acme" }, ephemeral: false,
    registered: true, agent_id: 7, service_active: true, online: true, busy: false, token_expires_at: T0 / 1000 + 3000,
    last_refresh_timestamp: T0 / 1000 - 600, total_refreshes: 3, failed_refreshes: 0, consecutive_failures: 0, registrations: 1,
    status: "ok", last_error: null, ...over,
  } as StateDocument;
}

function put(fleet: FleetState, d: StateDocument, at: number): void {
  fleet.putState(stateKey(d.host, d.name), d, at);
}

const keys = (alerts: { key: string }[]) => alerts.map((a) => a.key);

test("fleet rules - a failure streak fires at the threshold on the next batch, keeps its start, and resolves on success", () => {
  const fleet = new FleetState({ afterConsecutiveFailures: 3 });
  for (const h of ["ci-b", "ci-a", "ci-c"]) put(fleet, doc(h, "r1"), T0);
  assert.deepEqual(fleet.changedAlerts(T0), []);
  put(fleet, doc("ci-b", "r1", { consecutive_failures: 2, status: "failing", last_error: "502" }), T0 + 60_000);
  assert.deepEqual(fleet.changedAlerts(T0 + 60_000), []);
  put(fleet, doc("ci-b", "r1", { consecutive_failures: 3, status: "failing", last_error: "502" }), T0 + 120_000);
  put(fleet, doc("ci-a", "r1", { consecutive_failures: 5, status: "failing", last_error: "401" }), T0 + 120_000);
  const firing = fleet.changedAlerts(T0 + 120_000);
  assert.deepEqual(keys(firing), ["consecutive_failures/ci-a/r1", "consecutive_failures/ci-b/r1"], "ordered by host");
  assert.match(firing[1].summary, /3 consecutive failures: 502/);
  put(fleet, doc("ci-b", "r1", { consecutive_failures: 4, status: "failing", last_error: "503" }), T0 + 180_000);
  const still = fleet.changedAlerts(T0 + 180_000);
  assert.equal(still[1].startsAt, new Date(T0 + 120_000).toISOString(), "startsAt stays put while the streak lasts");
  assert.match(still[1].summary, /4 consecutive failures: 503/);
  assert.deepEqual(keys(fleet.alerts(T0 + 181_000)), keys(still), "a sweep over every runner agrees");
  put(fleet, doc("ci-b", "r1"), T0 + 240_000);
  assert.deepEqual(keys(fleet.changedAlerts(T0 + 240_000)), ["consecutive_failures/ci-a/r1"]);
  // A new streak later is a new incident with its own start.
  put(fleet, doc("ci-b", "r1", { consecutive_failures: 3, status: "failing" }), T0 + 300_000);
  assert.equal(fleet.changedAlerts(T0 + 300_000).find((a) => a.host === "ci-b")!.startsAt, new Date(T0 + 300_000).toISOString());
});

test("fleet rules - a silent agent alerts on the sweep with nothing else, hides its other rules, and resolves when it reports", () => {
  const fleet = new FleetState({ afterConsecutiveFailures: 3 });
  put(fleet, doc("ci-a", "r1", { consecutive_failures: 3, status: "failing" }), T0);
  put(fleet, doc("ci-b", "r1"), T0);
  assert.deepEqual(keys(fleet.alerts(T0)), ["consecutive_failures/ci-a/r1"]);
  // 3 × 60 s + 60 s without news: both silent, with nothing put meanwhile.
  const silent = fleet.alerts(T0 + 241_000);
  assert.deepEqual(keys(silent), ["agent_silent/ci-a/r1", "agent_silent/ci-b/r1"]);
  assert.match(silent[1].summary, /silent for 241s \(no state for longer than 240s\)/);
  assert.equal(fleet.runners(T0 + 241_000).filter((r) => r.stale).length, 2);
  put(fleet, doc("ci-b", "r1"), T0 + 250_000);
  assert.deepEqual(keys(fleet.changedAlerts(T0 + 250_000)), ["agent_silent/ci-a/r1"], "news resolves at once, without a sweep");
});

test("fleet rules - an expired token alerts unless held; a deleted runner's alerts resolve", () => {
  const fleet = new FleetState({ afterConsecutiveFailures: 3 });
  put(fleet, doc("ci-a", "r1", { token_expires_at: T0 / 1000 - 10 }), T0);
  put(fleet, doc("ci-b", "r1", { token_expires_at: T0 / 1000 - 10, status: "held" }), T0);
  put(fleet, doc("ci-c", "r1", { token_expires_at: T0 / 1000 + 5 }), T0);
  assert.deepEqual(keys(fleet.changedAlerts(T0)), ["token_expired/ci-a/r1"]);
  assert.deepEqual(keys(fleet.alerts(T0 + 10_000)), ["token_expired/ci-a/r1", "token_expired/ci-c/r1"], "expiry comes with time alone");
  fleet.deleteState(stateKey("ci-a", "r1"));
  assert.deepEqual(keys(fleet.changedAlerts(T0 + 11_000)), ["token_expired/ci-c/r1"]);
  assert.deepEqual(fleet.runners(T0 + 11_000).map((r) => r.host), ["ci-b", "ci-c"]);
  assert.equal(fleet.runner("ci-a", "r1", T0 + 11_000), undefined);
  assert.equal(fleet.runner("ci-c", "r1", T0 + 11_000)?.state.token_expires_at, T0 / 1000 + 5);
});

test("fleet view - runners are listed by host then runner, also after new ones arrive", () => {
  const fleet = new FleetState({ afterConsecutiveFailures: 3 });
  for (const [h, r] of [["ci-b", "r2"], ["ci-a", "r1"], ["ci-b", "r1"]]) put(fleet, doc(h, r), T0);
  assert.deepEqual(fleet.runners(T0).map((r) => `${r.host}/${r.runner}`), ["ci-a/r1", "ci-b/r1", "ci-b/r2"]);
  put(fleet, doc("ci-a", "r1", { busy: true }), T0 + 1000);
  put(fleet, doc("ci-0", "r9"), T0 + 1000);
  const listed = fleet.runners(T0 + 1000);
  assert.deepEqual(listed.map((r) => `${r.host}/${r.runner}`), ["ci-0/r9", "ci-a/r1", "ci-b/r1", "ci-b/r2"]);
  assert.equal(listed[1].state.busy, true, "the latest document is shown");
});
