// End to end: real agent passes and a real collector, real local Slack/PagerDuty/webhook receivers
// and a real SMTP server. Three failures in a row page once per plugin; recovery resolves once.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { makeWorld, runInProcess, waitFor, type World } from "./helpers/agent.ts";
import { startPagerDutyReceiver, startSlackReceiver, startSmtpReceiver, startWebhookReceiver, type HttpReceiver, type SmtpReceiver } from "./helpers/receivers.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createLogger } from "../src/shared/logger.ts";
import { Collector } from "../src/collector/collector.ts";
import { AlertHost } from "../src/alerts/host.ts";
import { KvAlertStore } from "../src/alerts/stores.ts";
import { loadPlugins } from "../src/alerts/load.ts";
import { BUILTIN_PLUGINS } from "../src/builtin-plugins.ts";
import { openBucket } from "../src/nats/setup.ts";
import { collectorConfig } from "./helpers/collector.ts";

interface Sinks {
  slack: HttpReceiver;
  pagerduty: HttpReceiver;
  webhook: HttpReceiver;
  smtp: SmtpReceiver;
  env: Record<string, string>;
  secrets: string[];
  close(): Promise<void>;
}

async function sinks(): Promise<Sinks> {
  const [slack, pagerduty, webhook, smtp] = await Promise.all([startSlackReceiver(), startPagerDutyReceiver(), startWebhookReceiver(), startSmtpReceiver({ user: "alerts", pass: "smtp-pass-5ecret" })]);
  const env = { SLACK_WEBHOOK_URL: slack.url, PD_ROUTING_KEY: "R0UT1NGKEY0123456789abcdefABCDEF", WEBHOOK_SECRET: "hmac-5ecret-value", SMTP_PASS: "smtp-pass-5ecret" };
  return {
    slack,
    pagerduty,
    webhook,
    smtp,
    env,
    secrets: [slack.url, "XXXXSECRETSLACK", env.PD_ROUTING_KEY, env.WEBHOOK_SECRET, env.SMTP_PASS],
    close: async () => {
      await Promise.all([slack.close(), pagerduty.close(), webhook.close(), smtp.close()]);
    },
  };
}

function alertsYaml(s: Sinks): string {
  return `
alerts:
  afterConsecutiveFailures: 3
  plugins:
    - [slack, { webhookUrl: { env: SLACK_WEBHOOK_URL } }]
    - [email, { smtp: { host: 127.0.0.1, port: ${s.smtp.port}, secure: false, requireTLS: false, auth: { user: alerts, pass: { env: SMTP_PASS } } }, from: rtr@example.com, to: [ops@example.com] }]
    - [pagerduty, { routingKey: { env: PD_ROUTING_KEY }, url: "${s.pagerduty.url}" }]
    - [webhook, { url: "${s.webhook.url}", secret: { env: WEBHOOK_SECRET } }]`;
}

function counts(s: Sinks): string {
  const pd = s.pagerduty.received.map((r) => r.body.event_action);
  const text = s.slack.received.map((r) => (r.body.text as string).match(/FIRING|RESOLVED/)?.[0]);
  return JSON.stringify({ slack: text, email: s.smtp.messages.map((m) => m.subject), pagerduty: pd, webhook: s.webhook.received.map((r) => r.body.status) });
}

