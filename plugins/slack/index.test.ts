import { test, after, before } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import slack, { LIMITS, slackMessage } from "./index.ts";
import { closedPort, expectDeliveryError, expectOptionsError, instantiate, sampleNotification, secretHelpers, startReceiver } from "../../test/helpers/plugin-harness.ts";
import type { Receiver } from "../../test/helpers/plugin-harness.ts";

const HOOK_PATH = "/services/T0001/B0002/Xk9sEcReTtOkEn123";
let rx: Receiver;
let hook: string;
before(async () => {
  rx = await startReceiver();
  hook = rx.url + HOOK_PATH;
});
after(() => rx.close());

const signal = () => AbortSignal.timeout(5000);
const last = () => rx.requests[rx.requests.length - 1];

test("slack plugin - posts the exact text and blocks payload", async () => {
  const { instance } = await instantiate(slack, { webhookUrl: hook });
  await instance.send(sampleNotification(), signal());
  const req = last();
  assert.equal(req.method, "POST");
  assert.equal(req.path, HOOK_PATH);
  assert.equal(req.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(req.body), {
    text: "[FIRING] refresh_failures on ci-01/runner-1: 3 token refreshes failed in a row",
    blocks: [
      { type: "header", text: { type: "plain_text", text: "FIRING: refresh_failures on ci-01/runner-1", emoji: false } },
      {
        type: "section",
        text: { type: "mrkdwn", text: "3 token refreshes failed in a row" },
        fields: [
          { type: "mrkdwn", text: "*Rule*\nrefresh_failures" },
          { type: "mrkdwn", text: "*Host*\nci-01" },
          { type: "mrkdwn", text: "*Runner*\nrunner-1" },
          { type: "mrkdwn", text: "*Scope*\norg acme" },
          { type: "mrkdwn", text: "*Severity*\nerror" },
          { type: "mrkdwn", text: "*Started*\n2025-01-02T03:04:05.000Z" },
        ],
      },
      { type: "section", text: { type: "mrkdwn", text: "```failures: 3\nlastError: GitHub answered 401 &lt;Bad credentials&gt; &amp; gave up```" } },
      { type: "context", elements: [{ type: "mrkdwn", text: "key refresh_failures/ci-01/runner-1" }] },
    ],
  });
});

test("slack plugin - sends channel, username and icon_emoji when configured", async () => {
  const { instance } = await instantiate(slack, { webhookUrl: hook, channel: "#ci-alerts", username: "runner-bot", iconEmoji: ":rotating_light:" });
  await instance.send(sampleNotification(), signal());
  const body = JSON.parse(last().body);
  assert.equal(body.channel, "#ci-alerts");
  assert.equal(body.username, "runner-bot");
  assert.equal(body.icon_emoji, ":rotating_light:");
});

test("slack plugin - resolved, reminder and test notifications say so in text and header", async () => {
  const resolved = slackMessage(sampleNotification({ status: "resolved", endsAt: "2025-01-02T04:00:00.000Z" })) as { text: string; blocks: any[] };
  assert.match(resolved.text, /^\[RESOLVED\] refresh_failures on ci-01\/runner-1/);
  assert.equal(resolved.blocks[0].text.text, "RESOLVED: refresh_failures on ci-01/runner-1");
  assert.deepEqual(resolved.blocks[1].fields.at(-1), { type: "mrkdwn", text: "*Ended*\n2025-01-02T04:00:00.000Z" });
  const reminder = slackMessage(sampleNotification({ reminder: true })) as { blocks: any[] };
  assert.equal(reminder.blocks[0].text.text, "FIRING (reminder): refresh_failures on ci-01/runner-1");
  const t = slackMessage(sampleNotification({ test: true, runner: null, scope: null, details: {} })) as { text: string; blocks: any[] };
  assert.match(t.text, /^\[TEST FIRING\] refresh_failures on ci-01:/);
  assert.equal(t.blocks.length, 3, "no details section when details are empty");
  assert.match(t.blocks.at(-1).elements[0].text, /test notification/);
  assert.ok(t.blocks[1].fields.some((f: { text: string }) => f.text === "*Runner*\n—"));
});

