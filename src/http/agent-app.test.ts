// The daemon's /metrics, /healthz and /status (SPEC 11): the hono app through app.request() over a
// telemetry object fed by hand, then the real daemon as a child process against the fake GitHub
// (bound to a free port, scraped, stopped with SIGTERM), and the listen-address failure modes.
import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { AgentTelemetry } from "../agent/telemetry.ts";
import { createLogger } from "../shared/logger.ts";
import type { MetricsDocument, RunnerReport } from "../shared/types.ts";
import { agentHealth, createAgentApp } from "./agent-app.ts";
import { createAgentRegistry, type AgentHttpSource } from "./agent-metrics.ts";
import { makeWorld, parseLogs, runInProcess, spawnAgent, waitFor, type SpawnedAgent } from "../../test/helpers/agent.ts";

const NOW_S = 1_800_000_000;
const NOW = NOW_S * 1000;

/** Every agent metric name of SPEC 11, plus the outbox drop counter of SPEC 8. */
const SPEC_METRICS = [
  "runner_token_expiry_timestamp_seconds",
  "runner_token_refreshes_total",
  "runner_token_refresh_duration_seconds",
  "runner_token_last_check_timestamp_seconds",
  "runner_token_last_refresh_timestamp_seconds",
  "runner_token_consecutive_failures",
  "runner_registered",
  "runner_online",
  "runner_busy",
  "runner_registrations_total",
  "runner_token_github_requests_total",
  "runner_token_github_ratelimit_remaining",
  "runner_token_alert_notifications_total",
  "runner_token_nats_outbox_pending",
  "runner_token_nats_outbox_dropped_total",
];

function report(name: string, over: Partial<RunnerReport> = {}): RunnerReport {
  return {
    name,
    dir: `/home/runner/${name}`,
    scope: { org: "acme" },
    ephemeral: false,
    registered: true,
    agent_id: 42,
    service_active: true,
    online: true,
    busy: false,
    token_expires_at: NOW_S + 3120,
    last_refresh_timestamp: NOW_S - 480,
    total_refreshes: 12,
    failed_refreshes: 1,
    consecutive_failures: 0,
    registrations: 1,
    status: "ok",
    last_error: null,
    ...over,
  };
}

function metricsDoc(runners: RunnerReport[]): MetricsDocument {
  return {
    version: 1,
    last_check_timestamp: NOW_S - 5,
    last_refresh_timestamp: NOW_S - 480,
    total_refreshes: 12,
    failed_refreshes: 1,
    consecutive_failures: Math.max(0, ...runners.map((r) => r.consecutive_failures)),
    runner_org: "acme",
    runner_name: runners[0].name,
    token_expires_at: NOW_S + 3120,
    interval: 60,
    threshold: 300,
    alert_after_failures: 3,
    host: "ci-01",
    runners,
  };
}

interface Fixture {
  source: AgentHttpSource;
  telemetry: AgentTelemetry;
  app: ReturnType<typeof createAgentApp>["app"];
  close(): void;
  misconfigured: { plugin: string; error: string }[];
  pending: number;
  dropped: number;
}

function fixture(options: { alerts?: boolean } = {}): Fixture {
  const telemetry = new AgentTelemetry(createLogger({ level: "silent", write: () => {} }));
  const state = { misconfigured: [] as { plugin: string; error: string }[], pending: 0, dropped: 0 };
  const source: AgentHttpSource = {
    scopes: ["org:acme", "repo:acme/app"],
    runners: ["runner-1", "gpu runner ü"],
    interval: 60,
    telemetry,
    alerts: options.alerts
      ? {
          deliveries: () => [
            { plugin: "slack", outcome: "success", count: 2 },
            { plugin: "slack", outcome: "failure", count: 0 },
          ],
          misconfigured: () => state.misconfigured,
        }
      : null,
    outboxPending: async () => state.pending,
    outboxDropped: async () => state.dropped,
  };
  const { app, close } = createAgentApp(source, { now: () => NOW });
  const f: Fixture = {
    source,
    telemetry,
    app,
    close,
    get misconfigured() {
      return state.misconfigured;
    },
    set misconfigured(v) {
      state.misconfigured = v;
    },
    get pending() {
      return state.pending;
    },
    set pending(v) {
      state.pending = v;
    },
    get dropped() {
      return state.dropped;
    },
    set dropped(v) {
      state.dropped = v;
    },
  };
  return f;
}

