// The agent as a real child process (through tsx): signals, locks between processes, crashes,
// the daemon loop, --dry-run, status and hold/release. Every run is searched for secrets.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { existsSync, watch, type FSWatcher } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventsOf, makeWorld, parseLogs, runInProcess, spawnAgent, waitFor, type AgentRun, type SpawnedAgent, type World } from "./helpers/agent.ts";

/** Starts agents and makes sure none outlives its test, whatever the test's outcome. */
function processes(): { start(args: string[], env: Record<string, string>): SpawnedAgent; stopAll(): void } {
  const started: SpawnedAgent[] = [];
  return {
    start(args, env) {
      const agent = spawnAgent(args, env);
      started.push(agent);
      return agent;
    },
    stopAll() {
      for (const a of started) if (a.child.exitCode === null && a.child.signalCode === null) a.kill("SIGKILL");
    },
  };
}

const running = (a: SpawnedAgent) => a.child.exitCode === null && a.child.signalCode === null;
const passesFinished = (a: SpawnedAgent) => parseLogs(a.output()).filter((l) => l.msg === "pass finished").length;

function slowConfig(w: World, ms: number): Promise<void> {
  w.runner.setConfigMode("slow");
  return writeFile(join(w.runner.dir, ".fake", "config-delay-ms"), String(ms));
}

async function readRunnerFile(w: World): Promise<{ agentId: number }> {
  return JSON.parse((await readFile(join(w.runner.dir, ".runner"), "utf8")).replace(/^\uFEFF/, ""));
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    for (const e of entries) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  await walk(dir);
  return out;
}

/** SPEC 3: one stderr line naming the problem and the fix; never a stack trace. */
function assertOneErrorLine(run: AgentRun, ...mentions: string[]): void {
  assert.match(run.stderr, /^error: [^\n]+\n$/, `exactly one stderr line, got ${JSON.stringify(run.stderr)}`);
  assert.ok(!run.stderr.includes("    at "), `no stack trace: ${run.stderr}`);
  for (const m of mentions) assert.ok(run.stderr.includes(m), `stderr names ${JSON.stringify(m)}: ${run.stderr}`);
}

test("process - SIGTERM during config.sh lets the registration finish (or puts the files back) and exits 0", async () => {
  const w = await makeWorld();
  const p = processes();
  try {
    await slowConfig(w, 3000);
    const agent = p.start(["check"], w.env);
    await waitFor(() => w.runner.invocations("config.sh").length === 1, "config.sh to start", 30_000);
    assert.ok(running(agent), "the agent is still in the registration when the signal is sent");
    agent.kill("SIGTERM");
    const run = await agent.done;
    assert.equal(run.code, 0, agent.output());
    assert.ok(run.logs.some((l) => l.signal === "SIGTERM"), "the agent saw the signal mid-pass");

    const m = await w.metrics();
    const present = [".runner", ".credentials", ".credentials_rsaparams"].filter((f) => existsSync(join(w.runner.dir, f)));
    if (present.length > 0) {
      assert.equal(present.length, 3, `a registration is all its files or none, found only ${present.join(", ")}`);
      const { agentId } = await readRunnerFile(w);
      assert.ok(w.github.runners.has(agentId), "the registration exists at GitHub");
      assert.equal(m.runners[0].registered, true);
      assert.equal(m.runners[0].agent_id, agentId);
      assert.equal(m.runners[0].status, "ok");
      assert.equal(m.runners[0].registrations, 1);
    } else {
      assert.equal(m.runners[0].registered, false);
      assert.ok(m.runners[0].last_error, "a registration that was undone records why");
    }
    assert.deepEqual(await readdir(join(w.runner.dir, ".fake", "pids")), [], "no config.sh left running");
    assert.deepEqual(await filesUnder(join(w.stateDir, "aside")), [], "nothing stranded in the aside dir");
    assert.equal(w.runner.invocations("config.sh").length, 1);
    await w.assertNoLeaks([run]);
  } finally {
    p.stopAll();
    await w.close();
  }
});

