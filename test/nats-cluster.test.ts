// SPEC 16 on a real three-node JetStream cluster: R3 stream and buckets, publishing through the
// SIGKILL of the stream leader, and the outbox when quorum is lost; seen from the collector: the
// lease moving when the leader's host dies, the token broker, /healthz and the fleet view through
// a node's SIGKILL (bounds derived from the documented election time, 4–9 s); the lease TTL rules;
// the shipped cluster configs checked by nats-server -t.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createLogger } from "../src/shared/logger.ts";
import { NatsPublisher } from "../src/nats/publisher.ts";
import { CLUSTER_LEASE_TTL_MS, LEASE_TTL_MS, Lease, leaseTtlFor } from "../src/collector/lease.ts";
import { createBucket } from "../src/nats/cluster.ts";
import { ensureEventsStream } from "../src/nats/setup.ts";
import { inboxPrefixFor, natsNames } from "../src/nats/subjects.ts";
import { FleetAgentClient } from "../src/fleet/agent-client.ts";
import { STALL_CHECK_MS } from "../src/collector/stall-watch.ts";
import { createCollectorApp } from "../src/http/collector-app.ts";
import type { Envelope, StateDocument } from "../src/shared/types.ts";
import type { NatsConfig } from "../src/config/types.ts";
import { startNatsCluster, type NatsCluster } from "./helpers/nats-cluster.ts";
import { streamEvents } from "./helpers/nats-read.ts";
import { natsServerBinary, startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { REPO_ROOT, spawnAgent } from "./helpers/agent.ts";
import { startFakeGitHub } from "./helpers/fake-github.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function event(seq: number): Envelope {
  return {
    v: 1,
    id: crypto.randomUUID(),
    seq,
    type: "token.refreshed",
    time: new Date().toISOString(),
    host: "cl-host",
    runner: null,
    scope: { org: "acme" },
    agent: { version: "test", runtime: "node" },
    data: { expires_at: new Date(Date.now() + 3600_000).toISOString() },
  };
}

