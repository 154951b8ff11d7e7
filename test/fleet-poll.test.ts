// Fleet mode's poll under churn, against the fake GitHub (OpenAPI-checked) and a real nats-server:
// page-number pagination can skip a live runner when another one vanishes between two page
// requests, and a 200 can come back without its runners. Neither may cost a live runner its
// RTR_GITHUB key, because agents read "missing from a fresh poll" as "deleted" and re-register.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { runInProcess, waitFor } from "./helpers/agent.ts";
import { malformedListPage, startFakeGitHub, type FakeGitHub } from "./helpers/fake-github.ts";
import { runnerJson } from "./helpers/fake-github-routes.ts";
import { makeRunnerDir } from "./helpers/runner-dir.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { FleetPoller } from "../src/fleet/poller.ts";
import { GitHubClient } from "../src/github/client.ts";
import { openBucket } from "../src/nats/setup.ts";
import { createLogger } from "../src/shared/logger.ts";
import { AgentTelemetry } from "../src/agent/telemetry.ts";
import type { PollMarker } from "../src/fleet/keys.ts";
import { listKeys } from "../src/nats/kv-keys.ts";

const MARKER = "org=3Aacme._poll";

interface Rig {
  github: FakeGitHub;
  nats: NatsServer;
  nc: NatsConnection;
  kv: KV;
  poller: FleetPoller;
  log(): string;
  keys(): Promise<Set<string>>;
  marker(): Promise<PollMarker | null>;
  close(): Promise<void>;
}

async function rig(runners: number): Promise<Rig> {
  const nats = await startNatsServer();
  const github = await startFakeGitHub();
  for (let i = 0; i < runners; i++) github.addRunner({ name: `r-${i}`, scope: "org:acme", status: "online" });
  const nc = await connect({ servers: nats.url });
  const kv = await openBucket(nc, "RTR_GITHUB", true);
  let out = "";
  const log = createLogger({ level: "debug", write: (l) => void (out += l) });
  const client = new GitHubClient({
    apiUrl: github.url,
    auth: { kind: "token", token: github.pat },
    requestTimeout: 10,
    retry: { maxRetries: 1, retryBackoff: 0.01, maxRetryWait: 1 },
    observer: new AgentTelemetry(log),
    userAgent: "rtr-test",
  });
  const poller = new FleetPoller({ github: client, kv, scopes: [{ org: "acme" }], log });
  return {
    github,
    nats,
    nc,
    kv,
    poller,
    log: () => out,
    async keys() {
      const out = new Set<string>();
      for (const k of await listKeys(kv, undefined, 5_000)) if ((await kv.get(k))?.operation === "PUT") out.add(k);
      return out;
    },
    async marker() {
      const e = await kv.get(MARKER);
      return e?.operation === "PUT" ? e.json<PollMarker>() : null;
    },
    async close() {
      await nc.close();
      await github.close();
      await nats.close();
    },
  };
}

const keyOf = (id: number) => `org=3Aacme.${id}`;

/** Removes `id` from GitHub just before page 2 of the next listing is answered. */
function removeBeforePage2(github: FakeGitHub, id: number): void {
  const off = github.onRequest("list", (req) => {
    if (req.query.get("page") !== "2") return;
    off();
    github.deleteRunner(id);
  });
}

test("fleet poll - a runner removed between page 1 and page 2 does not cost the runner it shifts its key", async () => {
  const r = await rig(150);
  try {
    await r.poller.pollOnce(AbortSignal.timeout(20_000));
    assert.equal((await r.keys()).size, 151, "150 runners and the marker");
    const complete = (await r.marker())!;
    const ids = [...r.github.runners.keys()].sort((a, b) => a - b);
    const gone = ids[9]; // on page 1: every later runner moves up one place
    const shifted = ids[100]; // first on page 2 before the removal, last on page 1 after it
    const deleted = ids[140]; // gone before the poll: absent from a listing that cannot vouch
    r.github.deleteRunner(deleted);
    removeBeforePage2(r.github, gone);

    await r.poller.pollOnce(AbortSignal.timeout(20_000));
    const keys = await r.keys();
    for (const id of r.github.runners.keys()) assert.ok(keys.has(keyOf(id)), `live runner ${id} keeps its key`);
    assert.ok(keys.has(keyOf(shifted)), "the runner the removal shifted off page 2 was confirmed live");
    assert.ok(!keys.has(keyOf(deleted)), "a runner GitHub answers 404 for by id is deleted at once");
    assert.equal(r.github.count({ route: "status" }), 2, "only the two runners missing from the listing were asked for by id");
    // The listing changed under the poll: it does not vouch for runners registered since the last
    // complete one, so the marker keeps that poll's start (and a fresh finish).
    const marker = (await r.marker())!;
    assert.equal(marker.started, complete.started);
    assert.ok(Date.parse(marker.finished) > Date.parse(complete.finished));

    // Page 1 still listed the removed runner; two complete listings without it delete its key.
    await r.poller.pollOnce(AbortSignal.timeout(20_000));
    await r.poller.pollOnce(AbortSignal.timeout(20_000));
    const after = await r.keys();
    assert.ok(!after.has(keyOf(gone)), "the removed runner's key is deleted");
    assert.equal(after.size, 149, "148 runners and the marker");
    assert.ok(Date.parse((await r.marker())!.started) > Date.parse(complete.started), "a complete listing moves the marker's start on");
  } finally {
    await r.close();
  }
});

