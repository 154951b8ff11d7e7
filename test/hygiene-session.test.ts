// Session conflicts ("A session for this runner already exists"): the listener exits 5 and the
// service stays down. The agent starts it again once the old session has expired, and never while
// GitHub shows the same name online elsewhere (then it alerts, naming both hosts as far as known).
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventsOf, makeWorld, runInProcess, waitFor, type World } from "./helpers/agent.ts";
import { startWebhookReceiver } from "./helpers/receivers.ts";

const CONFLICT_LOG = [
  "[RUNNER 2026-12-07 09:00:00Z INFO Listener] Version: 2.330.0",
  "[RUNNER 2026-12-07 09:00:02Z ERR  MessageListener] A session for this runner already exists.",
  "[RUNNER 2026-12-07 09:00:02Z INFO Terminal] WRITE LINE: A session for this runner already exists.",
  "[RUNNER 2026-12-07 09:04:02Z ERR  MessageListener] Failed to create session. A session for this runner already exists.",
  "[RUNNER 2026-12-07 09:04:02Z INFO Listener] Runner execution has finished with return code 5",
  "",
].join("\n");

async function world(extraConfig = ""): Promise<{ w: World; args: string[]; id: number }> {
  const w = await makeWorld({ runner: { serviceFile: true } });
  const path = await w.config(`
github: { statusInterval: 0 }
refresh: { retryBackoff: 0.01, onlineTimeout: 5 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh }
${extraConfig}`);
  const args = ["check", "--config", path];
  assert.equal((await runInProcess(args, w.env)).code, 0, "registered");
  const id = JSON.parse((await readFile(join(w.runner.dir, ".runner"), "utf8")).replace(/^\uFEFF/, "")).agentId;
  return { w, args, id };
}

/** The listener hit a session conflict and exited `minutesAgo` minutes ago; the unit is down. */
async function conflicted(w: World, minutesAgo: number): Promise<void> {
  await mkdir(join(w.runner.dir, "_diag"), { recursive: true });
  const log = join(w.runner.dir, "_diag", "Runner_20261207-090000-utc.log");
  await writeFile(log, CONFLICT_LOG);
  const at = new Date(Date.now() - minutesAgo * 60_000);
  await utimes(log, at, at);
  w.runner.setServiceState("inactive");
}

const starts = (w: World, from: number) => w.runner.invocations("svc.sh").slice(from).filter((i) => i.argv[0] === "start").length;

test("hygiene session - after a session conflict the service is started only once the old session expired", async () => {
  const { w, args, id } = await world();
  try {
    await conflicted(w, 1);
    w.github.setStatus(id, "offline");
    const before = w.runner.invocations("svc.sh").length;
    const early = await runInProcess(args, w.env);
    assert.equal(early.code, 0, early.stdout);
    assert.equal(starts(w, before), 0, "not while the old session may still be held");
    assert.ok(early.logs.some((l) => typeof l.msg === "string" && /waiting for the old session to expire/.test(l.msg)), early.stdout);

    await conflicted(w, 6);
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(starts(w, before), 1, "started once the session expired");
    assert.equal(w.runner.serviceState(), "active");
    assert.equal(w.runner.invocations("config.sh").length, 1, "no re-registration");
    const repaired = eventsOf(run, "runner.session_repaired");
    assert.equal(repaired.length, 1);
    assert.equal((repaired[0].data as { tries: number }).tries, 1);

    // The conflict comes back at once (the other session was not gone): the wait doubles.
    await conflicted(w, 6);
    w.github.setStatus(id, "offline");
    const after = w.runner.invocations("svc.sh").length;
    assert.equal((await runInProcess(args, w.env)).code, 0);
    assert.equal(starts(w, after), 0, "second try waits 10 minutes, not 5");
  } finally {
    await w.close();
  }
});

test("hygiene session - the same name online elsewhere is never started here; one alert names both hosts", async () => {
  const hook = await startWebhookReceiver();
  const { w, args, id } = await world(`alerts:\n  plugins:\n    - [webhook, { url: "${hook.url}" }]\n`);
  try {
    await conflicted(w, 30);
    w.github.setStatus(id, "online"); // GitHub holds a live session for runner-1: another host's
    const before = w.runner.invocations("svc.sh").length;
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(starts(w, before), 0, "never fight another host for the registration");
    assert.equal(w.runner.invocations("config.sh").length, 1);
    const conflict = eventsOf(run, "runner.session_conflict");
    assert.equal(conflict.length, 1);
    const hosts = (conflict[0].data as { hosts: string[] }).hosts;
    assert.equal(hosts.length, 2);
    assert.equal(hosts[1], "another host");
    await waitFor(() => hook.received.some((r) => r.body?.rule === "runner_session_conflict"), "the alert");
    const n = hook.received.find((r) => r.body?.rule === "runner_session_conflict")!.body;
    assert.equal(n.status, "firing");
    assert.ok(n.summary.includes(hosts[0]) && n.summary.includes("another host"), n.summary);

    const again = await runInProcess(args, w.env);
    assert.equal(eventsOf(again, "runner.session_conflict").length, 0, "said once, not every pass");
    assert.equal(starts(w, before), 0);
  } finally {
    await w.close();
    await hook.close();
  }
});
