// The collector trusts no document (issue 13 item 5): malformed or forged state documents and
// forged events, put through a real nats-server into a real collector and its HTTP app.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { waitFor } from "./helpers/agent.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector, type TestCollector } from "./helpers/collector.ts";
import { createCollectorApp } from "../src/http/collector-app.ts";
import { eventSubject, inboxPrefixFor, stateKey } from "../src/nats/subjects.ts";
import { agentPermissions, collectorPermissions, renderUser } from "../src/nats/permissions.ts";
import { accountConfig, connectAs } from "./helpers/nats-auth.ts";
import type { Envelope, StateDocument } from "../src/shared/types.ts";

const enc = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

function doc(host: string, name: string, over: Record<string, unknown> = {}): StateDocument {
  const now = Math.floor(Date.now() / 1000);
  return {
    v: 1, host, name, time: new Date().toISOString(), interval: 60, dir: `/srv/${name}`, scope: { org: "acme" }, ephemeral: false,
    registered: true, agent_id: 7, service_active: true, online: true, busy: false, token_expires_at: now + 3000,
    last_refresh_timestamp: now - 600, total_refreshes: 3, failed_refreshes: 0, consecutive_failures: 0, registrations: 1,
    status: "ok", last_error: null, ...over,
  } as StateDocument;
}

function envelope(host: string, over: Partial<Envelope> = {}): Envelope {
  return {
    v: 1, id: crypto.randomUUID(), seq: 1, type: "token.refresh_failed", time: new Date().toISOString(), host, runner: null,
    scope: { org: "acme" }, agent: { version: "9.9.9", runtime: "node" }, data: { error: "forged", attempt: 9, consecutive_failures: 9 }, ...over,
  };
}

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

async function openState(nc: NatsConnection): Promise<KV> {
  return new Kvm(jetstream(nc, { timeout: 2000 })).open("RTR_STATE");
}

/** The app over the real collector: every page must answer 200 and show the good runner. */
async function assertPagesServe(c: TestCollector, good: string[]): Promise<string> {
  const app = createCollectorApp(c.collector, { version: "test" });
  const api = await app.request("/api/v1/runners");
  assert.equal(api.status, 200, "/api/v1/runners");
  const runners = ((await api.json()) as { runners: { host: string; runner: string }[] }).runners;
  assert.deepEqual(runners.map((r) => `${r.host}/${r.runner}`), good);
  const page = await app.request("/");
  assert.equal(page.status, 200, "/");
  const html = await page.text();
  for (const g of good) assert.ok(html.includes(g.split("/")[0]), `dashboard shows ${g}`);
  const metrics = await app.request("/metrics");
  assert.equal(metrics.status, 200, "/metrics");
  return metrics.text();
}

test("collector trust - malformed state documents are dropped, counted by reason and logged once per key; every page still answers", async () => {
  const nats = await startNatsServer();
  const c = startCollector(collectorConfig(nats.url));
  const nc = await connect({ servers: nats.url });
  try {
    await waitFor(() => c.collector.health().ok, "collector ready");
    const kv = await openState(nc);
    await kv.put(stateKey("ci-good.example.com", "runner-1"), enc(doc("ci-good.example.com", "runner-1")));
    const bad: [string, Uint8Array][] = [
      // Wrong types where the rules and pages read: before, these broke /metrics for everyone.
      [stateKey("wrong-types", "r"), enc(doc("wrong-types", "r", { scope: "org:acme", consecutive_failures: "many", registered: "yes", status: "on fire", token_expires_at: "soon" }))],
      [stateKey("huge", "r"), enc(doc("huge", "r", { last_error: "x".repeat(300_000) }))],
      [stateKey("missing", "r"), enc({ v: 1, host: "missing", name: "r" })],
      [stateKey("bytes", "r"), Uint8Array.from([0xff, 0xfe, 0x00, 0x7b, 0x22])],
      [stateKey("newer", "r"), enc({ ...doc("newer", "r"), v: 2 })],
      [stateKey("array", "r"), enc([doc("array", "r")])],
    ];
    // Each put twice: counted twice, logged once.
    for (let i = 0; i < 2; i++) for (const [key, value] of bad) await kv.put(key, value);
    // A newer agent's extra field and a long (but not huge) error are kept, the error cut short.
    await kv.put(stateKey("ci-newer.example.com", "runner-2"), enc(doc("ci-newer.example.com", "runner-2", { pool: { slot: 3 }, status: "failing", last_error: "e".repeat(10_000) })));
    const expected = { not_json: 2, too_large: 2, unknown_version: 2, invalid: 6, key_mismatch: 0 };
    await waitFor(() => JSON.stringify(Object.fromEntries(c.collector.documentsDropped())) === JSON.stringify(expected), `drops counted ${JSON.stringify(expected)}`);
    await waitFor(() => c.collector.runners().length === 2, "the two good runners in the view");

    const metrics = await assertPagesServe(c, ["ci-good.example.com/runner-1", "ci-newer.example.com/runner-2"]);
    for (const [reason, n] of Object.entries(expected)) {
      assert.equal(sample(metrics, "runner_token_collector_documents_dropped_total", `reason="${reason}"`), n, reason);
    }
    assert.equal(sample(metrics, "runner_token_consecutive_failures", 'host="ci-good.example.com",runner="runner-1"'), 0);
    const newer = c.collector.runner("ci-newer.example.com", "runner-2")!;
    assert.deepEqual((newer.state as unknown as { pool: unknown }).pool, { slot: 3 }, "unknown fields kept");
    assert.ok(newer.state.last_error!.length <= 4000, "a long error is cut, not dropped");

    const logs = c.logs().split("\n").filter((l) => l.includes("dropped the state document"));
    assert.equal(logs.length, bad.length, "one log line per key, not per put");
    assert.ok(logs.every((l) => l.length < 2000), "a huge document is never copied into the log");

    // The key's last good document survives garbage put over it; a good one afterwards is logged again when it breaks.
    const goodKey = stateKey("ci-good.example.com", "runner-1");
    await kv.put(goodKey, Uint8Array.from([0x00]));
    await waitFor(() => c.collector.documentsDropped().get("not_json") === 3, "garbage over a good key counted");
    assert.equal(c.collector.runner("ci-good.example.com", "runner-1")?.state.status, "ok");
  } finally {
    await nc.close();
    await c.close();
    await nats.close();
  }
});

