import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import type { CollectorAlert, CollectorView, EventQuery, FleetRunner } from "../collector/types.ts";
import type { Envelope, StateDocument } from "../shared/types.ts";
import { createCollectorApp, parseLimit } from "./collector-app.ts";
import { formatDuration, renderDashboard, tokenLeft } from "./dashboard.ts";

const NOW = Date.parse("2026-11-27T10:00:00.000Z");
const NOW_S = NOW / 1000;

function doc(host: string, name: string, over: Partial<StateDocument> = {}): StateDocument {
  return {
    v: 1,
    host,
    time: new Date(NOW - 30_000).toISOString(),
    interval: 60,
    name,
    dir: `/home/runner/${name}`,
    scope: { org: "my-org" },
    ephemeral: false,
    registered: true,
    agent_id: 42,
    service_active: true,
    online: true,
    busy: false,
    token_expires_at: NOW_S + 52 * 60,
    last_refresh_timestamp: NOW_S - 8 * 60,
    total_refreshes: 12,
    failed_refreshes: 1,
    consecutive_failures: 0,
    registrations: 1,
    status: "ok",
    last_error: null,
    ...over,
  };
}

function fleet(state: StateDocument, over: Partial<FleetRunner> = {}): FleetRunner {
  return { key: `${state.host}.${state.name}`, host: state.host, runner: state.name, state, updatedAt: NOW - 30_000, stale: false, staleAfter: 240, ...over };
}

function event(n: number, over: Partial<Envelope> = {}): Envelope {
  return {
    v: 1, id: `e${n}`, seq: n, type: "token.refreshed", time: new Date(NOW - (100 - n) * 1000).toISOString(),
    host: "ci.example.com", runner: null, scope: { org: "my-org" }, agent: { version: "0.1.0", runtime: "node" },
    data: { expires_at: "2026-11-27T11:00:00.000Z" }, ...over,
  };
}

interface FakeView extends CollectorView {
  queries: EventQuery[];
  list: FleetRunner[];
  healthy: { ok: boolean; reason: string | null };
  firing: CollectorAlert[];
  counts: Map<string, number>;
  failEvents?: Error;
}

function fakeView(): FakeView {
  const events = Array.from({ length: 120 }, (_, i) => event(i + 1, i % 2 ? { host: "other" } : {}));
  const view: FakeView = {
    queries: [],
    list: [
      fleet(doc("ci.example.com", "runner 01")),
      fleet(doc("ci.example.com", "rünner-ß"), {}),
      fleet(doc("old-host", "r1", { status: "failing", consecutive_failures: 4, last_error: "x".repeat(1500), token_expires_at: NOW_S - 10, online: null, busy: null }), {
        stale: true, updatedAt: NOW - 3_600_000,
      }),
    ],
    healthy: { ok: true, reason: null },
    firing: [{
      key: "agent_silent/old-host/r1", rule: "agent_silent", host: "old-host", runner: "r1", scope: { org: "my-org" },
      severity: "critical", summary: "agent on old-host silent for 60m", startsAt: new Date(NOW - 3_000_000).toISOString(), details: {},
    }],
    counts: new Map([["token.refreshed", 7], ["_duplicate", 2]]),
    runners: () => view.list,
    runner: (host, runner) => view.list.find((r) => r.host === host && r.runner === runner),
    async events(query) {
      view.queries.push(query);
      if (view.failEvents) throw view.failEvents;
      return events.filter((e) => (!query.type || e.type === query.type) && (!query.host || e.host === query.host)).slice(-query.limit);
    },
    recentEvents: (limit) => events.slice(-limit),
    alerts: () => view.firing,
    eventCounts: () => view.counts,
    health: () => view.healthy,
  };
  return view;
}

function appFor(view = fakeView(), authToken?: string) {
  return createCollectorApp(view, { version: "9.9.9", now: () => NOW, ...(authToken ? { authToken } : {}) });
}

test("collector http - lists runners with state, stale flag, ISO updated_at and stale_after", async () => {
  const res = await appFor().request("/api/v1/runners");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const body = (await res.json()) as { runners: Record<string, unknown>[] };
  assert.equal(body.runners.length, 3);
  const first = body.runners[0];
  assert.equal(first.host, "ci.example.com");
  assert.equal(first.runner, "runner 01");
  assert.equal(first.name, "runner 01");
  assert.equal(first.stale, false);
  assert.equal(first.updated_at, "2026-11-27T09:59:30.000Z");
  assert.equal(first.stale_after, 240);
  assert.equal(first.token_expires_at, NOW_S + 3120);
  assert.deepEqual(first.scope, { org: "my-org" });
  assert.equal(body.runners[2].stale, true);
});

