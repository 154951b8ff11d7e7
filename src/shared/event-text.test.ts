import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { EVENT_TYPES, type Envelope } from "./types.ts";
import { eventSentence, registrationReason } from "./event-text.ts";

function ev(type: string, data: Record<string, unknown> = {}, runner: string | null = "runner-1"): Envelope {
  return { v: 1, id: "x", seq: 1, type: type as Envelope["type"], time: "2026-11-27T10:00:00.000Z", host: "ci-01", runner, scope: { org: "acme" }, agent: { version: "1", runtime: "node" }, data };
}

test("event text - every known type is one sentence, even with its data missing or odd", () => {
  for (const type of EVENT_TYPES) {
    for (const data of [{}, { error: { nested: true }, pool: 5, since: "not a time", seconds_alive: "x" }]) {
      const s = eventSentence(ev(type, data));
      assert.ok(s && /^[^\n]+[.!?]$/.test(s), `${type}: ${s}`);
    }
  }
});

test("event text - sentences say what happened with the event's facts", () => {
  assert.equal(eventSentence(ev("token.refreshed", { expires_at: "2026-11-27T11:00:00.000Z" }, null)), "Registration token for org:acme refreshed, valid until 11:00:00 UTC.");
  assert.equal(eventSentence(ev("runner.registered", { agent_id: 7, reason: "deleted_on_github" })), "runner-1 registered as runner id 7 (GitHub no longer had it).");
  assert.equal(eventSentence(ev("token.refresh_failed", { consecutive_failures: 2, error: "GitHub answered 502." }, null)), "Token refresh for org:acme failed (2 in a row): GitHub answered 502.");
  assert.match(eventSentence(ev("pool.runner_exited", { pool: "build", job: true, exit_code: 0, seconds_alive: 125 }))!, /exited after its job \(exit code 0, alive 2m\)/);
  assert.equal(registrationReason("some_new_reason"), "some new reason");
});

test("event text - an unknown type has no sentence (shown raw), nor does a prototype name", () => {
  assert.equal(eventSentence(ev("runner.teleported")), null);
  assert.equal(eventSentence(ev("constructor")), null);
  assert.equal(eventSentence(ev("__proto__")), null);
});
