// Pools in fleet mode (SPEC 14): an agent without GitHub credentials gets its JIT runners from
// the collector's broker over a real nats-server; labels, group and work folder come from the
// collector's fleet.pools, never from the agent; a host not listed for the pool is refused.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { startFakeGitHub } from "./helpers/fake-github.ts";
import { jit } from "./helpers/fake-github-jit.ts";
import { makePoolTemplate } from "./helpers/pool-template.ts";
import { parseLogs, spawnAgent, waitFor } from "./helpers/agent.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { ensureUser, JOB_USER } from "./helpers/users.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";
import { jitSubject } from "../src/fleet/keys.ts";

test("pool fleet - an agent without credentials gets JIT runners from the broker with the collector's labels; other hosts are refused", async () => {
  ensureUser(JOB_USER);
  const github = await startFakeGitHub();
  const nats = await startNatsServer();
  const template = await makePoolTemplate();
  const tmp = await mkdtemp(join(tmpdir(), "rtr-pool-fleet-"));
  await chmod(tmp, 0o755);
  const config = collectorConfig(nats.url, { github: { apiUrl: github.url, token: github.pat }, pollInterval: 1 });
  config.fleet.pools = [{ name: "build", scope: { org: "acme" }, labels: ["from-collector"], workFolder: "_work", hosts: ["pool-host"] }];
  const collector = startCollector(config);
  const agentConfig = join(tmp, "agent.yaml");
  await writeFile(
    agentConfig,
    `state: { dir: "${join(tmp, "state")}" }
refresh: { interval: 2 }
nats: { servers: [${nats.url}], name: pool-host }
fleet: { enabled: true }
pools:
  - { name: build, scope: { org: acme }, size: 1, labels: [asked-by-agent], template: "${template.dir}", runAs: ${JOB_USER} }
`,
  );
  const agent = spawnAgent(["daemon", "--config", agentConfig, "--listen", "127.0.0.1:0"], {});
  try {
    await waitFor(() => [...github.runners.values()].some((r) => r.name.startsWith("build-pool-host-") && r.status === "online"), "a brokered pool runner online", 40_000);
    const runner = [...github.runners.values()].find((r) => r.name.startsWith("build-pool-host-"))!;
    const custom = runner.labels.filter((l) => l.type === "custom").map((l) => l.name);
    assert.deepEqual(custom, ["from-collector"], "labels come from the collector's fleet.pools, not from the agent");

    // Another host (a bare client with its own inbox) asking for the pool is refused.
    const nc = await connect({ servers: nats.url, inboxPrefix: "_INBOX_intruder" });
    try {
      const msg = await nc.request(jitSubject("rtr", { org: "acme" }), new TextEncoder().encode(JSON.stringify({ v: 1, host: "intruder", pool: "build", name: "build-intruder-0-0123abcd" })), { timeout: 10_000 });
      const reply = msg.json<{ error?: string; encoded_jit_config?: string }>();
      assert.equal(reply.encoded_jit_config, undefined);
      assert.match(reply.error ?? "", /host intruder is not in fleet\.pools\[build\]\.hosts/);
      // Claiming to be pool-host from another inbox does not work either.
      const forged = await nc.request(jitSubject("rtr", { org: "acme" }), new TextEncoder().encode(JSON.stringify({ v: 1, host: "pool-host", pool: "build", name: "build-pool-host-0-0123abcd" })), { timeout: 10_000 });
      assert.match(forged.json<{ error?: string }>().error ?? "", /reply inbox belongs to host intruder/);
    } finally {
      await nc.close();
    }
    assert.equal(jit(github).created.length, 1, "no runner was made for the refused requests");

    // The job runs; a fresh brokered runner replaces it.
    jit(github).assignJob(runner.id, 1);
    await waitFor(() => jit(github).created.length === 2, "a replacement through the broker", 30_000);
    agent.kill("SIGTERM");
    const run = await agent.done;
    assert.equal(run.code, 0, run.stderr);
    assert.ok(parseLogs(run.stdout).some((l) => l.event === "pool.runner_exited"));
    assertNoSecrets(jit(github).configs, [{ label: "agent", text: run.stdout + run.stderr }, { label: "collector", text: collector.logs() }]);
  } finally {
    if (agent.child.exitCode === null) agent.kill("SIGKILL");
    await collector.close();
    await nats.stop();
    await github.close();
    await template.cleanup();
    await rm(tmp, { recursive: true, force: true });
    await rm(join(tmp, "state-pools"), { recursive: true, force: true });
  }
});
