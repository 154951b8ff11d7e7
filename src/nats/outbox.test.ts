import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNodeRuntime } from "../runtime/node.ts";
import type { Runtime } from "../runtime/types.ts";
import type { Envelope, EventType } from "../shared/types.ts";
import { Outbox } from "./outbox.ts";

let seq = 0;
function event(type: EventType, options: { runner?: string | null; error?: string; data?: Record<string, unknown> } = {}): Envelope {
  seq++;
  return {
    v: 1,
    id: crypto.randomUUID(),
    seq,
    type,
    time: new Date(Date.parse("2026-11-27T10:00:00Z") + seq * 1000).toISOString(),
    host: "ci-01",
    runner: options.runner ?? null,
    scope: { org: "acme" },
    agent: { version: "test", runtime: "node" },
    data: options.data ?? (type === "token.refresh_failed" ? { error: options.error ?? "HTTP 502 from GitHub", attempt: 3, consecutive_failures: seq } : {}),
  };
}

/** The real Node runtime, counting reads of outbox files (what an append must not need). */
function countingRuntime(): { runtime: Runtime; reads: () => number } {
  const base = createNodeRuntime();
  let reads = 0;
  const files = { ...base.files, readText: (path: string) => (path.endsWith(".jsonl") && reads++, base.files.readText(path)) };
  return { runtime: { ...base, files }, reads: () => reads };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "rtr-outbox-"));
  try {
    await fn(join(dir, "outbox"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Everything a drain would send, in order, without sending anything (the send acknowledges none). */
async function contents(dir: string): Promise<Envelope[]> {
  const seen: Envelope[] = [];
  await new Outbox(createNodeRuntime(), dir).drain(async (batch) => (seen.push(...batch), 0), 1_000_000);
  return seen;
}

test("outbox - 40 different failures with a cap of 10 keep at most 10, the newest, and count every drop", async () => {
  await withDir(async (dir) => {
    const outbox = new Outbox(createNodeRuntime(), dir, 10);
    const failures = Array.from({ length: 40 }, (_, i) => event("token.refresh_failed", { error: `HTTP 5${String(i).padStart(2, "0")} from GitHub` }));
    for (const f of failures) await outbox.append([f]);
    const kept = await contents(dir);
    assert.ok(kept.length <= 10, `${kept.length} events kept with a cap of 10`);
    assert.equal(await outbox.pending(), kept.length);
    assert.equal(await outbox.dropped(), 40 - kept.length, "every drop counted");
    assert.deepEqual(kept.map((e) => e.id), failures.slice(40 - kept.length).map((e) => e.id), "the oldest went first; the rest in order");
  });
});

test("outbox - when full, the oldest token.refreshed go first, then other routine events, then the oldest failures", async () => {
  await withDir(async (dir) => {
    const outbox = new Outbox(createNodeRuntime(), dir, 10);
    const refreshed = Array.from({ length: 6 }, () => event("token.refreshed"));
    const offline = event("runner.offline", { runner: "r1" });
    const failures = Array.from({ length: 6 }, (_, i) => event("runner.registration_failed", { runner: `r${i}`, data: { step: "config", error: "boom", consecutive_failures: 1 } }));
    for (const e of [...refreshed, offline, ...failures]) await outbox.append([e]);
    const kept = await contents(dir);
    assert.ok(kept.length <= 10);
    assert.deepEqual(kept.filter((e) => e.type === "runner.registration_failed").map((e) => e.id), failures.map((e) => e.id), "no failure dropped while routine events were there");
    const keptRefreshed = kept.filter((e) => e.type === "token.refreshed").map((e) => e.id);
    assert.deepEqual(keptRefreshed, refreshed.slice(refreshed.length - keptRefreshed.length).map((e) => e.id), "the oldest token.refreshed went first");
    assert.ok(kept.some((e) => e.id === offline.id) || keptRefreshed.length === 0, "other routine events go only after every token.refreshed");
    assert.equal(await outbox.dropped(), 13 - kept.length);
  });
});

test("outbox - identical failures in a row are kept as one event with a count, the last time and the latest data", async () => {
  await withDir(async (dir) => {
    const outbox = new Outbox(createNodeRuntime(), dir);
    const first = event("token.refresh_failed");
    const repeats = Array.from({ length: 29 }, () => event("token.refresh_failed"));
    const other = event("token.refresh_failed", { error: "HTTP 401 Bad credentials" });
    const runnerEvent = event("runner.registration_failed", { runner: "r1", data: { step: "config", error: "boom", consecutive_failures: 1 } });
    // Another runner's event in between does not break the run: order is per runner.
    await outbox.append([first, repeats[0], runnerEvent]);
    for (const r of repeats.slice(1)) await outbox.append([r]);
    await outbox.append([other]);
    const lines = (await readFile(join(dir, "current.jsonl"), "utf8")).trim().split("\n");
    assert.equal(lines.length, 32, "one line per occurrence on disk until a compaction folds them");
    assert.ok(lines.filter((l) => l.includes('"repeat_of"')).every((l) => l.length < 200 && !l.includes("HTTP 502")), "a repeat stores only what changed");
    const kept = await contents(dir);
    assert.deepEqual(kept.map((e) => e.id), [first.id, runnerEvent.id, other.id]);
    const last = repeats[repeats.length - 1];
    assert.deepEqual(kept[0].data.coalesced, { count: 30, last_seq: last.seq, last_time: last.time });
    assert.equal(kept[0].seq, first.seq, "the event keeps its first seq and id (its Nats-Msg-Id)");
    assert.equal(kept[0].data.consecutive_failures, last.data.consecutive_failures, "the latest data");
    assert.equal(kept[0].data.error, "HTTP 502 from GitHub");
    assert.equal(await outbox.pending(), 3);
  });
});

test("outbox - a failure after a different event of the same runner starts a new event", async () => {
  await withDir(async (dir) => {
    const outbox = new Outbox(createNodeRuntime(), dir);
    const a = event("token.refresh_failed");
    const refreshed = event("token.refreshed");
    const b = event("token.refresh_failed");
    await outbox.append([a]);
    await outbox.append([refreshed]);
    await outbox.append([b]);
    assert.deepEqual((await contents(dir)).map((e) => e.id), [a.id, refreshed.id, b.id]);
  });
});

test("outbox - appends do not re-read the outbox, under the cap or at it", async () => {
  await withDir(async (dir) => {
    const { runtime, reads } = countingRuntime();
    const outbox = new Outbox(runtime, dir, 1000);
    for (let i = 0; i < 100; i++) await outbox.append(Array.from({ length: 10 }, (_, j) => event("token.refresh_failed", { error: `error ${i}-${j}` })));
    assert.equal(reads(), 0, "1000 events appended under the cap without reading the outbox");
    assert.equal(await outbox.pending(), 1000);
    assert.equal(reads(), 0, "the depth comes from the index");
    // Full: 2000 more, ten at a time. A compaction makes room for a tenth of the limit, so the
    // outbox is read about once per 100 events, not once per append.
    for (let i = 0; i < 200; i++) await outbox.append(Array.from({ length: 10 }, (_, j) => event("token.refresh_failed", { error: `later ${i}-${j}` })));
    assert.ok(reads() <= 25, `${reads()} file reads for 200 appends to a full outbox`);
    assert.ok((await outbox.pending()) <= 1000);
  });
});

test("outbox - another process's appends are seen: each re-reads only the file that changed", async () => {
  await withDir(async (dir) => {
    const daemon = countingRuntime();
    const check = countingRuntime();
    const a = new Outbox(daemon.runtime, dir);
    const b = new Outbox(check.runtime, dir);
    await a.append([event("token.refreshed")]);
    await b.append([event("token.refreshed"), event("token.refreshed")]);
    assert.equal(await a.pending(), 3);
    assert.equal(await b.pending(), 3);
    const before = daemon.reads();
    await a.append([event("token.refreshed")]);
    assert.equal(daemon.reads(), before, "nothing changed since: no read");
    assert.equal(await b.pending(), 4);
  });
});

test("outbox - a line torn by a crash mid-append loses nothing before it, and the next append stays whole", async () => {
  await withDir(async (dir) => {
    const first = event("token.refreshed");
    const second = event("runner.registered", { runner: "r1" });
    await new Outbox(createNodeRuntime(), dir).append([first, second]);
    const torn = JSON.stringify(event("token.refreshed")).slice(0, 40);
    await appendFile(join(dir, "current.jsonl"), torn);
    const next = event("token.refresh_failed");
    const restarted = new Outbox(createNodeRuntime(), dir);
    await restarted.append([next]);
    assert.deepEqual((await contents(dir)).map((e) => e.id), [first.id, second.id, next.id]);
    assert.equal(await restarted.pending(), 3);
  });
});

test("outbox - a drain replays coalesced events in order and empties the outbox", async () => {
  await withDir(async (dir) => {
    const outbox = new Outbox(createNodeRuntime(), dir);
    const events = [event("token.refreshed"), event("token.refresh_failed"), event("token.refresh_failed"), event("runner.registered", { runner: "r1" })];
    for (const e of events) await outbox.append([e]);
    const sent: Envelope[] = [];
    const { sent: n, remaining } = await outbox.drain(async (batch) => (sent.push(...batch), batch.length), 2);
    assert.deepEqual(sent.map((e) => e.id), [events[0].id, events[1].id, events[3].id]);
    assert.equal(n, 3);
    assert.equal(remaining, 0);
    assert.equal(await outbox.pending(), 0);
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith(".jsonl")), []);
    // A repeat after the drain is a new event: the first one may already be in the stream.
    const again = event("token.refresh_failed");
    await outbox.append([again]);
    assert.deepEqual((await contents(dir)).map((e) => e.id), [again.id]);
  });
});

test("outbox - a long run of identical failures never grows the file past twice the limit", async () => {
  await withDir(async (dir) => {
    const outbox = new Outbox(createNodeRuntime(), dir, 10);
    const run = Array.from({ length: 100 }, () => event("token.refresh_failed"));
    for (const e of run) await outbox.append([e]);
    const lines = (await readFile(join(dir, "current.jsonl"), "utf8")).trim().split("\n");
    assert.ok(lines.length <= 20, `${lines.length} lines on disk`);
    assert.equal(await outbox.dropped(), 0, "folding is not dropping");
    const kept = await contents(dir);
    assert.equal(kept.length, 1);
    assert.equal((kept[0].data.coalesced as { count: number }).count, 100);
  });
});
