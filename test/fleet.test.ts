// Fleet mode end to end on a real nats-server: the collector polls GitHub once for everyone and
// brokers registration tokens; agents without credentials read status from KV and re-register
// with brokered tokens.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { runInProcess, waitFor } from "./helpers/agent.ts";
import { startFakeGitHub, type FakeGitHub } from "./helpers/fake-github.ts";
import { makeRunnerDir, type FakeRunnerDir } from "./helpers/runner-dir.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { brokerTransportProblem } from "../src/fleet/broker.ts";
import { listKeys } from "../src/nats/kv-keys.ts";

async function githubKeys(url: string): Promise<Map<string, any>> {
  const nc = await connect({ servers: url, timeout: 5_000 });
  try {
    const kv = await new Kvm(nc).open("RTR_GITHUB");
    const out = new Map<string, any>();
    for (const k of await listKeys(kv, undefined, 5_000)) {
      const e = await kv.get(k);
      if (e?.operation === "PUT") out.set(k, e.json());
    }
    return out;
  } catch {
    return new Map();
  } finally {
    await nc.close();
  }
}

interface FleetAgent {
  runner: FakeRunnerDir;
  config: string;
  check(extra?: string[]): ReturnType<typeof runInProcess>;
}

async function fleetAgents(n: number, github: FakeGitHub, nats: NatsServer, tmp: string): Promise<FleetAgent[]> {
  const agents: FleetAgent[] = [];
  for (let i = 0; i < n; i++) {
    const runner = await makeRunnerDir({ github });
    const config = join(tmp, `agent-${i}.yaml`);
    await writeFile(
      config,
      `github: { apiUrl: "${github.url}" }
refresh: { threshold: 1, retryBackoff: 0.01, onlineTimeout: 1 }
state: { dir: ${join(tmp, `state-${i}`)} }
nats: { servers: [${nats.url}], name: host-${i} }
fleet: { enabled: true, pollInterval: 1 }
runners:
  - { dir: ${runner.dir}, scope: { org: acme }, name: runner-${i} }
`,
    );
    // No GITHUB_TOKEN: these agents have no credentials of their own.
    agents.push({ runner, config, check: (extra = []) => runInProcess(["check", "--config", config, ...extra], {}) });
  }
  return agents;
}

test("fleet - the collector lists every page into RTR_GITHUB, drops vanished runners and asks conditionally", async () => {
  const nats = await startNatsServer();
  const github = await startFakeGitHub();
  for (let i = 0; i < 130; i++) github.addRunner({ name: `r-${i}`, scope: "org:acme", status: i % 2 ? "online" : "offline" });
  const c = startCollector(collectorConfig(nats.url, { github: { apiUrl: github.url, token: github.pat }, fleetScopes: [{ org: "acme" }], pollInterval: 1 }));
  try {
    await waitFor(async () => (await githubKeys(nats.url)).size === 131, "130 runners and the poll marker", 20_000);
    const keys = await githubKeys(nats.url);
    const one = [...keys.entries()].find(([k]) => k !== "org=3Aacme._poll")!;
    assert.match(one[0], /^org=3Aacme\.\d+$/);
    assert.deepEqual(Object.keys(one[1]).sort(), ["busy", "id", "labels", "name", "status"]);
    const marker = keys.get("org=3Aacme._poll");
    assert.ok(Date.parse(marker.finished) >= Date.parse(marker.started));
    const gone = [...github.runners.keys()][5];
    github.deleteRunner(gone);
    await waitFor(async () => !(await githubKeys(nats.url)).has(`org=3Aacme.${gone}`), "the deleted runner's key removed", 10_000);
    assert.equal(github.calls.filter((x) => x.status === 304).length, 0, "a two-page scope is always read whole (page 1's ETag says nothing of page 2)");
    // Down to one page: now an unchanged scope costs one conditional request answered 304.
    for (const id of [...github.runners.keys()].slice(0, 35)) github.deleteRunner(id);
    await waitFor(async () => (await githubKeys(nats.url)).size === 95, "94 runners and the marker", 10_000);
    await waitFor(() => github.calls.filter((x) => x.status === 304).length >= 2, "unchanged polls answered 304", 10_000);
    assert.equal(github.count({ route: "status" }), 0, "no per-runner status calls");
  } finally {
    await c.close();
    await github.close();
    await nats.close();
  }
});

