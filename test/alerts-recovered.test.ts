// Resolve notifications say what recovered and after how long: the host (the alert engine) sets
// `resolvedAfterSeconds` and `recovered`, and every built-in plugin's text carries it.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { createLogger } from "../src/shared/logger.ts";
import { DEFAULT_DELIVERY, PluginTarget } from "../src/alerts/delivery.ts";
import { AlertEngine, type AlertRecord, type AlertStore } from "../src/alerts/engine.ts";
import { headline, recoveredText, type Notification, type PluginInstance } from "../src/alerts/sdk.ts";
import { slackMessage } from "../plugins/slack/index.ts";
import { emailHtml, emailText } from "../plugins/email/index.ts";
import { webhookBody } from "../plugins/webhook/index.ts";
import { sampleNotification } from "./helpers/plugin-harness.ts";

const log = createLogger({ level: "silent", write: () => {} });

class MemoryStore implements AlertStore {
  records: Record<string, AlertRecord> = {};
  async load() {
    return structuredClone(this.records);
  }
  async save(records: Record<string, AlertRecord>) {
    this.records = structuredClone(records);
  }
}

test("alert recovery - the host's resolve carries how long the alert lasted, in seconds and words", async () => {
  const got: Notification[] = [];
  const receiver: PluginInstance = { send: async (n) => void got.push(n) };
  const clock = { t: Date.parse("2026-11-27T10:00:00Z") };
  const stop = new AbortController();
  const target = new PluginTarget("slack", true, receiver, { ...DEFAULT_DELIVERY, timeoutSeconds: 1 }, log, { count: () => {} }, stop.signal);
  const engine = new AlertEngine({ targets: [target], store: new MemoryStore(), repeatInterval: 3600, groupWait: 0, sendResolved: true, log, now: () => clock.t });
  await engine.start();
  const condition = { key: "consecutive_failures/ci-01/runner-1", rule: "consecutive_failures", host: "ci-01", runner: "runner-1", scope: { org: "acme" }, severity: "error" as const, summary: "3 consecutive failures", details: {}, state: "firing" as const };
  await engine.evaluate([condition]);
  await engine.idle();
  clock.t += 12 * 60_000 + 5_000;
  await engine.evaluate([]);
  await engine.idle();
  stop.abort();
  const resolved = got.find((n) => n.status === "resolved")!;
  assert.equal(resolved.resolvedAfterSeconds, 725);
  assert.equal(resolved.recovered, "recovered after 12m");
  assert.equal(got[0].recovered, undefined, "a firing notification says nothing about recovery");
  assert.match(headline(resolved), /^\[RESOLVED\] consecutive_failures on ci-01\/runner-1: recovered after 12m \(was: 3 consecutive failures\)$/);
});

test("alert recovery - every plugin's text says what recovered and after how long", () => {
  const n = sampleNotification({ status: "resolved", startsAt: "2025-01-02T03:00:00.000Z", endsAt: "2025-01-02T04:05:00.000Z" });
  assert.equal(recoveredText(n), "recovered after 1h 5m", "computed from the times when the host did not say");
  const slack = slackMessage(n) as { text: string; blocks: { fields?: { text: string }[] }[] };
  assert.match(slack.text, /RESOLVED.*refresh_failures on ci-01\/runner-1: recovered after 1h 5m/);
  assert.ok(slack.blocks[1].fields!.some((f) => f.text === "*Recovered*\nafter 1h 5m"));
  assert.match(emailText(n), /recovered after 1h 5m[\s\S]*Recovered:after 1h 5m/);
  assert.match(emailHtml(n), /recovered after 1h 5m/);
  const hostSaid = { ...n, resolvedAfterSeconds: 3900, recovered: "recovered after 1h 5m" };
  const body = JSON.parse(new TextDecoder().decode(webhookBody(hostSaid))) as Notification;
  assert.equal(body.resolvedAfterSeconds, 3900);
  assert.equal(body.recovered, "recovered after 1h 5m");
  assert.equal(recoveredText(sampleNotification()), null, "firing: no recovery text");
});
