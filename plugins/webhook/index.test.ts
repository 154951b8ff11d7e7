import { test, after, before } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import webhook, { webhookBody } from "./index.ts";
import { closedPort, expectDeliveryError, expectOptionsError, instantiate, sampleNotification, secretHelpers, startReceiver } from "../../test/helpers/plugin-harness.ts";
import type { Receiver, Recorded } from "../../test/helpers/plugin-harness.ts";

const PATH = "/hooks/alerts/tok3nInPathS3cret";
const HMAC_SECRET = "whsec_hmacSecretValue_42";
const BEARER = "Bearer auth-header-s3cret-value";
let rx: Receiver;
let url: string;
before(async () => {
  rx = await startReceiver({ status: 204 });
  url = `${rx.url}${PATH}?token=queryS3cretValue`;
});
after(() => rx.close());

const signal = () => AbortSignal.timeout(5000);
const allSecrets = () => [url, PATH, "queryS3cretValue", HMAC_SECRET, BEARER, "auth-header-s3cret-value"];

/** What a receiver does: recompute the HMAC over the raw bytes and compare in constant time. */
function verify(req: Recorded, secret: string): boolean {
  const header = req.headers["x-signature-256"] ?? "";
  const expected = Buffer.from(`sha256=${createHmac("sha256", secret).update(req.bytes).digest("hex")}`);
  const got = Buffer.from(header);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

test("webhook plugin - posts the notification as versioned JSON", async () => {
  const { instance } = await instantiate(webhook, { url });
  const n = sampleNotification();
  await instance.send(n, signal());
  const req = rx.requests.at(-1)!;
  assert.equal(req.method, "POST");
  assert.equal(req.path, PATH);
  assert.equal(req.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(req.body), { version: "1", ...n });
  assert.deepEqual(req.bytes, webhookBody(n));
  assert.equal(req.headers["x-signature-256"], undefined, "no signature without a secret");
});

test("webhook plugin - signs the exact body bytes with HMAC-SHA256 the receiver can verify", async () => {
  const { instance } = await instantiate(webhook, { url, secret: { env: "HOOK_SECRET" } }, { HOOK_SECRET: HMAC_SECRET });
  const group = [sampleNotification(), sampleNotification({ runner: "runner-2", key: "refresh_failures/ci-01/runner-2" })];
  await instance.send(sampleNotification({ summary: "échec « 3× » 😀", group }), signal());
  const req = rx.requests.at(-1)!;
  assert.match(req.headers["x-signature-256"], /^sha256=[0-9a-f]{64}$/);
  assert.ok(verify(req, HMAC_SECRET), "signature verifies with the shared secret");
  assert.ok(!verify(req, "another-secret"), "and not with another");
  assert.equal(JSON.parse(req.body).group.length, 2);
  assert.equal(JSON.parse(req.body).summary, "échec « 3× » 😀");
});

test("webhook plugin - sends configured headers, values given as secrets", async () => {
  const { instance } = await instantiate(webhook, { url, headers: { Authorization: { env: "HOOK_AUTH" }, "X-Team": "ci" } }, { HOOK_AUTH: BEARER });
  await instance.send(sampleNotification(), signal());
  const req = rx.requests.at(-1)!;
  assert.equal(req.headers.authorization, BEARER);
  assert.equal(req.headers["x-team"], "ci");
});

test("webhook plugin - any 2xx is success", async () => {
  const { instance } = await instantiate(webhook, { url });
  for (const status of [200, 201, 202, 204]) {
    rx.reply({ status, body: status === 204 ? undefined : "accepted" });
    await instance.send(sampleNotification(), signal());
  }
});

test("webhook plugin - 408, 429 and 5xx are retryable, with Retry-After", async () => {
  const { instance } = await instantiate(webhook, { url, secret: HMAC_SECRET, headers: { Authorization: BEARER } });
  rx.reply({ status: 429, body: "slow down", headers: { "retry-after": "7" } });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, retryAfterSeconds: 7, message: /^webhook answered 429 slow down/ }, allSecrets());
  for (const status of [408, 500, 502, 503, 504]) {
    rx.reply({ status, body: "try later" });
    await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, message: new RegExp(`^webhook answered ${status}`) }, allSecrets());
  }
});