async function scrape(app: Fixture["app"]): Promise<{ text: string; lines: string[] }> {
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  return { text, lines: text.split("\n").filter((l) => l && !l.startsWith("#")) };
}

/** Every name is declared; those given in `withSamples` (default: all) also have a sample line. */
function assertEverySpecMetric(text: string, withoutSamples: string[] = []): void {
  for (const name of SPEC_METRICS) {
    assert.match(text, new RegExp(`^# TYPE ${name} (gauge|counter|histogram)$`, "m"), `${name} declared`);
    if (withoutSamples.includes(name)) continue;
    assert.match(text, new RegExp(`^${name}(_bucket|_sum|_count)?(\\{[^}]*\\})? -?\\d+(\\.\\d+)?$`, "m"), `${name} has a sample`);
  }
}

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

test("agent http - /healthz: failing names the runner and its error, stale after 3 × interval + 60 s, refused alert plugins as warnings", async () => {
  const f = fixture({ alerts: true });
  try {
    const doc = metricsDoc([report("runner-1", { status: "failing", consecutive_failures: 1, last_error: "GitHub registration-token: HTTP 502" })]);
    f.telemetry.passFinished({ finishedAt: NOW - 1000, ok: false, error: "runner-1: GitHub registration-token: HTTP 502" }, doc);
    let res = await f.app.request("/healthz");
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: "failing", reason: "runner-1: GitHub registration-token: HTTP 502" });

    // A pass that broke before building a document keeps the last document for /status.
    f.telemetry.passFinished({ finishedAt: NOW - 1000, ok: false, error: "the pass failed unexpectedly: boom" }, null);
    assert.deepEqual(await (await f.app.request("/healthz")).json(), { status: "failing", reason: "the pass failed unexpectedly: boom" });
    assert.equal(((await (await f.app.request("/status")).json()) as MetricsDocument).runners[0].name, "runner-1");

    f.telemetry.passFinished({ finishedAt: NOW - 241_000, ok: true, error: null }, doc);
    res = await f.app.request("/healthz");
    assert.equal(res.status, 503);
    const stale = (await res.json()) as { status: string; reason: string };
    assert.equal(stale.status, "stale");
    assert.match(stale.reason, /^no pass finished for 241s \(interval 60s\)/);

    f.telemetry.passFinished({ finishedAt: NOW - 240_000, ok: true, error: null }, doc);
    f.misconfigured = [{ plugin: "slack", error: "HTTP 404 no_service: check webhookUrl" }];
    res = await f.app.request("/healthz");
    assert.equal(res.status, 200, "a refused alert plugin does not stop the agent's work");
    assert.deepEqual(await res.json(), { status: "ok", warnings: ["alert plugin slack: HTTP 404 no_service: check webhookUrl"] });
    assert.equal(agentHealth(f.source, NOW).ok, true);

    const missing = await f.app.request("/nope");
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /try \/metrics, \/healthz or \/status/);
  } finally {
    f.close();
  }
});

/** A port held by another listener, for the bind-failure tests. */
function holdPort(port = 0): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(null));
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port;
}

const listeningUrl = (a: SpawnedAgent) => /agent listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(a.output())?.[1];

