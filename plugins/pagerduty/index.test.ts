import { test, after, before } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import pagerduty, { dedupKey, pagerDutyEvent, truncate, DEFAULT_URL } from "./index.ts";
import type { PagerDutyOptions } from "./index.ts";
import { closedPort, expectDeliveryError, expectOptionsError, instantiate, sampleNotification, secretHelpers, startReceiver } from "../../test/helpers/plugin-harness.ts";
import type { Receiver } from "../../test/helpers/plugin-harness.ts";
import { assertNoSecrets } from "../../test/helpers/no-secrets.ts";

const KEY = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32"; // 32 characters, like a real integration key
let rx: Receiver;
before(async () => {
  rx = await startReceiver({ status: 202, body: { status: "success", message: "Event processed", dedup_key: "x" } });
});
after(() => rx.close());

const signal = () => AbortSignal.timeout(5000);
const last = () => JSON.parse(rx.requests[rx.requests.length - 1].body);
const opts = (more: Record<string, unknown> = {}) => ({ routingKey: KEY, url: `${rx.url}/v2/enqueue`, ...more });

test("pagerduty plugin - a firing alert is an exact Events API v2 trigger", async () => {
  const { instance, ctx } = await instantiate(pagerduty, opts());
  await instance.send(sampleNotification(), signal());
  const req = rx.requests.at(-1)!;
  assert.equal(req.method, "POST");
  assert.equal(req.path, "/v2/enqueue");
  assert.equal(req.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(req.body), {
    routing_key: KEY,
    event_action: "trigger",
    dedup_key: "refresh_failures/ci-01/runner-1",
    payload: {
      summary: "[FIRING] refresh_failures on ci-01/runner-1: 3 token refreshes failed in a row",
      source: "ci-01",
      severity: "error",
      timestamp: "2025-01-02T03:04:05.000Z",
      component: "runner-1",
      group: "org/acme",
      class: "refresh_failures",
      custom_details: {
        rule: "refresh_failures",
        key: "refresh_failures/ci-01/runner-1",
        scope: { org: "acme" },
        failures: 3,
        lastError: "GitHub answered 401 <Bad credentials> & gave up",
      },
    },
  });
  assert.equal(ctx.lines.filter((l) => l.level === "warn").length, 0, "a 32-character key raises no warning");
});

test("pagerduty plugin - a resolved alert sends routing_key, resolve and the same dedup_key only", async () => {
  const { instance } = await instantiate(pagerduty, opts());
  await instance.send(sampleNotification({ status: "resolved", endsAt: "2025-01-02T04:00:00.000Z" }), signal());
  assert.deepEqual(last(), { routing_key: KEY, event_action: "resolve", dedup_key: "refresh_failures/ci-01/runner-1" });
});

test("pagerduty plugin - severity maps from the notification unless overridden; component, group and class options win", async () => {
  const base: PagerDutyOptions = { routingKey: KEY, url: DEFAULT_URL };
  for (const severity of ["critical", "error", "warning", "info"] as const) {
    const e = (await pagerDutyEvent(sampleNotification({ severity }), base)) as { payload: { severity: string } };
    assert.equal(e.payload.severity, severity);
  }
  const e = (await pagerDutyEvent(sampleNotification({ severity: "info", runner: null, scope: null }), { ...base, severity: "critical", component: "ci-fleet", group: "linux", class: "runner" })) as { payload: Record<string, unknown> };
  assert.equal(e.payload.severity, "critical");
  assert.equal(e.payload.component, "ci-fleet");
  assert.equal(e.payload.group, "linux");
  assert.equal(e.payload.class, "runner");
  const bare = (await pagerDutyEvent(sampleNotification({ runner: null, scope: null }), base)) as { payload: Record<string, unknown> };
  assert.equal("component" in bare.payload, false);
  assert.equal("group" in bare.payload, false);
});

