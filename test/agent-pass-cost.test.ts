// Issue 18, CPU per pass: systemd is asked once per pass for every runner unit (one `systemctl
// show`), runner files are re-read only when they changed, and unchanged runner state is not
// rewritten. A fake `systemctl` on PATH logs how it is called.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeRunnerDir, type FakeRunnerDir } from "./helpers/runner-dir.ts";
import { makeWorld, runInProcess } from "./helpers/agent.ts";
import { spawn } from "node:child_process";
import { systemdUnitStates } from "../src/runner/service.ts";
import { prefetchServiceStates } from "../src/agent/service-batch.ts";
import type { AgentContext, PassState } from "../src/agent/context.ts";
import { readLocalState } from "../src/runner/files.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";

/**
 * A systemctl that logs its argv and answers `show` from a states file (unit=state lines) and a
 * main-pids file (unit=pid lines; MainPID=0 for a unit not listed there).
 */
async function fakeSystemctl(): Promise<{ bin: string; log: string; states: string; mainPids: string; calls(): Promise<string[]>; close(): Promise<void> }> {
  const bin = await mkdtemp(join(tmpdir(), "rtr-fake-systemctl-"));
  const log = join(bin, "calls.log");
  const states = join(bin, "states");
  const mainPids = join(bin, "main-pids");
  await writeFile(states, "");
  await writeFile(mainPids, "");
  await writeFile(
    join(bin, "systemctl"),
    `#!/bin/sh
echo "$*" >> ${log}
state() { s=$(grep "^$1=" ${states} | cut -d= -f2); echo "\${s:-active}"; }
mainpid() { p=$(grep "^$1=" ${mainPids} | cut -d= -f2); echo "\${p:-0}"; }
case "$1" in
  show) shift; shift; first=1; for u in "$@"; do [ $first = 1 ] || echo; first=0; echo "Id=$u"; echo "ActiveState=$(state "$u")"; echo "MainPID=$(mainpid "$u")"; done ;;
  is-active) state "$2" ;;
  *) ;;
esac
`,
    { mode: 0o755 },
  );
  return {
    bin,
    log,
    states,
    mainPids,
    calls: async () => (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean),
    close: () => rm(bin, { recursive: true, force: true }),
  };
}

test("service - one systemctl show answers every runner unit, in order, and only runner units are asked", async () => {
  const systemctl = await fakeSystemctl();
  try {
    await writeFile(systemctl.states, "actions.runner.acme.b.service=failed\nactions.runner.acme.c.service=activating\n");
    const base = createNodeRuntime();
    const runtime = { ...base, env: { ...base.env, PATH: `${systemctl.bin}:${base.env.PATH}` } };
    // The runtime's spawn resolves commands on the agent's own PATH: put the fake first there.
    const oldPath = process.env.PATH;
    process.env.PATH = `${systemctl.bin}:${oldPath}`;
    try {
      const states = await systemdUnitStates(runtime, ["actions.runner.acme.a.service", "debug-shell.service", "actions.runner.acme.b.service", "actions.runner.acme.c.service", "actions.runner.acme.a.service"]);
      assert.deepEqual(Object.fromEntries(states), { "actions.runner.acme.a.service": "active", "actions.runner.acme.b.service": "inactive", "actions.runner.acme.c.service": "active" });
    } finally {
      process.env.PATH = oldPath;
    }
    const calls = await systemctl.calls();
    assert.deepEqual(calls, ["show --property=Id,ActiveState,MainPID actions.runner.acme.a.service actions.runner.acme.b.service actions.runner.acme.c.service"]);
  } finally {
    await systemctl.close();
  }
});

test("check - three systemd runners cost one systemctl process per pass; the one found inactive is started", async () => {
  const w = await makeWorld({ runner: { serviceFile: true, serviceUnit: "actions.runner.acme.runner-1.service" } });
  const systemctl = await fakeSystemctl();
  const more: FakeRunnerDir[] = [];
  try {
    const dirs = [w.runner];
    for (const n of [2, 3]) {
      const dir = await makeRunnerDir({ github: w.github, serviceFile: true, serviceUnit: `actions.runner.acme.runner-${n}.service` });
      more.push(dir);
      dirs.push(dir);
    }
    dirs.forEach((d, i) => {
      const gh = w.github.addRunner({ name: `runner-${i + 1}`, scope: "org:acme", status: "online" });
      d.writeRunnerFiles({ agentId: gh.id, name: `runner-${i + 1}`, url: "https://github.com/acme" });
    });
    await writeFile(systemctl.states, "actions.runner.acme.runner-2.service=inactive\n");
    const path = await w.config(`
runners:
${dirs.map((d, i) => `  - { dir: ${d.dir}, scope: { org: acme }, name: runner-${i + 1}, service: systemd }`).join("\n")}
`);
    const { RUNNER_ORG: _o, RUNNER_NAME: _n, RUNNER_DIR: _d, ...rest } = w.env;
    const env = { ...rest, PATH: `${systemctl.bin}:${process.env.PATH}` };
    const oldPath = process.env.PATH;
    process.env.PATH = env.PATH;
    try {
      const run = await runInProcess(["check", "--config", path], env);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const calls = await systemctl.calls();
      assert.deepEqual(
        calls,
        [
          "show --property=Id,ActiveState,MainPID actions.runner.acme.runner-1.service actions.runner.acme.runner-2.service actions.runner.acme.runner-3.service",
          "start actions.runner.acme.runner-2.service",
        ],
        "one process asked for all three units; only the inactive one was started",
      );
      const m = await w.metrics();
      assert.deepEqual(
        m.runners.map((r: { service_active: boolean }) => r.service_active),
        [true, false, true],
      );
    } finally {
      process.env.PATH = oldPath;
    }
  } finally {
    for (const d of more) await d.cleanup();
    await systemctl.close();
    await w.close();
  }
});

