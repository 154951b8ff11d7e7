// The collector's pages under hostile input: a runner whose state has the wrong shape (the second
// line of defence behind validate.ts), and bursts against the events endpoint.
import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import type { CollectorView, FleetRunner } from "../collector/types.ts";
import type { StateDocument } from "../shared/types.ts";
import { createCollectorApp } from "./collector-app.ts";
import { TokenBucket } from "./rate-limit.ts";

const NOW = Date.parse("2026-11-27T10:00:00.000Z");

function good(host: string): FleetRunner {
  const state = {
    v: 1, host, name: "runner-1", time: new Date(NOW).toISOString(), interval: 60, dir: "/r", scope: { org: "acme" }, ephemeral: false,
    registered: true, agent_id: 1, service_active: true, online: true, busy: false, token_expires_at: NOW / 1000 + 600,
    last_refresh_timestamp: NOW / 1000, total_refreshes: 1, failed_refreshes: 0, consecutive_failures: 0, registrations: 1, status: "ok", last_error: null,
  } satisfies StateDocument;
  return { key: `${host}.runner-1`, host, runner: "runner-1", state, updatedAt: NOW, stale: false, staleAfter: 240 };
}

function broken(host: string, state: Record<string, unknown>): FleetRunner {
  return { key: `${host}.r`, host, runner: "r", state: state as unknown as StateDocument, updatedAt: NOW, stale: false, staleAfter: 240 };
}

function view(runners: FleetRunner[], counts = new Map<string, number>()): CollectorView {
  return {
    runners: () => runners,
    runner: (h, r) => runners.find((x) => x.host === h && x.runner === r),
    events: async () => [],
    recentEvents: () => [],
    alerts: () => [],
    eventCounts: () => counts,
    health: () => ({ ok: true, reason: null }),
  };
}

test("collector http - one runner with a wrongly shaped state never breaks /, /metrics or /api for the rest", async () => {
  const runners = [
    good("ci-1.example.com"),
    broken("wrong-types", { scope: "org:acme", status: "on fire", consecutive_failures: "many", token_expires_at: "soon", registered: "yes", last_error: 42, total_refreshes: "x" }),
    broken("empty", {}),
    broken("nulls", { scope: null, status: null, consecutive_failures: null, token_expires_at: null, time: null }),
    good("ci-2.example.com"),
  ];
  const app = createCollectorApp(view(runners), { version: "1", now: () => NOW });
  for (const path of ["/", "/metrics", "/api/v1/runners"]) {
    const res = await app.request(path);
    assert.equal(res.status, 200, path);
    const body = await res.text();
    for (const h of ["ci-1.example.com", "ci-2.example.com"]) assert.ok(body.includes(h), `${path} shows ${h}`);
  }
  const metrics = await (await app.request("/metrics")).text();
  assert.match(metrics, /^runner_token_fleet_runners\{status="ok"\} 2$/m, "the good runners counted");
  assert.doesNotMatch(metrics, /status="on fire"/, "no status from outside as a label");
});

test("collector http - event counts of unknown types fold into _unknown", async () => {
  const counts = new Map([["token.refreshed", 2], ["pool.new_thing", 3], ["x".repeat(500), 1], ["_host_mismatch", 4]]);
  const text = await (await createCollectorApp(view([], counts), { version: "1" }).request("/metrics")).text();
  assert.match(text, /^runner_token_collector_events_total\{type="_unknown"\} 4$/m);
  assert.match(text, /^runner_token_collector_events_total\{type="_host_mismatch"\} 4$/m);
  assert.match(text, /^runner_token_collector_events_total\{type="token\.refreshed"\} 2$/m);
  assert.doesNotMatch(text, /pool\.new_thing|xxxx/);
  assert.match(text, /^runner_token_collector_documents_dropped_total\{reason="key_mismatch"\} 0$/m, "known reasons start at 0");
});

test("collector http - the events endpoint answers 429 with Retry-After past its burst, and refills", async () => {
  let now = NOW;
  const app = createCollectorApp(view([]), { version: "1", now: () => now, eventsRateLimit: { burst: 3, perSecond: 0.5 } });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await app.request("/api/v1/events")).status);
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  const limited = await app.request("/api/v1/events");
  assert.equal(limited.headers.get("retry-after"), "2", "one token every 2 s");
  assert.equal((await app.request("/api/v1/runners")).status, 200, "other routes are not limited");
  now += 2000;
  assert.equal((await app.request("/api/v1/events")).status, 200, "a token came back");
  assert.equal((await app.request("/api/v1/events")).status, 429);
});

test("rate limit - a token bucket rejects misused options when it is made", () => {
  assert.throws(() => new TokenBucket({ burst: 0, perSecond: 1 }), /burst/);
  assert.throws(() => new TokenBucket({ burst: 1.5, perSecond: 1 }), /burst/);
  assert.throws(() => new TokenBucket({ burst: 1, perSecond: 0 }), /perSecond/);
  assert.throws(() => createCollectorApp(view([]), { version: "1", eventsRateLimit: { burst: 1, perSecond: Number.NaN } }), /perSecond/);
});