test("slack plugin - escapes &, < and > so text cannot become links or mentions", () => {
  const m = slackMessage(sampleNotification({ summary: "<!channel> a & b" })) as { text: string; blocks: any[] };
  assert.ok(m.text.endsWith("&lt;!channel&gt; a &amp; b"));
  assert.equal(m.blocks[1].text.text, "&lt;!channel&gt; a &amp; b");
});

test("slack plugin - lists group members and keeps to 3000-character sections and 50 blocks", () => {
  const group = Array.from({ length: 1000 }, (_, i) => sampleNotification({ runner: `runner-${i}`, key: `refresh_failures/ci-01/runner-${i}`, summary: "x".repeat(300) }));
  const m = slackMessage(sampleNotification({ group })) as { text: string; blocks: any[] };
  assert.match(m.text, /^\[FIRING\] 1000 × refresh_failures: ci-01\/runner-0, /);
  assert.ok(m.text.length <= LIMITS.fallbackText);
  assert.equal(m.blocks[0].text.text, "FIRING: 1000 × refresh_failures");
  assert.ok(m.blocks.length <= 50, `${m.blocks.length} blocks`);
  for (const b of m.blocks) if (b.type === "section") assert.ok(b.text.text.length <= 3000, `section of ${b.text.text.length}`);
  assert.match(JSON.stringify(m.blocks), /• ci-01\/runner-0: x{300}/);
  const notShown = m.blocks.at(-2).elements[0].text as string;
  assert.match(notShown, /^…and \d+ more not shown$/);

  const small = slackMessage(sampleNotification({ group: group.slice(0, 2) })) as { blocks: any[] };
  assert.equal(small.blocks.filter((b) => b.type === "context").length, 1, "no 'not shown' line when all fit");

  const more = slackMessage(sampleNotification({ more: 7 })) as { text: string; blocks: any[] };
  assert.equal(more.text, "[FIRING] 7 more alerts (over the per-minute limit)");
  assert.equal(more.blocks[0].text.text, "FIRING: 7 more alerts");

  const huge = slackMessage(sampleNotification({ summary: "y".repeat(10_000), details: { big: "z".repeat(10_000) } })) as { text: string; blocks: any[] };
  assert.ok(huge.text.length <= 3000);
  for (const b of huge.blocks) if (b.type === "section") assert.ok(b.text.text.length <= 3000);
});

test("slack plugin - 200 with body ok is success; 200 with another body is not", async () => {
  const { instance, secrets } = await instantiate(slack, { webhookUrl: hook });
  rx.reply({ status: 200, body: "ok" });
  await instance.send(sampleNotification(), signal());
  rx.reply({ status: 200, body: "<html>login</html>" });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /answered 200/ }, secrets);
});

test("slack plugin - 429 is retryable after Retry-After (seconds or a date)", async () => {
  const { instance, secrets } = await instantiate(slack, { webhookUrl: hook });
  rx.reply({ status: 429, body: "rate_limited", headers: { "retry-after": "30" } });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, retryAfterSeconds: 30, message: /429 rate_limited/ }, secrets);
  rx.reply({ status: 429, body: "rate_limited", headers: { "retry-after": new Date(Date.now() + 60_000).toUTCString() } });
  await assert.rejects(instance.send(sampleNotification(), signal()), (e: { retryable: boolean; retryAfterSeconds: number }) => {
    assert.equal(e.retryable, true);
    assert.ok(e.retryAfterSeconds >= 58 && e.retryAfterSeconds <= 61, String(e.retryAfterSeconds));
    return true;
  });
  rx.reply({ status: 429, body: "rate_limited" });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true }, secrets);
});

test("slack plugin - 5xx and 408 are retryable", async () => {
  const { instance, secrets } = await instantiate(slack, { webhookUrl: hook });
  for (const status of [500, 502, 503, 408]) {
    rx.reply({ status, body: "upstream trouble" });
    await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, message: new RegExp(`Slack webhook answered ${status}`) }, secrets);
  }
});