test("agent http - the daemon serves /metrics, /healthz and /status on --listen and closes them on SIGTERM (exit 0)", async () => {
  const w = await makeWorld();
  // A status call every pass, so GitHub's view (runner_online, runner_busy) is known quickly.
  const config = await w.config("github: { statusInterval: 1 }\n");
  const daemon = spawnAgent(["daemon", "--config", config, "--interval", "1", "--listen", "127.0.0.1:0"], w.env);
  try {
    await waitFor(() => listeningUrl(daemon) !== undefined, "the listening log line", 30_000);
    const base = listeningUrl(daemon)!;
    await waitFor(() => parseLogs(daemon.output()).some((l) => l.msg === "pass finished"), "a pass", 30_000);

    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200, daemon.output());
    assert.deepEqual(await health.json(), { status: "ok" });

    const status = await fetch(`${base}/status`);
    assert.equal(status.status, 200);
    const doc = (await status.json()) as MetricsDocument;
    assert.equal(doc.runners[0].name, "runner-1");
    assert.equal(doc.runners[0].status, "ok");
    assert.equal(doc.runners[0].registered, true);

    let text = "";
    let contentType: string | null = null;
    await waitFor(async () => {
      const metrics = await fetch(`${base}/metrics`);
      contentType = metrics.headers.get("content-type");
      text = await metrics.text();
      return /^runner_online\{runner="runner-1"\} [01]$/m.test(text);
    }, "GitHub's view of the runner in /metrics", 30_000);
    assert.equal(contentType, "text/plain; version=0.0.4; charset=utf-8");
    // No alert plugins configured: that counter has no label set to show.
    assertEverySpecMetric(text, ["runner_token_alert_notifications_total"]);
    const lines = text.split("\n");
    assert.ok(lines.includes('runner_token_refreshes_total{scope="org:acme",outcome="success"} 1'), text);
    assert.ok(lines.includes('runner_registrations_total{runner="runner-1",reason="not_configured",outcome="success"} 1'), text);
    assert.ok(lines.includes('runner_registered{runner="runner-1"} 1'), text);
    assert.ok(lines.includes('runner_busy{runner="runner-1"} 0'), text);
    assert.ok(lines.includes('runner_token_refresh_duration_seconds_count{outcome="success"} 1'), text);
    assert.ok(lines.some((l) => /^runner_token_github_requests_total\{endpoint="registration-token",status="201"\} 1$/.test(l)), text);
    assert.ok(lines.some((l) => /^runner_token_github_ratelimit_remaining \d+$/.test(l)), text);
    assert.ok(lines.some((l) => /^runner_token_expiry_timestamp_seconds\{scope="org:acme"\} \d{10}$/.test(l)), text);

    daemon.kill("SIGTERM");
    const run = await daemon.done;
    assert.equal(run.code, 0, daemon.output());
    assert.equal(run.stderr, "");
    await assert.rejects(fetch(`${base}/healthz`), "the port is closed after SIGTERM");
    await w.assertNoLeaks([run]);
  } finally {
    daemon.kill("SIGKILL");
    await daemon.done;
    await w.close();
  }
});

test("agent http - a --listen address that cannot be bound is a configuration error naming http.listen (exit 78)", async () => {
  const w = await makeWorld();
  const held = (await holdPort())!;
  try {
    const run = await runInProcess(["daemon", "--listen", `127.0.0.1:${portOf(held)}`], w.env);
    assert.equal(run.code, 78, run.stdout + run.stderr);
    assert.match(run.stderr, new RegExp(`^error: http\\.listen \\(--listen\\): cannot listen on 127\\.0\\.0\\.1:${portOf(held)}: [^\\n]+: stop what holds the port or choose another HOST:PORT with http\\.listen or --listen\\n$`));
    assert.equal(w.runner.invocations("config.sh").length, 0, "no pass ran");

    const bad = await runInProcess(["daemon", "--listen", "localhost"], w.env);
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /^error: http\.listen \(--listen\): "localhost" is not HOST:PORT/);

    const config = await w.config(`http: { listen: "127.0.0.1:${portOf(held)}" }\n`);
    const fromFile = await runInProcess(["daemon", "--config", config], w.env);
    assert.equal(fromFile.code, 78);
    assert.match(fromFile.stderr, /^error: http\.listen \(--listen\): cannot listen on /);
  } finally {
    held?.close();
    await w.close();
  }
});

test("agent http - the default 127.0.0.1:9469 taken: the daemon warns and keeps refreshing without HTTP", async () => {
  // Taken by us, or already by another process: either way the condition under test holds.
  const held = await holdPort(9469);
  const w = await makeWorld();
  const daemon = spawnAgent(["daemon", "--interval", "1"], w.env);
  try {
    await waitFor(() => parseLogs(daemon.output()).some((l) => l.msg === "pass finished"), "a pass", 30_000);
    const warning = parseLogs(daemon.output()).find((l) => typeof l.msg === "string" && l.msg.startsWith("cannot listen on the default 127.0.0.1:9469"));
    assert.ok(warning, daemon.output());
    assert.equal(warning.level, "warn");
    assert.match(String(warning.msg), /set http\.listen \(or --listen\) to a free HOST:PORT/);
    daemon.kill("SIGTERM");
    const run = await daemon.done;
    assert.equal(run.code, 0, daemon.output());
    assert.equal((await w.metrics()).runners[0].status, "ok");
  } finally {
    daemon.kill("SIGKILL");
    await daemon.done;
    held?.close();
    await w.close();
  }
});
