// Ephemeral JIT pools (SPEC 14) against the real parts: the daemon as a process, a fake GitHub
// with generate-jitconfig checked against the OpenAPI excerpt, a template whose run.sh behaves
// like the real listener started with a JIT config, and the real test user jobs run as.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeGitHub, type FakeGitHub } from "./helpers/fake-github.ts";
import { jit } from "./helpers/fake-github-jit.ts";
import { makePoolTemplate, type PoolTemplate } from "./helpers/pool-template.ts";
import { parseLogs, runInProcess, spawnAgent, waitFor, type SpawnedAgent } from "./helpers/agent.ts";
import { ensureUser, JOB_USER } from "./helpers/users.ts";
import { assertNoSecrets, collectFiles } from "./helpers/no-secrets.ts";

interface PoolWorld {
  github: FakeGitHub;
  template: PoolTemplate;
  tmp: string;
  stateDir: string;
  poolsDir: string;
  configPath: string;
  env: Record<string, string>;
  start(): SpawnedAgent;
  poolRunners(): { id: number; name: string; status: string; busy: boolean }[];
  events(agent: SpawnedAgent, type: string): Record<string, any>[];
  close(): Promise<void>;
}

async function poolWorld(options: { size?: number; extra?: string } = {}): Promise<PoolWorld> {
  ensureUser(JOB_USER);
  const github = await startFakeGitHub();
  const template = await makePoolTemplate();
  const tmp = await mkdtemp(join(tmpdir(), "rtr-pool-"));
  await chmod(tmp, 0o755);
  const stateDir = join(tmp, "state");
  const configPath = join(tmp, "config.yaml");
  await writeFile(
    configPath,
    `github: { apiUrl: "${github.url}", statusInterval: 5 }
state: { dir: "${stateDir}" }
refresh: { interval: 2 }
pools:
  - { name: build, scope: { org: acme }, size: ${options.size ?? 2}, labels: [linux, build], template: "${template.dir}", runAs: ${JOB_USER}${options.extra ?? ""} }
`,
  );
  const env = { GITHUB_TOKEN: github.pat, LOG_LEVEL: "info" };
  const started: SpawnedAgent[] = [];
  return {
    github,
    template,
    tmp,
    stateDir,
    poolsDir: `${stateDir}-pools`,
    configPath,
    env,
    start() {
      const agent = spawnAgent(["daemon", "--config", configPath, "--listen", "127.0.0.1:0"], env);
      started.push(agent);
      return agent;
    },
    poolRunners: () => [...github.runners.values()].filter((r) => r.name.startsWith("build-")).map((r) => ({ id: r.id, name: r.name, status: r.status, busy: r.busy })),
    events: (agent, type) => parseLogs(agent.output()).filter((l) => l.event === type),
    async close() {
      for (const a of started) if (a.child.exitCode === null && a.child.signalCode === null) a.kill("SIGKILL");
      await github.close();
      await template.cleanup();
      await rm(tmp, { recursive: true, force: true });
      await rm(`${stateDir}-pools`, { recursive: true, force: true });
    },
  };
}

const online = (w: PoolWorld) => w.poolRunners().filter((r) => r.status === "online");