test("slack plugin - 400 invalid_payload, 403, 404 no_service and 410 channel_is_archived are permanent", async () => {
  const { instance, secrets } = await instantiate(slack, { webhookUrl: hook });
  const cases: [number, string][] = [[400, "invalid_payload"], [403, "invalid_token"], [404, "no_service"], [410, "channel_is_archived"], [401, "no_auth"]];
  for (const [status, body] of cases) {
    rx.reply({ status, body });
    await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: new RegExp(`^Slack webhook answered ${status} ${body}`) }, secrets);
  }
});

test("slack plugin - a receiver echoing the webhook URL does not leak it", async () => {
  const { instance, secrets } = await instantiate(slack, { webhookUrl: hook });
  rx.reply({ status: 404, body: `no such hook ${hook}` });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /<webhookUrl>/ }, [...secrets, HOOK_PATH]);
});

test("slack plugin - a refused connection is retryable", async () => {
  const url = `http://127.0.0.1:${await closedPort()}${HOOK_PATH}`;
  const { instance, secrets } = await instantiate(slack, { webhookUrl: url });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, message: /request failed/ }, [...secrets, HOOK_PATH]);
});

test("slack plugin - a hanging webhook honours the abort signal", async () => {
  const { instance, secrets } = await instantiate(slack, { webhookUrl: hook });
  rx.reply({ hang: true, status: 200 });
  const started = Date.now();
  await expectDeliveryError(instance.send(sampleNotification(), AbortSignal.timeout(200)), { retryable: true, message: /aborted/ }, secrets);
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});

test("slack plugin - options: webhookUrl is required, a secret, and https (http only on loopback)", async () => {
  const h = secretHelpers({ SLACK_HOOK: "https://hooks.slack.com/services/T1/B2/fromEnvSecret99" });
  await expectOptionsError(() => slack.parseOptions({}, h), "webhookUrl", /required/);
  await expectOptionsError(() => slack.parseOptions({ webhookUrl: 42 }, h), "webhookUrl", /wrong type/);
  await expectOptionsError(() => slack.parseOptions({ webhookUrl: { envv: "X" } }, h), "webhookUrl");
  const plain = "http://hooks.example.com/services/T1/B2/plainHttpSecret77";
  await expectOptionsError(() => slack.parseOptions({ webhookUrl: plain }, h), "webhookUrl", /https/, [plain, "plainHttpSecret77"]);
  await expectOptionsError(() => slack.parseOptions({ webhookUrl: "not a url secretvalue" }, h), "webhookUrl", /not a URL/, ["secretvalue"]);
  assert.equal((await slack.parseOptions({ webhookUrl: { env: "SLACK_HOOK" } }, h)).webhookUrl, "https://hooks.slack.com/services/T1/B2/fromEnvSecret99");
  assert.equal((await slack.parseOptions({ webhookUrl: "http://localhost:9/x" }, h)).webhookUrl, "http://localhost:9/x");
  const dir = await mkdtemp(join(tmpdir(), "slack-"));
  try {
    await writeFile(join(dir, "hook"), "https://hooks.slack.com/services/T1/B2/fromFile\n");
    assert.equal((await slack.parseOptions({ webhookUrl: { file: join(dir, "hook") } }, h)).webhookUrl, "https://hooks.slack.com/services/T1/B2/fromFile");
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("slack plugin - options: wrong types and unknown keys are rejected with their path", async () => {
  const h = secretHelpers();
  await expectOptionsError(() => slack.parseOptions({ webhookUrl: hook, channel: 5 }, h), "channel", /string/);
  await expectOptionsError(() => slack.parseOptions({ webhookUrl: hook, iconEmoji: "siren" }, h), "iconEmoji", /emoji/);
  await expectOptionsError(() => slack.parseOptions({ webhookUrl: hook, chanel: "#x" }, h), "chanel", /unknown option/);
  await expectOptionsError(() => slack.parseOptions("https://hooks.slack.com/x", h), "(options)");
  assert.deepEqual(await slack.parseOptions({ webhookUrl: hook }, h), { webhookUrl: hook, channel: undefined, username: undefined, iconEmoji: undefined });
});