test("pagerduty plugin - a scope alert's component is the scope, and its summary and custom_details name the runners", async () => {
  const base: PagerDutyOptions = { routingKey: KEY, url: DEFAULT_URL };
  const n = sampleNotification({ runner: null, key: "refresh_failures/ci-01/org:acme", details: { runners: ["runner-1", "runner-2"], failures: 3 } });
  const e = (await pagerDutyEvent(n, base)) as { payload: { component: string; summary: string; custom_details: Record<string, unknown> } };
  assert.equal(e.payload.component, "org:acme");
  assert.match(e.payload.summary, /^\[FIRING\] refresh_failures on ci-01\/org:acme \(runners runner-1, runner-2\): /);
  assert.deepEqual(e.payload.custom_details.runners, ["runner-1", "runner-2"]);
  const own = (await pagerDutyEvent(n, { ...base, component: "ci-fleet" })) as { payload: { component: string } };
  assert.equal(own.payload.component, "ci-fleet", "the component option still wins");
  // Details too big for PagerDuty are cut; the runners stay.
  const huge = (await pagerDutyEvent({ ...n, details: { ...n.details, blob: "x".repeat(600 * 1024) } }, base)) as { payload: { custom_details: Record<string, unknown> } };
  assert.deepEqual(huge.payload.custom_details.runners, ["runner-1", "runner-2"]);
});

test("pagerduty plugin - a test notification uses a test/ dedup_key and says TEST", async () => {
  const { instance } = await instantiate(pagerduty, opts());
  await instance.send(sampleNotification({ test: true }), signal());
  const body = last();
  assert.equal(body.dedup_key, "test/refresh_failures/ci-01/runner-1");
  assert.match(body.payload.summary, /^\[TEST FIRING\]/);
  assert.equal(body.payload.custom_details.test, true);
});

test("pagerduty plugin - keys over 255 bytes are shortened stably with a sha256 of the whole key", async () => {
  assert.equal(await dedupKey("short/key"), "short/key");
  const exact = "k".repeat(255);
  assert.equal(await dedupKey(exact), exact);
  const long = `refresh_failures/${"h".repeat(300)}/runner-1`;
  const a = await dedupKey(long);
  assert.equal(a, await dedupKey(long), "stable");
  assert.ok(new TextEncoder().encode(a).length <= 255);
  assert.ok(a.startsWith("refresh_failures/hhh"));
  assert.ok(a.endsWith(`~${createHash("sha256").update(long).digest("hex")}`));
  assert.notEqual(a, await dedupKey(long.replace("runner-1", "runner-2")), "keys sharing a prefix stay distinct");
  const wide = `rule/${"é".repeat(200)}/r`; // 2 bytes a character
  const w = await dedupKey(wide);
  assert.ok(new TextEncoder().encode(w).length <= 255);
  assert.ok(!w.includes("\uFFFD"));
  const { instance } = await instantiate(pagerduty, opts());
  await instance.send(sampleNotification({ key: long, test: true }), signal());
  const sent = last().dedup_key as string;
  assert.ok(sent.startsWith("test/refresh_failures/") && new TextEncoder().encode(sent).length <= 255);
});

test("pagerduty plugin - summary is cut to 1024 characters with an ellipsis", async () => {
  const e = (await pagerDutyEvent(sampleNotification({ summary: "s".repeat(5000) }), { routingKey: KEY, url: DEFAULT_URL })) as { payload: { summary: string } };
  assert.equal(e.payload.summary.length, 1024);
  assert.ok(e.payload.summary.endsWith("s…"));
  assert.equal(truncate("😀".repeat(600), 1024).length <= 1024, true);
  assert.ok(!/[\uD800-\uDBFF]…$/.test(truncate("a😀".repeat(600), 1024)), "never splits a surrogate pair");
});

test("pagerduty plugin - a body over 512 KB keeps an excerpt of the details", async () => {
  const { instance } = await instantiate(pagerduty, opts());
  await instance.send(sampleNotification({ details: { log: "L".repeat(1_000_000), failures: 3 } }), signal());
  const req = rx.requests.at(-1)!;
  assert.ok(req.bytes.length <= 512 * 1024, `${req.bytes.length} bytes`);
  const cd = JSON.parse(req.body).payload.custom_details;
  assert.equal(cd.rule, "refresh_failures");
  assert.match(cd.truncated, /512 KB/);
  assert.ok(cd.details_excerpt.startsWith('{"log":"LLL'));
});

test("pagerduty plugin - 400 is permanent and quotes PagerDuty's message and errors", async () => {
  const { instance, secrets } = await instantiate(pagerduty, opts());
  rx.reply({ status: 400, body: { status: "invalid event", message: "Event object is invalid", errors: ["'routing_key' is invalid", `key ${KEY} unknown`] } });
  const err = await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /^PagerDuty answered 400 invalid event: Event object is invalid \('routing_key' is invalid; key <routingKey> unknown\)/ }, secrets);
  assert.ok(!err.message.includes(KEY));
});

