// The collector's /metrics over a real FleetState, as the fleet changes between and during
// scrapes: the per-runner series and the counts by status come from one read of the view and are
// streamed, and every value still follows the runners as they change, go stale and go away.
import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import type { CollectorView } from "../collector/types.ts";
import type { StateDocument } from "../shared/types.ts";
import { FleetState } from "../collector/fleet.ts";
import { stateKey } from "../nats/subjects.ts";
import { createCollectorApp } from "./collector-app.ts";

const NOW = Date.parse("2026-12-07T10:00:00.000Z");
const NOW_S = NOW / 1000;

/** Every per-runner family and whether it carries the scope label. */
const PER_RUNNER: [string, boolean][] = [
  ["runner_token_expiry_timestamp_seconds", true], ["runner_token_last_check_timestamp_seconds", false],
  ["runner_token_last_refresh_timestamp_seconds", true], ["runner_token_consecutive_failures", false],
  ["runner_registered", false], ["runner_online", false], ["runner_busy", false], ["runner_token_refreshes_total", true],
];

function doc(host: string, name: string, over: Partial<StateDocument> = {}): StateDocument {
  return {
    v: 1, host, name, time: new Date(NOW - 10_000).toISOString(), interval: 60, dir: `/r/${name}`, scope: { org: "acme" },
    ephemeral: false, registered: true, agent_id: 7, service_active: true, online: true, busy: false,
    token_expires_at: NOW_S + 3000, last_refresh_timestamp: NOW_S - 600, total_refreshes: 5, failed_refreshes: 0,
    consecutive_failures: 0, registrations: 1, status: "ok", last_error: null, ...over,
  };
}

/** A FleetState behind the view the app reads, with its own clock and a count of fleet reads. */
function fleetView(): { fleet: FleetState; view: CollectorView; clock: { now: number }; reads: { runners: number } } {
  const fleet = new FleetState({ afterConsecutiveFailures: 3 });
  const clock = { now: NOW };
  const reads = { runners: 0 };
  const view: CollectorView = {
    runners: () => (reads.runners++, fleet.runners(clock.now)),
    runner: (h, r) => fleet.runner(h, r, clock.now),
    events: async () => [],
    recentEvents: () => [],
    alerts: () => [],
    eventCounts: () => fleet.eventCounts(),
    documentsDropped: () => fleet.documentsDropped(),
    health: () => ({ ok: true, reason: null }),
  };
  return { fleet, view, clock, reads };
}

const put = (fleet: FleetState, host: string, name: string, over: Partial<StateDocument> = {}, at = NOW) => fleet.putState(stateKey(host, name), doc(host, name, over), at);

function value(text: string, name: string, labels: string): string | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line?.slice(line.lastIndexOf(" ") + 1);
}

/** `host/runner` of every sample of a family, in order. */
function runnersOf(text: string, name: string): string[] {
  return [...text.matchAll(new RegExp(`^${name}\\{host="([^"]*)",runner="([^"]*)"[^}]*\\} `, "gm"))].map((m) => `${m[1]}/${m[2]}`);
}

