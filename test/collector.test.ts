import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { makeWorld, runInProcess, spawnAgent, waitFor, type World } from "./helpers/agent.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { streamEvents } from "./helpers/nats-read.ts";

/** The world's env without the RUNNER_* variables, which would override the config file's runner. */
function fileEnv(w: World): Record<string, string> {
  const { RUNNER_NAME: _n, RUNNER_DIR: _d, RUNNER_ORG: _o, ...env } = w.env;
  return env;
}

async function agentConfig(w: World, natsUrl: string, host: string, runnerName = "runner-1"): Promise<string> {
  return w.config(`
refresh: { retryBackoff: 0.01, interval: 1 }
nats: { servers: [${natsUrl}], name: "${host}" }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: "${runnerName}" }
`);
}

test("collector - two agents and a collector: the fleet view shows both; a stopped agent goes stale within staleAfter", async () => {
  const nats = await startNatsServer();
  const a = await makeWorld();
  const b = await makeWorld();
  const c = startCollector(collectorConfig(nats.url, { staleAfter: 3 }));
  const daemons = [
    spawnAgent(["daemon", "--config", await agentConfig(a, nats.url, "ci-a.example.com")], a.env),
    spawnAgent(["daemon", "--config", await agentConfig(b, nats.url, "ci-b.example.com", "gpu runner ü")], fileEnv(b)),
  ];
  try {
    await waitFor(() => c.collector.runners().filter((r) => r.state.status === "ok" && r.state.registered).length === 2, "both runners ok in the fleet view", 30_000);
    const names = c.collector.runners().map((r) => `${r.host}/${r.runner}`);
    assert.deepEqual(names, ["ci-a.example.com/runner-1", "ci-b.example.com/gpu runner ü"]);
    assert.ok(c.collector.runners().every((r) => !r.stale));
    await waitFor(() => (c.collector.eventCounts().get("runner.registered") ?? 0) === 2, "both registrations consumed");

    daemons[0].kill("SIGTERM");
    assert.equal((await daemons[0].done).code, 0);
    await waitFor(() => c.collector.runner("ci-a.example.com", "runner-1")?.stale === true, "agent a stale", 15_000);
    assert.equal(c.collector.runner("ci-b.example.com", "gpu runner ü")?.stale, false, "agent b still fresh");
    await waitFor(async () => (await c.collector.evaluate()).some((al) => al.key === "agent_silent/ci-a.example.com/runner-1"), "agent silent alert");
    await waitFor(() => (c.collector.eventCounts().get("agent.stopped") ?? 0) === 1, "agent.stopped consumed");
    const events = await c.collector.events({ limit: 100, host: "ci-b.example.com" });
    assert.ok(events.length > 0 && events.every((e) => e.host === "ci-b.example.com"), "events filtered by host from the stream");
  } finally {
    for (const d of daemons) d.kill("SIGKILL");
    await Promise.all(daemons.map((d) => d.done));
    await c.close();
    await a.close();
    await b.close();
    await nats.close();
  }
});

test("collector - NATS stopped mid-run and restarted: every event arrives exactly once, in order per runner", async () => {
  const nats = await startNatsServer();
  const w = await makeWorld();
  const daemon = spawnAgent(["daemon", "--config", await agentConfig(w, nats.url, "ci-a")], { ...w.env, REFRESH_THRESHOLD: "3595" });
  try {
    // Tokens live an hour and threshold 3595 s: each pass mints, so events keep flowing.
    await waitFor(async () => (await streamEvents(nats.url)).length >= 3, "events before the outage", 20_000);
    await nats.stop();
    await waitFor(() => /lost the NATS connection|events wait in the outbox|kept in the outbox/.test(daemon.output()), "agent noticed the outage", 20_000);
    const beforeRestart = daemon.output().split("token.refreshed").length;
    await waitFor(() => daemon.output().split("token.refreshed").length >= beforeRestart + 2, "events made during the outage", 20_000);
    await nats.start();
    await waitFor(() => /outbox replayed to NATS/.test(daemon.output()), "outbox replayed", 30_000);
    daemon.kill("SIGTERM");
    await daemon.done;
    const stored = await streamEvents(nats.url);
    const ids = stored.map((s) => s.event.id);
    assert.equal(new Set(ids).size, ids.length, "no duplicates");
    const seqs = stored.map((s) => s.event.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), "every seq from 1, none missing, in order");
  } finally {
    daemon.kill("SIGKILL");
    await daemon.done;
    await w.close();
    await nats.close();
  }
});

test("collector - a restarted collector resumes the durable consumer: nothing lost, nothing counted twice", async () => {
  const nats = await startNatsServer();
  const w = await makeWorld();
  try {
    const path = await agentConfig(w, nats.url, "ci-a");
    const first = startCollector(collectorConfig(nats.url));
    await waitFor(() => first.collector.health().ok, "collector ready");
    assert.equal((await runInProcess(["check", "--config", path], w.env)).code, 0);
    await waitFor(() => (first.collector.eventCounts().get("runner.registered") ?? 0) === 1, "first collector consumed");
    const firstTotal = [...first.collector.eventCounts().values()].reduce((a, b) => a + b, 0);
    await first.close();
    assert.equal((await runInProcess(["check", "--config", path, "--threshold", "3650"], w.env)).code, 0);
    const second = startCollector(collectorConfig(nats.url));
    try {
      await waitFor(() => (second.collector.eventCounts().get("token.refreshed") ?? 0) === 1, "second collector got the new event");
      const secondTotal = [...second.collector.eventCounts().values()].reduce((a, b) => a + b, 0);
      assert.equal(firstTotal + secondTotal, (await streamEvents(nats.url)).length, "each event handled by exactly one process");
      assert.equal(second.collector.eventCounts().get("runner.registered"), undefined, "old events not redelivered");
      await waitFor(() => second.collector.runners().length === 1, "fleet view rebuilt from KV at start");
    } finally {
      await second.close();
    }
  } finally {
    await w.close();
    await nats.close();
  }
});

