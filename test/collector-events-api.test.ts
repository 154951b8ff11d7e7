// GET /api/v1/events against a real collector and nats-server (issue 14 item 7): requests do not
// map onto JetStream consumers, bursts get 429 with Retry-After, and the API token guards it.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { waitFor } from "./helpers/agent.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector, type TestCollector } from "./helpers/collector.ts";
import { createCollectorApp } from "../src/http/collector-app.ts";
import { eventSubject } from "../src/nats/subjects.ts";
import type { Envelope } from "../src/shared/types.ts";

const TOKEN = "api-token-0123456789";

async function withFleet(fn: (ctx: { nats: NatsServer; c: TestCollector; nc: NatsConnection }) => Promise<void>): Promise<void> {
  const nats = await startNatsServer();
  const c = startCollector(collectorConfig(nats.url));
  const nc = await connect({ servers: nats.url });
  try {
    await waitFor(() => c.collector.health().ok, "collector ready");
    const js = jetstream(nc);
    for (let i = 1; i <= 30; i++) {
      const host = `ci-${i % 3}.example.com`;
      const e: Envelope = {
        v: 1, id: `e${i}`, seq: i, type: i % 2 ? "token.refreshed" : "runner.registered", time: new Date().toISOString(), host, runner: "runner-1",
        scope: { org: "acme" }, agent: { version: "1", runtime: "node" }, data: {},
      };
      await js.publish(eventSubject("rtr", e), new TextEncoder().encode(JSON.stringify(e)), { msgID: e.id });
    }
    await fn({ nats, c, nc });
  } finally {
    await nc.close();
    await c.close();
    await nats.close();
  }
}

/** Counts consumer creations on the events stream, as the JetStream API sees them. */
function countConsumerCreates(nc: NatsConnection): { count(): number; stop(): void } {
  let n = 0;
  const sub = nc.subscribe("$JS.API.CONSUMER.>", {
    callback: (_err, msg) => {
      if (/CREATE\.RTR_EVENTS(\.|$)/.test(msg.subject)) n++;
    },
  });
  return { count: () => n, stop: () => sub.unsubscribe() };
}

test("collector events api - a hundred requests share reads: at most one reading consumer at a time, none left after", async () => {
  await withFleet(async ({ c, nc }) => {
    const app = createCollectorApp(c.collector, { version: "t", eventsRateLimit: { burst: 1000, perSecond: 1000 } });
    const jsm = await jetstreamManager(nc);
    const creates = countConsumerCreates(nc);
    await nc.flush();
    let most = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const list = await jsm.consumers.list("RTR_EVENTS").next();
        // A consumer deleted while the server lists them comes back as null.
        // The durable and each collector's history feed (an ordered consumer, rtr-collector-history_…) stay.
        most = Math.max(most, list.filter((ci) => ci && !ci.name.startsWith("rtr-collector")).length);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const queries = ["", "?host=ci-1.example.com", "?type=token.refreshed", "?limit=5"];
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => app.request(`/api/v1/events${queries[i % queries.length]}`)));
    polling = false;
    await poll;
    await nc.flush();
    assert.ok(answers.every((r) => r.status === 200), answers.map((r) => r.status).join(","));
    const all = (await answers[0].json()) as { events: Envelope[] };
    assert.equal(all.events.length, 30, "the whole stream read");
    const host = (await answers[1].json()) as { events: Envelope[] };
    assert.ok(host.events.length === 10 && host.events.every((e) => e.host === "ci-1.example.com"));
    assert.equal(((await answers[3].json()) as { events: Envelope[] }).events.length, 5);
    // Three filters (limit=5 is a slice of the unfiltered read): three reads, not a hundred.
    assert.ok(creates.count() >= 1 && creates.count() <= 3, `${creates.count()} consumers created for 100 requests`);
    assert.ok(most <= 1, `${most} reading consumers at once`);
    const left = (await jsm.consumers.list("RTR_EVENTS").next()).map((ci) => ci.name).filter((n) => !n.startsWith("rtr-collector-history"));
    assert.deepEqual(left, ["rtr-collector"], "every reading consumer deleted");
    creates.stop();
  });
});

test("collector events api - a burst beyond the rate limit is 429 with Retry-After, and creates no consumer", async () => {
  await withFleet(async ({ c, nc }) => {
    const app = createCollectorApp(c.collector, { version: "t", eventsRateLimit: { burst: 5, perSecond: 0.5 } });
    const creates = countConsumerCreates(nc);
    await nc.flush();
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => app.request(`/api/v1/events?host=ci-${i}.example.com`)));
    await nc.flush();
    const statuses = answers.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 5, statuses.join(","));
    assert.equal(statuses.filter((s) => s === 429).length, 7, statuses.join(","));
    const limited = answers.find((r) => r.status === 429)!;
    assert.ok(Number(limited.headers.get("retry-after")) >= 1, "Retry-After in seconds");
    assert.match(((await limited.json()) as { error: string }).error, /too many requests/);
    assert.ok(creates.count() >= 1 && creates.count() <= 5, `${creates.count()} consumers for 5 admitted requests`);
    // Other routes are not limited.
    assert.equal((await app.request("/api/v1/runners")).status, 200);
    creates.stop();
  });
});

test("collector events api - with an API token, no token is 401 and reads nothing; the token gets the events", async () => {
  await withFleet(async ({ c, nc }) => {
    const app = createCollectorApp(c.collector, { version: "t", authToken: TOKEN, eventsRateLimit: { burst: 2, perSecond: 0.1 } });
    const creates = countConsumerCreates(nc);
    await nc.flush();
    for (let i = 0; i < 5; i++) {
      const res = await app.request("/api/v1/events");
      assert.equal(res.status, 401, "without the token");
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.doesNotMatch(await res.text(), new RegExp(TOKEN));
    }
    assert.equal((await app.request("/api/v1/events", { headers: { Authorization: "Bearer wrong-token" } })).status, 401);
    await nc.flush();
    assert.equal(creates.count(), 0, "a refused request never reaches the stream");
    // Refused requests used none of the bucket: the token holder still gets a full burst.
    const ok = await app.request("/api/v1/events", { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { events: Envelope[] }).events.length, 30);
    assert.equal((await app.request("/api/v1/events?type=runner.registered", { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
  });
});
