// A scope alert end to end: real agent passes whose registration-token calls fail (fake GitHub,
// OpenAPI-checked), two runners of one scope, and every built-in plugin against its real local
// receiver (Slack, PagerDuty and webhook HTTP sinks, a real SMTP server). One token outage is one
// alert per plugin, and each of them names both runners; PagerDuty's component is the scope.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { makeWorld, runInProcess, waitFor } from "./helpers/agent.ts";
import { makeRunnerDir } from "./helpers/runner-dir.ts";
import { startPagerDutyReceiver, startSlackReceiver, startSmtpReceiver, startWebhookReceiver } from "./helpers/receivers.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";

const NAMES = ["runner-east", "runner-west"];

test("alerts scope - a token outage for two runners of one scope pages once per plugin, naming both runners", async () => {
  const [slack, pagerduty, webhook, smtp] = await Promise.all([startSlackReceiver(), startPagerDutyReceiver(), startWebhookReceiver(), startSmtpReceiver({ user: "alerts", pass: "smtp-pass-5ecret" })]);
  const w = await makeWorld();
  const second = await makeRunnerDir({ github: w.github });
  const env = { SLACK_WEBHOOK_URL: slack.url, PD_ROUTING_KEY: "R0UT1NGKEY0123456789abcdefABCDEF", WEBHOOK_SECRET: "hmac-5ecret-value", SMTP_PASS: "smtp-pass-5ecret" };
  try {
    const path = await w.config(`
refresh: { retryBackoff: 0.01, maxRetries: 1, threshold: 3650 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: ${NAMES[0]} }
  - { dir: ${second.dir}, scope: { org: acme }, name: ${NAMES[1]} }
alerts:
  afterConsecutiveFailures: 2
  plugins:
    - [slack, { webhookUrl: { env: SLACK_WEBHOOK_URL } }]
    - [email, { smtp: { host: 127.0.0.1, port: ${smtp.port}, secure: false, requireTLS: false, auth: { user: alerts, pass: { env: SMTP_PASS } } }, from: rtr@example.com, to: [ops@example.com] }]
    - [pagerduty, { routingKey: { env: PD_ROUTING_KEY }, url: "${pagerduty.url}" }]
    - [webhook, { url: "${webhook.url}", secret: { env: WEBHOOK_SECRET } }]
`);
    const { RUNNER_NAME: _n, RUNNER_DIR: _d, RUNNER_ORG: _o, ...base } = w.env;
    w.github.inject("token", { status: 500 }, { status: 500 });
    const runs = [];
    for (let i = 0; i < 2; i++) runs.push(await runInProcess(["check", "--config", path], { ...base, ...env }));
    assert.ok(runs.every((r) => r.code === 1));
    await waitFor(() => slack.received.length >= 1 && pagerduty.received.length >= 1 && webhook.received.length >= 1 && smtp.messages.length >= 1, "one firing per plugin", 30_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual([slack.received.length, pagerduty.received.length, webhook.received.length, smtp.messages.length], [1, 1, 1, 1], "one incident for the scope, not one per runner");

    const hook = webhook.received[0].body;
    const host = hook.host as string; // the machine's hostname: no nats.name is set
    const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    assert.equal(hook.key, `refresh_failures/${host}/org:acme`);
    assert.equal(hook.runner, null);
    assert.deepEqual(hook.details.runners, NAMES, "the webhook JSON lists the runners in details.runners");

    const s = slack.received[0].body;
    for (const name of NAMES) {
      assert.match(s.text, new RegExp(name), "Slack's text (the fallback) names every runner");
      assert.ok(s.blocks.some((b: any) => (b.fields ?? []).some((f: any) => f.text.includes(name))), "a Slack field names every runner");
    }
    assert.ok(s.text.startsWith(`[FIRING] refresh_failures on ${host}/org:acme`), s.text);

    const pd = pagerduty.received[0].body;
    assert.equal(pd.payload.component, "org:acme", "PagerDuty's component is the scope");
    assert.deepEqual(pd.payload.custom_details.runners, NAMES);
    for (const name of NAMES) assert.match(pd.payload.summary, new RegExp(name));

    const mail = smtp.messages[0];
    assert.match(mail.subject, new RegExp(`FIRING refresh_failures ${esc(host)}/org:acme`));
    for (const name of NAMES) {
      assert.match(mail.subject, new RegExp(name), "the subject names every runner");
      assert.match(mail.raw, new RegExp(`Runners: +${NAMES.join(", ")}`), "the text body lists the runners");
    }
    assertNoSecrets([...w.secrets(), ...Object.values(env)], [
      ...runs.flatMap((r, i) => [{ label: `run ${i} stdout`, text: r.stdout }, { label: `run ${i} stderr`, text: r.stderr }]),
      ...slack.received.map((r, i) => ({ label: `slack ${i}`, text: r.raw })),
      ...pagerduty.received.map((r, i) => ({ label: `pagerduty ${i}`, text: JSON.stringify({ ...r.body, routing_key: "" }) })),
      ...webhook.received.map((r, i) => ({ label: `webhook ${i}`, text: r.raw })),
      ...smtp.messages.map((m, i) => ({ label: `mail ${i}`, text: m.raw })),
    ]);
  } finally {
    await second.cleanup();
    await w.close();
    await Promise.all([slack.close(), pagerduty.close(), webhook.close(), smtp.close()]);
  }
});
