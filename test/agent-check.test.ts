import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { stat, readFile } from "node:fs/promises";
import { join } from "node:path";
import { eventsOf, makeWorld, runInProcess } from "./helpers/agent.ts";

test("check - registers an unconfigured runner end to end from environment variables alone", async () => {
  const w = await makeWorld();
  try {
    const run = await runInProcess(["check"], w.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const runnerFile = await readFile(join(w.runner.dir, ".runner"), "utf8");
    const agentId = JSON.parse(runnerFile.replace(/^\uFEFF/, "")).agentId;
    assert.ok(w.github.runners.has(agentId), "the runner exists at GitHub");
    const [invocation] = w.runner.invocations("config.sh");
    assert.ok(invocation.tokenFromEnv, "token passed in ACTIONS_RUNNER_INPUT_TOKEN");
    assert.ok(!invocation.argv.includes("--token"), "token never in argv");
    assert.deepEqual(invocation.argv.slice(0, 6), ["--unattended", "--replace", "--url", "https://github.com/acme", "--name", "runner-1"]);
    const m = await w.metrics();
    assert.equal(m.runners[0].registered, true);
    assert.equal(m.runners[0].agent_id, agentId);
    assert.equal(m.runners[0].registrations, 1);
    assert.equal(m.runners[0].status, "ok");
    assert.equal(m.total_refreshes, 1);
    assert.equal(m.runner_org, "acme");
    const tokenFile = join(w.stateDir, "tokens", "org=3Aacme.json");
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600);
    assert.equal((await stat(join(w.stateDir, "metrics.json"))).mode & 0o777, 0o644);
    assert.deepEqual(eventsOf(run).map((e) => e.event), ["token.refreshed", "runner.registered"]);
    assert.deepEqual(w.github.schemaErrors, []);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("check - leaves a healthy runner alone: no config.sh, no token call, no status call inside statusInterval", async () => {
  const w = await makeWorld();
  try {
    assert.equal((await runInProcess(["check"], w.env)).code, 0);
    const callsBefore = w.github.calls.length;
    const run = await runInProcess(["check"], w.env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(w.runner.invocations("config.sh").length, 1, "config.sh ran only for the first registration");
    assert.equal(w.github.calls.length, callsBefore, "a fresh cached token and a recent status check mean no GitHub call");
    assert.equal((await w.metrics()).runners[0].status, "ok");
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});