test("runner files - an unchanged .runner is not read again, a rewritten one is", async () => {
  const w = await makeWorld();
  try {
    const gh = w.github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
    w.runner.writeRunnerFiles({ agentId: gh.id, name: "runner-1", url: "https://github.com/acme" });
    const base = createNodeRuntime();
    const reads: string[] = [];
    const runtime = { ...base, files: { ...base.files, readText: (p: string) => (reads.push(p), base.files.readText(p)) } };
    assert.equal((await readLocalState(runtime, w.runner.dir)).runner?.agentId, gh.id);
    assert.ok(reads.some((p) => p.endsWith("/.runner")), "read the first time");
    reads.length = 0;
    assert.equal((await readLocalState(runtime, w.runner.dir)).runner?.agentId, gh.id);
    assert.deepEqual(reads, [], "nothing changed: nothing read");
    const other = w.github.addRunner({ name: "runner-1b", scope: "org:acme", status: "online" });
    w.runner.writeRunnerFiles({ agentId: other.id, name: "runner-1", url: "https://github.com/acme" });
    assert.equal((await readLocalState(runtime, w.runner.dir)).runner?.agentId, other.id, "a rewritten .runner is read again");
  } finally {
    await w.close();
  }
});

test("state - a pass that changes nothing does not rewrite the runner's state file", async () => {
  const w = await makeWorld();
  try {
    assert.equal((await runInProcess(["check"], w.env)).code, 0, "registers");
    assert.equal((await runInProcess(["check"], w.env)).code, 0);
    const { readdir } = await import("node:fs/promises");
    const [file] = await readdir(join(w.stateDir, "runners"));
    const before = await stat(join(w.stateDir, "runners", file));
    const text = await readFile(join(w.stateDir, "runners", file), "utf8");
    assert.equal((await runInProcess(["check"], w.env)).code, 0);
    const after = await stat(join(w.stateDir, "runners", file));
    assert.equal(after.mtimeMs, before.mtimeMs, "not rewritten");
    assert.equal(await readFile(join(w.stateDir, "runners", file), "utf8"), text);
    assert.equal((await w.metrics()).runners[0].status, "ok");
  } finally {
    await w.close();
  }
});

test("service - a unit whose main process still runs is active without asking systemctl; once it exits, the next pass asks and finds it stopped", async () => {
  const systemctl = await fakeSystemctl();
  const dir = await mkdtemp(join(tmpdir(), "rtr-main-pid-"));
  const unit = "actions.runner.acme.runner-1.service";
  // Stands for the unit's runsvc.sh.
  const main = spawn("sleep", ["600"], { stdio: "ignore" });
  const oldPath = process.env.PATH;
  process.env.PATH = `${systemctl.bin}:${oldPath}`;
  try {
    await writeFile(join(dir, ".service"), `${unit}\n`);
    await writeFile(systemctl.mainPids, `${unit}=${main.pid}\n`);
    const ctx = { runtime: createNodeRuntime(), config: { runners: [{ dir, service: { kind: "systemd" } }] }, now: () => Date.now() } as unknown as AgentContext;
    const pass = () => {
      const p = { signal: new AbortController().signal, scopeConfirmed: new Set(), tokenResults: new Map() } as PassState;
      return prefetchServiceStates(ctx, p).then(() => p.serviceStates?.states.get(unit));
    };
    assert.equal(await pass(), "active", "first pass: asked");
    assert.equal(await pass(), "active", "second pass: its main process still runs");
    assert.equal(await pass(), "active");
    assert.equal((await systemctl.calls()).length, 1, "systemctl ran once for three passes");

    // The service stops: its main process exits and systemd reports the unit inactive.
    main.kill("SIGKILL");
    await new Promise((r) => main.once("exit", r));
    await writeFile(systemctl.states, `${unit}=inactive\n`);
    await writeFile(systemctl.mainPids, "");
    assert.equal(await pass(), "inactive", "noticed in the first pass after the main process exited");
    assert.equal(await pass(), "inactive", "an inactive unit is asked every pass");
    assert.equal((await systemctl.calls()).length, 3);

    // A reused pid is not the same process: a different start time means ask again.
    await writeFile(systemctl.states, "");
    await writeFile(systemctl.mainPids, `${unit}=${process.pid}\n`);
    assert.equal(await pass(), "active");
    assert.equal(await pass(), "active");
    assert.equal((await systemctl.calls()).length, 4);
  } finally {
    process.env.PATH = oldPath;
    main.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    await systemctl.close();
  }
});