test("process - a cron check and a daemon pass at the same moment register the runner once and both carry on", async () => {
  const w = await makeWorld();
  const p = processes();
  try {
    await slowConfig(w, 1500);
    const daemon = p.start(["daemon", "--interval", "1"], w.env);
    const check = p.start(["check"], w.env);
    await waitFor(() => w.runner.invocations("config.sh").length === 1, "config.sh to start", 30_000);
    assert.ok(running(daemon) && running(check), "both processes are in their pass while one registers");
    const checkRun = await check.done;
    assert.equal(checkRun.code, 0, check.output());
    assert.equal(checkRun.stderr, "");
    const after = passesFinished(daemon);
    await waitFor(() => passesFinished(daemon) >= Math.max(2, after + 1), "the daemon to run another pass", 30_000);
    assert.ok(running(daemon), "the daemon keeps going");
    daemon.kill("SIGTERM");
    const daemonRun = await daemon.done;
    assert.equal(daemonRun.code, 0, daemon.output());

    assert.equal(w.runner.invocations("config.sh").length, 1, "config.sh ran exactly once");
    assert.equal(w.github.count({ route: "token" }), 1, "one token minted for the scope");
    const registered = [...eventsOf(checkRun, "runner.registered"), ...eventsOf(daemonRun, "runner.registered")];
    assert.equal(registered.length, 1);
    const { agentId } = await readRunnerFile(w);
    assert.equal(w.github.runners.size, 1);
    const m = await w.metrics();
    assert.equal(m.runners[0].registered, true);
    assert.equal(m.runners[0].agent_id, agentId);
    assert.equal(m.runners[0].registrations, 1);
    assert.equal(m.runners[0].status, "ok");
    assert.equal(eventsOf(daemonRun, "agent.stopped").length, 1);
    await w.assertNoLeaks([checkRun, daemonRun]);
  } finally {
    p.stopAll();
    await w.close();
  }
});

test("process - a check that cannot take the runner's lock within refresh.lockTimeout exits 75 with one line naming the dir", async () => {
  const w = await makeWorld();
  const p = processes();
  try {
    await slowConfig(w, 6000);
    const holder = p.start(["check"], w.env);
    await waitFor(() => w.runner.invocations("config.sh").length === 1, "the first check to start config.sh", 30_000);
    const config = await w.config("refresh:\n  lockTimeout: 1\n");
    const blocked = p.start(["check", "--config", config], w.env);
    const blockedRun = await blocked.done;
    assert.ok(running(holder), "the lock was held for the whole wait");
    assert.equal(blockedRun.code, 75, blocked.output());
    assertOneErrorLine(blockedRun, w.runner.dir, "refresh.lockTimeout");

    const holderRun = await holder.done;
    assert.equal(holderRun.code, 0, holder.output());
    assert.equal(holderRun.stderr, "");
    assert.equal(w.runner.invocations("config.sh").length, 1, "the blocked check did not configure");
    const m = await w.metrics();
    assert.equal(m.runners[0].registered, true);
    assert.equal(m.runners[0].status, "ok");
    await w.assertNoLeaks([holderRun, blockedRun]);
  } finally {
    p.stopAll();
    await w.close();
  }
});

test("process - a check killed with SIGKILL at any moment never leaves a torn metrics file", async () => {
  const w = await makeWorld();
  const p = processes();
  const runs: AgentRun[] = [];
  try {
    const first = await runInProcess(["check"], w.env);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    runs.push(first);
    // A killed holder leaves its lock behind until it goes stale: keep the next check's wait short.
    const config = await w.config("refresh:\n  lockTimeout: 1\n");
    const metricsPath = join(w.stateDir, "metrics.json");
    let killed = 0;
    for (let i = 0; i < 8; i++) {
      const agent = p.start(["check", "--config", config], w.env);
      let watcher: FSWatcher | undefined;
      let timer: NodeJS.Timeout | undefined;
      const kill = () => {
        if (running(agent)) agent.kill("SIGKILL");
      };
      if (i % 2 === 0) {
        // Kill the moment the atomic write's temp file appears: inside the write itself.
        watcher = watch(w.stateDir, (_event, name) => {
          if (name && String(name).startsWith("metrics.json.")) kill();
        });
      } else {
        // Kill after varying delays: during start-up, the lock, the pass or the write.
        timer = setTimeout(kill, 150 + i * 200);
      }
      const run = await agent.done;
      watcher?.close();
      clearTimeout(timer);
      runs.push(run);
      if (run.code === 137) killed++;
      else assert.ok([0, 75].includes(run.code), `an unkilled check ends normally: ${agent.output()}`);

      if (!existsSync(metricsPath)) continue;
      const text = await readFile(metricsPath, "utf8");
      let doc: Record<string, any>;
      try {
        doc = JSON.parse(text);
      } catch {
        assert.fail(`metrics.json is torn after run ${i} (exit ${run.code}): ${JSON.stringify(text.slice(0, 200))}`);
      }
      assert.equal(doc.version, 1);
      assert.equal(typeof doc.last_check_timestamp, "number");
      assert.equal(doc.runner_name, "runner-1");
      assert.equal(doc.runners.length, 1);
      assert.equal(doc.runners[0].name, "runner-1");
      assert.equal(doc.runners[0].registered, true);
    }
    assert.ok(killed > 0, "at least one check was killed");
    assert.equal(w.runner.invocations("config.sh").length, 1, "the crashes never re-registered the healthy runner");
    await readRunnerFile(w);
    await w.assertNoLeaks(runs);
  } finally {
    p.stopAll();
    await w.close();
  }
});