test("fleet poll - a 200 without runners, or with fewer than its total_count, is a failed poll: no deletion, no fresh marker", async () => {
  const r = await rig(3);
  try {
    await r.poller.pollOnce(AbortSignal.timeout(10_000));
    assert.equal((await r.keys()).size, 4);
    const before = (await r.marker())!;

    r.github.inject("list", malformedListPage("no-runners", 3));
    await r.poller.pollOnce(AbortSignal.timeout(10_000));
    assert.equal((await r.keys()).size, 4, "no key deleted after a 200 without runners");
    assert.deepEqual(await r.marker(), before, "the marker is not renewed by a failed poll");
    assert.match(r.log(), /fleet poll of org:acme failed: .*no runners array/);

    const first = [...r.github.runners.values()][0];
    r.github.inject("list", malformedListPage("short", 3, [runnerJson(first)]));
    await r.poller.pollOnce(AbortSignal.timeout(10_000));
    assert.equal((await r.keys()).size, 4, "no key deleted after a page short of its total_count");
    assert.deepEqual(await r.marker(), before);
    assert.match(r.log(), /total_count/);
    assert.equal(r.github.count({ route: "status" }), 0);
    assert.deepEqual(r.github.schemaErrors, []);
  } finally {
    await r.close();
  }
});

test("fleet poll - a runner GitHub stops listing is deleted after two complete polls without it, not one", async () => {
  const r = await rig(3);
  try {
    await r.poller.pollOnce(AbortSignal.timeout(10_000));
    const victim = [...r.github.runners.keys()][1];
    r.github.deleteRunner(victim);
    await r.poller.pollOnce(AbortSignal.timeout(10_000));
    assert.ok((await r.keys()).has(keyOf(victim)), "one absence from a complete listing is not yet proof");
    await r.poller.pollOnce(AbortSignal.timeout(10_000));
    assert.ok(!(await r.keys()).has(keyOf(victim)), "absent twice while total_count agreed: deleted");
    assert.equal(r.github.count({ route: "status" }), 0, "a complete listing needs no by-id calls");
  } finally {
    await r.close();
  }
});

test("fleet poll - an agent whose live runner a churning poll skipped does not re-register it", async () => {
  const r = await rig(0);
  const tmp = await mkdtemp(join(tmpdir(), "rtr-fleet-poll-"));
  for (let i = 0; i < 150; i++) r.github.addRunner({ name: `r-${i}`, scope: "org:acme", status: "online" });
  const ids = [...r.github.runners.keys()].sort((a, b) => a - b);
  const mine = r.github.runners.get(ids[100])!; // the one a removal on page 1 shifts off page 2
  const runner = await makeRunnerDir({ github: r.github });
  runner.writeRunnerFiles({ agentId: mine.id, name: mine.name, url: "https://github.com/acme" });
  runner.setServiceState("active");
  const hourAgo = new Date(Date.now() - 3600_000);
  await utimes(join(runner.dir, ".runner"), hourAgo, hourAgo);
  // The collector brokers tokens (so a wrong re-registration would really run config.sh); it polls
  // once at start, then this test's own poller does the churning poll.
  const c = startCollector(collectorConfig(r.nats.url, { github: { apiUrl: r.github.url, token: r.github.pat }, fleetScopes: [{ org: "acme" }], pollInterval: 3600 }));
  try {
    await waitFor(async () => (await r.keys()).size === 151 && c.collector.broker?.answering === true, "the collector's first poll and its broker", 20_000);
    await r.poller.pollOnce(AbortSignal.timeout(20_000));
    removeBeforePage2(r.github, ids[9]);
    await r.poller.pollOnce(AbortSignal.timeout(20_000));

    const config = join(tmp, "agent.yaml");
    await writeFile(
      config,
      `github: { apiUrl: "${r.github.url}" }
refresh: { threshold: 1, retryBackoff: 0.01, onlineTimeout: 1 }
state: { dir: ${join(tmp, "state")} }
nats: { servers: [${r.nats.url}], name: host-1 }
fleet: { enabled: true }
runners:
  - { dir: ${runner.dir}, scope: { org: acme }, name: ${mine.name} }
`,
    );
    const run = await runInProcess(["check", "--config", config], {});
    assert.equal(runner.invocations("config.sh").length, 0, `a live runner is not re-registered:\n${run.stdout}`);
    assert.doesNotMatch(run.stdout, /deleted_on_github|no longer lists/);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.ok(r.github.runners.has(mine.id), "its registration at GitHub is untouched");
  } finally {
    await c.close();
    await runner.cleanup();
    await rm(tmp, { recursive: true, force: true });
    await r.close();
  }
});

