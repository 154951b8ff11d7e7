import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import type { Envelope } from "../shared/types.ts";
import { History, WINDOWS } from "./history.ts";

const NOW = Date.parse("2026-11-27T10:00:00.000Z");

function ev(type: string, minutesAgo: number, data: Record<string, unknown> = {}, runner: string | null = "r1"): Envelope {
  return { v: 1, id: `${type}-${minutesAgo}-${Math.random()}`, seq: 1, type: type as Envelope["type"], time: new Date(NOW - minutesAgo * 60_000).toISOString(), host: "h1", runner, scope: { org: "acme" }, agent: { version: "1", runtime: "node" }, data };
}

test("history - events count into 1 h, 24 h and 7 d buckets; older than a window falls out of it", () => {
  const h = new History(() => NOW);
  h.record(ev("token.refreshed", 1, {}, null));
  h.record(ev("token.refreshed", 1, {}, null));
  h.record(ev("token.refreshed", 120, {}, null));
  h.record(ev("token.refresh_failed", 3000, {}, null));
  h.record(ev("token.refreshed", 60 * 24 * 8, {}, null));
  const sum = (s: "refreshed" | "refresh_failed", w: "1h" | "24h" | "7d") => h.points(s, w).reduce((a, p) => a + p.v, 0);
  assert.deepEqual([sum("refreshed", "1h"), sum("refreshed", "24h"), sum("refreshed", "7d")], [2, 3, 3]);
  assert.deepEqual([sum("refresh_failed", "24h"), sum("refresh_failed", "7d")], [0, 1]);
  for (const w of ["1h", "24h", "7d"] as const) assert.equal(h.points("refreshed", w).length, WINDOWS[w].buckets, "a fixed number of points");
});

test("history - registrations: first ones and re-registrations apart, each runner's ids and reasons kept", () => {
  const h = new History(() => NOW);
  h.record(ev("runner.registered", 30, { agent_id: 1, reason: "not_configured" }));
  h.record(ev("runner.registered", 10, { agent_id: 2, reason: "deleted_on_github" }));
  h.record(ev("pool.runner_exited", 5, { pool: "build", job: true }));
  h.record(ev("pool.runner_exited", 5, { pool: "build", job: false }));
  const total = (s: "registered" | "reregistered" | "pool_jobs") => h.points(s, "1h").reduce((a, p) => a + p.v, 0);
  assert.deepEqual([total("registered"), total("reregistered"), total("pool_jobs")], [1, 1, 1]);
  assert.deepEqual(h.registrationsOf("h1", "r1").map((r) => [r.agentId, r.reason]), [[1, "not_configured"], [2, "deleted_on_github"]]);
  assert.deepEqual(h.registrationsOf("h1", "other"), []);
  assert.deepEqual(h.recentEvents(2).map((e) => e.type), ["pool.runner_exited", "pool.runner_exited"], "the stream's newest events, newest last");
  for (let i = 0; i < 1500; i++) h.record(ev("token.refreshed", 1, {}, null));
  assert.equal(h.recentEvents(5000).length, 1000, "bounded");
});

test("history - sampled values keep the bucket's peak; alert transitions are bounded and filterable", () => {
  const h = new History(() => NOW);
  h.sample("alerts_firing", 2);
  h.sample("alerts_firing", 5);
  h.sample("alerts_firing", 1);
  assert.equal(h.points("alerts_firing", "1h").at(-1)!.v, 5);
  for (let i = 0; i < 2500; i++) h.alertChanged({ key: `k${i}`, rule: "agent_silent", host: i % 2 ? "a" : "b", runner: "r", state: "firing", at: new Date(NOW).toISOString(), summary: "s" });
  assert.equal(h.alertTransitions().length, 2000);
  assert.ok(h.alertTransitions("a").every((t) => t.host === "a"));
});

test("history - per host and per runner: each page's counts are its own, in fixed buckets, bounded in keys", () => {
  let now = NOW;
  const h = new History(() => now);
  const on = (host: string, e: Envelope) => ({ ...e, host });
  h.record(on("h1", ev("token.refreshed", 2, {}, null)));
  h.record(on("h1", ev("token.refresh_failed", 130, {}, "r1")));
  h.record(on("h1", ev("runner.registered", 10, { agent_id: 2, reason: "deleted_on_github" }, "r1")));
  h.record(on("h2", ev("runner.registered", 10, { agent_id: 3, reason: "new" }, "r1")));
  const sum = (pts: { v: number }[] | null) => (pts ?? []).reduce((a, p) => a + p.v, 0);
  assert.equal(sum(h.hostPoints("h1", "refreshed", "1h")), 1, "a scope's token refresh counts on its host");
  assert.equal(sum(h.runnerPoints("h1", "r1", "refreshed", "1h")), 0, "and not on a runner");
  assert.equal(sum(h.runnerPoints("h1", "r1", "reregistered", "1h")), 1);
  assert.equal(sum(h.runnerPoints("h2", "r1", "reregistered", "1h")), 0, "same runner name on another host is another runner");
  assert.equal(sum(h.runnerPoints("h2", "r1", "registered", "1h")), 1);
  assert.deepEqual([sum(h.hostPoints("h1", "refresh_failed", "1h")), sum(h.hostPoints("h1", "refresh_failed", "24h"))], [0, 1], "130 minutes ago is outside 1 h, inside 24 h");
  assert.equal(h.hostPoints("nobody", "refreshed", "1h"), null, "nothing kept for a host never seen");
  assert.deepEqual(
    (["1h", "24h", "7d"] as const).map((w) => h.hostPoints("h1", "refreshed", w)!.length),
    [12, 24, 28],
    "5-minute, hourly and 6-hourly buckets",
  );
  // Time moves on: the 1 h chart forgets, the 7 d one keeps; a slot reused for a new bucket starts at zero.
  now += 2 * 3_600_000;
  assert.equal(sum(h.hostPoints("h1", "refreshed", "1h")), 0);
  assert.equal(sum(h.hostPoints("h1", "refreshed", "7d")), 1);
  h.record(on("h1", ev("token.refreshed", -120 + 0, {}, null)));
  assert.equal(sum(h.hostPoints("h1", "refreshed", "1h")), 1, "the new bucket counts only the new event");
  // Bounded: 10,000 hosts are kept; the least recently active go first.
  for (let i = 0; i < 10_050; i++) h.record(on(`bulk-${i}`, ev("token.refreshed", -120, {}, null)));
  assert.equal(h.hostPoints("h2", "registered", "7d"), null, "an old, quiet host was dropped");
  assert.ok(h.hostPoints("bulk-10049", "refreshed", "1h"));
  assert.equal(h.hostPoints("bulk-0", "refreshed", "1h"), null);
});
