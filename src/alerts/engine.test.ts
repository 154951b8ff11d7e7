import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { createLogger } from "../shared/logger.ts";
import { PluginTarget, DEFAULT_DELIVERY, type DeliveryPolicy } from "./delivery.ts";
import { AlertEngine, type AlertCondition, type AlertRecord, type AlertStore } from "./engine.ts";
import { AlertDeliveryError, type Notification, type PluginInstance } from "./sdk.ts";

const log = createLogger({ level: "silent", write: () => {} });

class MemoryStore implements AlertStore {
  records: Record<string, AlertRecord> = {};
  async load() {
    return structuredClone(this.records);
  }
  async save(records: Record<string, AlertRecord>) {
    this.records = structuredClone(records);
  }
}

/** A receiver that records what it got and fails as told. */
class Receiver implements PluginInstance {
  got: Notification[] = [];
  failures: Error[] = [];
  delayMs = 0;
  async send(n: Notification, signal: AbortSignal): Promise<void> {
    if (this.delayMs) await new Promise((r, j) => { const t = setTimeout(r, this.delayMs); signal.addEventListener("abort", () => { clearTimeout(t); j(new Error("aborted")); }); });
    const f = this.failures.shift();
    if (f) throw f;
    this.got.push(n);
  }
  statuses(): string[] {
    return this.got.map((n) => `${n.status}${n.reminder ? "+reminder" : ""}:${n.key}`);
  }
}

const FAST: DeliveryPolicy = { ...DEFAULT_DELIVERY, timeoutSeconds: 1, backoffSeconds: 0.01, maxBackoffSeconds: 0.05, maxAttempts: 3 };

function setup(options: { receivers?: Record<string, Receiver>; groups?: Record<string, boolean>; store?: MemoryStore; repeatInterval?: number; groupWait?: number; policy?: Partial<DeliveryPolicy>; clock?: { t: number } } = {}) {
  const receivers = options.receivers ?? { slack: new Receiver(), pagerduty: new Receiver() };
  const stop = new AbortController();
  const counts: string[] = [];
  const clock = options.clock ?? { t: Date.parse("2026-11-27T10:00:00Z") };
  const now = () => clock.t;
  const targets = Object.entries(receivers).map(
    ([name, r]) => new PluginTarget(name, options.groups?.[name] ?? name !== "pagerduty", r, { ...FAST, ...options.policy }, log, { count: (p, o) => counts.push(`${p}:${o}`) }, stop.signal),
  );
  const store = options.store ?? new MemoryStore();
  const engine = new AlertEngine({ targets, store, repeatInterval: options.repeatInterval ?? 3600, groupWait: options.groupWait ?? 0, sendResolved: true, log, now });
  return { engine, receivers, store, counts, clock, targets, stop };
}

function failing(key = "refresh_failures/ci-01/org:acme", state: "pending" | "firing" = "firing"): AlertCondition {
  const [rule, host] = key.split("/");
  return { key, rule, host, runner: null, scope: { org: "acme" }, severity: "error", summary: "token refresh failed", details: {}, state };
}

test("alert engine - pending then firing sends one notification per plugin, and nothing while it keeps firing", async () => {
  const { engine, receivers } = setup();
  await engine.start();
  await engine.evaluate([failing(undefined, "pending")]);
  await engine.idle();
  assert.deepEqual(receivers.slack.got, [], "pending is silent");
  await engine.evaluate([failing()]);
  await engine.evaluate([failing()]);
  await engine.evaluate([failing()]);
  await engine.idle();
  assert.deepEqual(receivers.slack.statuses(), ["firing:refresh_failures/ci-01/org:acme"]);
  assert.deepEqual(receivers.pagerduty.statuses(), ["firing:refresh_failures/ci-01/org:acme"]);
});

test("alert engine - a reminder every repeatInterval while firing, then exactly one resolve", async () => {
  const { engine, receivers, clock } = setup({ repeatInterval: 600 });
  await engine.start();
  await engine.evaluate([failing()]);
  clock.t += 599_000;
  await engine.evaluate([failing()]);
  clock.t += 2_000;
  await engine.evaluate([failing()]);
  await engine.evaluate([]);
  await engine.evaluate([]);
  await engine.idle();
  assert.deepEqual(receivers.slack.statuses(), ["firing:refresh_failures/ci-01/org:acme", "firing+reminder:refresh_failures/ci-01/org:acme", "resolved:refresh_failures/ci-01/org:acme"]);
  assert.equal(receivers.slack.got[2].endsAt !== undefined, true);
});

test("alert engine - the resolve goes only to plugins that delivered the firing notification", async () => {
  const slack = new Receiver();
  const pagerduty = new Receiver();
  pagerduty.failures = [new AlertDeliveryError("400 invalid event", { retryable: false })];
  const { engine, targets } = setup({ receivers: { slack, pagerduty } });
  await engine.start();
  await engine.evaluate([failing()]);
  await engine.idle();
  await engine.evaluate([]);
  await engine.idle();
  assert.deepEqual(slack.statuses(), ["firing:refresh_failures/ci-01/org:acme", "resolved:refresh_failures/ci-01/org:acme"]);
  assert.deepEqual(pagerduty.statuses(), [], "never fired there, so never resolved there");
  assert.match(targets.find((t) => t.name === "pagerduty")!.misconfigured ?? "", /400 invalid event/);
  assert.deepEqual(engine.list(), [], "back to ok");
});