test("pagerduty plugin - 429 and 5xx are retryable, with Retry-After when given", async () => {
  const { instance, secrets } = await instantiate(pagerduty, opts());
  rx.reply({ status: 429, body: { status: "throttle event", message: "Requests for this service are arriving too quickly." }, headers: { "retry-after": "12" } });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, retryAfterSeconds: 12, message: /429 throttle event/ }, secrets);
  rx.reply({ status: 429, body: "" });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true }, secrets);
  for (const status of [500, 502, 503]) {
    rx.reply({ status, body: "<html>bad gateway</html>" });
    await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, message: new RegExp(`^PagerDuty answered ${status}`) }, secrets);
  }
  rx.reply({ status: 503, headers: { "retry-after": "5" } });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, retryAfterSeconds: 5 }, secrets);
});

test("pagerduty plugin - other answers than 202 are permanent (wrong url)", async () => {
  const { instance, secrets } = await instantiate(pagerduty, opts());
  for (const status of [200, 404, 403]) {
    rx.reply({ status, body: "nope" });
    await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /expected 202/ }, secrets);
  }
});

test("pagerduty plugin - a refused connection is retryable", async () => {
  const { instance, secrets } = await instantiate(pagerduty, opts({ url: `http://127.0.0.1:${await closedPort()}/v2/enqueue` }));
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, message: /request failed/ }, secrets);
});

test("pagerduty plugin - a hanging endpoint honours the abort signal", async () => {
  const { instance, secrets } = await instantiate(pagerduty, opts());
  rx.reply({ hang: true, status: 202 });
  const started = Date.now();
  await expectDeliveryError(instance.send(sampleNotification(), AbortSignal.timeout(200)), { retryable: true, message: /aborted/ }, secrets);
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});

test("pagerduty plugin - options: routingKey required and non-empty; a key not 32 long only warns", async () => {
  const h = secretHelpers({ PD_KEY: KEY });
  await expectOptionsError(() => pagerduty.parseOptions({}, h), "routingKey", /required/);
  await expectOptionsError(() => pagerduty.parseOptions({ routingKey: "" }, h), "routingKey");
  await expectOptionsError(() => pagerduty.parseOptions({ routingKey: "   " }, h), "routingKey", /empty/);
  await expectOptionsError(() => pagerduty.parseOptions({ routingKey: ["x"] }, h), "routingKey", /wrong type/);
  const parsed = await pagerduty.parseOptions({ routingKey: { env: "PD_KEY" } }, h);
  assert.deepEqual(parsed, { routingKey: KEY, url: DEFAULT_URL });
  const shortKey = "shortkey-not-32";
  const { ctx } = await instantiate(pagerduty, { routingKey: shortKey });
  const warns = ctx.lines.filter((l) => l.level === "warn");
  assert.equal(warns.length, 1);
  assert.match(warns[0].msg, /15 characters/);
  assertNoSecrets([shortKey], [{ label: "warning", text: JSON.stringify(warns) }]);
});

test("pagerduty plugin - options: url, severity, types and unknown keys are checked with their path", async () => {
  const h = secretHelpers();
  await expectOptionsError(() => pagerduty.parseOptions({ routingKey: KEY, url: "http://events.example.com/v2/enqueue" }, h), "url", /https/, [KEY]);
  await expectOptionsError(() => pagerduty.parseOptions({ routingKey: KEY, url: "ftp://x" }, h), "url", /http/, [KEY]);
  await expectOptionsError(() => pagerduty.parseOptions({ routingKey: KEY, severity: "high" }, h), "severity", /critical, error, warning, info/, [KEY]);
  await expectOptionsError(() => pagerduty.parseOptions({ routingKey: KEY, component: 3 }, h), "component", /string/, [KEY]);
  await expectOptionsError(() => pagerduty.parseOptions({ routingKey: KEY, routing_key: KEY }, h), "routing_key", /unknown option/, [KEY]);
  assert.equal(pagerduty.groups, false, "PagerDuty gets one event per alert key");
  const p = await pagerduty.parseOptions({ routingKey: KEY, url: "http://127.0.0.1:8080/x", severity: "warning", component: "c", group: "g", class: "k" }, h);
  assert.deepEqual(p, { routingKey: KEY, url: "http://127.0.0.1:8080/x", severity: "warning", component: "c", group: "g", class: "k" });
});
