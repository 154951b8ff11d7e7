// GET /metrics (SPEC 11) through the hono app over a telemetry object fed by hand: every metric
// name with its known label sets, the values a pass leaves, and the snapshot that always reads as
// a fresh render.
import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { createAgentRegistry } from "./agent-metrics.ts";
import { assertEverySpecMetric, fixture, metricsDoc, NOW, NOW_S, report, scrape } from "../../test/helpers/agent-http.ts";

test("agent http - before the first pass: /healthz and /status say starting, /metrics has every name with known label sets", async () => {
  const f = fixture();
  try {
    const health = await f.app.request("/healthz");
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: "starting", reason: "starting: the first pass has not finished yet" });
    const status = await f.app.request("/status");
    assert.equal(status.status, 503);
    assert.equal(((await status.json()) as { status: string }).status, "starting");

    const { text, lines } = await scrape(f.app);
    // Not known yet: no sample (as in the collector), never a 0 that would mean expired, exhausted
    // or offline. No request made yet, and no alert plugins: no label set is known for those.
    const unknown = [
      "runner_token_expiry_timestamp_seconds",
      "runner_token_last_refresh_timestamp_seconds",
      "runner_token_last_check_timestamp_seconds",
      "runner_token_consecutive_failures",
      "runner_registered",
      "runner_online",
      "runner_busy",
      "runner_token_github_ratelimit_remaining",
      "runner_token_github_requests_total",
      "runner_token_alert_notifications_total",
    ];
    assertEverySpecMetric(text, unknown);
    for (const name of unknown) assert.ok(!lines.some((l) => l.startsWith(name)), `${name} has no sample yet`);
    // Counters and the histogram start at 0 for every known label set.
    for (const line of [
      'runner_token_refreshes_total{scope="org:acme",outcome="success"} 0',
      'runner_token_refreshes_total{scope="org:acme",outcome="failure"} 0',
      'runner_token_refreshes_total{scope="repo:acme/app",outcome="success"} 0',
      'runner_token_refreshes_total{scope="repo:acme/app",outcome="failure"} 0',
      'runner_registrations_total{runner="runner-1",reason="deleted_on_github",outcome="success"} 0',
      'runner_registrations_total{runner="gpu runner ü",reason="not_configured",outcome="failure"} 0',
      'runner_token_refresh_duration_seconds_count{outcome="success"} 0',
      'runner_token_refresh_duration_seconds_bucket{le="+Inf",outcome="failure"} 0',
      "runner_token_nats_outbox_pending 0",
      "runner_token_nats_outbox_dropped_total 0",
    ]) {
      assert.ok(lines.includes(line), `${line} in\n${text}`);
    }
    assert.ok(!/process_cpu|nodejs_/.test(text), "no default process metrics");
  } finally {
    f.close();
  }
});

