import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { describePublishError, electionBackoff, isElectionError, NO_LEADER_MESSAGE, retryThroughElection } from "./retry.ts";
import { replicasMismatch } from "./cluster.ts";
import { natsSchema } from "../config/schema.ts";

// Stand-ins with nats.js's error names (its JetStreamNotEnabled is not exported from the package).
class JetStreamNotEnabled extends Error {
  override name = "JetStreamNotEnabled";
}
class NoRespondersError extends Error {
  override name = "NoRespondersError";
}
class TimeoutError extends Error {
  override name = "TimeoutError";
}

function clock() {
  let t = 0;
  return { now: () => t, sleep: async (ms: number) => void (t += ms) };
}

test("election retry - no responders, timeouts and nats.js's JetStreamNotEnabled count as an election", () => {
  assert.ok(isElectionError(new JetStreamNotEnabled("jetstream is not enabled", { cause: new NoRespondersError("no responders: '$JS.API'") })));
  assert.ok(isElectionError(new TimeoutError("timeout")));
  assert.ok(isElectionError(Object.assign(new Error("JetStream system temporarily unavailable"), { code: 503 })));
  assert.ok(!isElectionError(new Error("permissions violation for publish to rtr.events.x")));
  assert.ok(!isElectionError(new Error("wrong last sequence: 3")));
});

test("election retry - an election is never described as JetStream not enabled", () => {
  const msg = describePublishError(new JetStreamNotEnabled("jetstream is not enabled"));
  assert.equal(msg, NO_LEADER_MESSAGE);
  assert.doesNotMatch(msg, /not enabled/i);
  assert.match(describePublishError(new TimeoutError("timeout")), /no JetStream stream leader answered.*timed out/);
  assert.equal(describePublishError(new Error("permissions violation")), "permissions violation");
});

test("election retry - retries until the leader answers", async () => {
  const c = clock();
  let calls = 0;
  const result = await retryThroughElection(async () => {
    if (++calls < 4) throw new NoRespondersError("no responders");
    return "ack";
  }, { ...c, random: () => 1 });
  assert.equal(result, "ack");
  assert.equal(calls, 4);
  assert.equal(c.now(), 250 + 500 + 1000, "backoff doubles from 250 ms");
});

test("election retry - gives up within the budget and throws the last error", async () => {
  const c = clock();
  let calls = 0;
  await assert.rejects(retryThroughElection(async () => {
    calls++;
    throw new JetStreamNotEnabled("jetstream is not enabled");
  }, { ...c, budgetMs: 15_000, random: () => 1 }), JetStreamNotEnabled);
  assert.ok(c.now() < 15_000, `stopped at ${c.now()} ms`);
  assert.ok(calls >= 8, `${calls} attempts`);
});

test("election retry - other errors and a dropped connection are not retried", async () => {
  const c = clock();
  let calls = 0;
  await assert.rejects(retryThroughElection(async () => {
    calls++;
    throw new Error("permissions violation");
  }, c));
  assert.equal(calls, 1);
  await assert.rejects(retryThroughElection(async () => {
    calls++;
    throw new NoRespondersError("no responders");
  }, { ...c, shouldRetry: () => false }));
  assert.equal(calls, 2);
});

test("election retry - backoff is jittered between half and all of the doubling step, capped at 2 s", () => {
  assert.equal(electionBackoff(1, () => 0), 125);
  assert.equal(electionBackoff(1, () => 1), 250);
  assert.equal(electionBackoff(10, () => 1), 2000);
});

test("cluster - nats.replicas defaults to 1 and accepts 1 to 5 whole replicas", () => {
  assert.equal(natsSchema.parse({ servers: "nats://a:4222" }).replicas, 1);
  assert.equal(natsSchema.parse({ servers: ["nats://a:4222", "nats://b:4222", "nats://c:4222"], replicas: 3 }).replicas, 3);
  for (const bad of [0, 6, 2.5, "3"]) assert.ok(!natsSchema.safeParse({ servers: "nats://a:4222", replicas: bad }).success, `replicas: ${bad}`);
});

test("cluster - an adopted stream with other replicas gets a warning naming the nats stream edit command", () => {
  assert.equal(replicasMismatch("RTR_EVENTS", 3, 3), null);
  assert.match(replicasMismatch("RTR_EVENTS", 1, 3)!, /RTR_EVENTS has 1 replica but nats\.replicas is 3.*nats stream edit RTR_EVENTS --replicas 3/);
  assert.match(replicasMismatch("KV_RTR_STATE", 3, 1)!, /nats stream edit KV_RTR_STATE --replicas 1/);
});