test("fleet poll - an agent does not count its runner deleted by a poll that started in the second it was registered", async () => {
  const r = await rig(0);
  const tmp = await mkdtemp(join(tmpdir(), "rtr-fleet-poll-"));
  const runner = await makeRunnerDir({ github: r.github });
  try {
    // .runner written at T+0.2 s, the poll started at T+0.6 s and has not listed it yet: the
    // agent knows the file's time only to the second, so "started after" cannot be told apart.
    const t = Math.floor(Date.now() / 1000) - 10;
    runner.writeRunnerFiles({ agentId: 77, name: "runner-1", url: "https://github.com/acme" });
    runner.setServiceState("active");
    await utimes(join(runner.dir, ".runner"), t + 0.2, t + 0.2);
    const marker: PollMarker = { started: new Date((t + 0.6) * 1000).toISOString(), finished: new Date().toISOString() };
    await r.kv.put(MARKER, JSON.stringify(marker));
    const config = join(tmp, "agent.yaml");
    await writeFile(
      config,
      `github: { apiUrl: "${r.github.url}" }
state: { dir: ${join(tmp, "state")} }
nats: { servers: [${r.nats.url}], name: host-1 }
fleet: { enabled: true }
runners:
  - { dir: ${runner.dir}, scope: { org: acme }, name: runner-1 }
`,
    );
    // No broker runs, so the token step fails; what matters is how the runner's status was read.
    const run = await runInProcess(["check", "--config", config], {});
    assert.doesNotMatch(run.stdout, /no longer lists|deleted_on_github/, run.stdout);
    assert.equal(runner.invocations("config.sh").length, 0);
  } finally {
    await runner.cleanup();
    await rm(tmp, { recursive: true, force: true });
    await r.close();
  }
});

test("fleet poll - an agent with its own credentials confirms a runner missing from the poll before re-registering it", async () => {
  const r = await rig(0);
  const tmp = await mkdtemp(join(tmpdir(), "rtr-fleet-poll-"));
  const runner = await makeRunnerDir({ github: r.github });
  try {
    const live = r.github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
    runner.writeRunnerFiles({ agentId: live.id, name: "runner-1", url: "https://github.com/acme" });
    runner.setServiceState("active");
    const hourAgo = new Date(Date.now() - 3600_000);
    await utimes(join(runner.dir, ".runner"), hourAgo, hourAgo);
    // A fresh marker whose poll (by whatever fault) has no key for the runner.
    const marker: PollMarker = { started: new Date(Date.now() - 5000).toISOString(), finished: new Date().toISOString() };
    await r.kv.put(MARKER, JSON.stringify(marker));
    const config = join(tmp, "agent.yaml");
    await writeFile(
      config,
      `github: { apiUrl: "${r.github.url}" }
refresh: { retryBackoff: 0.01 }
state: { dir: ${join(tmp, "state")} }
nats: { servers: [${r.nats.url}], name: host-1 }
fleet: { enabled: true }
runners:
  - { dir: ${runner.dir}, scope: { org: acme }, name: runner-1 }
`,
    );
    const run = await runInProcess(["check", "--config", config], { GITHUB_TOKEN: r.github.pat });
    assert.equal(runner.invocations("config.sh").length, 0, run.stdout);
    assert.doesNotMatch(run.stdout, /deleted_on_github/);
    assert.equal(r.github.count({ route: "status" }), 1, "one by-id call confirmed the runner");
    assert.equal(run.code, 0, run.stdout + run.stderr);
  } finally {
    await runner.cleanup();
    await rm(tmp, { recursive: true, force: true });
    await r.close();
  }
});