test("pool - keeps size JIT runners online, replaces each after its job, and removes idle ones on SIGTERM", async () => {
  const w = await poolWorld({ size: 2 });
  const before = await w.template.snapshot();
  try {
    const agent = w.start();
    await waitFor(() => online(w).length === 2, "two pool runners online", 30_000);
    const created = jit(w.github).created;
    assert.equal(created.length, 2, "one generate-jitconfig per slot");
    for (const r of w.poolRunners()) assert.match(r.name, /^build-[a-z0-9-]+-[01]-[0-9a-f]{8}$/, "names are <pool>-<host>-<slot>-<8 hex>");

    // What run.sh saw: the pool's user, the JIT config in its environment, nothing in argv.
    const slots = await readdir(join(w.poolsDir, "build"));
    assert.equal(slots.length, 2);
    const seen = JSON.parse((await readFile(join(w.poolsDir, "build", slots[0], ".fake-env"), "utf8")).trim());
    assert.equal(seen.uid, ensureUser(JOB_USER).uid, "run.sh runs as the pool's user");
    assert.deepEqual(seen.argv, [], "nothing in argv");
    assert.ok(seen.names.includes("ACTIONS_RUNNER_INPUT_JITCONFIG"));
    assert.deepEqual(seen.names.filter((n: string) => !["PATH", "HOME", "USER", "LOGNAME", "LANG", "ACTIONS_RUNNER_INPUT_JITCONFIG", "PWD"].includes(n)), [], "a clean environment");
    assert.ok(!seen.names.includes("GITHUB_TOKEN"));

    // A job: the runner takes it, deregisters, exits; a fresh runner replaces it at once.
    const first = created[0];
    jit(w.github).assignJob(first, 1);
    await waitFor(() => jit(w.github).finished.includes(first), "the job to finish", 30_000);
    await waitFor(() => created.length === 3 && online(w).length === 2, "a replacement runner online", 30_000);
    const exited = w.events(agent, "pool.runner_exited");
    assert.ok(exited.some((e) => e.data?.job === true && e.data?.reason === "job"), JSON.stringify(exited));

    agent.kill("SIGTERM");
    const run = await agent.done;
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(w.poolRunners(), [], "idle runners were deleted at GitHub on SIGTERM");
    assert.deepEqual(await readdir(join(w.poolsDir, "build")), [], "slot dirs were removed");
    assert.equal(await w.template.snapshot(), before, "the template was never written");
    assert.ok(w.github.count({ method: "DELETE" }) >= 2);
    const outputs = [{ label: "agent", text: run.stdout + run.stderr }, ...(await collectFiles(w.stateDir))];
    assertNoSecrets([w.github.pat, ...jit(w.github).configs], outputs);
  } finally {
    await w.close();
  }
});

test("pool - a busy runner is never stopped: SIGTERM waits for its job, and it is not replaced", async () => {
  const w = await poolWorld({ size: 2 });
  try {
    const agent = w.start();
    await waitFor(() => online(w).length === 2, "two pool runners online", 30_000);
    const [busyId] = jit(w.github).created;
    jit(w.github).assignJob(busyId, 4);
    await waitFor(() => w.github.runners.get(busyId)?.busy === true, "the job to start", 10_000);
    // SIGTERM while the job runs (4 s), once the agent has seen Runner.Worker in the slot.
    await waitFor(() => /Running job/.test(agent.output()), "the agent to log the runner's job", 10_000);
    agent.kill("SIGTERM");
    const run = await agent.done;
    assert.equal(run.code, 0, run.stderr);
    assert.ok(jit(w.github).finished.includes(busyId), "the busy runner finished its job before the agent exited");
    assert.equal(jit(w.github).created.length, 2, "no replacement after SIGTERM");
    assert.deepEqual(w.poolRunners(), [], "nothing left at GitHub");
  } finally {
    await w.close();
  }
});

test("pool - an unused runner GitHub removed is relaunched and counted as idle_expired, not as a failure", async () => {
  const w = await poolWorld({ size: 1 });
  try {
    const agent = w.start();
    await waitFor(() => online(w).length === 1, "the pool runner online", 30_000);
    const [first] = jit(w.github).created;
    w.github.deleteRunner(first);
    await waitFor(() => jit(w.github).created.length === 2 && online(w).length === 1, "a new runner after the removal", 30_000);
    const exited = w.events(agent, "pool.runner_exited");
    assert.ok(exited.some((e) => e.data?.reason === "idle_expired" && e.data?.job === false), JSON.stringify(exited));
    assert.equal(w.events(agent, "pool.launch_failed").length, 0);
    agent.kill("SIGTERM");
    assert.equal((await agent.done).code, 0);
  } finally {
    await w.close();
  }
});

