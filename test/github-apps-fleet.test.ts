// Issue 18, several GitHub Apps in fleet mode: the collector's poller and token broker use the same
// client, so a revoked App costs them nothing while another App can act, and the collector's
// /metrics counts the failover. Real collector, real nats-server, fake GitHub.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { waitFor } from "./helpers/agent.ts";
import { startFakeGitHub } from "./helpers/fake-github.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";
import { createCollectorApp } from "../src/http/collector-app.ts";
import { inboxPrefixFor } from "../src/nats/subjects.ts";

test("github apps - fleet: with App 11 revoked the collector polls and brokers through App 22, counts the failover, leaks nothing", async () => {
  const nats = await startNatsServer();
  const github = await startFakeGitHub();
  const keys = [0, 1].map(() => generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString());
  github.addApp(11).revoked = true;
  github.addApp(22);
  github.addRunner({ name: "r-1", scope: "org:acme", status: "online" });
  const config = collectorConfig(nats.url, { github: { apiUrl: github.url, token: "unused" }, fleetScopes: [{ org: "acme" }], pollInterval: 1 });
  config.github.auth = { kind: "apps", apps: [{ appId: 11, privateKey: keys[0] }, { appId: 22, privateKey: keys[1] }] };
  const c = startCollector(config);
  const nc = await connect({ servers: nats.url, inboxPrefix: inboxPrefixFor("ci-01") });
  try {
    await waitFor(() => c.collector.broker?.answering === true, "the leader's broker answers", 20_000);
    const answer = (await nc.request("rtr.token.org=3Aacme", JSON.stringify({ v: 1, host: "ci-01", runner: null }), { timeout: 10_000 })).json<{ token?: string; error?: string }>();
    assert.ok(answer.token && github.mintedTokens.includes(answer.token), JSON.stringify(answer.error));
    await waitFor(() => github.calls.some((c) => /\/actions\/runners\?/.test(c.path) && c.status === 200), "a poll answered", 20_000);
    const text = await (await createCollectorApp(c.collector, { version: "t" }).request("/metrics")).text();
    assert.match(text, /^rtr_github_app_failovers_total\{app_id="11",reason="revoked"\} [1-9]\d*$/m);
    assert.match(text, /^rtr_github_app_failovers_total\{app_id="22",reason="revoked"\} 0$/m);
    assert.match(text, /^rtr_github_app_ratelimit_remaining\{app_id="22"\} \d+$/m);
    assert.doesNotMatch(c.logs(), /"level":"error"/);
    assert.match(c.logs(), /GitHub App 11 was refused/);
    const secrets = [...github.installationTokens.keys(), ...github.mintedTokens, ...keys.flatMap((k) => k.split("\n").filter((l) => l.length > 40))];
    assertNoSecrets(secrets, [{ label: "collector log", text: c.logs() }, { label: "metrics", text }]);
    assert.deepEqual(github.schemaErrors, []);
  } finally {
    await nc.close();
    await c.close();
    await github.close();
    await nats.close();
  }
});