test("alerts e2e - an agent whose GitHub fails 3 times pages once per plugin; recovery resolves once each", async () => {
  const s = await sinks();
  const w: World = await makeWorld();
  try {
    const path = await w.config(`
refresh: { retryBackoff: 0.01, maxRetries: 1, threshold: 3650 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1 }
${alertsYaml(s)}
`);
    const { RUNNER_NAME: _n, RUNNER_DIR: _d, RUNNER_ORG: _o, ...base } = w.env;
    const env = { ...base, ...s.env };
    const runs = [];
    w.github.inject("token", { status: 500 }, { status: 500 }, { status: 500 });
    for (let i = 1; i <= 2; i++) {
      const run = await runInProcess(["check", "--config", path], env);
      runs.push(run);
      assert.equal(run.code, 1);
      assert.equal(s.slack.received.length + s.pagerduty.received.length + s.webhook.received.length + s.smtp.messages.length, 0, `nothing after failure ${i}: ${counts(s)}`);
    }
    runs.push(await runInProcess(["check", "--config", path], env));
    await waitFor(() => s.slack.received.length === 1 && s.pagerduty.received.length === 1 && s.webhook.received.length === 1 && s.smtp.messages.length === 1, `one firing each: ${counts(s)}`);

    const slack = s.slack.received[0].body;
    assert.match(slack.text, /FIRING/);
    assert.ok(Array.isArray(slack.blocks));
    const mail = s.smtp.messages[0];
    assert.match(mail.subject, /FIRING.*refresh_failures/);
    const pd = s.pagerduty.received[0].body;
    assert.equal(pd.event_action, "trigger");
    assert.equal(pd.routing_key, s.env.PD_ROUTING_KEY);
    assert.match(pd.dedup_key, /^refresh_failures\//);
    const hook = s.webhook.received[0];
    assert.equal(hook.body.status, "firing");
    assert.equal(hook.headers["x-signature-256"], `sha256=${createHmac("sha256", s.env.WEBHOOK_SECRET).update(hook.raw).digest("hex")}`);

    const recovered = await runInProcess(["check", "--config", path], env);
    runs.push(recovered);
    assert.equal(recovered.code, 0, recovered.stdout);
    await waitFor(() => s.slack.received.length === 2 && s.pagerduty.received.length === 2 && s.webhook.received.length === 2 && s.smtp.messages.length === 2, `one resolve each: ${counts(s)}`);
    assert.match(s.slack.received[1].body.text, /RESOLVED/);
    assert.match(s.smtp.messages[1].subject, /RESOLVED/);
    assert.equal(s.pagerduty.received[1].body.event_action, "resolve");
    assert.equal(s.pagerduty.received[1].body.dedup_key, pd.dedup_key, "the resolve closes the same incident");
    assert.equal(s.webhook.received[1].body.status, "resolved");
    runs.push(await runInProcess(["check", "--config", path], env));
    assert.equal(s.slack.received.length, 2, "no more notifications once resolved");

    console.log(`Slack payload: ${s.slack.received[0].raw}\nEmail subject: ${mail.subject}\nPagerDuty event: ${s.pagerduty.received[0].raw}`);
    await w.assertNoLeaks(runs);
    assertNoSecrets(s.secrets, [...(await w.outputs(runs)), ...s.webhook.received.map((r, i) => ({ label: `webhook body ${i}`, text: r.raw })), ...s.slack.received.map((r, i) => ({ label: `slack body ${i}`, text: r.raw }))]);
  } finally {
    await w.close();
    await s.close();
  }
});

test("alerts e2e - through the collector: an agent's failure streak pages once per plugin, and resolves once", async () => {
  const s = await sinks();
  const nats = await startNatsServer();
  const w = await makeWorld();
  let out = "";
  const log = createLogger({ level: "info", write: (l) => void (out += l) });
  const runtime = { ...createNodeRuntime(), env: { ...process.env, ...s.env } };
  const config = collectorConfig(nats.url);
  const path = await w.config(`
refresh: { retryBackoff: 0.01, maxRetries: 1, threshold: 3650 }
nats: { servers: [${nats.url}], name: ci-01 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1 }
${alertsYaml(s)}
`);
  config.alerts = { ...config.alerts, plugins: [["slack", { webhookUrl: { env: "SLACK_WEBHOOK_URL" } }], ["pagerduty", { routingKey: { env: "PD_ROUTING_KEY" }, url: s.pagerduty.url }], ["webhook", { url: s.webhook.url }]] };
  const plugins = await loadPlugins(runtime, config, BUILTIN_PLUGINS);
  const collector = new Collector({ runtime, config, log, alerts: async (nc, names) => AlertHost.create(plugins, new KvAlertStore(await openBucket(nc, names.alertsBucket, true)), config, log) });
  collector.start();
  try {
    await waitFor(() => collector.health().ok && collector.leader, "collector ready and leader", 20_000);
    const { RUNNER_NAME: _n, RUNNER_DIR: _d, RUNNER_ORG: _o, ...base } = w.env;
    // The agent itself sends nothing here: only the collector's plugins are watched.
    const agentPath = await w.config((await import("node:fs")).readFileSync(path, "utf8").replace(/alerts:[\s\S]*$/, ""));
    w.github.inject("token", { status: 500 }, { status: 500 }, { status: 500 });
    for (let i = 0; i < 3; i++) await runInProcess(["check", "--config", agentPath], base);
    await waitFor(() => s.slack.received.length === 1 && s.pagerduty.received.length === 1 && s.webhook.received.length === 1, `collector paged once each: ${counts(s)}`, 20_000);
    assert.equal(s.pagerduty.received[0].body.dedup_key, "consecutive_failures/ci-01/runner-1");
    await runInProcess(["check", "--config", agentPath], base);
    await waitFor(() => s.slack.received.length === 2 && s.pagerduty.received.length === 2 && s.webhook.received.length === 2, `collector resolved once each: ${counts(s)}`, 20_000);
    assert.equal(s.pagerduty.received[1].body.event_action, "resolve");
    assert.equal(s.pagerduty.received[1].body.dedup_key, "consecutive_failures/ci-01/runner-1");
    assertNoSecrets(s.secrets, [{ label: "collector log", text: out }]);
  } finally {
    await collector.close();
    await w.close();
    await nats.close();
    await s.close();
  }
});
