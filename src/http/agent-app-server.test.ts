// GET /metrics through this runtime's own HTTP server (node:http on Node, Deno.serve on Deno), as a
// scraper sees it: the prepared answer is the app's answer byte for byte, a pass shows on the next
// scrape, ETag and If-None-Match give 304, HEAD has the headers alone, and the other routes and a
// failing render still go through the app.
import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { createDenoRuntime } from "../runtime/deno.ts";
import { createNodeRuntime } from "../runtime/node.ts";
import type { HttpServer } from "../runtime/types.ts";
import { createAgentApp } from "./agent-app.ts";
import { fixture, metricsDoc, NOW, NOW_S, report, type Fixture } from "../../test/helpers/agent-http.ts";

const runtime = "Deno" in globalThis ? createDenoRuntime() : createNodeRuntime();

async function served(f: Fixture, options: Parameters<typeof createAgentApp>[1] = {}): Promise<{ url: string; server: HttpServer; close(): Promise<void> }> {
  const { app, prepared, close } = createAgentApp(f.source, { now: () => NOW, ...options });
  const server = await runtime.serve(app.fetch, { hostname: "127.0.0.1", port: 0, prepared });
  return {
    url: `http://127.0.0.1:${server.port}`,
    server,
    async close() {
      close();
      await server.close();
    },
  };
}

test("agent http server - /metrics is the app's answer byte for byte, and a pass shows on the next scrape with a new ETag", async () => {
  const f = fixture({ alerts: true });
  const s = await served(f);
  try {
    const first = await fetch(`${s.url}/metrics`);
    assert.equal(first.status, 200);
    const firstText = await first.text();
    const fromApp = await f.app.request("/metrics");
    assert.equal(firstText, await fromApp.text());
    assert.equal(first.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(first.headers.get("content-length"), String(new TextEncoder().encode(firstText).byteLength));
    const etag = first.headers.get("etag");
    assert.match(etag ?? "", /^"[0-9a-f]{24}"$/);
    assert.equal(fromApp.headers.get("etag"), etag, "the app and the server give the same ETag");
    assert.ok(!/runner_online\{/.test(firstText), "no runner state before the first pass");

    f.telemetry.passFinished({ finishedAt: NOW - 1000, ok: true, error: null }, metricsDoc([report("runner-1", { online: false, consecutive_failures: 2 })]));
    const second = await fetch(`${s.url}/metrics`);
    const text = await second.text();
    assert.match(text, /^runner_online\{runner="runner-1"\} 0$/m);
    assert.match(text, /^runner_token_consecutive_failures\{runner="runner-1"\} 2$/m);
    assert.match(text, new RegExp(`^runner_token_expiry_timestamp_seconds\\{scope="org:acme"\\} ${NOW_S + 3120}$`, "m"));
    assert.notEqual(second.headers.get("etag"), etag);
    assert.equal(text, await (await f.app.request("/metrics")).text());
  } finally {
    await s.close();
    f.close();
  }
});

test("agent http server - If-None-Match with the current ETag gets 304 and no body; HEAD gets the headers alone", async () => {
  const f = fixture();
  const s = await served(f);
  try {
    const full = await fetch(`${s.url}/metrics`);
    const body = await full.text();
    const etag = full.headers.get("etag")!;

    const unchanged = await fetch(`${s.url}/metrics`, { headers: { "If-None-Match": etag } });
    assert.equal(unchanged.status, 304);
    assert.equal(unchanged.headers.get("etag"), etag);
    assert.equal(await unchanged.text(), "");
    const listed = await fetch(`${s.url}/metrics?x=1`, { headers: { "If-None-Match": `"other", W/${etag}` } });
    assert.equal(listed.status, 304, "one of a list, weakly compared; the query string is ignored");
    await listed.body?.cancel();
    const fromApp = await f.app.request("/metrics", { headers: { "If-None-Match": etag } });
    assert.equal(fromApp.status, 304, "the app's own route answers alike");

    f.pending = 3;
    const changed = await fetch(`${s.url}/metrics`, { headers: { "If-None-Match": etag } });
    assert.equal(changed.status, 200, "an old ETag gets the new text");
    assert.match(await changed.text(), /^runner_token_nats_outbox_pending 3$/m);

    const head = await fetch(`${s.url}/metrics`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    assert.equal(head.headers.get("etag"), changed.headers.get("etag"));
    assert.notEqual(head.headers.get("etag"), etag);
    assert.ok(Number(head.headers.get("content-length")) > body.length / 2, "HEAD tells the length of a GET");
  } finally {
    await s.close();
    f.close();
  }
});

test("agent http server - other routes and methods go to the app; a /metrics that cannot render is a logged 500", async () => {
  const f = fixture({ alerts: true });
  const errors: string[] = [];
  const s = await served(f, { onError: (err, path) => errors.push(`${path}: ${(err as Error).message}`) });
  try {
    const health = await fetch(`${s.url}/healthz`);
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { status: string }).status, "starting");
    const post = await fetch(`${s.url}/metrics`, { method: "POST" });
    assert.equal(post.status, 404);
    assert.match(((await post.json()) as { error: string }).error, /not found: POST \/metrics/);

    // An alert plugin whose counts cannot be read: the scrape fails the usual way, and recovers.
    let broken = true;
    const deliveries = f.source.alerts!.deliveries;
    f.source.alerts!.deliveries = () => {
      if (broken) throw new Error("deliveries unreadable");
      return deliveries();
    };
    const failed = await fetch(`${s.url}/metrics`);
    assert.equal(failed.status, 500);
    assert.deepEqual(await failed.json(), { error: "internal error" });
    assert.deepEqual(errors, ["/metrics: deliveries unreadable"]);
    broken = false;
    const again = await fetch(`${s.url}/metrics`);
    assert.equal(again.status, 200);
    assert.match(await again.text(), /^runner_token_alert_notifications_total\{plugin="slack",outcome="success"\} 2$/m);
  } finally {
    await s.close();
    f.close();
  }
});
