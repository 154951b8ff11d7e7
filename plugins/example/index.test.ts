import { test, after, before } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import example from "./index.ts";
import { closedPort, expectDeliveryError, expectOptionsError, instantiate, sampleNotification, secretHelpers, startReceiver } from "../../test/helpers/plugin-harness.ts";
import type { Receiver } from "../../test/helpers/plugin-harness.ts";

let rx: Receiver;
before(async () => {
  rx = await startReceiver({ status: 200, body: "thanks" });
});
after(() => rx.close());

const signal = () => AbortSignal.timeout(5000);

test("example plugin - posts the prefixed headline as JSON", async () => {
  const { instance } = await instantiate(example, { url: `${rx.url}/in`, prefix: "[ci]" });
  await instance.send(sampleNotification(), signal());
  const req = rx.requests.at(-1)!;
  assert.equal(req.path, "/in");
  assert.deepEqual(JSON.parse(req.body), {
    text: "[ci] [FIRING] refresh_failures on ci-01/runner-1: 3 token refreshes failed in a row",
    key: "refresh_failures/ci-01/runner-1",
    status: "firing",
  });
});

test("example plugin - 5xx and 429 are retryable, other 4xx are not", async () => {
  const { instance } = await instantiate(example, { url: rx.url });
  rx.reply({ status: 503 });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, message: /503/ }, []);
  rx.reply({ status: 429, headers: { "retry-after": "3" } });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, retryAfterSeconds: 3 }, []);
  rx.reply({ status: 404 });
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /404/ }, []);
});

test("example plugin - unreachable and hanging receivers are retryable", async () => {
  const dead = await instantiate(example, { url: `http://127.0.0.1:${await closedPort()}/` });
  await expectDeliveryError(dead.instance.send(sampleNotification(), signal()), { retryable: true, message: /unreachable/ }, []);
  const { instance } = await instantiate(example, { url: rx.url });
  rx.reply({ status: 200, hang: true });
  const started = Date.now();
  await expectDeliveryError(instance.send(sampleNotification(), AbortSignal.timeout(200)), { retryable: true, message: /in time/ }, []);
  assert.ok(Date.now() - started < 2000);
});

test("example plugin - options: url required, prefix defaults, unknown keys rejected", async () => {
  const h = secretHelpers();
  assert.deepEqual(await example.parseOptions({ url: "https://example.com/x" }, h), { url: "https://example.com/x", prefix: "[alert]" });
  await expectOptionsError(() => example.parseOptions({}, h), "url", /required/);
  await expectOptionsError(() => example.parseOptions({ url: "nope" }, h), "url", /URL/);
  await expectOptionsError(() => example.parseOptions({ url: "https://example.com", prefix: 1 }, h), "prefix", /string/);
  await expectOptionsError(() => example.parseOptions({ url: "https://example.com", prefx: "[x]" }, h), "prefx", /unknown option/);
});