test("collector http - finds one runner by URL-encoded names with dots, spaces, unicode and slashes", async () => {
  const view = fakeView();
  view.list.push(fleet(doc("a/b", "r#1?x")));
  const app = appFor(view);
  for (const [host, runner] of [["ci.example.com", "runner 01"], ["ci.example.com", "rünner-ß"], ["a/b", "r#1?x"]]) {
    const res = await app.request(`/api/v1/runners/${encodeURIComponent(host)}/${encodeURIComponent(runner)}`);
    assert.equal(res.status, 200, `${host}/${runner}`);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.host, host);
    assert.equal(body.runner, runner);
  }
});

test("collector http - unknown runner is a 404 JSON error", async () => {
  const res = await appFor().request("/api/v1/runners/ci.example.com/nope");
  assert.equal(res.status, 404);
  const body = (await res.json()) as { error: string };
  assert.match(body.error, /nope/);
});

test("collector http - events default to 100 and pass type and host through", async () => {
  const view = fakeView();
  const app = appFor(view);
  let body = (await (await app.request("/api/v1/events")).json()) as { events: Envelope[] };
  assert.equal(body.events.length, 100);
  assert.deepEqual(view.queries[0], { limit: 100 });
  const res = await app.request("/api/v1/events?limit=5&type=token.refreshed&host=other");
  assert.equal(res.status, 200);
  body = (await res.json()) as { events: Envelope[] };
  assert.equal(body.events.length, 5);
  assert.ok(body.events.every((e) => e.host === "other"));
  assert.deepEqual(view.queries[1], { limit: 5, type: "token.refreshed", host: "other" });
  assert.equal((await app.request("/api/v1/events?limit=1000")).status, 200);
});

test("collector http - a bad limit is a 400 naming the parameter", async () => {
  const app = appFor();
  for (const bad of ["abc", "0", "-1", "1.5", "1001", "1e3", " 5"]) {
    const res = await app.request(`/api/v1/events?limit=${encodeURIComponent(bad)}`);
    assert.equal(res.status, 400, bad);
    const body = (await res.json()) as { error: string };
    assert.match(body.error, /limit/);
  }
  assert.equal(parseLimit(undefined), 100);
  assert.equal(parseLimit("7"), 7);
});

test("collector http - events unavailable from the stream is a 503 JSON error", async () => {
  const view = fakeView();
  view.failEvents = new Error("stream RTR_EVENTS not found");
  const errors: unknown[] = [];
  const app = createCollectorApp(view, { version: "1", onError: (err) => errors.push(err) });
  const res = await app.request("/api/v1/events");
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as { error: string }).error, /RTR_EVENTS/);
  assert.equal(errors.length, 1);
});

test("collector http - alerts", async () => {
  const res = await appFor().request("/api/v1/alerts");
  assert.equal(res.status, 200);
  const body = (await res.json()) as { alerts: CollectorAlert[] };
  assert.equal(body.alerts.length, 1);
  assert.equal(body.alerts[0].key, "agent_silent/old-host/r1");
});

test("collector http - without a token /api is open", async () => {
  assert.equal((await appFor().request("/api/v1/alerts")).status, 200);
});

test("collector http - with a token every /api route needs the bearer and others stay open", async () => {
  const app = appFor(fakeView(), "s3cret-token");
  for (const path of ["/api/v1/runners", "/api/v1/runners/ci.example.com/runner%2001", "/api/v1/events", "/api/v1/alerts", "/api/v1/unknown"]) {
    const none = await app.request(path);
    assert.equal(none.status, 401, path);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.match(((await none.json()) as { error: string }).error, /Authorization/);
    for (const header of ["Bearer wrong", "Bearer s3cret-toke", "Bearer s3cret-token-longer", "Basic czNjcmV0", "s3cret-token", "Bearer "]) {
      const wrong = await app.request(path, { headers: { Authorization: header } });
      assert.equal(wrong.status, 401, `${path} ${header}`);
      assert.match(wrong.headers.get("www-authenticate") ?? "", /invalid_token/);
    }
  }
  for (const header of ["Bearer s3cret-token", "bearer s3cret-token"]) {
    const ok = await app.request("/api/v1/runners", { headers: { Authorization: header } });
    assert.equal(ok.status, 200, header);
  }
  for (const path of ["/metrics", "/healthz", "/"]) assert.equal((await app.request(path)).status, 200, path);
});