test("agent http - after a good pass: 200 ok, /status is the metrics document, gauges mirror it and counters count this process", async () => {
  const f = fixture({ alerts: true });
  try {
    const doc = metricsDoc([
      report("runner-1"),
      report("gpu runner ü", { scope: { repo: "acme/app" }, online: null, busy: null, token_expires_at: null, last_refresh_timestamp: null, consecutive_failures: 2 }),
    ]);
    f.telemetry.passFinished({ finishedAt: NOW - 5000, ok: true, error: null }, doc);
    f.telemetry.refreshDuration("org:acme", 0.375, true);
    f.telemetry.refreshDuration("org:acme", 0.625, true);
    f.telemetry.refreshDuration("repo:acme/app", 45, false);
    f.telemetry.registration("runner-1", "deleted_on_github", true);
    f.telemetry.request("registration-token", "201");
    f.telemetry.request("registration-token", "201");
    f.telemetry.request("runner", "404");
    f.telemetry.rateLimit({ limit: 5000, remaining: 4990, reset: NOW_S + 3600, used: 10, resource: "core" });
    f.pending = 7;
    f.dropped = 3;

    const health = await f.app.request("/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });
    const status = await f.app.request("/status");
    assert.equal(status.status, 200);
    assert.deepEqual(await status.json(), JSON.parse(JSON.stringify(doc)));

    const { text, lines } = await scrape(f.app);
    assertEverySpecMetric(text);
    for (const line of [
      `runner_token_expiry_timestamp_seconds{scope="org:acme"} ${NOW_S + 3120}`,
      `runner_token_last_refresh_timestamp_seconds{scope="org:acme"} ${NOW_S - 480}`,
      `runner_token_last_check_timestamp_seconds ${NOW_S - 5}`,
      'runner_token_consecutive_failures{runner="runner-1"} 0',
      'runner_token_consecutive_failures{runner="gpu runner ü"} 2',
      'runner_registered{runner="runner-1"} 1',
      'runner_online{runner="runner-1"} 1',
      'runner_busy{runner="runner-1"} 0',
      'runner_token_refreshes_total{scope="org:acme",outcome="success"} 2',
      'runner_token_refreshes_total{scope="repo:acme/app",outcome="failure"} 1',
      'runner_token_refreshes_total{scope="repo:acme/app",outcome="success"} 0',
      'runner_token_refresh_duration_seconds_bucket{le="0.25",outcome="success"} 0',
      'runner_token_refresh_duration_seconds_bucket{le="0.5",outcome="success"} 1',
      'runner_token_refresh_duration_seconds_bucket{le="1",outcome="success"} 2',
      'runner_token_refresh_duration_seconds_bucket{le="30",outcome="failure"} 0',
      'runner_token_refresh_duration_seconds_bucket{le="60",outcome="failure"} 1',
      'runner_token_refresh_duration_seconds_count{outcome="success"} 2',
      'runner_token_refresh_duration_seconds_sum{outcome="success"} 1',
      'runner_registrations_total{runner="runner-1",reason="deleted_on_github",outcome="success"} 1',
      'runner_registrations_total{runner="runner-1",reason="deleted_on_github",outcome="failure"} 0',
      'runner_token_github_requests_total{endpoint="registration-token",status="201"} 2',
      'runner_token_github_requests_total{endpoint="runner",status="404"} 1',
      "runner_token_github_ratelimit_remaining 4990",
      'runner_token_alert_notifications_total{plugin="slack",outcome="success"} 2',
      'runner_token_alert_notifications_total{plugin="slack",outcome="failure"} 0',
      "runner_token_nats_outbox_pending 7",
      "runner_token_nats_outbox_dropped_total 3",
    ]) {
      assert.ok(lines.includes(line), `${line} in\n${text}`);
    }
    assert.ok(!/\de[+-]?\d/.test(lines.join("\n")), "no exponent notation");
    // Unknown values of the second runner's scope and GitHub view: no sample.
    for (const prefix of ['runner_token_expiry_timestamp_seconds{scope="repo:acme/app"}', 'runner_token_last_refresh_timestamp_seconds{scope="repo:acme/app"}', 'runner_online{runner="gpu runner ü"}', 'runner_busy{runner="gpu runner ü"}']) {
      assert.ok(!lines.some((l) => l.startsWith(prefix)), `no sample for ${prefix}`);
    }
  } finally {
    f.close();
  }
});

test("agent http - /metrics is served from a snapshot that always reads as a fresh render: identical before and after each change", async () => {
  const f = fixture({ alerts: true });
  // A second registry over the same source, rendered fresh every time: what /metrics said before caching.
  const fresh = createAgentRegistry(f.source);
  try {
    const same = async (what: string) => {
      const served = (await scrape(f.app)).text;
      assert.equal(served, await fresh.registry.metrics(), what);
      assert.equal((await scrape(f.app)).text, served, `${what}: a second scrape, unchanged`);
      return served;
    };
    const before = await same("before the first pass");
    const doc = metricsDoc([report("runner-1"), report("gpu runner ü", { scope: { repo: "acme/app" } })]);
    f.telemetry.passFinished({ finishedAt: NOW - 5000, ok: true, error: null }, doc);
    const afterPass = await same("after a pass");
    assert.notEqual(afterPass, before);
    f.telemetry.request("runner", "304");
    assert.match(await same("after a 304"), /^rtr_github_requests_total\{counted="false"\} 1$/m);
    f.telemetry.refreshDuration("org:acme", 0.5, true);
    assert.match(await same("after a mint"), /^runner_token_refresh_duration_seconds_count\{outcome="success"\} 1$/m);
    f.telemetry.registration("runner-1", "deleted_on_github", false);
    await same("after a registration");
    f.telemetry.rateLimit({ limit: 5000, remaining: 4000, reset: NOW_S + 60, used: 1000, resource: "core" });
    assert.match(await same("after a rate-limit header"), /^runner_token_github_ratelimit_remaining 4000$/m);
    f.telemetry.hygiene.repair("runner-1", "labels", true);
    await same("after a hygiene repair");
    f.pending = 4;
    f.dropped = 2;
    assert.match(await same("after the outbox changed"), /^runner_token_nats_outbox_pending 4$/m);
    f.telemetry.passFinished({ finishedAt: NOW - 1000, ok: true, error: null }, metricsDoc([report("runner-1", { online: false, consecutive_failures: 3 })]));
    assert.match(await same("after a second pass"), /^runner_online\{runner="runner-1"\} 0$/m);
  } finally {
    fresh.close();
    f.close();
  }
});