test("alert engine - a restart between firing and resolve sends exactly one resolve", async () => {
  const store = new MemoryStore();
  const first = setup({ store });
  await first.engine.start();
  await first.engine.evaluate([failing()]);
  await first.engine.idle();
  first.stop.abort();
  const receivers = { slack: new Receiver(), pagerduty: new Receiver() };
  const second = setup({ store, receivers });
  await second.engine.start();
  await second.engine.evaluate([failing()]);
  await second.engine.idle();
  assert.deepEqual(receivers.slack.got, [], "no second firing after the restart");
  await second.engine.evaluate([]);
  await second.engine.evaluate([]);
  await second.engine.idle();
  assert.deepEqual(receivers.slack.statuses(), ["resolved:refresh_failures/ci-01/org:acme"]);
  assert.deepEqual(receivers.pagerduty.statuses(), ["resolved:refresh_failures/ci-01/org:acme"]);
  const third = setup({ store, receivers: { slack: new Receiver(), pagerduty: new Receiver() } });
  await third.engine.start();
  await third.engine.idle();
  assert.deepEqual(third.receivers.slack.got, [], "a settled resolve is not repeated after another restart");
});

test("alert engine - a resolve owed when the process stopped is sent by the next evaluation, once", async () => {
  const store = new MemoryStore();
  const slow = new Receiver();
  const first = setup({ store, receivers: { slack: new Receiver(), pagerduty: new Receiver() } });
  await first.engine.start();
  await first.engine.evaluate([failing()]);
  await first.engine.idle();
  slow.delayMs = 10_000;
  // Resolved, but the process dies before any plugin got the resolve: it stays owed in the store.
  const record = structuredClone(store.records);
  for (const r of Object.values(record)) Object.assign(r, { state: "resolved", endsAt: new Date().toISOString(), resolvePending: [...r.firedTo] });
  store.records = record;
  const receivers = { slack: new Receiver(), pagerduty: new Receiver() };
  const next = setup({ store, receivers });
  await next.engine.start();
  await next.engine.idle();
  assert.deepEqual(receivers.slack.got, [], "loading alone sends nothing (a collector that does not lead must stay silent)");
  await next.engine.evaluate([]);
  await next.engine.evaluate([]);
  await next.engine.idle();
  assert.deepEqual(receivers.slack.statuses(), ["resolved:refresh_failures/ci-01/org:acme"]);
  assert.deepEqual(store.records, {});
});

test("alert engine - retries a retryable failure (honouring Retry-After) and delivers once", async () => {
  const slack = new Receiver();
  slack.failures = [new AlertDeliveryError("429", { retryable: true, retryAfterSeconds: 0.05 }), new AlertDeliveryError("503", { retryable: true })];
  const { engine, counts } = setup({ receivers: { slack } });
  await engine.start();
  await engine.evaluate([failing()]);
  await engine.idle();
  assert.equal(slack.got.length, 1);
  assert.deepEqual(counts, ["slack:retry", "slack:retry", "slack:success"]);
});

test("alert engine - a hanging plugin times out without delaying another plugin", async () => {
  const slack = new Receiver();
  const webhook = new Receiver();
  slack.delayMs = 60_000;
  const { engine, targets } = setup({ receivers: { slack, webhook }, policy: { timeoutSeconds: 0.2, maxAttempts: 2 } });
  await engine.start();
  const t0 = Date.now();
  await engine.evaluate([failing()]);
  assert.ok(Date.now() - t0 < 150, "evaluate does not wait for deliveries");
  await targets.find((t) => t.name === "webhook")!.idle();
  assert.equal(webhook.got.length, 1, "the webhook got its notification while slack hung");
  await engine.idle();
  assert.equal(slack.got.length, 0);
  assert.match(targets.find((t) => t.name === "slack")!.lastError ?? "", /no answer within 0.2s/);
});

test("alert engine - alerts of one rule within groupWait go out as one notification; PagerDuty gets one per key", async () => {
  const { engine, receivers } = setup({ groupWait: 0.1 });
  await engine.start();
  await engine.evaluate([failing("registration_failures/ci-01/r1"), failing("registration_failures/ci-02/r2"), failing("registration_failures/ci-03/r3")]);
  await new Promise((r) => setTimeout(r, 250));
  await engine.idle();
  assert.equal(receivers.slack.got.length, 1);
  assert.equal(receivers.slack.got[0].group?.length, 3);
  assert.equal(receivers.pagerduty.got.length, 3);
  await engine.evaluate([]);
  await engine.idle();
  assert.equal(receivers.slack.got.filter((n) => n.status === "resolved").length, 3, "each grouped key resolved where its firing went");
});

test("alert engine - over maxPerMinute, the rest goes out as one 'N more' notification and is still resolved", async () => {
  const { engine, receivers } = setup({ policy: { maxPerMinute: 2, capWindowMs: 200 } });
  await engine.start();
  const keys = ["a", "b", "c", "d", "e"].map((k) => failing(`registration_failures/ci-01/${k}`));
  await engine.evaluate(keys);
  await new Promise((r) => setTimeout(r, 400));
  await engine.idle();
  const slack = receivers.slack.got;
  assert.equal(slack.length, 3, "two alerts, then one summary");
  assert.equal(slack[2].more, 3);
  assert.equal(receivers.pagerduty.got.length, 5, "PagerDuty is never folded");
  await engine.evaluate([]);
  await new Promise((r) => setTimeout(r, 400));
  await engine.idle();
  const resolvedKeys = new Set(receivers.slack.got.filter((n) => n.status === "resolved").flatMap((n) => (n.group ? n.group.map((g) => g.key) : [n.key])));
  assert.equal(resolvedKeys.size, 5, "every key resolved where its firing went, folded ones included");
});