test("webhook plugin - other 4xx and redirects are permanent", async () => {
  const { instance } = await instantiate(webhook, { url, secret: HMAC_SECRET, headers: { Authorization: BEARER } });
  for (const status of [400, 401, 403, 404, 410, 422]) {
    rx.reply({ status, body: "no" });
    await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: new RegExp(`^webhook answered ${status} no`) }, allSecrets());
  }
  rx.reply({ status: 302, headers: { location: "https://example.com/elsewhere" } });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /redirects are not followed/ }, allSecrets());
});

test("webhook plugin - a receiver echoing the URL, secret or headers does not leak them", async () => {
  const { instance } = await instantiate(webhook, { url, secret: HMAC_SECRET, headers: { Authorization: BEARER } });
  rx.reply({ status: 400, body: `bad request to ${url} with ${BEARER} and ${HMAC_SECRET}` });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /<redacted>/ }, allSecrets());
});

test("webhook plugin - a refused connection is retryable", async () => {
  const dead = `http://127.0.0.1:${await closedPort()}${PATH}`;
  const { instance } = await instantiate(webhook, { url: dead, secret: HMAC_SECRET });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, message: /^webhook request failed/ }, [...allSecrets(), dead]);
});

test("webhook plugin - a hanging receiver honours the abort signal", async () => {
  const { instance } = await instantiate(webhook, { url });
  rx.reply({ hang: true, status: 200 });
  const started = Date.now();
  await expectDeliveryError(instance.send(sampleNotification(), AbortSignal.timeout(200)), { retryable: true, message: /aborted/ }, allSecrets());
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});

test("webhook plugin - options: url is a required secret http(s) URL", async () => {
  const h = secretHelpers({ HOOK_URL: "https://hooks.example.com/x/envS3cretPath" });
  await expectOptionsError(() => webhook.parseOptions({}, h), "url", /required/);
  await expectOptionsError(() => webhook.parseOptions({ url: true }, h), "url", /wrong type/);
  await expectOptionsError(() => webhook.parseOptions({ url: "hooks.example.com/s3cretNoScheme" }, h), "url", /not a URL/, ["s3cretNoScheme"]);
  await expectOptionsError(() => webhook.parseOptions({ url: "ftp://files.example.com/s3cretFtpPath" }, h), "url", /http/, ["s3cretFtpPath"]);
  assert.deepEqual(await webhook.parseOptions({ url: { env: "HOOK_URL" } }, h), { url: "https://hooks.example.com/x/envS3cretPath", headers: {} });
  assert.deepEqual(await webhook.parseOptions({ url: "http://alerts.internal/hook", secret: "k3y-value" }, h), { url: "http://alerts.internal/hook", secret: "k3y-value", headers: {} });
});

test("webhook plugin - options: secret and headers are checked with their path", async () => {
  const h = secretHelpers();
  await expectOptionsError(() => webhook.parseOptions({ url, secret: 12 }, h), "secret", /wrong type/, allSecrets());
  await expectOptionsError(() => webhook.parseOptions({ url, secret: "  " }, h), "secret", /empty/, allSecrets());
  await expectOptionsError(() => webhook.parseOptions({ url, headers: ["Authorization: x"] }, h), "headers", /object/, allSecrets());
  await expectOptionsError(() => webhook.parseOptions({ url, headers: { Authorization: 5 } }, h), "headers.Authorization", /wrong type/, allSecrets());
  await expectOptionsError(() => webhook.parseOptions({ url, headers: { "Bad Name": "x" } }, h), "headers.Bad Name", /header name/, allSecrets());
  await expectOptionsError(() => webhook.parseOptions({ url, headers: { "content-type": "text/plain" } }, h), "headers.content-type", /set by the plugin/, allSecrets());
  await expectOptionsError(() => webhook.parseOptions({ url, headers: { "X-Signature-256": "sha256=0" } }, h), "headers.X-Signature-256", /set by the plugin/, allSecrets());
  await expectOptionsError(() => webhook.parseOptions({ url, headers: { "X-A": "a\r\nInjected: 1" } }, h), "headers.X-A", /line break/, allSecrets());
  await expectOptionsError(() => webhook.parseOptions({ url, hmacSecret: HMAC_SECRET }, h), "hmacSecret", /unknown option/, allSecrets());
});