test("runtime - processStart: the same start time for the same process, null for a zombie or a missing pid", async () => {
  const runtime = createNodeRuntime();
  const own = await runtime.processStart(process.pid);
  assert.match(own ?? "", /^\d+$/, "this process has a start time");
  assert.equal(await runtime.processStart(process.pid), own, "the same every time");
  assert.equal(await runtime.processStart(2 ** 22 + 1), null, "no such pid");
  assert.equal(await runtime.processStart(0), null);
  // A child that exited and was not reaped is a zombie: gone. The shell becomes `sleep` (exec),
  // which never reaps the `sleep 0.2` it had started.
  const parent = spawn("sh", ["-c", "sleep 0.2 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()))));
    let stat = "";
    for (let i = 0; i < 100 && !/\) Z /.test(stat); i++) {
      stat = await readFile(`/proc/${pid}/stat`, "utf8");
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(stat, /\) Z /, "the child is a zombie");
    assert.equal(await runtime.processStart(pid), null);
  } finally {
    parent.kill("SIGKILL");
  }
});

test("hygiene - a pass that changes nothing does not rewrite the runner's hygiene file", async () => {
  const w = await makeWorld();
  try {
    assert.equal((await runInProcess(["check"], w.env)).code, 0, "registers");
    assert.equal((await runInProcess(["check"], w.env)).code, 0);
    const { readdir } = await import("node:fs/promises");
    const file = join(w.stateDir, "hygiene", (await readdir(join(w.stateDir, "hygiene"))).find((f) => f.startsWith("runner-"))!);
    const before = await stat(file);
    const text = await readFile(file, "utf8");
    assert.equal((await runInProcess(["check"], w.env)).code, 0);
    assert.equal((await stat(file)).mtimeMs, before.mtimeMs, "not rewritten");
    assert.equal((await stat(file)).ino, before.ino, "not replaced");
    assert.equal(await readFile(file, "utf8"), text);
  } finally {
    await w.close();
  }
});

test("runtime - writeAtomic: exact mode whatever the umask, no temp file left, a symlinked target written through; readText reads small, empty-sized (/proc) and large files", async () => {
  const runtime = createNodeRuntime();
  const dir = await mkdtemp(join(tmpdir(), "rtr-files-"));
  try {
    const path = join(dir, "state.json");
    await runtime.files.writeAtomic(path, "one\n", 0o640);
    await runtime.files.writeAtomic(path, "two\n", 0o640);
    assert.equal(await readFile(path, "utf8"), "two\n");
    assert.equal((await stat(path)).mode & 0o777, 0o640);
    await runtime.files.writeAtomic(path, "three\n", 0o666);
    assert.equal((await stat(path)).mode & 0o777, 0o666, "not narrowed by the umask");
    const { readdir, symlink } = await import("node:fs/promises");
    assert.deepEqual(await readdir(dir), ["state.json"], "no temp file left");
    await symlink(path, join(dir, "link.json"));
    await runtime.files.writeAtomic(join(dir, "link.json"), "four\n", 0o640);
    assert.equal(await readFile(path, "utf8"), "four\n", "written through the link, as write-file-atomic did");
    assert.ok((await import("node:fs")).lstatSync(join(dir, "link.json")).isSymbolicLink());
    await assert.rejects(runtime.files.writeAtomic(join(dir, "no-such-dir", "x"), "x"), { code: "ENOENT" });
    // A temp file a crashed process left under the name this one would use is reused, not an error.
    const { readdirSync, writeFileSync } = await import("node:fs");
    await runtime.files.writeAtomic(join(dir, "other.json"), "1\n", 0o640);
    // Every name this process could use next (its counter is below 500 here).
    for (let n = 1; n <= 500; n++) writeFileSync(join(dir, `other.json.${process.pid}.${n}.tmp`), "stale");
    for (let n = 0; n < 3; n++) await runtime.files.writeAtomic(join(dir, "other.json"), `${n}\n`, 0o640);
    assert.equal(await readFile(join(dir, "other.json"), "utf8"), "2\n");
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".tmp"))) (await import("node:fs")).unlinkSync(join(dir, f));

    assert.equal(await runtime.files.readText(path), "four\n");
    assert.match(await runtime.files.readText(`/proc/${process.pid}/stat`), new RegExp(`^${process.pid} \\(`), "a /proc file (size 0) is read to its end");
    const big = "x".repeat(3 * 1024 * 1024 + 7);
    await writeFile(join(dir, "big"), big);
    assert.equal((await runtime.files.readText(join(dir, "big"))).length, big.length);
    await assert.rejects(runtime.files.readText(join(dir, "missing")), { code: "ENOENT" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
