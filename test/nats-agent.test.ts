import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { makeWorld, runInProcess, spawnAgent, waitFor } from "./helpers/agent.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { stateEntries, streamEvents } from "./helpers/nats-read.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";

test("nats - check publishes every event with Nats-Msg-Id = id on the encoded subject, and the state to KV", async () => {
  const nats = await startNatsServer();
  const w = await makeWorld();
  try {
    const env = { ...w.env, NATS_URL: nats.url, RUNNER_NAME: "runner.01" };
    const run = await runInProcess(["check"], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const stored = await streamEvents(nats.url);
    assert.deepEqual(stored.map((s) => s.event.type), ["token.refreshed", "runner.registered"]);
    for (const s of stored) assert.equal(s.msgId, s.event.id);
    const host = (await w.metrics()).host as string;
    const encodedHost = host.replace(/[^A-Za-z0-9_-]/g, (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
    assert.equal(stored[0].subject, `rtr.events.${encodedHost}.=.token.refreshed`);
    assert.equal(stored[1].subject, `rtr.events.${encodedHost}.runner=2E01.runner.registered`);
    assert.deepEqual(stored.map((s) => s.event.seq), [1, 2]);
    const state = await stateEntries(nats.url);
    const doc = state.get(`${encodedHost}.runner=2E01`);
    assert.ok(doc, `state key present: ${[...state.keys()]}`);
    assert.equal(doc.status, "ok");
    assert.equal(doc.v, 1);
    assert.equal(doc.interval, 60);
    assertNoSecrets(w.secrets(), stored.map((s) => ({ label: `event ${s.seq}`, text: JSON.stringify(s.event) })));
    assertNoSecrets(w.secrets(), [...state].map(([k, v]) => ({ label: `state ${k}`, text: JSON.stringify(v) })));
  } finally {
    await w.close();
    await nats.close();
  }
});

test("nats - a check during an outage queues its events in the outbox; the next check delivers them once, in order", async () => {
  const nats = await startNatsServer();
  const w = await makeWorld();
  try {
    const env = { ...w.env, NATS_URL: nats.url };
    await nats.stop();
    const during = await runInProcess(["check"], env);
    assert.equal(during.code, 0, "token work does not depend on NATS");
    const outbox = await readdir(join(w.stateDir, "outbox"));
    assert.ok(outbox.some((f) => f.endsWith(".jsonl")), `outbox files: ${outbox}`);
    await nats.start();
    const after = await runInProcess(["check", "--threshold", "3650"], env);
    assert.equal(after.code, 0);
    const stored = await streamEvents(nats.url);
    assert.deepEqual(stored.map((s) => s.event.type), ["token.refreshed", "runner.registered", "token.refreshed"]);
    assert.deepEqual(stored.map((s) => s.event.seq), [1, 2, 3], "in order, none lost, none twice");
    assert.equal(new Set(stored.map((s) => s.event.id)).size, stored.length);
  } finally {
    await w.close();
    await nats.close();
  }
});

test("nats - events in the outbox survive a SIGKILL of the daemon and arrive after the next start", async () => {
  const nats = await startNatsServer();
  const w = await makeWorld();
  try {
    const env = { ...w.env, NATS_URL: nats.url };
    await nats.stop();
    const daemon = spawnAgent(["daemon", "--interval", "1"], env);
    await waitFor(async () => (await readdir(join(w.stateDir, "outbox")).catch(() => [] as string[])).some((f) => f.endsWith(".jsonl")) && daemon.output().includes("pass finished"), "events in the outbox");
    daemon.kill("SIGKILL");
    await daemon.done;
    await nats.start();
    const run = await runInProcess(["check"], env);
    assert.equal(run.code, 0);
    const stored = await streamEvents(nats.url);
    const types = stored.map((s) => s.event.type);
    assert.deepEqual(types.slice(0, 3), ["agent.started", "token.refreshed", "runner.registered"], types.join(","));
    assert.equal(new Set(stored.map((s) => s.event.id)).size, stored.length, "no duplicates");
    const seqs = stored.map((s) => s.event.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in order");
  } finally {
    await w.close();
    await nats.close();
  }
});
