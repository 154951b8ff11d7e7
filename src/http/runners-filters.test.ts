import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import type { CollectorView } from "../collector/types.ts";
import { createCollectorApp } from "./collector-app.ts";
import { fixtureFleet } from "../../test/helpers/fleet-fixture.ts";
import { fleetStatus } from "./collector-metrics.ts";
import { renderDashboard } from "./dashboard.ts";

const NOW = Date.parse("2026-11-27T10:00:00.000Z");
const FLEET = fixtureFleet(1200, NOW);

/** A collector's view of `fleet` with nothing else in it (no events, alerts or history unless given). */
function viewOf(fleet: typeof FLEET, extra: Partial<CollectorView> = {}): CollectorView {
  return {
    runners: () => fleet,
    runner: (h, r) => fleet.find((x) => x.host === h && x.runner === r),
    events: async () => [],
    recentEvents: () => [],
    alerts: () => [],
    eventCounts: () => new Map(),
    health: () => ({ ok: true, reason: null }),
    ...extra,
  };
}

function app() {
  return createCollectorApp(viewOf(FLEET), { version: "t", now: () => NOW });
}

interface Page {
  runners: { host: string; runner: string; status: string; stale: boolean; scope: { org: string } }[];
  total: number;
  next_cursor: string | null;
}

async function get(path: string): Promise<Page> {
  const res = await app().request(path);
  assert.equal(res.status, 200, path);
  return (await res.json()) as Page;
}

test("runners api - without filters: the first 500 of all, a total and a cursor", async () => {
  const page = await get("/api/v1/runners");
  assert.equal(page.runners.length, 500);
  assert.equal(page.total, 1200);
  assert.ok(page.next_cursor);
});