test("collector http - an empty or spaced token fails when the app is created", () => {
  assert.throws(() => createCollectorApp(fakeView(), { version: "1", authToken: "" }), /authToken is empty/);
  assert.throws(() => createCollectorApp(fakeView(), { version: "1", authToken: "a b" }), /whitespace/);
});

test("collector http - healthz is 200 ok or 503 with the reason", async () => {
  const view = fakeView();
  const app = appFor(view);
  let res = await app.request("/healthz");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "ok" });
  view.healthy = { ok: false, reason: "NATS disconnected" };
  res = await app.request("/healthz");
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { status: "unavailable", reason: "NATS disconnected" });
});

test("collector http - unknown paths and methods are 404 JSON", async () => {
  const app = appFor();
  for (const [path, method] of [["/nope", "GET"], ["/api/v2/runners", "GET"], ["/api/v1/runners", "POST"]]) {
    const res = await app.request(path, { method });
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    assert.match(((await res.json()) as { error: string }).error, /not found/);
  }
});

test("collector http - an unexpected error is a 500 JSON answer and reported", async () => {
  const view = fakeView();
  view.alerts = () => { throw new Error("boom"); };
  const errors: unknown[] = [];
  const app = createCollectorApp(view, { version: "1", onError: (err) => errors.push(err) });
  const res = await app.request("/api/v1/alerts");
  assert.equal(res.status, 500);
  assert.deepEqual(await res.json(), { error: "internal error" });
  assert.equal(errors.length, 1);
});

function sample(text: string, name: string, labels: string): string | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line?.slice(line.lastIndexOf(" ") + 1);
}

test("collector http - metrics expose every per-runner series with labels in plain notation", async () => {
  const res = await appFor().request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  const r01 = 'host="ci.example.com",runner="runner 01"';
  const r01s = `${r01},scope="org:my-org"`;
  for (const [name, type] of [
    ["runner_token_expiry_timestamp_seconds", "gauge"], ["runner_token_last_check_timestamp_seconds", "gauge"],
    ["runner_token_last_refresh_timestamp_seconds", "gauge"], ["runner_token_consecutive_failures", "gauge"],
    ["runner_registered", "gauge"], ["runner_online", "gauge"], ["runner_busy", "gauge"],
    ["runner_token_refreshes_total", "counter"], ["runner_token_fleet_runners", "gauge"],
    ["runner_token_collector_events_total", "counter"], ["runner_token_collector_alerts_firing", "gauge"],
  ]) {
    assert.match(text, new RegExp(`^# HELP ${name} \\S`, "m"), name);
    assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, "m"), name);
  }
  assert.equal(sample(text, "runner_token_expiry_timestamp_seconds", r01s), String(NOW_S + 3120));
  assert.equal(sample(text, "runner_token_last_refresh_timestamp_seconds", r01s), String(NOW_S - 480));
  assert.equal(sample(text, "runner_token_last_check_timestamp_seconds", r01), String(NOW_S - 30));
  assert.equal(sample(text, "runner_token_consecutive_failures", 'host="old-host",runner="r1"'), "4");
  assert.equal(sample(text, "runner_registered", 'host="ci.example.com",runner="rünner-ß"'), "1");
  assert.equal(sample(text, "runner_online", r01), "1");
  assert.equal(sample(text, "runner_busy", r01), "0");
  // Unknown online/busy is no sample rather than a false 0.
  assert.equal(sample(text, "runner_online", 'host="old-host",runner="r1"'), undefined);
  assert.equal(sample(text, "runner_token_refreshes_total", `${r01s},outcome="success"`), "12");
  assert.equal(sample(text, "runner_token_refreshes_total", `${r01s},outcome="failure"`), "1");
  assert.equal(sample(text, "runner_token_fleet_runners", 'status="ok"'), "2");
  assert.equal(sample(text, "runner_token_fleet_runners", 'status="stale"'), "1");
  assert.equal(sample(text, "runner_token_fleet_runners", 'status="failing"'), "0");
  assert.equal(sample(text, "runner_token_fleet_runners", 'status="held"'), "0");
  assert.equal(sample(text, "runner_token_collector_events_total", 'type="token.refreshed"'), "7");
  assert.equal(sample(text, "runner_token_collector_events_total", 'type="_duplicate"'), "2");
  assert.equal(sample(text, "runner_token_collector_events_total", 'type="agent.started"'), "0");
  assert.match(text, /^runner_token_collector_alerts_firing 1$/m);
  for (const line of text.split("\n").filter((l) => l && !l.startsWith("#"))) {
    assert.doesNotMatch(line.slice(line.lastIndexOf(" ") + 1), /e/i, `scientific notation: ${line}`);
  }
});

