import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import type { StateDocument } from "../shared/types.ts";
import { stateKey } from "../nats/subjects.ts";
import { checkStateDocument, stateDocumentSchema } from "./validate.ts";

const enc = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

function doc(host: string, name: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: 1, host, name, time: "2026-12-07T06:00:00.000Z", interval: 60, dir: `/srv/${name}`, scope: { org: "acme" }, ephemeral: false,
    registered: true, agent_id: 7, service_active: true, online: true, busy: false, token_expires_at: 1_800_000_000,
    last_refresh_timestamp: 1_799_999_000, total_refreshes: 3, failed_refreshes: 0, consecutive_failures: 0, registrations: 1,
    status: "ok", last_error: null, ...over,
  };
}

function check(value: Record<string, unknown>, host = "ci-01.example.com", name = "runner-1") {
  return checkStateDocument(stateKey(host, name), enc(value));
}

test("state check - an agent's usual document is accepted as the schema returns it", () => {
  for (const value of [doc("ci-01.example.com", "runner-1"), doc("ci-01.example.com", "runner-1", { status: "failing", consecutive_failures: 4, last_error: "502", agent_id: null, online: null, token_expires_at: null })]) {
    const r = check(value);
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.doc, stateDocumentSchema.parse(value));
  }
});

test("state check - every field of the wrong type or out of bounds drops the document as invalid", () => {
  const wrong: Record<string, unknown[]> = {
    host: ["", 7, null, "h".repeat(513)], name: ["", 1, null], time: [1, "t".repeat(65), null], interval: [0, -1, "60", null],
    dir: [1, null], scope: ["org:acme", null, [], {}, { org: "" }, { team: "x" }, { org: 1 }], ephemeral: ["no", null], registered: ["yes", null, undefined],
    agent_id: [1.5, "7", 2 ** 60], service_active: ["true"], online: ["true", undefined], busy: [0, undefined],
    token_expires_at: ["soon", -1, undefined], last_refresh_timestamp: [true, -5, undefined], total_refreshes: [-1, 1.5, "3", undefined],
    failed_refreshes: [-1, null], consecutive_failures: ["many", -1, 0.5, 2 ** 60, null, undefined], registrations: [-1, "1", null],
    status: ["on fire", null, 1, undefined], last_error: [1, {}, undefined],
  };
  for (const [field, values] of Object.entries(wrong)) {
    for (const value of values) {
      const r = check(doc("ci-01.example.com", "runner-1", { [field]: value }));
      assert.ok(!r.ok && r.reason === "invalid", `${field} = ${JSON.stringify(value)} must be invalid: ${JSON.stringify(r)}`);
      assert.ok(!r.ok && r.detail.length > 0);
    }
  }
});

test("state check - an older agent's document gets the defaults, a long text is cut, an extra scope field is dropped", () => {
  const { dir: _dir, ephemeral: _e, agent_id: _a, service_active: _s, registrations: _r, ...older } = doc("ci-01.example.com", "runner-1");
  const r = check(older);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.doc.dir, "");
  assert.equal(r.doc.ephemeral, false);
  assert.equal(r.doc.agent_id, null);
  assert.equal(r.doc.service_active, null);
  assert.equal(r.doc.registrations, 0);

  const long = check(doc("ci-01.example.com", "runner-1", { last_error: "e".repeat(10_000), dir: "d".repeat(5000), scope: { org: "acme", note: "x" }, pool: { slot: 3 } }));
  assert.ok(long.ok, JSON.stringify(long));
  assert.equal(long.doc.last_error!.length, 4000);
  assert.equal(long.doc.dir.length, 4096);
  assert.deepEqual(long.doc.scope, { org: "acme" });
  assert.deepEqual((long.doc as StateDocument & { pool: unknown }).pool, { slot: 3 }, "a newer agent's field is kept");
});

test("state check - the document must name its own key, non-ASCII names included", () => {
  assert.ok(check(doc("bâtiment-ü.example.com", "läufer 1"), "bâtiment-ü.example.com", "läufer 1").ok);
  const other = check(doc("ci-02.example.com", "runner-1"));
  assert.ok(!other.ok && other.reason === "key_mismatch");
  const renamed = check(doc("ci-01.example.com", "runner-2"));
  assert.ok(!renamed.ok && renamed.reason === "key_mismatch");
});