test("pool - run.sh crashing at once backs off (5 s doubling) and counts launch failures", async () => {
  const w = await poolWorld({ size: 1 });
  try {
    await w.template.setCrash(true);
    const agent = w.start();
    await waitFor(() => w.events(agent, "pool.launch_failed").length >= 2, "two failed launches", 40_000);
    const failures = w.events(agent, "pool.launch_failed").map((e) => e.data);
    assert.equal(failures[0].retry_in_seconds, 5);
    assert.equal(failures[1].retry_in_seconds, 10, "the backoff doubles");
    assert.equal(failures[1].consecutive_failures, 2);
    assert.match(failures[0].error, /exited without a job/);
    assert.deepEqual(w.poolRunners(), [], "crashed runners are deleted at GitHub");
    await w.template.setCrash(false);
    await waitFor(() => online(w).length === 1, "a working runner once run.sh is fixed", 40_000);
    agent.kill("SIGTERM");
    assert.equal((await agent.done).code, 0);
  } finally {
    await w.close();
  }
});

test("pool - GitHub errors on generate-jitconfig are launch failures with backoff, never a retried POST", async () => {
  const w = await poolWorld({ size: 1 });
  try {
    w.github.inject("jit", { status: 500, body: { message: "Server Error" } }, { status: 401, body: { message: "Bad credentials" } });
    const agent = w.start();
    await waitFor(() => online(w).length === 1, "a runner after the errors", 40_000);
    assert.equal(w.github.count({ route: "jit" }), 3, "one POST per launch: the 500, the 401, then the success");
    const failures = w.events(agent, "pool.launch_failed");
    assert.equal(failures.length, 2);
    assert.match(String(failures[1].data.error), /401|credentials/i);
    agent.kill("SIGTERM");
    assert.equal((await agent.done).code, 0);
  } finally {
    await w.close();
  }
});

test("pool - a 409 (name taken) on generate-jitconfig takes another name: no launch failure, nothing deleted", async () => {
  const w = await poolWorld({ size: 1 });
  try {
    w.github.inject("jit", { status: 409, body: { message: "Already exists - A runner with the name is already taken." } });
    const agent = w.start();
    await waitFor(() => online(w).length === 1, "a runner under another name", 30_000);
    assert.equal(w.github.count({ route: "jit" }), 2, "the 409, then one POST with a new name");
    assert.equal(w.events(agent, "pool.launch_failed").length, 0, "a taken name is not a failed launch");
    assert.equal(w.github.count({ method: "DELETE" }), 0, "the runner holding the name is not ours: never deleted");
    assert.ok(parseLogs(agent.output()).some((l) => /already has a runner named .*: trying another name/.test(String(l.msg))), agent.output());
    agent.kill("SIGTERM");
    assert.equal((await agent.done).code, 0);
  } finally {
    await w.close();
  }
});

test("pool - after SIGKILL of the agent, the next start deletes the runners it left at GitHub", async () => {
  const w = await poolWorld({ size: 2 });
  try {
    const first = w.start();
    await waitFor(() => online(w).length === 2, "two runners online", 30_000);
    const leftover = w.poolRunners().map((r) => r.id);
    first.kill("SIGKILL");
    await first.done;
    const second = w.start();
    await waitFor(() => leftover.every((id) => !w.github.runners.has(id)), "the leftovers deleted at GitHub", 30_000);
    await waitFor(() => online(w).length === 2, "two fresh runners", 30_000);
    assert.ok(w.poolRunners().every((r) => !leftover.includes(r.id)));
    second.kill("SIGTERM");
    assert.equal((await second.done).code, 0);
    assert.deepEqual(w.poolRunners(), []);
  } finally {
    await w.close();
  }
});

