import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { readFile, writeFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { eventsOf, makeWorld, runInProcess, type World } from "./helpers/agent.ts";

function agentIdOf(text: string): number {
  return JSON.parse(text.replace(/^\uFEFF/, "")).agentId;
}

async function svcWorld(extra = ""): Promise<{ w: World; args: string[] }> {
  const w = await makeWorld({ runner: { serviceFile: true } });
  const path = await w.config(`
github: { statusInterval: 0 }
refresh: { retryBackoff: 0.01, onlineTimeout: 5 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh${extra} }
`);
  return { w, args: ["check", "--config", path] };
}

test("remedies - registers, starts the service and confirms the runner online", async () => {
  const { w, args } = await svcWorld();
  try {
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(w.runner.serviceState(), "active");
    const id = agentIdOf(await readFile(join(w.runner.dir, ".runner"), "utf8"));
    assert.equal(w.github.runners.get(id)?.status, "online");
    const m = await w.metrics();
    assert.equal(m.runners[0].online, null === m.runners[0].online ? null : m.runners[0].online);
    assert.equal(m.runners[0].status, "ok");
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("remedies - a healthy runner's service is never stopped and config.sh never runs", async () => {
  const { w, args } = await svcWorld();
  try {
    assert.equal((await runInProcess(args, w.env)).code, 0);
    const svcBefore = w.runner.invocations("svc.sh").length;
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0);
    const svcCalls = w.runner.invocations("svc.sh").slice(svcBefore).map((i) => i.argv[0]);
    assert.ok(!svcCalls.includes("stop"), `no stop: ${svcCalls}`);
    assert.ok(!svcCalls.includes("start"), `no start: ${svcCalls}`);
    assert.equal(w.runner.invocations("config.sh").length, 1);
  } finally {
    await w.close();
  }
});

test("remedies - an intact registration whose service died gets its service started, not a re-registration", async () => {
  const { w, args } = await svcWorld();
  try {
    assert.equal((await runInProcess(args, w.env)).code, 0);
    const id = agentIdOf(await readFile(join(w.runner.dir, ".runner"), "utf8"));
    w.runner.setServiceState("inactive");
    w.github.setStatus(id, "offline");
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(w.runner.serviceState(), "active");
    assert.equal(w.runner.invocations("config.sh").length, 1, "no re-registration");
    assert.equal(eventsOf(run, "runner.service_started").length, 1);
    assert.equal(agentIdOf(await readFile(join(w.runner.dir, ".runner"), "utf8")), id, "same registration");
  } finally {
    await w.close();
  }
});

test("remedies - a registration deleted at GitHub is re-registered (stop, move aside, config.sh, start)", async () => {
  const { w, args } = await svcWorld();
  try {
    assert.equal((await runInProcess(args, w.env)).code, 0);
    const oldId = agentIdOf(await readFile(join(w.runner.dir, ".runner"), "utf8"));
    w.github.deleteRunner(oldId);
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const newId = agentIdOf(await readFile(join(w.runner.dir, ".runner"), "utf8"));
    assert.notEqual(newId, oldId);
    assert.equal(w.github.runners.get(newId)?.status, "online");
    const registered = eventsOf(run, "runner.registered");
    assert.equal(registered.length, 1);
    assert.deepEqual((registered[0].data as Record<string, unknown>).reason, "deleted_on_github");
    const svc = w.runner.invocations("svc.sh").map((i) => i.argv[0]);
    assert.ok(svc.lastIndexOf("stop") < svc.lastIndexOf("start"), "stopped before, started after");
    const m = await w.metrics();
    assert.equal(m.runners[0].registrations, 2);
    assert.equal(m.runners[0].agent_id, newId);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("remedies - a busy runner is never stopped: the re-registration is deferred, remembered and done later", async () => {
  const w = await makeWorld({ runner: { serviceFile: true } });
  try {
    const path = await w.config(`
github: { statusInterval: 0 }
refresh: { retryBackoff: 0.01, onlineTimeout: 5, reregister: on-refresh, threshold: 300 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh }
`);
    const args = ["check", "--config", path];
    assert.equal((await runInProcess(args, w.env)).code, 0);
    const id = agentIdOf(await readFile(join(w.runner.dir, ".runner"), "utf8"));
    w.github.setStatus(id, "online", true);
    // Force a refresh on the next pass: on-refresh then wants a re-registration.
    await writeFile(join(w.stateDir, "tokens", "org=3Aacme.json"), JSON.stringify({ scope: "org:acme", token: "OLDTOKENOLDTOKEN", expires_at: new Date(Date.now() + 60_000).toISOString() }));
    const busyRun = await runInProcess(args, w.env);
    assert.equal(busyRun.code, 0, "a deferral is not a failure");
    assert.equal(eventsOf(busyRun, "runner.deferred_busy").length, 1);
    assert.ok(!w.runner.invocations("svc.sh").some((i) => i.argv[0] === "stop"), "the busy runner was not stopped");
    assert.equal(w.runner.invocations("config.sh").length, 1);
    assert.equal((await w.metrics()).runners[0].status, "deferred_busy");

    // The job ends; the next pass refreshes nothing but still does the pending registration.
    w.github.setStatus(id, "online", false);
    const tokenCalls = w.github.count({ route: "token" });
    const later = await runInProcess(args, w.env);
    assert.equal(later.code, 0, later.stdout);
    assert.equal(w.github.count({ route: "token" }), tokenCalls, "no refresh in this pass");
    assert.equal(w.runner.invocations("config.sh").length, 2, "the pending re-registration happened");
    assert.equal((eventsOf(later, "runner.registered")[0].data as Record<string, unknown>).reason, "on_refresh");
    assert.equal((await w.metrics()).runners[0].status, "ok");
  } finally {
    await w.close();
  }
});

test("remedies - a name online under an id this host never had is refused, files put back, name_conflict emitted", async () => {
  const { w, args } = await svcWorld();
  try {
    w.github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 1);
    assert.equal(w.runner.invocations("config.sh").length, 0, "config.sh never ran");
    assert.equal(eventsOf(run, "runner.name_conflict").length, 1);
    const m = await w.metrics();
    assert.equal(m.runners[0].status, "failing");
    assert.match(m.runners[0].last_error, /online at GitHub under id \d+, which this host never had/);
  } finally {
    await w.close();
  }
});

test("remedies - an offline runner of the same name is replaced", async () => {
  const { w, args } = await svcWorld();
  try {
    const other = w.github.addRunner({ name: "runner-1", scope: "org:acme", status: "offline" });
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout);
    assert.ok(!w.github.runners.has(other.id), "the stale registration was replaced");
  } finally {
    await w.close();
  }
});

test("remedies - a service that will not stay up past offlineGrace leads to a re-registration", async () => {
  const w = await makeWorld();
  try {
    // A service whose start "succeeds" but never stays up (status always inactive).
    const path = await w.config(`
github: { statusInterval: 0 }
refresh: { retryBackoff: 0.01, interval: 1, onlineTimeout: 1 }
runners:
  - dir: ${w.runner.dir}
    scope: { org: acme }
    name: runner-1
    offlineGrace: 0
    service: { start: ["true"], stop: ["true"], status: ["false"] }
`);
    const args = ["check", "--config", path];
    const first = await runInProcess(args, w.env);
    const failed = eventsOf(first, "runner.registration_failed");
    assert.equal((failed[0]?.data as Record<string, unknown>)?.step, "confirm_online", "registered, but never came online");
    assert.equal(first.code, 1);
    const second = await runInProcess(args, w.env);
    assert.equal(eventsOf(second, "runner.service_started").length, 1, "the mildest remedy first");
    assert.equal(w.runner.invocations("config.sh").length, 1);
    const third = await runInProcess(args, w.env);
    assert.equal(w.runner.invocations("config.sh").length, 2, "re-registered once the grace ran out");
    // The fake service never comes online, so the new registration is reported as not confirmed.
    const reg = eventsOf(third, "runner.registration_failed");
    assert.equal((reg[0]?.data as Record<string, unknown>)?.reason, "offline_grace", third.stdout);
  } finally {
    await w.close();
  }
});

test("remedies - a held runner is left alone and reported held", async () => {
  const { w, args } = await svcWorld();
  try {
    await writeFile(join(w.runner.dir, ".rtr-hold"), "");
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0);
    assert.equal(w.runner.invocations("config.sh").length, 0);
    assert.equal(w.runner.invocations("svc.sh").length, 0);
    assert.equal((await w.metrics()).runners[0].status, "held");
  } finally {
    await w.close();
  }
});

test("remedies - an ephemeral runner whose .runner vanished after its job is registered again with --ephemeral", async () => {
  const w = await makeWorld();
  try {
    const path = await w.config(`
refresh: { retryBackoff: 0.01 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, ephemeral: true, labels: [gpu, x64] }
`);
    const run = await runInProcess(["check", "--config", path], w.env);
    assert.equal(run.code, 0, run.stdout);
    const argv = w.runner.invocations("config.sh")[0].argv;
    assert.ok(argv.includes("--ephemeral"));
    assert.deepEqual(argv.slice(argv.indexOf("--labels"), argv.indexOf("--labels") + 2), ["--labels", "gpu,x64"]);
    assert.equal((await w.metrics()).runners[0].ephemeral, true);
  } finally {
    await w.close();
  }
});

test("remedies - the token is refreshed inside the threshold and not outside it", async () => {
  const w = await makeWorld({ tokenTtlSeconds: 3600 });
  try {
    assert.equal((await runInProcess(["check"], w.env)).code, 0);
    assert.equal(w.github.count({ route: "token" }), 1);
    assert.equal((await runInProcess(["check", "--threshold", "3000"], w.env)).code, 0);
    assert.equal(w.github.count({ route: "token" }), 1, "3600 s left > 3000 s threshold: no call");
    const run = await runInProcess(["check", "--threshold", "3650"], w.env);
    assert.equal(run.code, 0);
    assert.equal(w.github.count({ route: "token" }), 2, "inside the threshold: refreshed");
    assert.equal(eventsOf(run, "token.refreshed").length, 1);
    const cache = JSON.parse(await readFile(join(w.stateDir, "tokens", "org=3Aacme.json"), "utf8"));
    assert.equal(cache.token, w.github.mintedTokens[1]);
    assert.equal((await stat(join(w.stateDir, "tokens", "org=3Aacme.json"))).mode & 0o777, 0o600);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("remedies - a re-registration that fails after stopping the service puts the old registration back and starts its service again", async () => {
  const w = await makeWorld({ runner: { serviceFile: true } });
  try {
    const path = await w.config(`
github: { statusInterval: 0 }
refresh: { retryBackoff: 0.01, onlineTimeout: 5, reregister: on-refresh }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh }
`);
    const args = ["check", "--config", path];
    assert.equal((await runInProcess(args, w.env)).code, 0);
    const before = await readFile(join(w.runner.dir, ".runner"), "utf8");
    assert.equal(w.runner.serviceState(), "active");
    await writeFile(join(w.stateDir, "tokens", "org=3Aacme.json"), JSON.stringify({ scope: "org:acme", token: "OLDTOKENOLDTOKEN", expires_at: new Date(Date.now() + 60_000).toISOString() }));
    w.runner.setConfigMode("exists");
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 1);
    assert.equal(await readFile(join(w.runner.dir, ".runner"), "utf8"), before, "the old registration is back");
    assert.equal(w.runner.serviceState(), "active", "and its service runs again, not until the next pass");
    const svc = w.runner.invocations("svc.sh").map((i) => i.argv[0]);
    assert.deepEqual(svc.slice(-2), ["stop", "start"]);
  } finally {
    await w.close();
  }
});