test("collector - two collectors share the durable consumer: each event is handled once", async () => {
  const nats = await startNatsServer();
  const w = await makeWorld();
  const one = startCollector(collectorConfig(nats.url));
  const two = startCollector(collectorConfig(nats.url));
  try {
    await waitFor(() => one.collector.health().ok && two.collector.health().ok, "both ready");
    const path = await agentConfig(w, nats.url, "ci-a");
    for (let i = 0; i < 5; i++) assert.equal((await runInProcess(["check", "--config", path, "--threshold", "3650"], w.env)).code, 0);
    const total = (await streamEvents(nats.url)).length;
    const sum = () => [one, two].flatMap((c) => [...c.collector.eventCounts().values()]).reduce((a, b) => a + b, 0);
    await waitFor(() => sum() === total, `all ${total} events handled`);
    assert.equal(sum(), total);
    assert.equal(one.collector.runners().length, 1, "every collector has the whole fleet view");
    await waitFor(() => two.collector.runners().length === 1, "second collector fleet view");
  } finally {
    await one.close();
    await two.close();
    await w.close();
    await nats.close();
  }
});

test("collector - a malformed or unknown-version message is logged, acked, counted and never stops the collector", async () => {
  const nats = await startNatsServer();
  const w = await makeWorld();
  const c = startCollector(collectorConfig(nats.url));
  try {
    await waitFor(() => c.collector.health().ok, "ready");
    const nc = await connect({ servers: nats.url });
    const { jetstream } = await import("@nats-io/jetstream");
    const js = jetstream(nc);
    await js.publish("rtr.events.x.y.token.refreshed", new TextEncoder().encode("{not json"));
    await js.publish("rtr.events.x.y.token.refreshed", new TextEncoder().encode(JSON.stringify({ v: 99, id: "a", type: "token.refreshed", host: "x", seq: 1 })));
    await nc.close();
    await waitFor(() => c.collector.eventCounts().get("_invalid") === 2, "both counted invalid");
    assert.equal((await runInProcess(["check", "--config", await agentConfig(w, nats.url, "ci-a")], w.env)).code, 0);
    await waitFor(() => c.collector.eventCounts().get("runner.registered") === 1, "later events still handled");
    assert.match(c.logs(), /malformed or unknown-version message/);
    const jsm = await jetstreamManager(await connect({ servers: nats.url }));
    const info = await jsm.consumers.info("RTR_EVENTS", "rtr-collector");
    assert.equal(info.num_ack_pending, 0, "everything acked");
  } finally {
    await c.close();
    await w.close();
    await nats.close();
  }
});

test("collector - health is 503 with a reason while NATS is unreachable, and recovers", async () => {
  const nats = await startNatsServer();
  const c = startCollector(collectorConfig(nats.url));
  try {
    await waitFor(() => c.collector.health().ok, "ready");
    await nats.stop();
    await waitFor(() => !c.collector.health().ok, "unhealthy when NATS is gone");
    assert.match(c.collector.health().reason ?? "", /NATS/);
    await nats.start();
    await waitFor(() => c.collector.health().ok, "healthy again", 20_000);
  } finally {
    await c.close();
    await nats.close();
  }
});

test("collector - the collector command serves the dashboard, the API and /healthz, and stops on SIGTERM", async () => {
  const nats = await startNatsServer();
  const w = await makeWorld();
  const { spawnAgent: spawnCli } = await import("./helpers/agent.ts");
  const collector = spawnCli(["collector", "--listen", "127.0.0.1:0"], { NATS_URL: nats.url, STATE_DIR: w.stateDir });
  try {
    await waitFor(() => /collector listening on http:\/\/127\.0\.0\.1:\d+\//.test(collector.output()), "collector listening", 20_000);
    const base = /collector listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(collector.output())![1];
    await waitFor(async () => (await fetch(`${base}/healthz`)).status === 200, "healthy");
    assert.equal((await runInProcess(["check", "--config", await agentConfig(w, nats.url, "ci.example.com")], fileEnv(w))).code, 0);
    await waitFor(async () => ((await (await fetch(`${base}/api/v1/runners`)).json()) as { runners: unknown[] }).runners.length === 1, "runner listed");
    const one = await fetch(`${base}/api/v1/runners/${encodeURIComponent("ci.example.com")}/runner-1`);
    assert.equal(one.status, 200);
    assert.equal(((await one.json()) as { status: string }).status, "ok");
    const page = await (await fetch(`${base}/`)).text();
    assert.match(page, /ci\.example\.com/);
    assert.match(page, /runner-1/);
    const events = (await (await fetch(`${base}/api/v1/events?type=runner.registered`)).json()) as { events: { type: string }[] };
    assert.deepEqual(events.events.map((e) => e.type), ["runner.registered"]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /runner_registered\{[^}]*host="ci\.example\.com"[^}]*\} 1/);
    collector.kill("SIGTERM");
    assert.equal((await collector.done).code, 0);
  } finally {
    collector.kill("SIGKILL");
    await collector.done;
    await w.close();
    await nats.close();
  }
});