test("pool - pool drain stops idle runners while the agent runs; pool resume brings them back", async () => {
  const w = await poolWorld({ size: 2 });
  try {
    const agent = w.start();
    await waitFor(() => online(w).length === 2, "two runners online", 30_000);
    const drain = await runInProcess(["pool", "drain", "build", "--config", w.configPath], w.env);
    assert.equal(drain.code, 0, drain.stderr);
    await waitFor(() => w.poolRunners().length === 0, "the pool drained", 30_000).catch((err) => {
      throw new Error(`${err.message}\n${agent.output().slice(-4000)}`);
    });
    const resume = await runInProcess(["pool", "resume", "build", "--config", w.configPath], w.env);
    assert.equal(resume.code, 0, resume.stderr);
    await waitFor(() => online(w).length === 2, "the pool back", 60_000).catch((err) => {
      throw new Error(`${err.message}: ${JSON.stringify(w.poolRunners())}\n${agent.output().slice(-12000)}`);
    });
    const unknown = await runInProcess(["pool", "drain", "nope", "--config", w.configPath], w.env);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /no pool named "nope": expected one of build/);
    agent.kill("SIGTERM");
    assert.equal((await agent.done).code, 0);
  } finally {
    await w.close();
  }
});

test("pool - config errors name the field: template without run.sh, runAs the agent's user, size 0 or over 100, a read-only baseDir", async () => {
  const w = await poolWorld({ size: 1 });
  try {
    const bad = async (pool: string) => {
      await writeFile(w.configPath, `github: { apiUrl: "${w.github.url}" }\nstate: { dir: "${w.stateDir}" }\npools:\n  - ${pool}\n`);
      return runInProcess(["check", "--config", w.configPath], w.env);
    };
    const empty = join(w.tmp, "empty-template");
    await mkdir(empty);
    const base = `name: build, scope: { org: acme }, labels: [x]`;
    const cases: [string, RegExp][] = [
      [`{ ${base}, size: 1, template: "${empty}", runAs: ${JOB_USER} }`, /pools\[0\]\.template: .* has no executable run\.sh/],
      [`{ ${base}, size: 1, template: "${w.template.dir}", runAs: root }`, /pools\[0\]\.runAs: "root" is the agent's own user/],
      [`{ ${base}, size: 0, template: "${w.template.dir}", runAs: ${JOB_USER} }`, /pools\[0\]\.size: expected at least 1 runner/],
      [`{ ${base}, size: 101, template: "${w.template.dir}", runAs: ${JOB_USER} }`, /pools\[0\]\.size: expected at most 100/],
      [`{ ${base}, size: 1, template: "${w.template.dir}", runAs: ${JOB_USER}, baseDir: "${w.stateDir}/pools" }`, /pools\[0\]\.baseDir: .* is inside the state dir/],
    ];
    for (const [pool, message] of cases) {
      const run = await bad(pool);
      assert.equal(run.code, 78, `${pool}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split("\n").length, 1, "one line");
    }
    await writeFile(w.configPath, `github: { apiUrl: "${w.github.url}" }\nstate: { dir: "${w.stateDir}" }\npools:\n  - { ${base}, size: 1, template: "${w.template.dir}", runAs: ${JOB_USER}, group: no-such-group }\n`);
    const group = spawnAgent(["daemon", "--config", w.configPath, "--listen", "127.0.0.1:0"], w.env);
    const run = await group.done;
    assert.equal(run.code, 78, run.stdout);
    assert.match(run.stderr, /pools\[0\]\.group: acme has no runner group "no-such-group"/);

    // A baseDir the sandbox keeps read-only (ProtectSystem=strict without the pools drop-in): a
    // read-only bind mount in a mount namespace of the agent's own, as systemd would set it up.
    const readOnly = join(w.tmp, "read-only");
    await mkdir(readOnly);
    await writeFile(w.configPath, `github: { apiUrl: "${w.github.url}" }\nstate: { dir: "${w.stateDir}" }\npools:\n  - { ${base}, size: 1, template: "${w.template.dir}", runAs: ${JOB_USER}, baseDir: "${readOnly}/pools" }\n`);
    const sandboxed = spawnAgent(["daemon", "--config", w.configPath, "--listen", "127.0.0.1:0"], w.env, {
      wrapper: ["unshare", "-m", "sh", "-c", 'mount -o bind,ro "$0" "$0" && exec "$@"', readOnly],
    });
    const ro = await sandboxed.done;
    assert.equal(ro.code, 78, ro.stdout + ro.stderr);
    assert.match(ro.stderr, /pools\[0\]\.baseDir: cannot create .*read-only\/pools\/build \(EROFS\): make .* writable .*pools\.conf/);
    assert.equal(ro.stderr.trim().split("\n").length, 1, "one line");
    assert.deepEqual(w.poolRunners(), [], "no runner was created for a pool that cannot have slots");
  } finally {
    await w.close();
  }
});

test("pool - the metrics file, /metrics, status and health show pools, and failing launches page once as pool_launch_failures", async () => {
  const { startWebhookReceiver } = await import("./helpers/receivers.ts");
  const hook = await startWebhookReceiver();
  const w = await poolWorld({ size: 2 });
  try {
    await writeFile(
      w.configPath,
      (await readFile(w.configPath, "utf8")) + `alerts: { afterConsecutiveFailures: 2, plugins: [[webhook, { url: "${hook.url}" }]] }\n`,
    );
    const agent = w.start();
    await waitFor(() => online(w).length === 2, "two runners online", 30_000);
    await waitFor(async () => ((await readFile(join(w.stateDir, "metrics.json"), "utf8").catch(() => "{}")).includes('"idle": 2')), "a pass to record the pool", 20_000);
    const doc = JSON.parse(await readFile(join(w.stateDir, "metrics.json"), "utf8"));
    assert.equal(doc.pools[0].name, "build");
    assert.equal(doc.pools[0].size, 2);
    assert.deepEqual(doc.pools[0].runners, { idle: 2, busy: 0, starting: 0 });
    assert.equal(doc.pools[0].slots.length, 2);
    const listening = parseLogs(agent.output()).find((l) => typeof l.url === "string");
    const metrics = await (await fetch(`${listening!.url}/metrics`)).text();
    assert.match(metrics, /rtr_pool_size\{pool="build"\} 2/);
    assert.match(metrics, /rtr_pool_runners\{pool="build",state="idle"\} 2/);
    assert.match(metrics, /rtr_pool_jobs_total\{pool="build"\} 0/);
    const status = await runInProcess(["status", "--config", w.configPath], w.env);
    assert.match(status.stdout, /POOL\s+SCOPE\s+SIZE\s+IDLE\s+BUSY/);
    assert.match(status.stdout, /build\s+org:acme\s+2\s+2\s+0/);
    const health = () => runInProcess(["health", "--metrics-file", join(w.stateDir, "metrics.json")], w.env);
    const full = await health();
    assert.equal(full.code, 0, full.stdout + full.stderr);
    assert.doesNotMatch(full.stdout, /pool build/);

    // Launches start failing: after two, one firing notification for the pool.
    await w.template.setCrash(true);
    for (const id of jit(w.github).created) w.github.deleteRunner(id);
    await waitFor(() => hook.received.some((r) => r.body?.rule === "pool_launch_failures" && r.body?.status === "firing"), "the pool alert", 60_000);
    const firing = hook.received.filter((r) => r.body?.rule === "pool_launch_failures" && r.body?.status === "firing");
    assert.equal(firing.length, 1, "one notification, not one per launch");
    assert.equal(firing[0].body.key, `pool_launch_failures/${firing[0].body.host}/build`);
    // Short of runners for longer than two intervals (2 s here): health says so, as a WARNING.
    await waitFor(async () => (await health()).code === 1, "health to warn of the short pool", 30_000);
    assert.match((await health()).stdout, /^RUNNER TOKEN WARNING - .*pool build: [01] of 2 runners for \d+/);
    await w.template.setCrash(false);
    await waitFor(() => hook.received.some((r) => r.body?.rule === "pool_launch_failures" && r.body?.status === "resolved"), "the resolve once launches work", 60_000);
    agent.kill("SIGTERM");
    assert.equal((await agent.done).code, 0);
  } finally {
    await hook.close();
    await w.close();
  }
});
