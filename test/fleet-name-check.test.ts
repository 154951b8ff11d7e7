// Fleet mode's name check before `--replace` (SPEC 5 step 5), on a real nats-server and the fake
// GitHub (OpenAPI-checked): RTR_GITHUB is only as good as the collector's last poll, so a stale
// poll must never let an agent take the name of a runner online on another host.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { eventsOf, runInProcess, waitFor, type AgentRun } from "./helpers/agent.ts";
import { startFakeGitHub, type FakeGitHub } from "./helpers/fake-github.ts";
import { makeRunnerDir, type FakeRunnerDir } from "./helpers/runner-dir.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector, type TestCollector } from "./helpers/collector.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";

const POLL_INTERVAL = 1; // the agents' fleet.pollInterval: their poll is stale after 3 s

interface Setup {
  github: FakeGitHub;
  nats: NatsServer;
  collector: TestCollector;
  runner: FakeRunnerDir;
  tmp: string;
  foreignId: number;
  /** One `check` of an agent in fleet mode; with `ownCredentials` it also has GITHUB_TOKEN. */
  check(ownCredentials: boolean): Promise<AgentRun>;
  close(): Promise<void>;
}

async function markerFinished(url: string): Promise<number | null> {
  const nc = await connect({ servers: url });
  try {
    const e = await (await new Kvm(nc).open("RTR_GITHUB")).get("org=3Aacme._poll");
    return e?.operation === "PUT" ? Date.parse(e.json<{ finished: string }>().finished) : null;
  } catch {
    return null;
  } finally {
    await nc.close();
  }
}

/**
 * The collector polls once (GitHub has no runner yet) and keeps brokering tokens; then another
 * host's `runner-1` comes online at GitHub, and the poll goes stale. This host's `runner-1` has an
 * older registration and `reregister: on-refresh`, so its first brokered token re-registers it.
 */
async function setup(): Promise<Setup> {
  const nats = await startNatsServer();
  const github = await startFakeGitHub();
  const tmp = await mkdtemp(join(tmpdir(), "rtr-name-check-"));
  const collector = startCollector(collectorConfig(nats.url, { github: { apiUrl: github.url, token: github.pat }, fleetScopes: [{ org: "acme" }], pollInterval: 3600 }));
  await waitFor(async () => collector.collector.broker?.answering === true && (await markerFinished(nats.url)) !== null, "the collector's broker and first poll", 20_000);
  const foreign = github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
  const runner = await makeRunnerDir({ github });
  runner.writeRunnerFiles({ agentId: 9999, name: "runner-1", url: "https://github.com/acme" });
  runner.setServiceState("active");
  const finished = (await markerFinished(nats.url))!;
  await waitFor(() => Date.now() - finished > 3 * POLL_INTERVAL * 1000 + 500, "the poll to go stale", 10_000);
  const config = join(tmp, "agent.yaml");
  await writeFile(
    config,
    `github: { apiUrl: "${github.url}" }
refresh: { threshold: 1, retryBackoff: 0.01, onlineTimeout: 1, reregister: on-refresh }
state: { dir: ${join(tmp, "state")} }
nats: { servers: [${nats.url}], name: host-2 }
fleet: { enabled: true, pollInterval: ${POLL_INTERVAL} }
runners:
  - { dir: ${runner.dir}, scope: { org: acme }, name: runner-1 }
`,
  );
  return {
    github,
    nats,
    collector,
    runner,
    tmp,
    foreignId: foreign.id,
    check: (own) => runInProcess(["check", "--config", config], own ? { GITHUB_TOKEN: github.pat } : {}),
    async close() {
      await collector.close();
      await runner.cleanup();
      await rm(tmp, { recursive: true, force: true });
      await github.close();
      await nats.close();
    },
  };
}

async function assertUntouched(s: Setup, run: AgentRun): Promise<void> {
  assert.equal(s.runner.invocations("config.sh").length, 0, `config.sh must not run:\n${run.stdout}`);
  const github = s.github.runners.get(s.foreignId);
  assert.equal(github?.name, "runner-1", "the other host's runner keeps its registration");
  const files = JSON.parse((await readFile(join(s.runner.dir, ".runner"), "utf8")).replace(/^\uFEFF/, ""));
  assert.equal(files.agentId, 9999, "this host's old registration files are back in place");
  assert.equal(s.runner.serviceState(), "active", "and its service runs again");
  assertNoSecrets([s.github.pat, ...s.github.mintedTokens], [{ label: "stdout", text: run.stdout }, { label: "stderr", text: run.stderr }]);
}

test("fleet name check - stale poll and no credentials: the registration fails at name_lookup instead of taking the name", async () => {
  const s = await setup();
  try {
    const run = await s.check(false);
    await assertUntouched(s, run);
    const failed = eventsOf(run, "runner.registration_failed");
    assert.equal(failed.length, 1, run.stdout);
    const data = failed[0].data as { step: string; error: string; consecutive_failures: number };
    assert.equal(data.step, "name_lookup");
    assert.match(data.error, /collector's poll of org:acme last finished .* no GitHub credentials of its own/);
    assert.equal(data.consecutive_failures, 1, "it counts as a failure");
    assert.equal(run.code, 1);
    assert.equal(s.github.count({ route: "list" }), 1, "the agent itself made no GitHub call (only the collector's one poll)");
  } finally {
    await s.close();
  }
});

test("fleet name check - stale poll with the agent's own credentials: GitHub's answer refuses the name online elsewhere", async () => {
  const s = await setup();
  try {
    const listsBefore = s.github.count({ route: "list" });
    const run = await s.check(true);
    await assertUntouched(s, run);
    assert.equal(s.github.count({ route: "list" }), listsBefore + 1, "one ?name= lookup at GitHub");
    assert.ok(s.github.calls.some((c) => c.path.includes("name=runner-1")));
    const conflict = eventsOf(run, "runner.name_conflict");
    assert.equal(conflict.length, 1, run.stdout);
    assert.equal((conflict[0].data as { other_id: number }).other_id, s.foreignId);
    assert.equal((eventsOf(run, "runner.registration_failed")[0].data as { step: string }).step, "name_conflict");
  } finally {
    await s.close();
  }
});
