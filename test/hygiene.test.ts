// Runner hygiene against the real parts: the agent in-process, the fake GitHub (its answers checked
// against GitHub's OpenAPI excerpt), a runner dir with config.sh/svc.sh stand-ins. Labels and
// runner groups are repaired with one API call each: no config.sh, no service stop.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { eventsOf, makeWorld, runInProcess, type World } from "./helpers/agent.ts";
import { loadConfig } from "../src/config/load.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { AgentTelemetry } from "../src/agent/telemetry.ts";
import { createAgentRegistry } from "../src/http/agent-metrics.ts";
import { createLogger } from "../src/shared/logger.ts";

async function agentId(w: World): Promise<number> {
  return JSON.parse((await readFile(join(w.runner.dir, ".runner"), "utf8")).replace(/^\uFEFF/, "")).agentId;
}

/** A registered runner (first check), its service up, and the args for the next checks. */
async function registered(runnerLine: string): Promise<{ w: World; args: string[]; id: number }> {
  const w = await makeWorld({ runner: { serviceFile: true } });
  const path = await w.config(`
github: { statusInterval: 0 }
refresh: { retryBackoff: 0.01, onlineTimeout: 5 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh${runnerLine} }
`);
  const args = ["check", "--config", path];
  const first = await runInProcess(args, w.env);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  return { w, args, id: await agentId(w) };
}

function customLabels(w: World, id: number): string[] {
  return (w.github.runners.get(id)?.labels ?? []).filter((l) => l.type === "custom").map((l) => l.name);
}

/** Replaces the runner's custom labels at GitHub, as someone editing them in the web UI would. */
function driftLabels(w: World, id: number, names: string[]): void {
  const r = w.github.runners.get(id)!;
  r.labels = [...r.labels.filter((l) => l.type === "read-only"), ...names.map((name, i) => ({ id: 900 + i, name, type: "custom" as const }))];
}

function svcVerbs(w: World, from = 0): string[] {
  return w.runner.invocations("svc.sh").slice(from).map((i) => i.argv[0]);
}

test("hygiene - drifted labels are repaired by one label call, with no config.sh and no service stop", async () => {
  const { w, args, id } = await registered(", labels: [gpu, big]");
  try {
    assert.deepEqual(customLabels(w, id), ["gpu", "big"]);
    driftLabels(w, id, ["gpu", "old"]);
    const configBefore = w.runner.invocations("config.sh").length;
    const svcBefore = w.runner.invocations("svc.sh").length;

    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(w.github.count({ method: "PUT", route: "labels" }), 1, "one label call");
    assert.deepEqual(customLabels(w, id).sort(), ["big", "gpu"]);
    assert.equal(w.runner.invocations("config.sh").length, configBefore, "no config.sh");
    assert.ok(!svcVerbs(w, svcBefore).includes("stop"), `no service stop: ${svcVerbs(w, svcBefore)}`);
    assert.equal(w.runner.serviceState(), "active");
    assert.equal(await agentId(w), id, "same registration");
    const events = eventsOf(run, "runner.labels_repaired");
    assert.equal(events.length, 1);
    assert.deepEqual(events[0].data, { agent_id: id, before: ["gpu", "old"], after: ["gpu", "big"] });
    assert.ok(run.logs.some((l) => typeof l.msg === "string" && /one label call/.test(l.msg)), "the repair is logged");

    const again = await runInProcess(args, w.env);
    assert.equal(again.code, 0);
    assert.equal(w.github.count({ method: "PUT", route: "labels" }), 1, "a second check makes no label call");
    assert.equal(eventsOf(again, "runner.labels_repaired").length, 0);
    assert.deepEqual(w.github.schemaErrors, []);
    await w.assertNoLeaks([run, again]);
  } finally {
    await w.close();
  }
});