test("runners api - the cursor walks every runner exactly once, and the last page says null", async () => {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 10; i++) {
    const page: Page = await get(`/api/v1/runners?limit=350${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    seen.push(...page.runners.map((r) => `${r.host}/${r.runner}`));
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  assert.equal(cursor, null);
  assert.equal(seen.length, 1200);
  assert.equal(new Set(seen).size, 1200);
});

test("runners api - filters are ANDed, values repeatable or comma-separated, total counts the matches", async () => {
  const want = FLEET.filter((r) => ["failing", "stale"].includes(fleetStatus(r)) && "org" in r.state.scope && r.state.scope.org === "acme");
  for (const q of ["status=failing,stale&scope=org:acme", "status=failing&status=stale&scope=org:acme"]) {
    const page = await get(`/api/v1/runners?${q}`);
    assert.equal(page.total, want.length, q);
    assert.ok(page.runners.every((r) => (r.stale || r.status === "failing") && r.scope.org === "acme"));
  }
  const host = await get("/api/v1/runners?host=ci-0003.example.com");
  assert.equal(host.total, 10);
  const gpu = await get("/api/v1/runners?q=GPU");
  assert.ok(gpu.total > 0 && gpu.runners.every((r) => r.runner.includes("-gpu")));
  const pool = await get("/api/v1/runners?pool=build");
  assert.ok(pool.total > 0 && pool.runners.every((r) => r.runner.startsWith("build-")));
  const none = await get("/api/v1/runners?host=nope&status=ok");
  assert.deepEqual([none.total, none.runners.length, none.next_cursor], [0, 0, null]);
});

test("runners api - a bad value is a 400 that names its parameter", async () => {
  for (const [q, param] of [["status=broken", "status"], ["scope=acme", "scope"], ["limit=0", "limit"], ["limit=5001", "limit"], ["limit=x", "limit"], ["cursor=%%%", "cursor"], ["cursor=bm90IG91cnM", "cursor"]]) {
    const res = await app().request(`/api/v1/runners?${q}`);
    assert.equal(res.status, 400, q);
    const body = (await res.json()) as { error: string; parameter: string };
    assert.equal(body.parameter, param, q);
    assert.match(body.error, new RegExp(`invalid query parameter ${param}`));
  }
});

test("dashboard - the page takes the same filters from its URL and pages with a next link", async () => {
  const html = await (await app().request("/?status=failing&scope=org:acme")).text();
  const rows = html.match(/<tr class="runner">/g) ?? [];
  const want = FLEET.filter((r) => fleetStatus(r) === "failing" && "org" in r.state.scope && r.state.scope.org === "acme").length;
  assert.equal(rows.length, Math.min(want, 200));
  assert.match(html, new RegExp(`${rows.length} shown of ${want} matching`));
  assert.match(html, /value="failing"/, "the form shows the filter in force");
  const all = await (await app().request("/")).text();
  assert.match(all, /200 shown of 1200/);
  const next = /href="\/(\?[^"]*cursor=[^"]*)">next page/.exec(all);
  assert.ok(next, "a next-page link");
  const second = await (await app().request(`/${next[1].replace(/&amp;/g, "&")}`)).text();
  assert.match(second, /first page/);
  const bad = await app().request("/?limit=0");
  assert.match(await bad.text(), /invalid query parameter limit/);
});

test("dashboard - rendering 10,000 runners stays bounded by the page size", () => {
  const html = renderDashboard({ runners: fixtureFleet(10_000, NOW), alerts: [], events: [], health: { ok: true, reason: null }, version: "t" }, NOW);
  assert.equal((html.match(/<tr class="runner">/g) ?? []).length, 200);
  assert.match(html, /<b>10000<\/b><span>runners<\/span>/);
});

test("live pages - the SSE feed pushes the page's live part and refuses pages elsewhere", async () => {
  const a = app();
  const bad = await a.request(`/live?page=${encodeURIComponent("//evil.example.com/")}`);
  assert.equal(bad.status, 400);
  const stop = new AbortController();
  const res = await a.request(`/live?page=${encodeURIComponent("/?status=failing")}`, { signal: stop.signal });
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const reader = res.body!.getReader();
  const { value } = await reader.read();
  const chunk = new TextDecoder().decode(value);
  stop.abort();
  await reader.cancel().catch(() => {});
  assert.match(chunk, /^event: update$/m);
  const html = (JSON.parse(/^data: (.*)$/m.exec(chunk)![1]) as { html: string }).html;
  assert.match(html, /shown of \d+ matching/);
  assert.doesNotMatch(html, /<html/, "only the live part, not a whole page");
});

test("runners api - hosts and history answer from memory; a bad window is a 400 naming it", async () => {
  const host = (await (await app().request("/api/v1/hosts/ci-0001.example.com")).json()) as { runners: unknown[]; pools: unknown[] };
  assert.equal(host.runners.length, 10);
  assert.deepEqual(host.pools, []);
  assert.equal((await app().request("/api/v1/hosts/nope")).status, 404);
  const bad = await app().request("/api/v1/history?window=2h");
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { parameter: string }).parameter, "window");
  const page = await app().request("/runners/ci-0001.example.com/runner-00010");
  assert.equal(page.status, 200);
  assert.equal((await app().request("/runners/ci-0001.example.com/nope")).status, 404);
});

test("runners api - a host's and a runner's page chart their own history; the API gives the same numbers", async () => {
  const { History } = await import("../collector/history.ts");
  const history = new History(() => NOW);
  const at = (minutesAgo: number) => new Date(NOW - minutesAgo * 60_000).toISOString();
  const envelope = (type: string, host: string, runner: string | null, minutesAgo: number, data: Record<string, unknown> = {}) =>
    ({ v: 1, id: `${type}-${host}-${runner}-${minutesAgo}`, seq: 1, type, time: at(minutesAgo), host, runner, scope: { org: "acme" }, agent: { version: "1", runtime: "node" }, data }) as never;
  history.record(envelope("token.refreshed", "ci-0001.example.com", null, 3));
  history.record(envelope("token.refreshed", "ci-0001.example.com", null, 8));
  history.record(envelope("runner.registered", "ci-0001.example.com", "runner-00010", 20, { agent_id: 7, reason: "deleted_on_github" }));
  history.record(envelope("token.refreshed", "ci-0002.example.com", null, 3));
  const withHistory = createCollectorApp(viewOf(FLEET, { history: () => history }), { version: "t", now: () => NOW });
  const total = (html: string, chart: string) => Number(new RegExp(`aria-label="${chart}"[^>]*data-total="(\\d+)"|data-total="(\\d+)"[^>]*aria-label="${chart}"`).exec(html)?.slice(1).find(Boolean));
  const hostPage = await (await withHistory.request("/hosts/ci-0001.example.com")).text();
  assert.equal(total(hostPage, "Tokens refreshed"), 2, "the host's refreshes, not the fleet's 3");
  assert.equal(total(hostPage, "Registrations"), 1);
  const runnerPage = await (await withHistory.request("/runners/ci-0001.example.com/runner-00010?window=24h")).text();
  assert.equal(total(runnerPage, "Registrations"), 1);
  assert.equal(total(runnerPage, "Tokens refreshed"), 0, "tokens are per scope: on the host's page");
  assert.match(runnerPage, /<b>24h<\/b>/, "the window from the URL");
  const quiet = await (await withHistory.request("/runners/ci-0001.example.com/runner-00011")).text();
  assert.match(quiet, /No events from this runner counted in the last 7 days/);

  const api = async (q: string) => (await (await withHistory.request(`/api/v1/history?${q}`)).json()) as { series: Record<string, [string, number][]> };
  const sum = (pairs: [string, number][]) => pairs.reduce((a, [, v]) => a + v, 0);
  assert.equal(sum((await api("host=ci-0001.example.com")).series.refreshed), 2);
  assert.equal(sum((await api("host=ci-0001.example.com&runner=runner-00010&window=7d")).series.reregistered), 1);
  assert.equal(sum((await api("window=1h")).series.refreshed), 3, "without host: the fleet");
  const bad = await withHistory.request("/api/v1/history?runner=runner-00010");
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { parameter: string }).parameter, "runner");
});

test("runners api - a runner's page names the other hosts reporting its name in its scope (a session conflict's other side)", async () => {
  const base = FLEET.find((r) => r.host === "ci-0001.example.com")!;
  const twin = (host: string, scope: { org: string }) => ({ ...base, key: `${host}/${base.runner}`, host, state: { ...base.state, host, scope } });
  const fleet = [base, twin("ci-0900.example.com", base.state.scope as { org: string }), twin("ci-0901.example.com", { org: "elsewhere" })];
  const pages = createCollectorApp(viewOf(fleet), { version: "t", now: () => NOW });
  const text = (html: string) => html.replace(/<[^>]+>/g, "");
  const page = text(await (await pages.request(`/runners/ci-0001.example.com/${encodeURIComponent(base.runner)}`)).text());
  assert.match(page, /same name onci-0900\.example\.com \(one registration, two listeners/);
  assert.doesNotMatch(page, /ci-0901/, "the same name in another scope is another runner");
  const alone = text(await (await app().request(`/runners/ci-0001.example.com/${encodeURIComponent(base.runner)}`)).text());
  assert.doesNotMatch(alone, /same name on/);
});