test("collector http - metrics are computed per scrape so removed runners disappear", async () => {
  const view = fakeView();
  const app = appFor(view);
  assert.match(await (await app.request("/metrics")).text(), /runner="r1"/);
  view.list = view.list.filter((r) => r.runner !== "r1");
  view.firing = [];
  const text = await (await app.request("/metrics")).text();
  assert.doesNotMatch(text, /runner="r1"/);
  assert.match(text, /^runner_token_fleet_runners\{status="stale"\} 0$/m);
  assert.match(text, /^runner_token_collector_alerts_firing 0$/m);
});

test("collector http - metrics use a registry per app and escape label values", async () => {
  const view = fakeView();
  view.list = [fleet(doc('we"ird\\host', "line\nbreak"))];
  const a = await (await appFor(view).request("/metrics")).text();
  const b = await (await appFor(fakeView()).request("/metrics")).text();
  assert.match(a, /host="we\\"ird\\\\host",runner="line\\nbreak"/);
  assert.doesNotMatch(b, /we\\"ird/);
});

test("collector http - dashboard shows counts, a stale runner, a firing alert and recent events", async () => {
  const res = await appFor().request("/");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  const html = await res.text();
  // Live over SSE, not a meta refresh; the one script is inline (no asset, no CDN).
  assert.doesNotMatch(html, /http-equiv="refresh"/);
  assert.match(html, /new EventSource\("\/live\?page="/);
  assert.doesNotMatch(html, /<script src|<link|src="http/i);
  assert.match(html, /class="status s-stale">stale<\/span> <span class="muted">\(last: failing\)/);
  assert.match(html, /agent on old-host silent for 60m/);
  assert.match(html, /<b>1<\/b><span>firing alerts<\/span>/);
  assert.match(html, /<b>1<\/b><span>stale agents<\/span>/);
  assert.match(html, /<b>2<\/b><span>ok<\/span>/);
  assert.match(html, />52m</);
  assert.match(html, />expired</);
  assert.match(html, /1h ago/);
  assert.match(html, /9\.9\.9/);
  assert.ok(html.indexOf("old-host") < html.indexOf("runner 01"), "problems sort first");
  // 50 recent events, newest first, each a sentence with its JSON behind a disclosure.
  assert.equal((html.match(/token\.refreshed<\/td>/g) ?? []).length, 50);
  assert.match(html, /Registration token for org:my-org refreshed, valid until 11:00:00 UTC\./);
  assert.equal((html.match(/<details><summary>JSON<\/summary>/g) ?? []).length, 50);
  assert.ok(html.includes(`>${"x".repeat(119)}…</td>`), "long errors are truncated in the table");
  assert.ok(!html.includes("x".repeat(1000)), "and in the hover title");
});

test("collector http - dashboard escapes every value", async () => {
  const view = fakeView();
  const evil = `<script>alert("x")</script>`;
  view.list = [fleet(doc(`<img src=x onerror=alert(1)>`, evil, { last_error: evil, status: "failing" }))];
  view.firing = [{ ...view.firing[0], summary: evil, host: evil, runner: evil }];
  view.healthy = { ok: false, reason: evil };
  view.recentEvents = () => [event(1, { runner: evil, data: { error: evil } })];
  const html = (await (await appFor(view).request("/")).text()).replace(/<script>\(function\(\)\{[\s\S]*?<\/script>/, "");
  assert.ok(!html.includes("<script"), "no raw <script beside the page's own live-update script");
  assert.ok(!html.includes("<img"), "no raw <img");
  assert.match(html, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/);
  assert.match(html, /Collector unhealthy/);
});

test("collector http - dashboard with an empty fleet says so", () => {
  const html = renderDashboard({ runners: [], alerts: [], events: [], health: { ok: true, reason: null }, version: "1", refreshSeconds: 0 }, NOW);
  assert.match(html, /No runners have reported yet/);
  assert.match(html, /No alerts firing/);
  assert.doesNotMatch(html, /http-equiv/);
});

test("collector http - token time left and durations read at a glance", () => {
  assert.equal(tokenLeft(null, NOW), "none");
  assert.equal(tokenLeft(NOW_S, NOW), "expired");
  assert.equal(tokenLeft(NOW_S + 52 * 60 + 10, NOW), "52m");
  assert.equal(formatDuration(45), "45s");
  assert.equal(formatDuration(3600 + 5 * 60), "1h 5m");
  assert.equal(formatDuration(2 * 86400 + 4 * 3600), "2d 4h");
});