test("hygiene - labels absent from the config are left alone; labels: [] removes every custom label", async () => {
  const { w, args, id } = await registered("");
  try {
    assert.ok(!w.runner.invocations("config.sh")[0].argv.includes("--labels"), "config.sh got no --labels");
    driftLabels(w, id, ["someone-elses"]);
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0);
    assert.equal(w.github.count({ route: "labels" }), 0, "absent labels: no label call");
    assert.deepEqual(customLabels(w, id), ["someone-elses"]);

    const path = await w.config(`
github: { statusInterval: 0 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh, labels: [] }
`);
    const cleared = await runInProcess(["check", "--config", path], w.env);
    assert.equal(cleared.code, 0, cleared.stdout);
    assert.equal(w.github.count({ method: "PUT", route: "labels" }), 1);
    assert.deepEqual(customLabels(w, id), []);
    assert.deepEqual(eventsOf(cleared, "runner.labels_repaired")[0].data, { agent_id: id, before: ["someone-elses"], after: [] });
    assert.deepEqual(w.github.schemaErrors, []);
  } finally {
    await w.close();
  }
});

test("hygiene - --dry-run only says which labels it would set", async () => {
  const { w, args, id } = await registered(", labels: [gpu]");
  try {
    driftLabels(w, id, ["cpu"]);
    const run = await runInProcess([...args, "--dry-run"], w.env);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(w.github.count({ route: "labels" }), 0);
    assert.ok(run.logs.some((l) => typeof l.msg === "string" && /dry run: would set runner id \d+'s custom labels to \[gpu\]/.test(l.msg)), run.stdout);
    assert.deepEqual(customLabels(w, id), ["cpu"]);
  } finally {
    await w.close();
  }
});

test("hygiene - a refused label call is a warning, not a failed pass; the next check tries again", async () => {
  const { w, args, id } = await registered(", labels: [gpu]");
  try {
    driftLabels(w, id, ["cpu"]);
    w.github.inject("labels", { status: 403, body: { message: "Resource not accessible by personal access token", documentation_url: "https://docs.github.com/rest", status: "403" } });
    const refused = await runInProcess(args, w.env);
    assert.equal(refused.code, 0, "the runner itself is fine");
    assert.equal(eventsOf(refused, "runner.labels_repaired").length, 0);
    assert.ok(refused.logs.some((l) => l.level === "warn" && typeof l.msg === "string" && /could not repair the runner's labels/.test(l.msg)), refused.stdout);
    const retried = await runInProcess(args, w.env);
    assert.equal(eventsOf(retried, "runner.labels_repaired").length, 1);
    assert.deepEqual(customLabels(w, id), ["gpu"]);
  } finally {
    await w.close();
  }
});

test("hygiene - a configured label that is one of the runner's read-only labels never loops", async () => {
  // config.sh --labels linux,x64 beside the read-only Linux/X64: the same names, no label call ever.
  const { w, args } = await registered(", labels: [linux, x64]");
  try {
    for (let i = 0; i < 2; i++) assert.equal((await runInProcess(args, w.env)).code, 0);
    assert.equal(w.github.count({ route: "labels" }), 0);
  } finally {
    await w.close();
  }
});

test("hygiene - config: labels absent and labels [] are told apart", async () => {
  const runtime = { ...createNodeRuntime(), env: { PATH: "" } };
  const w = await makeWorld();
  try {
    const load = async (extra: string) => {
      const path = await w.config(`runners:\n  - { dir: ${w.runner.dir}, scope: { org: acme }, name: r1${extra} }\n`);
      return (await loadConfig(runtime, { config: path }, { needRunners: true, needCredentials: false })).runners[0];
    };
    const absent = await load("");
    const empty = await load(", labels: []");
    const given = await load(", labels: [gpu]");
    assert.deepEqual([absent.labels, absent.manageLabels], [[], false]);
    assert.deepEqual([empty.labels, empty.manageLabels], [[], true]);
    assert.deepEqual([given.labels, given.manageLabels], [["gpu"], true]);
  } finally {
    await w.close();
  }
});

test("hygiene - a runner in another group is moved back with one call; the group id is resolved once", async () => {
  const { w, args, id } = await registered(", group: builders");
  try {
    const builders = w.github.groupId("builders");
    assert.equal(w.github.runners.get(id)?.runner_group_id, builders, "config.sh put it in its group");
    w.github.runners.get(id)!.runner_group_id = 1; // moved to Default in the web UI
    const svcBefore = w.runner.invocations("svc.sh").length;

    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(w.github.runners.get(id)?.runner_group_id, builders);
    assert.equal(w.github.count({ method: "PUT", route: "group-move" }), 1);
    assert.equal(w.github.count({ route: "groups" }), 1, "the name was resolved with one listing");
    assert.equal(w.runner.invocations("config.sh").length, 1, "no re-registration");
    assert.ok(!svcVerbs(w, svcBefore).includes("stop"));
    const events = eventsOf(run, "runner.group_repaired");
    assert.equal(events.length, 1);
    assert.deepEqual(events[0].data, { agent_id: id, before: { id: 1, name: "Default" }, after: { id: builders, name: "builders" } });

    w.github.runners.get(id)!.runner_group_id = 1;
    const again = await runInProcess(args, w.env);
    assert.equal(again.code, 0);
    assert.equal(w.github.count({ route: "groups" }), 1, "cached: no second listing");
    assert.equal(w.github.count({ method: "PUT", route: "group-move" }), 2);
    const calm = await runInProcess(args, w.env);
    assert.equal(calm.code, 0);
    assert.equal(w.github.count({ method: "PUT", route: "group-move" }), 2, "in its group: no call");
    assert.deepEqual(w.github.schemaErrors, []);
  } finally {
    await w.close();
  }
});

test("hygiene - without runner_group_id (older API) the group's runner list says whether to move it", async () => {
  const { w, args, id } = await registered(", group: builders");
  try {
    w.github.omitRunnerGroupId = true;
    assert.equal((await runInProcess(args, w.env)).code, 0);
    assert.equal(w.github.count({ route: "group-runners" }), 1, "membership checked by listing the group");
    assert.equal(w.github.count({ method: "PUT", route: "group-move" }), 0, "already a member: no move");
    w.github.runners.get(id)!.runner_group_id = 1;
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0);
    assert.equal(w.github.count({ method: "PUT", route: "group-move" }), 1);
    assert.equal(w.github.runners.get(id)?.runner_group_id, w.github.groupId("builders"));
    assert.equal((eventsOf(run, "runner.group_repaired")[0].data as { before: unknown }).before, null, "the old group is not known");
    assert.deepEqual(w.github.schemaErrors, []);
  } finally {
    await w.close();
  }
});

test("hygiene - a group name the org does not have is reported, and nothing is moved", async () => {
  const { w, args, id } = await registered("");
  try {
    const path = await w.config(`
github: { statusInterval: 0 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh, group: nonexistent }
`);
    const run = await runInProcess(["check", "--config", path], w.env);
    assert.equal(run.code, 0, "a hygiene problem does not fail the pass");
    assert.equal(w.github.count({ method: "PUT", route: "group-move" }), 0);
    assert.ok(run.logs.some((l) => typeof l.msg === "string" && /runner group "nonexistent" does not exist in org acme/.test(l.msg)), run.stdout);
    assert.equal(w.github.runners.get(id)?.runner_group_id, 1);
  } finally {
    await w.close();
  }
});

test("hygiene - /metrics counts repairs by runner, kind and outcome from 0", async () => {
  const telemetry = new AgentTelemetry(createLogger({ level: "silent", write: () => {} }));
  telemetry.hygiene.repair("runner-1", "labels", true);
  telemetry.hygiene.versionAge("runner-1", 23);
  const { registry, close } = createAgentRegistry({
    scopes: ["org:acme"],
    runners: ["runner-1"],
    interval: 60,
    telemetry,
    alerts: null,
    outboxPending: async () => 0,
    outboxDropped: async () => 0,
  });
  try {
    const text = await registry.metrics();
    assert.match(text, /^runner_token_hygiene_repairs_total\{runner="runner-1",kind="labels",outcome="success"\} 1$/m);
    assert.match(text, /^runner_token_hygiene_repairs_total\{runner="runner-1",kind="group",outcome="failure"\} 0$/m);
    assert.match(text, /^runner_token_hygiene_repairs_total\{runner="runner-1",kind="session",outcome="success"\} 0$/m);
    assert.match(text, /^rtr_runner_version_age_days\{runner="runner-1"\} 23$/m);
  } finally {
    close();
  }
});