function counts(text: string): Record<string, number> {
  return Object.fromEntries([...text.matchAll(/^runner_token_fleet_runners\{status="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

test("collector metrics - values follow runners that change, go stale and go away", async () => {
  const { fleet, view, clock } = fleetView();
  const app = createCollectorApp(view, { version: "1", now: () => clock.now });
  const scrape = async () => (await app.request("/metrics")).text();
  for (const h of ["a", "b", "c"]) put(fleet, `${h}.example.com`, "runner-1");
  let text = await scrape();
  assert.equal(counts(text).ok, 3);
  assert.equal(value(text, "runner_token_consecutive_failures", 'host="b.example.com",runner="runner-1"'), "0");

  // b fails three times and loses its GitHub status; c's agent goes silent; a refreshes.
  put(fleet, "b.example.com", "runner-1", { status: "failing", consecutive_failures: 3, failed_refreshes: 3, online: null }, NOW + 60_000);
  put(fleet, "a.example.com", "runner-1", { token_expires_at: NOW_S + 7200, total_refreshes: 6, time: new Date(NOW + 60_000).toISOString() }, NOW + 60_000);
  clock.now = NOW + 250_000; // c's last state is 250 s old: past 3 × 60 + 60 s
  text = await scrape();
  assert.deepEqual(counts(text), { ok: 1, refreshing: 0, deferred_busy: 0, failing: 1, unregistered: 0, held: 0, stale: 1 });
  const b = 'host="b.example.com",runner="runner-1"';
  assert.equal(value(text, "runner_token_consecutive_failures", b), "3");
  assert.equal(value(text, "runner_token_refreshes_total", `${b},scope="org:acme",outcome="failure"`), "3");
  assert.equal(value(text, "runner_online", b), undefined, "unknown online is no sample, not a stale 1");
  const a = 'host="a.example.com",runner="runner-1"';
  assert.equal(value(text, "runner_token_expiry_timestamp_seconds", `${a},scope="org:acme"`), String(NOW_S + 7200));
  assert.equal(value(text, "runner_token_last_check_timestamp_seconds", a), String(NOW_S + 60));
  assert.equal(value(text, "runner_token_refreshes_total", `${a},scope="org:acme",outcome="success"`), "6");
  // A stale runner keeps its last values (its status says how old they are).
  assert.equal(value(text, "runner_registered", 'host="c.example.com",runner="runner-1"'), "1");

  // c is deleted from KV, a moves to another scope, a new runner arrives.
  fleet.deleteState(stateKey("c.example.com", "runner-1"));
  put(fleet, "a.example.com", "runner-1", { scope: { repo: "acme/app" } }, clock.now);
  put(fleet, "d.example.com", "runner-2", { status: "held" }, clock.now);
  text = await scrape();
  assert.deepEqual(counts(text), { ok: 1, refreshing: 0, deferred_busy: 0, failing: 1, unregistered: 0, held: 1, stale: 0 });
  for (const [name] of PER_RUNNER) {
    assert.ok(!runnersOf(text, name).includes("c.example.com/runner-1"), `${name}: a deleted runner is gone`);
  }
  assert.doesNotMatch(text, /scope="org:acme"[^\n]*host="a|host="a[^\n]*scope="org:acme"/, "no series left behind under the old scope");
  assert.equal(value(text, "runner_token_expiry_timestamp_seconds", `${a},scope="repo:acme/app"`), String(NOW_S + 3000));
  assert.equal(value(text, "runner_busy", 'host="d.example.com",runner="runner-2"'), "0");
});

test("collector metrics - a scrape reads the fleet once and streams every family's runners from that one read", async () => {
  const { fleet, view, reads } = fleetView();
  const app = createCollectorApp(view, { version: "1" });
  const hosts = Array.from({ length: 2000 }, (_, i) => `host-${String(i).padStart(4, "0")}.example.com`);
  for (const h of hosts) put(fleet, h, "runner-1");

  const res = await app.request("/metrics");
  assert.equal(reads.runners, 1, "one read of the view per scrape, not one per family");
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const first = await reader.read();
  assert.ok(!first.done && first.value.byteLength < 1024 * 1024, "the first chunk is a part of the text, not all of it");
  let text = decoder.decode(first.value, { stream: true });

  // The fleet changes while the scrape streams: this scrape still shows the runners it read.
  fleet.deleteState(stateKey(hosts[1999], "runner-1"));
  put(fleet, "late.example.com", "runner-1");
  let chunks = 1;
  for (let r = await reader.read(); !r.done; r = await reader.read(), chunks++) text += decoder.decode(r.value, { stream: true });
  text += decoder.decode();
  assert.ok(chunks > 1, `streamed in chunks (${chunks})`);
  assert.equal(reads.runners, 1);
  const expected = hosts.map((h) => `${h}/runner-1`);
  for (const [name, scoped] of PER_RUNNER) {
    const samples = runnersOf(text, name);
    // runner_token_refreshes_total has two samples per runner (success, failure).
    assert.deepEqual(name === "runner_token_refreshes_total" ? samples.filter((_, i) => i % 2 === 0) : samples, expected, `${name} (scoped: ${scoped})`);
  }
  assert.equal(counts(text).ok, 2000);
  assert.ok(text.endsWith("\n") && !text.includes("\n\n\n"), "families apart by one blank line");
  assert.match(text, /^runner_token_collector_events_total\{type="token\.refreshed"\} 0$/m, "the bounded families follow");

  const next = await (await app.request("/metrics")).text();
  assert.equal(reads.runners, 2);
  assert.ok(runnersOf(next, "runner_busy").includes("late.example.com/runner-1"));
  assert.ok(!runnersOf(next, "runner_busy").includes(`${hosts[1999]}/runner-1`));
});
