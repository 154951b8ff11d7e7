// SPEC 16 on a real three-node JetStream cluster: R3 stream and buckets, publishing through the
// SIGKILL of the stream leader, and the outbox when quorum is lost.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createLogger } from "../src/shared/logger.ts";
import { NatsPublisher } from "../src/nats/publisher.ts";
import { Lease } from "../src/collector/lease.ts";
import type { Envelope } from "../src/shared/types.ts";
import type { NatsConfig } from "../src/config/types.ts";
import { startNatsCluster, type NatsCluster } from "./helpers/nats-cluster.ts";
import { streamEvents } from "./helpers/nats-read.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";

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
