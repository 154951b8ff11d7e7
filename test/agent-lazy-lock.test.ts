// Issue 18, CPU per pass: the runner's lock is taken only when a pass changes something
// (src/agent/runner-lock.ts). A healthy runner is checked without it, so another agent's lock does
// not hold up a check that has nothing to do; a check that must change the runner still waits for
// it, and sees what changed while it waited.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { makeWorld, runInProcess, type AgentRun, type World } from "./helpers/agent.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";

/** A registered runner with its service run by svc.sh; `check` with a short lockTimeout. */
async function svcWorld(): Promise<{ w: World; args: string[] }> {
  const w = await makeWorld({ runner: { serviceFile: true } });
  const path = await w.config(`
refresh: { lockTimeout: 1 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh }
`);
  const args = ["check", "--config", path];
  assert.equal((await runInProcess(args, w.env)).code, 0, "registers");
  assert.equal((await runInProcess(args, w.env)).code, 0, "first check of the registered runner (hygiene's first look)");
  return { w, args };
}

const starts = (w: World) => w.runner.invocations("svc.sh").filter((i) => i.argv[0] === "start").length;

/** Takes the runner's lock as another agent would, from this process. */
async function holdLock(dir: string): Promise<() => Promise<void>> {
  const release = await createNodeRuntime().files.lock(`${dir}/.rtr-lock`, 5000, 90_000);
  assert.ok(release, "the test took the runner's lock");
  return release;
}

/** A check in process whose runtime reports each lock it asks for (path), before waiting for it. */
function checkWatchingLocks(args: string[], env: Record<string, string>, onLock: (path: string) => void): Promise<AgentRun> {
  const { lock } = createNodeRuntime().files;
  return runInProcess(args, env, {
    files: {
      lock: (path, timeoutMs, staleMs, signal) => {
        onLock(path);
        return lock(path, timeoutMs, staleMs, signal);
      },
    },
  });
}

test("lock - a check of a healthy runner takes no lock and is not held up by another agent's; one that must start the service waits for it and exits 75", async () => {
  const { w, args } = await svcWorld();
  try {
    const startsBefore = starts(w);
    const locks: string[] = [];
    const quiet = await checkWatchingLocks(args, w.env, (p) => locks.push(p));
    assert.equal(quiet.code, 0, quiet.stdout + quiet.stderr);
    assert.deepEqual(locks.filter((p) => p.startsWith(w.runner.dir)), [], "a pass that changes nothing takes no runner lock");

    const release = await holdLock(w.runner.dir);
    try {
      const healthy = await runInProcess(args, w.env);
      assert.equal(healthy.code, 0, `nothing to change, nothing to wait for: ${healthy.stderr}`);
      assert.equal(healthy.stderr, "");

      w.runner.setServiceState("inactive");
      const blocked = await runInProcess(args, w.env);
      assert.equal(blocked.code, 75, blocked.stderr);
      assert.match(blocked.stderr, /^error: another runner-token-refresh held the lock on .* past refresh\.lockTimeout \(1s\)/);
      assert.equal(starts(w), startsBefore, "the service was not started without the lock");
    } finally {
      await release();
    }
    const after = await runInProcess(args, w.env);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(starts(w), startsBefore + 1, "started once the lock was free");
    assert.equal(w.runner.serviceState(), "active");
  } finally {
    await w.close();
  }
});

test("lock - a runner held while the check waited for its lock is left alone: what the check read is checked again under the lock", async () => {
  const { w, args } = await svcWorld();
  try {
    const startsBefore = starts(w);
    w.runner.setServiceState("inactive");
    const release = await holdLock(w.runner.dir);
    let waiting!: () => void;
    const atLock = new Promise<void>((r) => (waiting = r));
    const run = checkWatchingLocks([...args.slice(0, 2), await w.config(`
refresh: { lockTimeout: 60 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh }
`)], w.env, (p) => p.startsWith(w.runner.dir) && waiting());
    // The check read an intact runner with its service down and now waits to start it. Meanwhile
    // the operator holds the runner (`hold` writes .rtr-hold), then the other agent lets go.
    await atLock;
    const held = await runInProcess(["hold", "runner-1"], w.env);
    assert.equal(held.code, 0, held.stdout + held.stderr);
    await release();
    const checked = await run;
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.equal(starts(w), startsBefore, "a held runner's service is not started");
    assert.equal(w.runner.serviceState(), "inactive");
    assert.equal((await w.metrics()).runners[0].status, "held");
  } finally {
    await w.close();
  }
});

test("lock - a check whose only change is its memory of the runner saves it under the lock", async () => {
  const w = await makeWorld();
  try {
    assert.equal((await runInProcess(["check"], w.env)).code, 0, "registers");
    // The status call is due every pass; GitHub now says the runner runs a job: the memory changes.
    const config = await w.config("github:\n  statusInterval: 0\n");
    const [gh] = [...w.github.runners.values()];
    w.github.setStatus(gh.id, "online", true);
    const locks: string[] = [];
    const run = await checkWatchingLocks(["check", "--config", config], w.env, (p) => locks.push(p));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(locks.filter((p) => p.startsWith(w.runner.dir)).length, 1, "one lock, for the save");
    assert.equal((await w.metrics()).runners[0].busy, true, "the new answer was saved and reported");
  } finally {
    await w.close();
  }
});
