// Credentials inside NATS server URLs (issue 14 item 6): `nats://user:pass@host` logs in, and the
// password never shows in logs, files, /healthz or the dashboard. Real nats-servers.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { makeWorld, runInProcess, waitFor } from "./helpers/agent.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";
import { createCollectorApp } from "../src/http/collector-app.ts";
import { scrubUrls, splitServerCredentials, stripUserinfo } from "../src/shared/url-credentials.ts";
import { redact } from "../src/shared/redact.ts";

// Characters a URL must percent-encode, so decoding is proved too.
const PASSWORD = "pw@url:42/secret";
const WRONG = "wrong-url-pass-77";
const url = (port: number, password: string) => `nats://rtr:${encodeURIComponent(password)}@127.0.0.1:${port}`;

test("nats url credentials - user:password in NATS_URL logs the agent in, and the password is in no output or file", async () => {
  const nats = await startNatsServer({ config: `authorization { user: rtr, password: ${JSON.stringify(PASSWORD)} }` });
  const w = await makeWorld();
  try {
    const path = await w.config(`
refresh: { retryBackoff: 0.01 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1 }
`);
    const { RUNNER_NAME: _n, RUNNER_DIR: _d, RUNNER_ORG: _o, ...env } = w.env;
    const run = await runInProcess(["check", "--config", path], { ...env, NATS_URL: url(nats.port, PASSWORD) });
    assert.equal(run.code, 0, run.stdout);
    assert.match(run.stdout, /connected to NATS/);
    assert.ok(run.stdout.includes(`nats://127.0.0.1:${nats.port}`), "the server is named without its userinfo");
    const nc = await connect({ servers: nats.url, user: "rtr", pass: PASSWORD });
    const info = await (await jetstreamManager(nc)).streams.info("RTR_EVENTS");
    await nc.close();
    assert.equal(info.state.messages, 2, "the events reached the stream: the URL's credentials logged in");

    const wrong = await runInProcess(["check", "--config", path], { ...env, NATS_URL: url(nats.port, WRONG) });
    assert.equal(wrong.code, 0, "token work goes on without NATS");
    assert.match(wrong.stdout, /refused the credentials/);
    assertNoSecrets([PASSWORD, WRONG], await w.outputs([run, wrong]));
  } finally {
    await w.close();
    await nats.close();
  }
});

test("nats url credentials - the collector logs in with them; a refusal on /healthz and the dashboard names the URL without the password", async () => {
  const nats = await startNatsServer({ config: `authorization { user: rtr, password: ${JSON.stringify(PASSWORD)} }` });
  const good = startCollector(collectorConfig(url(nats.port, PASSWORD)));
  const bad = startCollector(collectorConfig(url(nats.port, WRONG)));
  try {
    await waitFor(() => good.collector.health().ok, "the collector logged in with the URL's credentials");
    await waitFor(() => /refused the credentials/.test(bad.collector.health().reason ?? ""), "the refusal is reported");
    const reason = bad.collector.health().reason!;
    assert.match(reason, new RegExp(`NATS at nats://127\\.0\\.0\\.1:${nats.port} refused`));
    assert.match(reason, /user:password in nats\.servers \(NATS_URL\)/, "names what to fix");
    const app = createCollectorApp(bad.collector, { version: "t" });
    const healthz = await app.request("/healthz");
    assert.equal(healthz.status, 503);
    const page = await (await app.request("/")).text();
    // The banner names the refusal (NATS is what is missing: "NATS unavailable"), URL without the password.
    assert.match(page, /NATS unavailable: .*refused the credentials/);
    const outputs = [
      { label: "/healthz", text: await healthz.text() },
      { label: "dashboard", text: page },
      { label: "good collector log", text: good.logs() },
      { label: "bad collector log", text: bad.logs() },
    ];
    assertNoSecrets([PASSWORD, WRONG], outputs);
    assert.ok(!outputs.some((o) => o.text.includes("rtr:")), "no userinfo at all");
  } finally {
    await good.close();
    await bad.close();
    await nats.close();
  }
});

test("nats url credentials - userinfo is split off, decoded, registered for redaction; a lone userinfo is a token", () => {
  const split = splitServerCredentials(["nats://127.0.0.1:4222", "nats://u%40x:p%3Ass-word-1@a.example.com:4222", "tls://b.example.com"]);
  assert.deepEqual(split, { servers: ["nats://127.0.0.1:4222", "nats://a.example.com:4222", "tls://b.example.com"], user: "u@x", password: "p:ss-word-1" });
  assert.equal(redact("said p:ss-word-1 and p%3Ass-word-1"), "said [REDACTED] and [REDACTED]");
  assert.deepEqual(splitServerCredentials(["tok-en-value-9@127.0.0.1:4222"]), { servers: ["127.0.0.1:4222"], token: "tok-en-value-9" });
  assert.equal(stripUserinfo("nats://a:b@c@host:1"), "nats://host:1", "an unencoded @ in the password");
  assert.equal(stripUserinfo("host:4222"), "host:4222");
  assert.equal(scrubUrls("dial nats://me:secret-x@h:4222 and tls://h2 failed"), "dial nats://h:4222 and tls://h2 failed");
});
