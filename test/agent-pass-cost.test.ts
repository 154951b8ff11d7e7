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
import { systemdUnitStates } from "../src/runner/service.ts";
import { readLocalState } from "../src/runner/files.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";

/** A systemctl that logs its argv and answers `show` from a states file (unit=state lines). */
async function fakeSystemctl(): Promise<{ bin: string; log: string; states: string; calls(): Promise<string[]>; close(): Promise<void> }> {
  const bin = await mkdtemp(join(tmpdir(), "rtr-fake-systemctl-"));
  const log = join(bin, "calls.log");
  const states = join(bin, "states");
  await writeFile(states, "");
  await writeFile(
    join(bin, "systemctl"),
    `#!/bin/sh
echo "$*" >> ${log}
state() { s=$(grep "^$1=" ${states} | cut -d= -f2); echo "\${s:-active}"; }
case "$1" in
  show) shift; shift; first=1; for u in "$@"; do [ $first = 1 ] || echo; first=0; echo "Id=$u"; echo "ActiveState=$(state "$u")"; done ;;
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
    assert.deepEqual(calls, ["show --property=Id,ActiveState actions.runner.acme.a.service actions.runner.acme.b.service actions.runner.acme.c.service"]);
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
          "show --property=Id,ActiveState actions.runner.acme.runner-1.service actions.runner.acme.runner-2.service actions.runner.acme.runner-3.service",
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
