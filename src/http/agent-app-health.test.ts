// GET /healthz and /status (SPEC 11) through the hono app over a telemetry object fed by hand.
import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import type { MetricsDocument } from "../shared/types.ts";
import { agentHealth } from "./agent-app.ts";
import { fixture, metricsDoc, NOW, report } from "../../test/helpers/agent-http.ts";

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
