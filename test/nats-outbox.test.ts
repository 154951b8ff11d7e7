// The outbox through a real outage (SPEC 8): events published while nats-server is down wait on
// disk, identical failures coalesced; when it is back they arrive in order, once each, and a
// replay of the same outbox (a crash after publishing, before the delete) adds nothing.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createLogger } from "../src/shared/logger.ts";
import { NatsPublisher } from "../src/nats/publisher.ts";
import type { Envelope, EventType } from "../src/shared/types.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { streamEvents } from "./helpers/nats-read.ts";

const runtime = createNodeRuntime();
const log = createLogger({ level: "silent", write: () => {} });

function emitter() {
  let seq = 0;
  return (type: EventType, runner: string | null, data: Record<string, unknown> = {}): Envelope => ({
    v: 1,
    id: crypto.randomUUID(),
    seq: ++seq,
    type,
    time: new Date(Date.now() + seq).toISOString(),
    host: "ci-01.example.com",
    runner,
    scope: { org: "acme" },
    agent: { version: "test", runtime: "node" },
    data,
  });
}

function publisher(url: string, stateDir: string): NatsPublisher {
  return new NatsPublisher({ runtime, config: { servers: [url], prefix: "rtr", name: "ci-01.example.com" }, stateDir, log, mode: "check" });
}

test("nats outbox - an outage's events, identical failures coalesced, replay in order with no duplicates", async () => {
  const nats = await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), "rtr-nats-outbox-"));
  try {
    const next = emitter();
    await nats.stop();
    const during = publisher(nats.url, dir);
    await during.ready();
    const published: Envelope[] = [];
    const publish = async (e: Envelope) => {
      published.push(e);
      await during.publishEvent(e);
    };
    await publish(next("token.refreshed", null, { expires_at: "2026-11-27T11:00:00Z" }));
    // A long outage of GitHub too: the same failure every pass, a runner failing in between.
    for (let i = 1; i <= 20; i++) {
      await publish(next("token.refresh_failed", null, { error: "HTTP 502 from GitHub", attempt: 3, consecutive_failures: i }));
      if (i % 5 === 0) await publish(next("runner.registration_failed", "runner-1", { step: "config", error: "no token", consecutive_failures: i / 5 }));
    }
    await publish(next("token.refresh_failed", null, { error: "HTTP 401 Bad credentials", attempt: 1, consecutive_failures: 21 }));
    await publish(next("token.refreshed", null, { expires_at: "2026-11-27T12:00:00Z" }));
    assert.equal(await during.pending(), 5, "one event per run of identical failures (runner-1's four differ by nothing but the count)");
    await during.close();
    const saved = join(dir, "outbox-before-replay");
    await cp(join(dir, "outbox"), saved, { recursive: true });

    await nats.start();
    const after = publisher(nats.url, dir);
    await after.ready();
    await after.close();
    const stored = await streamEvents(nats.url);
    assert.deepEqual(
      stored.map((s) => s.event.type),
      ["token.refreshed", "token.refresh_failed", "runner.registration_failed", "token.refresh_failed", "token.refreshed"],
    );
    const seqs = stored.map((s) => s.event.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in order");
    assert.equal(new Set(stored.map((s) => s.event.id)).size, stored.length, "no duplicates");
    for (const s of stored) assert.equal(s.msgId, s.event.id, "Nats-Msg-Id is the event id");
    const run = stored[1].event;
    assert.equal(run.id, published[1].id, "the coalesced event is the run's first");
    assert.deepEqual(run.data.coalesced, { count: 20, last_seq: published[published.length - 4].seq, last_time: published[published.length - 4].time });
    assert.equal(run.data.consecutive_failures, 20, "with the latest occurrence's data");
    assert.equal((stored[2].event.data.coalesced as { count: number }).count, 4);
    assert.equal(await after.pending(), 0);

    // A crash after publishing but before deleting: the same outbox replays, JetStream drops repeats.
    await rm(join(dir, "outbox"), { recursive: true, force: true });
    await cp(saved, join(dir, "outbox"), { recursive: true });
    const again = publisher(nats.url, dir);
    await again.ready();
    await again.close();
    const restored = await streamEvents(nats.url);
    assert.equal(restored.length, stored.length, "the replayed copies were deduplicated by Nats-Msg-Id");
  } finally {
    await rm(dir, { recursive: true, force: true });
    await nats.close();
  }
});

test("nats state - a pass's state puts are plain publishes to the keys' subjects: stored without waiting for JetStream's acknowledgement", async () => {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const { Kvm } = await import("@nats-io/kv");
  const nats = await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), "rtr-nats-state-"));
  const p = new NatsPublisher({ runtime, config: { servers: [nats.url], prefix: "rtr", name: "ci-01.example.com" }, stateDir: dir, log, mode: "daemon" });
  const nc = await connect({ servers: nats.url });
  try {
    await p.ready();
    // A stream that never acknowledges: a put that waited for the acknowledgement would still be
    // waiting (and then failing, its state left pending) when the next pass came.
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("KV_RTR_STATE");
    await jsm.streams.update("KV_RTR_STATE", { ...info.config, no_ack: true });
    const doc = (name: string) => ({ v: 1, host: "ci-01.example.com", name, time: new Date().toISOString(), interval: 60, status: "ok" }) as never;
    await Promise.all(Array.from({ length: 20 }, (_, i) => p.putState(doc(`runner-${i + 1}`))));
    assert.equal((p as unknown as { pendingStates: Map<string, unknown> }).pendingStates.size, 0, "every state sent, none left waiting");
    const kv = await new Kvm(nc).open("RTR_STATE");
    for (let i = 1; i <= 20; i++) {
      let entry = await kv.get(`ci-01=2Eexample=2Ecom.runner-${i}`);
      for (let tries = 0; !entry && tries < 50; tries++) {
        await new Promise((r) => setTimeout(r, 100));
        entry = await kv.get(`ci-01=2Eexample=2Ecom.runner-${i}`);
      }
      assert.equal((entry?.json() as { name?: string } | undefined)?.name, `runner-${i}`, `runner-${i}'s state is stored`);
    }
  } finally {
    await nc.close();
    await p.close();
    await nats.close();
    await rm(dir, { recursive: true, force: true });
  }
});
