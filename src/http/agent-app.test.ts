// The daemon's /metrics, /healthz and /status (SPEC 11) for real: the daemon as a child process
// against the fake GitHub (bound to a free port, scraped, stopped with SIGTERM), and the
// listen-address failure modes. The endpoints' content: agent-app-metrics and agent-app-health.
import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import type { MetricsDocument } from "../shared/types.ts";
import { assertEverySpecMetric } from "../../test/helpers/agent-http.ts";
import { makeWorld, parseLogs, runInProcess, spawnAgent, waitFor, type SpawnedAgent } from "../../test/helpers/agent.ts";

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