const PASSWORDS = { collector: "collector-pw-123456", "agent-a": "agent-a-pw-123456", "agent-b": "agent-b-pw-123456" };

/** The permissions the product generates (nats-permissions): each agent publishes only under its own host. */
function serverConfig(): string {
  const agent = (user: string, host: string) => renderUser({ user }, agentPermissions({ host, prefix: "rtr", tokenScopes: [], jitScopes: [] }), []);
  return accountConfig([renderUser({ user: "collector" }, collectorPermissions({ prefix: "rtr" }), []), agent("agent-a", "host-a"), agent("agent-b", "host-b")], PASSWORDS);
}

test("collector trust - host A forging host B's state or events raises no alert for B, and is counted", async () => {
  const nats = await startNatsServer({ config: serverConfig() });
  const c = startCollector(collectorConfig(nats.url, { user: "collector", password: PASSWORDS.collector }));
  const a = await connectAs(nats.url, "agent-a", PASSWORDS["agent-a"], inboxPrefixFor("host-a"));
  const b = await connectAs(nats.url, "agent-b", PASSWORDS["agent-b"], inboxPrefixFor("host-b"));
  try {
    await waitFor(() => c.collector.health().ok, "collector ready", 30_000);
    const kvA = await openState(a);
    const kvB = await openState(b);
    await kvB.put(stateKey("host-b", "runner-1"), enc(doc("host-b", "runner-1")));
    await kvA.put(stateKey("host-a", "runner-1"), enc(doc("host-a", "runner-1")));
    await waitFor(() => c.collector.runners().length === 2, "both hosts reported");

    const failing = { consecutive_failures: 9, status: "failing", last_error: "forged" };
    // A under its own key, claiming B in the body: the collector sees the mismatch.
    await kvA.put(stateKey("host-a", "runner-1"), enc(doc("host-b", "runner-1", failing)));
    // A under B's key with B's body: only NATS permissions can tell who put it, and they refuse it.
    await assert.rejects(kvA.put(stateKey("host-b", "runner-1"), enc(doc("host-b", "runner-1", failing))));
    const js = jetstream(a, { timeout: 2000 });
    // An event on A's subject claiming B: dropped and counted, never shown as B's.
    const forged = envelope("host-b");
    await js.publish(eventSubject("rtr", { host: "host-a", runner: null, type: forged.type }), enc(forged));
    await assert.rejects(js.publish(eventSubject("rtr", forged), enc(envelope("host-b"))), "A may not publish under B's subject");
    // A's own event of a type this version does not know: kept, counted as _unknown.
    const future = envelope("host-a", { type: "pool.slot_started" as Envelope["type"], data: {} });
    await js.publish(eventSubject("rtr", future), enc(future));

    await waitFor(() => c.collector.documentsDropped().get("key_mismatch") === 1, "forged body counted as key_mismatch");
    await waitFor(() => c.collector.eventCounts().get("_host_mismatch") === 1 && c.collector.eventCounts().get("_unknown") === 1, "forged event and unknown type counted");
    const alerts = await c.collector.evaluate();
    assert.deepEqual(alerts.filter((al) => al.host === "host-b"), [], "no alert for host B");
    assert.equal(c.collector.runner("host-b", "runner-1")?.state.consecutive_failures, 0);
    assert.ok(!c.collector.recentEvents(100).some((e) => e.host === "host-b"), "no event shown as host B's");
    assert.ok(!(await c.collector.events({ limit: 100 })).some((e) => e.host === "host-b"), "the stream reader drops it too");

    const metrics = await assertPagesServe(c, ["host-a/runner-1", "host-b/runner-1"]);
    assert.equal(sample(metrics, "runner_token_collector_events_total", 'type="_host_mismatch"'), 1);
    assert.equal(sample(metrics, "runner_token_collector_events_total", 'type="_unknown"'), 1);
    assert.doesNotMatch(metrics, /type="pool\.slot_started"/, "no label value from outside");
    assert.equal(c.logs().split("\n").filter((l) => l.includes("whose host is not the one in its subject")).length, 1);
  } finally {
    await a.close();
    await b.close();
    await c.close();
    await nats.close();
  }
});