test("fleet - agents without credentials register with brokered tokens, read status from KV, and repair a deletion", async () => {
  const nats = await startNatsServer();
  const github = await startFakeGitHub({ tokenTtlSeconds: 6 });
  const tmp = await mkdtemp(join(tmpdir(), "rtr-fleet-"));
  // Tokens live 6 s and both sides refresh 1 s ahead: one mint every ~5 s for the whole fleet.
  const c = startCollector(collectorConfig(nats.url, { github: { apiUrl: github.url, token: github.pat }, fleetScopes: [{ org: "acme" }], pollInterval: 1, threshold: 1 }));
  const agents = await fleetAgents(8, github, nats, tmp);
  try {
    await waitFor(() => c.collector.broker?.answering === true, "the leader's broker answers", 20_000);
    const started = Date.now();
    for (const a of agents) {
      const run = await a.check();
      assert.equal(run.code, 0, run.stdout + run.stderr);
    }
    assert.equal(github.runners.size, 8, "every runner registered at GitHub");
    // Run passes for about three token lifetimes.
    while (Date.now() - started < 18_000) for (const a of agents) await a.check();
    const lifetimes = (Date.now() - started) / 6000;
    const tokenCalls = github.count({ route: "token" });
    assert.ok(tokenCalls <= Math.ceil(lifetimes) + 1, `one token per scope per lifetime for the whole fleet: ${tokenCalls} calls over ${lifetimes.toFixed(1)} lifetimes`);
    assert.equal(github.count({ route: "status" }), 0, "agents made no status calls");
    assert.ok(github.calls.every((x) => x.auth?.includes(github.pat)), "every GitHub call came from the collector's credential");

    const victim = agents[0];
    const oldId = JSON.parse((await readFile(join(victim.runner.dir, ".runner"), "utf8")).replace(/^\uFEFF/, "")).agentId;
    github.deleteRunner(oldId);
    await waitFor(async () => !(await githubKeys(nats.url)).has(`org=3Aacme.${oldId}`), "the poll noticed the deletion", 10_000);
    const repair = await victim.check();
    assert.equal(repair.code, 0, repair.stdout);
    assert.equal(victim.runner.invocations("config.sh").length, 2, "re-registered");
    assert.match(repair.stdout, /no longer lists runner id/);
    assert.match(repair.stdout, /"reason":"deleted_on_github"/);
  } finally {
    await c.close();
    for (const a of agents) await a.runner.cleanup();
    await rm(tmp, { recursive: true, force: true });
    await github.close();
    await nats.close();
  }
});

test("fleet - an agent with no credentials and no broker fails with a clear error", async () => {
  const nats = await startNatsServer();
  const github = await startFakeGitHub();
  const tmp = await mkdtemp(join(tmpdir(), "rtr-fleet-"));
  const [agent] = await fleetAgents(1, github, nats, tmp);
  try {
    const run = await agent.check();
    assert.equal(run.code, 1);
    assert.match(run.stderr, /fleet token broker unreachable .* no GitHub credentials of its own/);
    assert.equal(github.calls.length, 0);
  } finally {
    await agent.runner.cleanup();
    await rm(tmp, { recursive: true, force: true });
    await github.close();
    await nats.close();
  }
});

test("fleet - the broker hands out tokens only over TLS or loopback unless allowInsecure", () => {
  const base = { prefix: "rtr", name: "c" };
  assert.equal(brokerTransportProblem({ ...base, servers: ["nats://127.0.0.1:4222"] }, false), null);
  assert.equal(brokerTransportProblem({ ...base, servers: ["tls://nats.example.com:4222"] }, false), null);
  assert.equal(brokerTransportProblem({ ...base, servers: ["nats://nats.example.com:4222"], tls: { ca: "/ca.pem" } }, false), null);
  assert.match(brokerTransportProblem({ ...base, servers: ["nats://nats.example.com:4222"] }, false) ?? "", /use TLS .* or set fleet\.allowInsecure/);
  assert.equal(brokerTransportProblem({ ...base, servers: ["nats://nats.example.com:4222"] }, true), null);
});

test("fleet - killing the leader collector hands polling to the other", async () => {
  const nats = await startNatsServer();
  const github = await startFakeGitHub();
  github.addRunner({ name: "r-1", scope: "org:acme" });
  const tmp = await mkdtemp(join(tmpdir(), "rtr-fleet-"));
  const config = join(tmp, "collector.yaml");
  await writeFile(config, `github: { apiUrl: "${github.url}" }\nnats: { servers: [${nats.url}] }\nfleet: { scopes: [{ org: acme, hosts: ["*"] }], pollInterval: 1 }\n`);
  const { spawnAgent } = await import("./helpers/agent.ts");
  const env = { GITHUB_TOKEN: github.pat, STATE_DIR: join(tmp, "state") };
  const collectors = [spawnAgent(["collector", "--config", config, "--listen", "127.0.0.1:0"], env), spawnAgent(["collector", "--config", config, "--listen", "127.0.0.1:0"], env)];
  try {
    await waitFor(() => collectors.some((c) => /now the leader/.test(c.output())), "a leader", 30_000);
    const leader = collectors.find((c) => /now the leader/.test(c.output()))!;
    const follower = collectors.find((c) => c !== leader)!;
    leader.kill("SIGKILL");
    await leader.done;
    const killedAt = Date.now();
    await waitFor(() => /now the leader/.test(follower.output()), "the follower takes over", 30_000);
    const tookOver = Date.now() - killedAt;
    await waitFor(async () => {
      const marker = (await githubKeys(nats.url)).get("org=3Aacme._poll");
      return marker !== undefined && Date.parse(marker.started) > killedAt;
    }, "the new leader polls", 30_000);
    console.log(`failover: the follower led ${tookOver} ms after the leader was killed (poll interval 1000 ms)`);
  } finally {
    for (const c of collectors) c.kill("SIGKILL");
    await Promise.all(collectors.map((c) => c.done));
    await rm(tmp, { recursive: true, force: true });
    await github.close();
    await nats.close();
  }
});