async function withPublisher<T>(cluster: Pick<NatsCluster, "urls">, fn: (p: NatsPublisher, logs: string[]) => Promise<T>, electionRetryMs?: number, replicas = 3): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "rtr-cluster-pub-"));
  const logs: string[] = [];
  const log = createLogger({ level: "debug", write: (line) => logs.push(line) });
  const config: NatsConfig = { servers: cluster.urls, prefix: "rtr", name: "cl-host", replicas };
  const publisher = new NatsPublisher({ runtime: createNodeRuntime(), config, stateDir: dir, log, mode: "daemon", electionRetryMs });
  try {
    return await fn(publisher, logs);
  } finally {
    await publisher.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitUntil(what: string, timeoutMs: number, cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

async function storedCount(cluster: NatsCluster): Promise<number> {
  const nc = await connect({ servers: cluster.urls.filter((_, i) => cluster.nodes[i].running()), reconnect: false, timeout: 1000 });
  try {
    return (await (await jetstreamManager(nc, { timeout: 2000 })).streams.info("RTR_EVENTS")).state.messages;
  } catch {
    return -1;
  } finally {
    await nc.close();
  }
}

/** Every event once, in seq order, no gap: what SPEC 8 promises a consumer. */
async function assertExactlyOnce(cluster: NatsCluster, n: number): Promise<void> {
  const url = cluster.urls.find((_, i) => cluster.nodes[i].running())!;
  const stored = await streamEvents(url);
  assert.equal(stored.length, n, `stored ${stored.length} of ${n}`);
  assert.equal(new Set(stored.map((s) => s.msgId)).size, n, "no Nats-Msg-Id twice");
  for (const s of stored) assert.equal(s.msgId, s.event.id);
  assert.deepEqual(stored.map((s) => s.event.seq), Array.from({ length: n }, (_, i) => i + 1), "in seq order, no gap");
}

test("nats cluster - the stream and the state bucket are created with nats.replicas replicas", { timeout: 60_000 }, async () => {
  const cluster = await startNatsCluster();
  try {
    await withPublisher(cluster, async (publisher) => {
      await publisher.ready();
      await publisher.publishEvent(event(1));
      await publisher.putState({ host: "cl-host", name: "r1" } as never);
      const nc = await connect({ servers: cluster.urls });
      try {
        const jsm = await jetstreamManager(nc);
        assert.equal((await jsm.streams.info("RTR_EVENTS")).config.num_replicas, 3);
        assert.equal((await jsm.streams.info("KV_RTR_STATE")).config.num_replicas, 3);
      } finally {
        await nc.close();
      }
    });
  } finally {
    await cluster.close();
  }
});

test("nats cluster - an existing R1 stream and bucket are adopted unchanged, with a warning saying how to change them", { timeout: 60_000 }, async () => {
  const nats = await startNatsServer();
  try {
    const single = { urls: [nats.url] };
    await withPublisher(single, async (publisher) => {
      await publisher.ready();
      await publisher.publishEvent(event(1));
    }, undefined, 1);
    await withPublisher(single, async (publisher, logs) => {
      await publisher.ready();
      await publisher.publishEvent(event(2));
      assert.ok(logs.some((l) => l.includes("nats stream edit RTR_EVENTS --replicas 3")), logs.join(""));
      assert.ok(logs.some((l) => l.includes("nats stream edit KV_RTR_STATE --replicas 3")), logs.join(""));
    }, undefined, 3);
    const nc = await connect({ servers: nats.url });
    try {
      assert.equal((await (await jetstreamManager(nc)).streams.info("RTR_EVENTS")).config.num_replicas, 1, "unchanged");
    } finally {
      await nc.close();
    }
  } finally {
    await nats.close();
  }
});

test("nats cluster - SIGKILL of the stream leader while publishing: every event arrives once, in order", { timeout: 60_000 }, async () => {
  const cluster = await startNatsCluster();
  const n = 60;
  try {
    await withPublisher(cluster, async (publisher, logs) => {
      await publisher.ready();
      await publisher.publishEvent(event(1));
      const leader = await cluster.waitForStreamLeader("RTR_EVENTS");
      const victim = cluster.indexOf(leader);
      let killedAt = 0;
      let electedAfter = -1;
      let measuring: Promise<void> = Promise.resolve();
      let longestPublish = 0;
      for (let seq = 2; seq <= n; seq++) {
        if (seq === 15) {
          killedAt = Date.now();
          await cluster.kill(victim);
          // Measure the election without holding up the publisher.
          measuring = (async () => {
            while (electedAfter < 0 && Date.now() - killedAt < 20_000) {
              const now = await cluster.streamLeader("RTR_EVENTS");
              if (now && now !== leader) electedAfter = Date.now() - killedAt;
              else await sleep(100);
            }
          })();
        }
        if (seq === 45) await cluster.start(victim);
        const t0 = Date.now();
        await publisher.publishEvent(event(seq));
        longestPublish = Math.max(longestPublish, Date.now() - t0);
        await sleep(20);
      }
      await measuring;
      await waitUntil("the outbox to drain and the stream to hold every event", 30_000, async () => (await publisher.pending()) === 0 && (await storedCount(cluster)) === n);
      await assertExactlyOnce(cluster, n);
      const toOutbox = logs.filter((l) => l.includes("kept in the outbox")).length;
      console.log(`nats cluster: new stream leader seen ${electedAfter} ms after SIGKILL of ${leader}; longest publish ${longestPublish} ms; ${toOutbox} event(s) went through the outbox`);
      assert.ok(!logs.some((l) => /jetstream is not enabled|JetStream not enabled/i.test(l)), "an election is never reported as JetStream not enabled");
    });
  } finally {
    await cluster.close();
  }
});

test("nats cluster - without quorum events wait in the outbox and arrive once when quorum returns", { timeout: 60_000 }, async () => {
  const cluster = await startNatsCluster();
  const n = 8;
  try {
    await withPublisher(
      cluster,
      async (publisher, logs) => {
        await publisher.ready();
        for (let seq = 1; seq <= 3; seq++) await publisher.publishEvent(event(seq));
        await cluster.kill(1);
        await cluster.kill(2);
        for (let seq = 4; seq <= n; seq++) await publisher.publishEvent(event(seq));
        assert.ok((await publisher.pending()) > 0, "events wait in the outbox while two of three nodes are down");
        assert.ok(logs.some((l) => /no JetStream stream leader answered|kept in the outbox/.test(l)), "the fallback is logged");
        assert.ok(!logs.some((l) => /jetstream is not enabled/i.test(l)), "never reported as JetStream not enabled");
        await cluster.start(1);
        await cluster.start(2);
        await waitUntil("the outbox to drain after quorum returns", 40_000, async () => (await publisher.pending()) === 0 && (await storedCount(cluster)) === n);
        await assertExactlyOnce(cluster, n);
      },
      3000,
    );
  } finally {
    await cluster.close();
  }
});

test("nats cluster - the leader lease stays with its holder through the SIGKILL of its bucket's leader", { timeout: 60_000 }, async () => {
  const cluster = await startNatsCluster();
  const a = await connect({ servers: cluster.urls });
  const b = await connect({ servers: cluster.urls });
  try {
    const ttl = 15_000;
    const holder = new Lease(a, "RTR_LEADER", "collector-a", ttl, 3);
    const other = new Lease(b, "RTR_LEADER", "collector-b", ttl, 3);
    assert.equal(await holder.tick(), true);
    assert.equal(await other.tick(), false);
    const leader = await cluster.waitForStreamLeader("KV_RTR_LEADER");
    await cluster.kill(cluster.indexOf(leader));
    // The collector ticks every ttl/3; tick faster here to catch any moment of lost leadership.
    const started = Date.now();
    while (Date.now() - started < 15_000) {
      assert.equal(await holder.tick(), true, `the holder lost the lease ${Date.now() - started} ms after the kill`);
      assert.equal(await other.tick(), false, "no second leader");
      await sleep(1000);
    }
    assert.equal(await holder.holder(), "collector-a");
  } finally {
    await a.close();
    await b.close();
    await cluster.close();
  }
});

test("nats cluster - a collector consuming through the SIGKILL of the stream leader sees every event once and keeps the fleet view", { timeout: 60_000 }, async () => {
  const cluster = await startNatsCluster();
  const config = collectorConfig(cluster.urls[0]);
  config.nats = { ...config.nats!, servers: cluster.urls, replicas: 3 };
  const c = startCollector(config);
  const n = 40;
  try {
    await withPublisher(cluster, async (publisher) => {
      await publisher.ready();
      const now = Math.floor(Date.now() / 1000);
      await publisher.putState({
        v: 1, host: "cl-host", name: "r1", time: new Date().toISOString(), interval: 60, dir: "/srv/r1", scope: { org: "acme" }, ephemeral: false,
        registered: true, agent_id: 7, service_active: true, online: true, busy: false, token_expires_at: now + 3000,
        last_refresh_timestamp: now - 600, total_refreshes: 3, failed_refreshes: 0, consecutive_failures: 0, registrations: 1,
        status: "ok", last_error: null,
      });
      await waitUntil("the collector to see the runner", 20_000, async () => c.collector.runner("cl-host", "r1") !== undefined);
      await publisher.publishEvent(event(1));
      const leader = await cluster.waitForStreamLeader("RTR_EVENTS");
      for (let seq = 2; seq <= n; seq++) {
        if (seq === 10) await cluster.kill(cluster.indexOf(leader));
        if (seq === 30) await cluster.start(cluster.indexOf(leader));
        await publisher.publishEvent(event(seq));
        await sleep(20);
      }
      const seen = () => c.collector.eventCounts().get("token.refreshed") ?? 0;
      await waitUntil(`the collector to count ${n} events`, 30_000, async () => seen() >= n).catch((err) => {
        throw new Error(`${err.message}: counted ${JSON.stringify([...c.collector.eventCounts()])}\n${c.logs().slice(-3000)}`);
      });
      await sleep(1000);
      assert.equal(seen(), n, "each event handled once");
      const recent = c.collector.recentEvents(n * 2);
      assert.deepEqual(recent.map((e) => e.seq).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i + 1));
      assert.ok(c.collector.runner("cl-host", "r1"), "the fleet view keeps the runner");
    });
  } finally {
    await c.close();
    await cluster.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Node loss seen from the collector: the lease, the token broker, /healthz and the fleet view.

/** The longest election docs/nats.md and SPEC 16 give (4–9 s): the bounds below derive from it. */
const ELECTION_MAX_MS = 9000;
const quiet = createLogger({ level: "silent", write: () => {} });

/** A collector config on the cluster, connected first to node `i` (it learns the others from it). */
function clusterCollectorConfig(cluster: NatsCluster, i: number, host: string, extra: Parameters<typeof collectorConfig>[1] = {}) {
  const config = collectorConfig(cluster.urls[i], extra);
  config.nats = { ...config.nats!, replicas: 3 };
  config.host = host;
  return config;
}

/** Makes a bucket's stream (or RTR_EVENTS) with R3 first, so a test knows which node leads it before any collector connects. */
async function leaderOfNewBucket(cluster: NatsCluster, bucket: string, ttlMs?: number): Promise<number> {
  const nc = await connect({ servers: cluster.urls });
  try {
    await createBucket(nc, bucket, { replicas: 3, ttlMs });
  } finally {
    await nc.close();
  }
  return cluster.indexOf(await cluster.waitForStreamLeader(`KV_${bucket}`));
}

function runnerState(over: Partial<StateDocument> = {}): StateDocument {
  const now = Math.floor(Date.now() / 1000);
  return {
    v: 1, host: "cl-host", name: "r1", time: new Date().toISOString(), interval: 60, dir: "/srv/r1", scope: { org: "acme" }, ephemeral: false,
    registered: true, agent_id: 7, service_active: true, online: true, busy: false, token_expires_at: now + 3000,
    last_refresh_timestamp: now - 600, total_refreshes: 3, failed_refreshes: 0, consecutive_failures: 0, registrations: 1,
    status: "ok", last_error: null, ...over,
  };
}

test("nats cluster - the lease TTL: 15 s, 1.5 × fleet.pollInterval in fleet mode, never below 15 s with nats.replicas > 1", () => {
  const base = collectorConfig("nats://127.0.0.1:4222", { fleetScopes: [{ org: "acme" }] });
  const at = (pollInterval: number, replicas?: number, fleet = true) => leaseTtlFor({ fleet: { ...base.fleet, pollInterval, scopes: fleet ? base.fleet.scopes : undefined }, nats: { ...base.nats!, replicas } });
  assert.deepEqual(at(60, 1, false), { ttlMs: LEASE_TTL_MS, floored: null });
  assert.equal(at(60).ttlMs, 15_000);
  assert.equal(at(4).ttlMs, 6000);
  assert.equal(at(0.5).ttlMs, 1500);
  assert.equal(at(4, 1).floored, null, "one server: no election to outlast");
  // 2/3 of the TTL is what a holder has left to renew in when a node dies: more than an election.
  assert.ok((CLUSTER_LEASE_TTL_MS * 2) / 3 > ELECTION_MAX_MS);
  for (const poll of [0.5, 1, 4, 9]) {
    const chosen = at(poll, 3);
    assert.equal(chosen.ttlMs, CLUSTER_LEASE_TTL_MS, `pollInterval ${poll} on R3`);
    assert.match(chosen.floored ?? "", new RegExp(`^nats\\.replicas is 3: the leader lease lives 15 s, not 1\\.5 × fleet\\.pollInterval \\(${Math.max(1.5, poll * 1.5)} s\\), so it outlasts a JetStream election \\(4–9 s\\); another collector takes over within about 20 s`));
  }
  assert.deepEqual(at(10, 3), { ttlMs: 15_000, floored: null }, "a poll interval of 10 s or more already gives 15 s");
  assert.deepEqual(at(60, 3, false), { ttlMs: 15_000, floored: null });
});

test("nats cluster - an existing RTR_LEADER with other settings is adopted with a warning, and the lease follows the bucket's TTL", { timeout: 60_000 }, async () => {
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    // As a fleet collector with a 1-s poll interval made it before nats.replicas was set.
    await createBucket(nc, "RTR_LEADER", { replicas: 1, ttlMs: 1500 });
    const logs: string[] = [];
    const log = createLogger({ level: "debug", write: (l) => logs.push(l) });
    const lease = new Lease(nc, "RTR_LEADER", "collector-a", 15_000, 3, log);
    assert.equal(await lease.tick(), true);
    assert.equal(lease.ttl, 1500, "the bucket's max age expires the key, so the holder renews by it");
    const text = logs.join("");
    assert.match(text, /NATS stream KV_RTR_LEADER has 1 replica but nats\.replicas is 3: adopting it unchanged; to change it run `nats stream edit KV_RTR_LEADER --replicas 3`/);
    assert.match(text, /NATS bucket RTR_LEADER has a TTL of 1\.5 s but this collector's lease wants 15 s: adopting it \(the lease lives 1\.5 s, renewed every 0\.5 s\); to change it run `nats stream edit KV_RTR_LEADER --max-age 15s`/);
    const info = await (await jetstreamManager(nc)).streams.info("KV_RTR_LEADER");
    assert.equal(info.config.num_replicas, 1, "unchanged");
    assert.equal(Number(info.config.max_age) / 1e6, 1500, "unchanged");
    // A bucket with the settings asked for: no warning.
    const again: string[] = [];
    const same = new Lease(nc, "RTR_LEADER", "collector-b", 1500, 1, createLogger({ level: "debug", write: (l) => again.push(l) }));
    assert.equal(await same.tick(), false, "collector-a holds it");
    assert.equal(again.join(""), "");
  } finally {
    await nc.close();
    await nats.close();
  }
});

test("nats cluster - the lease moves to the other collector when the leader's host dies (its node and its collector SIGKILLed)", { timeout: 60_000 }, async () => {
  const cluster = await startNatsCluster();
  const tmp = await mkdtemp(join(tmpdir(), "rtr-cluster-lease-"));
  // The leader collector connects to the node that leads KV_RTR_LEADER: its host's loss takes
  // the lease's holder and the bucket's leader at once.
  const ttl = CLUSTER_LEASE_TTL_MS;
  const home = await leaderOfNewBucket(cluster, "RTR_LEADER", ttl);
  const other = (home + 1) % 3;
  const configFile = join(tmp, "collector.yaml");
  await writeFile(configFile, `nats: { servers: [${cluster.urls[home]}], replicas: 3 }\n`);
  const a = spawnAgent(["collector", "--config", configFile, "--listen", "127.0.0.1:0"], { STATE_DIR: join(tmp, "state") });
  let b: ReturnType<typeof startCollector> | null = null;
  try {
    await waitUntil("collector A to lead", 40_000, async () => /now the leader/.test(a.output()));
    b = startCollector(clusterCollectorConfig(cluster, other, "collector-b"));
    await waitUntil("collector B to connect", 20_000, async () => b!.collector.health().ok);
    assert.equal(b.collector.leader, false, "A holds the lease");
    const killedAt = Date.now();
    a.kill("SIGKILL");
    await cluster.kill(home);
    await a.done;
    const bound = (ttl * 4) / 3 + ELECTION_MAX_MS;
    await waitUntil("collector B to take the lease", bound, async () => b!.collector.leader).catch((err) => {
      throw new Error(`${err.message}\n${b!.logs().slice(-2000)}`);
    });
    const tookOver = Date.now() - killedAt;
    console.log(`nats cluster: collector B led ${tookOver} ms after the SIGKILL of collector A and its node ${cluster.nodes[home].name} (lease TTL ${ttl} ms, renewed every ${ttl / 3} ms; bound ${bound} ms)`);
    assert.match(b.logs(), /now the leader/);
  } finally {
    a.kill("SIGKILL");
    await a.done;
    await b?.close();
    await cluster.close();
    await rm(tmp, { recursive: true, force: true });
  }
});

test("nats cluster - the token broker answers an agent through the SIGKILL of its collector's node, which leads KV_RTR_LEADER", { timeout: 60_000 }, async () => {
  const cluster = await startNatsCluster();
  const github = await startFakeGitHub();
  github.addRunner({ name: "r-1", scope: "org:acme" });
  // Pre-made with the TTL the collector asks for on R3 (a 1-s poll interval would give 1.5 s).
  const home = await leaderOfNewBucket(cluster, "RTR_LEADER", CLUSTER_LEASE_TTL_MS);
  const agentNode = (home + 1) % 3;
  const c = startCollector(clusterCollectorConfig(cluster, home, "collector", { github: { apiUrl: github.url, token: github.pat }, fleetScopes: [{ org: "acme" }], pollInterval: 1 }));
  const nc = await connect({ servers: [cluster.urls[agentNode]], inboxPrefix: inboxPrefixFor("ci-01") });
  const agent = new FleetAgentClient(async () => nc, natsNames("rtr"), { host: "ci-01" });
  try {
    await waitUntil("the leader's broker to answer", 30_000, async () => c.collector.broker?.answering === true);
    assert.match(c.logs(), /nats\.replicas is 3: the leader lease lives 15 s, not 1\.5 × fleet\.pollInterval \(1\.5 s\)/);
    assert.doesNotMatch(c.logs(), /has a TTL of/, "the collector asked for the TTL the bucket has");
    assert.ok((await agent.token({ org: "acme" }, null)).token, "a token before the kill");

    const killedAt = Date.now();
    await cluster.kill(home);
    const failures: string[] = [];
    let answeredAfter = -1;
    while (answeredAfter < 0 && Date.now() - killedAt < ELECTION_MAX_MS * 3) {
      const sent = Date.now();
      try {
        const t = await agent.token({ org: "acme" }, null);
        assert.ok(t.token);
        answeredAfter = Date.now() - killedAt;
      } catch (err) {
        failures.push(`${sent - killedAt} ms: ${(err as Error).message}`);
        await sleep(100);
      }
    }
    // Reconnecting to another node takes a moment; the lease (15 s) outlives the election.
    const bound = ELECTION_MAX_MS + 5000;
    console.log(`nats cluster: the broker answered ${answeredAfter} ms after the SIGKILL of ${cluster.nodes[home].name} (bound ${bound} ms); ${failures.length} request(s) failed first${failures.length ? `: ${failures.slice(0, 3).join("; ")}` : ""}`);
    assert.ok(answeredAfter >= 0 && answeredAfter < bound, `the broker answered ${answeredAfter} ms after the kill; failures: ${failures.join("; ")}\n${c.logs().slice(-2000)}`);
    // And it keeps answering once the election is over (the lease bucket has a new leader), still
    // from the same leader.
    assert.ok(await cluster.waitForStreamLeader("KV_RTR_LEADER", ELECTION_MAX_MS * 2), "the bucket has a new leader");
    assert.ok((await agent.token({ org: "acme" }, null)).token);
    assert.equal(c.collector.leader, true, "the only collector kept its lease");
  } finally {
    await nc.close();
    await c.close();
    await github.close();
    await cluster.close();
  }
});

test("nats cluster - /healthz and the fleet view recover after the SIGKILL of the stream leader the collector is connected to", { timeout: 60_000 }, async () => {
  const cluster = await startNatsCluster();
  // The collector connects to the node that leads RTR_EVENTS; the agent to another.
  const nc = await connect({ servers: cluster.urls });
  try {
    await ensureEventsStream(nc, natsNames("rtr"), quiet, 3);
  } finally {
    await nc.close();
  }
  const home = cluster.indexOf(await cluster.waitForStreamLeader("RTR_EVENTS"));
  const agentNode = (home + 1) % 3;
  const c = startCollector(clusterCollectorConfig(cluster, home, "collector"));
  const app = createCollectorApp(c.collector, { version: "test" });
  const healthz = async () => {
    const res = await app.request("/healthz");
    const body = (await res.json()) as { status: string; reason?: string };
    return `${res.status} ${body.status}${body.reason ? `: ${body.reason}` : ""}`;
  };
  try {
    await withPublisher({ urls: [cluster.urls[agentNode]] }, async (publisher) => {
      await publisher.ready();
      await publisher.putState(runnerState());
      await publisher.publishEvent(event(1));
      await waitUntil("the collector to see the runner and the event", 20_000, async () => c.collector.runner("cl-host", "r1") !== undefined && c.collector.eventCounts().get("token.refreshed") === 1);
      assert.equal(await healthz(), "200 ok");

      const killedAt = Date.now();
      await cluster.kill(home);
      // Watch /healthz through the gap: every answer it gives, with when.
      const said: string[] = [];
      let healthyAgainAfter = 0;
      let watching = true;
      const watcher = (async () => {
        let last = "200 ok";
        while (watching) {
          const now = await healthz();
          if (now !== last) {
            said.push(`${Date.now() - killedAt} ms: ${now}`);
            if (now === "200 ok") healthyAgainAfter = Date.now() - killedAt;
            last = now;
          }
          await sleep(20);
        }
      })();
      // What the agent does meanwhile: its next pass and an event (each waits out the election).
      await publisher.putState(runnerState({ total_refreshes: 4, last_refresh_timestamp: Math.floor(Date.now() / 1000) }));
      await publisher.publishEvent(event(2));
      const storedAt = Date.now();
      // Stored once the stream and the bucket have leaders again; a feed whose consumer died with
      // the node is seen stalled within two checks and started again (src/collector/stall-watch.ts),
      // on a new consumer, which can take the server 11–22 s after the kill (nats-server 2.9).
      const bound = 3 * ELECTION_MAX_MS + 2 * STALL_CHECK_MS;
      await waitUntil("the fleet view to show the runner's new state and the event", Math.max(1000, bound - (storedAt - killedAt)), async () => c.collector.runner("cl-host", "r1")?.state.total_refreshes === 4 && c.collector.eventCounts().get("token.refreshed") === 2).catch((err) => {
        throw new Error(`${err.message}; /healthz said ${said.join(", ") || "200 ok throughout"}\n${c.logs().slice(-2000)}`);
      });
      const viewAfter = Date.now() - killedAt;
      await waitUntil("/healthz ok", 5000, async () => (await healthz()) === "200 ok");
      watching = false;
      await watcher;
      const restarted = [/the state watch delivered nothing/, /the history feed delivered nothing/].filter((r) => r.test(c.logs())).length;
      console.log(
        `nats cluster: after the SIGKILL of ${cluster.nodes[home].name} (stream leader, the collector's node) /healthz said ${said.join(", ") || "200 ok throughout"}; ` +
          `the agent's state and event were stored ${storedAt - killedAt} ms after the kill and in the fleet view ${viewAfter} ms after it (bound ${bound} ms); ${restarted} stalled feed(s) restarted`,
      );
      for (const s of said) assert.match(s, /: (200 ok|503 unavailable: NATS connection lost: reconnecting)$/, "during the gap /healthz says the NATS connection is being re-made, nothing else");
      assert.ok(healthyAgainAfter < ELECTION_MAX_MS + 5000, `/healthz ok again ${healthyAgainAfter} ms after the kill`);
      assert.equal(c.collector.runner("cl-host", "r1")?.stale, false);
      const page = await app.request("/api/v1/runners");
      assert.equal(page.status, 200);
      assert.deepEqual(((await page.json()) as { runners: { name: string }[] }).runners.map((r) => r.name), ["r1"]);
      assert.deepEqual(c.collector.recentEvents(10).map((e) => e.seq), [1, 2], "each event once");
    });
  } finally {
    await c.close();
    await cluster.close();
  }
});

/** The nodes that host the stream's ordered consumers (the KV watches and feeds), by consumer name. */
async function orderedConsumers(cluster: NatsCluster, stream: string): Promise<Map<string, string>> {
  const nc = await connect({ servers: cluster.urls.filter((_, i) => cluster.nodes[i].running()), timeout: 2000 });
  try {
    const out = new Map<string, string>();
    for await (const ci of (await jetstreamManager(nc, { timeout: 2000 })).consumers.list(stream)) {
      if (ci.name.startsWith("oc_") && ci.cluster?.leader) out.set(ci.name, ci.cluster.leader);
    }
    return out;
  } finally {
    await nc.close();
  }
}

test("nats cluster - the fleet view recovers when the node hosting the state watch's consumer dies, the collector connected elsewhere", { timeout: 60_000 }, async () => {
  const cluster = await startNatsCluster();
  const nc = await connect({ servers: cluster.urls });
  try {
    await createBucket(nc, "RTR_STATE", { replicas: 3 });
  } finally {
    await nc.close();
  }
  // The watch's consumer has one replica, placed on any of the three nodes: a collector whose own
  // connection is to another node is wanted, so that only the consumer dies (a collector on the
  // same node would see its connection drop and re-make the watch on reconnect).
  let c: ReturnType<typeof startCollector> | null = null;
  let home = 0;
  let watchNode = -1;
  try {
    for (let attempt = 1; watchNode < 0; attempt++) {
      const before = await orderedConsumers(cluster, "KV_RTR_STATE");
      c = startCollector(clusterCollectorConfig(cluster, home, "collector"));
      let created: string[] = [];
      await waitUntil("the collector's state watch", 20_000, async () => (created = [...(await orderedConsumers(cluster, "KV_RTR_STATE")).entries()].filter(([name]) => !before.has(name)).map(([, node]) => node)).length === 1);
      const node = cluster.indexOf(created[0]);
      if (node !== home) watchNode = node;
      else {
        assert.ok(attempt < 8, "the watch's consumer landed on the collector's own node eight times running");
        await c.close();
        home = (home + 1) % 3;
      }
    }
    const collector = c!;
    await withPublisher({ urls: [cluster.urls[home]] }, async (publisher) => {
      await publisher.ready();
      await publisher.putState(runnerState());
      await waitUntil("the collector to see the runner", 20_000, async () => collector.collector.runner("cl-host", "r1") !== undefined);
      const killedAt = Date.now();
      await cluster.kill(watchNode);
      await publisher.putState(runnerState({ total_refreshes: 4 }));
      const storedAt = Date.now();
      // Seen stalled within two checks once the bucket answers; a new consumer on the stream can
      // take the server 11–22 s after the kill (measured with nats-server 2.9).
      const bound = 3 * ELECTION_MAX_MS + 2 * STALL_CHECK_MS;
      await waitUntil("the fleet view to show the runner's new state", Math.max(1000, bound - (storedAt - killedAt)), async () => collector.collector.runner("cl-host", "r1")?.state.total_refreshes === 4).catch((err) => {
        throw new Error(`${err.message}\n${collector.logs().slice(-2000)}`);
      });
      console.log(`nats cluster: the state put was stored ${storedAt - killedAt} ms after the SIGKILL of ${cluster.nodes[watchNode].name} (hosting the state watch's consumer; the collector on ${cluster.nodes[home].name}) and in the fleet view ${Date.now() - killedAt} ms after the kill (bound ${bound} ms)`);
      assert.match(collector.logs(), /the state watch delivered nothing since revision \d+ while the bucket is at \d+ \(its consumer's NATS node may be gone\): watching again/);
      assert.equal(collector.collector.health().ok, true, "the collector's connection never dropped");
      await publisher.putState(runnerState({ total_refreshes: 5 }));
      await waitUntil("the next state too", 10_000, async () => collector.collector.runner("cl-host", "r1")?.state.total_refreshes === 5);
    });
  } finally {
    await c?.close();
    await cluster.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The shipped cluster configs (docs/nats.md, "Cluster")

/** `nats-server -t -c file`: exit code and what it printed. */
function natsServerTest(file: string, env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(natsServerBinary(), ["-t", "-c", file], { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** The config without comments and blank lines. */
function configLines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.replace(/(^|\s)#.*$/, "").trim())
    .filter(Boolean);
}

test("nats cluster - the cluster configs are valid for nats-server -t: three nodes on one host, and three hosts with TLS routes", { timeout: 60_000 }, async () => {
  const oneHost = join(REPO_ROOT, "config/nats");
  for (const i of [1, 2, 3]) {
    const run = await natsServerTest(join(oneHost, `cluster-node-${i}.conf`));
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /is valid/);
  }

  const shipped = join(REPO_ROOT, "config/nats/cluster-3-hosts");
  assert.deepEqual((await readdir(shipped)).sort(), ["accounts.conf", "nats-1.conf", "nats-2.conf", "nats-3.conf"]);
  const dir = await mkdtemp(join(tmpdir(), "rtr-cluster-conf-"));
  try {
    // The placeholders' certificate paths, with a CA and a certificate made here (both nodes'
    // names, server and client authentication, as the comments ask for).
    const ssl = (...args: string[]) =>
      new Promise<void>((resolve, reject) => execFile("openssl", args, { cwd: dir }, (err, _out, stderr) => (err ? reject(new Error(`openssl ${args[0]}: ${stderr}`)) : resolve())));
    await ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=rtr-test-ca");
    await writeFile(join(dir, "san.ext"), "subjectAltName=DNS:nats-1.example.com,DNS:nats-2.example.com,DNS:nats-3.example.com\nextendedKeyUsage=serverAuth,clientAuth\n");
    await ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=nats.example.com");
    await ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.ext");
    for (const ext of ["pem", "key"]) await writeFile(join(dir, `route.${ext}`), await readFile(join(dir, `server.${ext}`)));

    const accounts = await readFile(join(shipped, "accounts.conf"), "utf8");
    await writeFile(join(dir, "accounts.conf"), accounts);
    const passwords = Object.fromEntries([...accounts.matchAll(/password: \$(\w+)/g)].map((m) => [m[1], `pw-${m[1]}`]));
    assert.equal(Object.keys(passwords).length, 4, "three agent hosts and the collector");
    const names = new Set<string>();
    for (const i of [1, 2, 3]) {
      const text = await readFile(join(shipped, `nats-${i}.conf`), "utf8");
      const lines = configLines(text);
      // One node per host: its own name, routes to the two others (never to itself), TLS both ways.
      names.add(lines.find((l) => l.startsWith("server_name:"))!);
      assert.ok(lines.includes(`server_name: nats-${i}`));
      assert.ok(lines.includes(`client_advertise: "nats-${i}.example.com:4222"`));
      assert.ok(lines.includes(`advertise: "nats-${i}.example.com:6222"`));
      const routes = lines.find((l) => l.startsWith("routes:"))!;
      assert.deepEqual(
        [...routes.matchAll(/nats-route:\/\/nats-(\d)\.example\.com:6222/g)].map((m) => Number(m[1])),
        [1, 2, 3].filter((j) => j !== i),
      );
      assert.equal(lines.filter((l) => l === "tls {").length, 2, "clients and routes over TLS");
      assert.ok(lines.includes("verify: true"), "routes check each other's certificate");
      assert.ok(lines.includes('include "accounts.conf"'));
      const file = join(dir, `nats-${i}.conf`);
      await writeFile(file, text.replaceAll("/etc/nats/", `${dir}/`).replaceAll("/var/lib/nats/", `${dir}/n${i}/`));
      const run = await natsServerTest(file, passwords);
      assert.equal(run.code, 0, `nats-${i}.conf: ${run.output}`);
      assert.match(run.output, /is valid/);
    }
    assert.equal(names.size, 3);
    // The accounts are the single-server example's (whose entries test/nats-permissions.test.ts
    // compares with what the nats-permissions command prints).
    const single = await readFile(join(REPO_ROOT, "config/nats/nats-server-3-hosts.conf"), "utf8");
    assert.deepEqual(configLines(accounts), configLines(single.slice(single.indexOf("\naccounts {") + 1)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