test("process - the daemon runs a pass every interval and stops on SIGTERM with exit 0 and agent.stopped", async () => {
  const w = await makeWorld();
  const p = processes();
  try {
    const daemon = p.start(["daemon", "--interval", "1"], w.env);
    await waitFor(() => passesFinished(daemon) >= 3, "three passes", 30_000);
    daemon.kill("SIGTERM");
    const run = await daemon.done;
    assert.equal(run.code, 0, daemon.output());
    assert.equal(run.stderr, "");
    const events = eventsOf(run).map((e) => e.event);
    assert.equal(events[0], "agent.started");
    assert.equal(events.at(-1), "agent.stopped");
    assert.equal(events.filter((e) => e === "agent.stopped").length, 1);
    assert.equal(w.runner.invocations("config.sh").length, 1, "registered once, then left alone");
    assert.equal((await w.metrics()).runners[0].status, "ok");
    await w.assertNoLeaks([run]);
  } finally {
    p.stopAll();
    await w.close();
  }
});

test("process - --dry-run against an unconfigured runner makes no POST, runs no config.sh, writes no state and says what it would do", async () => {
  const w = await makeWorld();
  const p = processes();
  try {
    const agent = p.start(["check", "--dry-run"], w.env);
    const run = await agent.done;
    assert.equal(run.code, 0, agent.output());
    assert.equal(run.stderr, "");
    assert.equal(w.github.count({ method: "POST" }), 0, "no POST to GitHub (no token minted)");
    assert.equal(w.github.count({ method: "DELETE" }), 0);
    assert.equal(w.runner.invocations("config.sh").length, 0, "config.sh not run");
    assert.deepEqual(await filesUnder(w.stateDir), [], "no file in the state dir");
    assert.ok(!existsSync(join(w.runner.dir, ".rtr-lock")), "no lock file in the runner dir");
    assert.ok(!existsSync(join(w.runner.dir, ".runner")));
    assert.ok(run.logs.some((l) => typeof l.msg === "string" && l.msg.includes("would register")), agent.output());
    await mkdir(w.stateDir, { recursive: true }); // the leak search walks the state dir
    await w.assertNoLeaks([run]);
  } finally {
    p.stopAll();
    await w.close();
  }
});

test("process - status prints a table naming the runner and status --json prints the metrics document", async () => {
  const w = await makeWorld();
  const p = processes();
  try {
    const before = await p.start(["status"], w.env).done;
    assert.equal(before.code, 1);
    assertOneErrorLine(before, "metrics.json", "check");

    const check = await p.start(["check"], w.env).done;
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const table = await p.start(["status"], w.env).done;
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stderr, "");
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[1], /^RUNNER\s+SCOPE\s+STATUS\s+REGISTERED/);
    const row = lines.find((l) => l.startsWith("runner-1 "));
    assert.ok(row, table.stdout);
    assert.match(row, /org:acme\s+ok\s+yes \(\d+\)/);

    const json = await p.start(["status", "--json"], w.env).done;
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), await w.metrics());
    await w.assertNoLeaks([before, check, table, json]);
  } finally {
    p.stopAll();
    await w.close();
  }
});

test("process - hold makes the next check leave the runner alone and release undoes it", async () => {
  const w = await makeWorld();
  const p = processes();
  try {
    const unknown = await p.start(["hold", "runner-9"], w.env).done;
    assert.equal(unknown.code, 64);
    assertOneErrorLine(unknown, "runner-9", "runner-1");

    const hold = await p.start(["hold", "runner-1"], w.env).done;
    assert.equal(hold.code, 0, hold.stderr);
    assert.match(hold.stdout, /runner-1: held/);
    const heldCheck = await p.start(["check"], w.env).done;
    assert.equal(heldCheck.code, 0, heldCheck.stdout + heldCheck.stderr);
    assert.equal((await w.metrics()).runners[0].status, "held");
    assert.equal(w.runner.invocations("config.sh").length, 0, "a held runner is not configured");
    assert.ok(!existsSync(join(w.runner.dir, ".runner")));

    const release = await p.start(["release", "runner-1"], w.env).done;
    assert.equal(release.code, 0, release.stderr);
    assert.match(release.stdout, /runner-1: released/);
    const check = await p.start(["check"], w.env).done;
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.equal(w.runner.invocations("config.sh").length, 1);
    const m = await w.metrics();
    assert.equal(m.runners[0].status, "ok");
    assert.equal(m.runners[0].registered, true);
    await w.assertNoLeaks([unknown, hold, heldCheck, release, check]);
  } finally {
    p.stopAll();
    await w.close();
  }
});
