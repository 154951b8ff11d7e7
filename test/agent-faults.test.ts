// Faults end to end: a real fake GitHub answering with errors, delays and resets, and a runner dir
// whose files and config.sh misbehave. Each test asserts what an operator would notice: the exit
// code, the log line or metrics `last_error` naming the cause, the metrics counters, how many
// GitHub calls were made, whether config.sh ran, and that a failed re-registration put the old
// registration back. No fixed sleeps: everything waits on the agent or polls with waitFor.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { chmod, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { eventsOf, makeWorld, runInProcess, spawnAgent, waitFor, type AgentRun, type World } from "./helpers/agent.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";

const ORG_URL = "https://github.com/acme";
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const REGISTRATION_FILES = [".runner", ".credentials", ".credentials_rsaparams"];

/** A config file for the world's one runner; env (GITHUB_TOKEN, STATE_DIR, ...) still applies. */
function writeConfig(w: World, options: { github?: string; refresh?: string } = {}): Promise<string> {
  return w.config(
    [
      `github: { ${options.github ?? ""} }`,
      `refresh: { ${options.refresh ?? ""} }`,
      "runners:",
      `  - { dir: ${JSON.stringify(w.runner.dir)}, scope: { org: acme }, name: runner-1 }`,
      "",
    ].join("\n"),
  );
}

const check = (w: World, extraArgs: string[] = [], env: Record<string, string> = {}) => runInProcess(["check", ...extraArgs], { ...w.env, ...env });

function output(run: AgentRun): string {
  return `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}

/** The log lines (msg) at `level` or any level, for matching the message an operator reads. */
function messages(run: AgentRun, level?: string): string[] {
  return run.logs.filter((l) => !level || l.level === level).map((l) => String(l.msg ?? ""));
}

function assertLogged(run: AgentRun, re: RegExp, level?: string): string {
  const found = messages(run, level).find((m) => re.test(m));
  assert.ok(found, `expected a ${level ?? ""} log line matching ${re}\n${output(run)}`);
  return found;
}

/** SPEC 3: a non-zero exit prints exactly one line to stderr, naming the problem. */
function assertStderr(run: AgentRun, re: RegExp): void {
  const lines = run.stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, `one line on stderr\n${output(run)}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], re);
}

async function readRegistration(dir: string): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const name of REGISTRATION_FILES) out[name] = await readFile(join(dir, name), "utf8").catch(() => null);
  return out;
}

function agentIdOf(runnerFile: string | null): number {
  assert.ok(runnerFile, ".runner exists");
  return JSON.parse(runnerFile.replace(/^\uFEFF/, "")).agentId;
}

/** Files left in the state dir's aside area (empty after a registration was confirmed or undone). */
async function asideLeftovers(w: World): Promise<string[]> {
  const root = join(w.stateDir, "aside");
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(dir, e.name));
      else found.push(join(dir, e.name));
    }
  };
  await walk(root);
  return found;
}

/**
 * An old registration on disk that GitHub no longer knows (deleted on GitHub): the agent confirms
 * the deletion with a scope-level call and re-registers. Returns the old files' exact content.
 */
async function deletedRegistration(w: World): Promise<Record<string, string | null>> {
  w.runner.writeRunnerFiles({ agentId: 4242, name: "runner-1", url: ORG_URL });
  assert.ok(!w.github.runners.has(4242));
  return readRegistration(w.runner.dir);
}

/** After a failed re-registration: the old files are back byte for byte and nothing is left aside. */
async function assertRestored(w: World, before: Record<string, string | null>, run: AgentRun): Promise<void> {
  assert.deepEqual(await readRegistration(w.runner.dir), before, `the old registration files were put back\n${output(run)}`);
  assert.deepEqual(await asideLeftovers(w), [], "nothing left in the aside area");
}

async function assertFailedRegistration(w: World, run: AgentRun, step: string, cause: RegExp): Promise<void> {
  assert.equal(run.code, 1, output(run));
  const [failed] = eventsOf(run, "runner.registration_failed");
  assert.ok(failed, `runner.registration_failed emitted\n${output(run)}`);
  const data = failed.data as { step: string; error: string; reason: string };
  assert.equal(data.step, step);
  assert.equal(data.reason, "deleted_on_github", "a re-registration of a registration GitHub no longer has");
  assert.match(data.error, cause);
  assertLogged(run, new RegExp(`registration failed at ${step}: [\\s\\S]*${cause.source}`), "error");
  assertStderr(run, cause);
  assert.equal(eventsOf(run, "runner.registered").length, 0);
  const m = await w.metrics();
  assert.equal(m.runners[0].status, "failing");
  assert.equal(m.runners[0].consecutive_failures, 1);
  assert.equal(m.consecutive_failures, 1);
  assert.match(m.runners[0].last_error, cause);
  assert.equal(m.failed_refreshes, 0, "the token itself was fine");
}

// ---------------------------------------------------------------------------------------------
// GitHub faults
// ---------------------------------------------------------------------------------------------

test("faults - a 500 then a 502 from the token endpoint are retried and the third attempt succeeds", async () => {
  const w = await makeWorld();
  try {
    w.github.inject("token", { status: 500, body: { message: "Server Error" } }, { status: 502, body: "Bad Gateway" });
    const run = await check(w);
    assert.equal(run.code, 0, output(run));
    assert.equal(w.github.count({ route: "token" }), 3);
    const retries = run.logs.filter((l) => /retrying/.test(String(l.msg)));
    assert.deepEqual(retries.map((l) => l.reason), ["HTTP 500", "HTTP 502"]);
    assert.equal(w.runner.invocations("config.sh").length, 1, "the runner was registered with the token");
    const m = await w.metrics();
    assert.equal(m.total_refreshes, 1);
    assert.equal(m.failed_refreshes, 0);
    assert.equal(m.consecutive_failures, 0);
    assert.equal(m.runners[0].status, "ok");
    assert.equal(m.runners[0].last_error, null);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a 401 is not retried: one call, exit 1, and the message says the credentials are expired or wrong", async () => {
  const w = await makeWorld();
  const wrongPat = "ghp_" + "x".repeat(36);
  try {
    const run = await check(w, [], { GITHUB_TOKEN: wrongPat });
    assert.equal(run.code, 1, output(run));
    assert.equal(w.github.count({ route: "token" }), 1, "a rejected credential is asked once");
    assert.equal(w.github.count(), 1, "and nothing else is asked with it");
    assertLogged(run, /rejected the credentials.*401.*expired, revoked or wrong.*GITHUB_TOKEN/, "error");
    assertStderr(run, /rejected the credentials.*expired, revoked or wrong/);
    assert.equal(w.runner.invocations("config.sh").length, 0, "no registration without a token");
    const m = await w.metrics();
    assert.equal(m.failed_refreshes, 1);
    assert.equal(m.total_refreshes, 0);
    assert.equal(m.consecutive_failures, 1);
    assert.equal(m.runners[0].status, "failing");
    assert.match(m.runners[0].last_error, /expired, revoked or wrong/);
    assert.deepEqual(await readdir(w.runner.dir).then((f) => f.filter((n) => REGISTRATION_FILES.includes(n))), []);
    await w.assertNoLeaks([run]);
    assertNoSecrets([wrongPat], await w.outputs([run]));
  } finally {
    await w.close();
  }
});

test("faults - a 403 secondary rate limit with retry-after: 0 is retried", async () => {
  const w = await makeWorld();
  try {
    w.github.inject("token", {
      status: 403,
      headers: { "retry-after": "0" },
      body: { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", documentation_url: "https://docs.github.com/rest" },
    });
    const run = await check(w);
    assert.equal(run.code, 0, output(run));
    assert.equal(w.github.count({ route: "token" }), 2);
    assertLogged(run, /registration-token failed \(HTTP 403\); retrying/, "warn");
    const m = await w.metrics();
    assert.equal(m.total_refreshes, 1);
    assert.equal(m.failed_refreshes, 0);
    assert.equal(m.runners[0].status, "ok");
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a 403 for a missing permission is not retried and names the permission to grant", async () => {
  const w = await makeWorld();
  try {
    w.github.inject("token", {
      status: 403,
      body: { message: "Resource not accessible by personal access token", documentation_url: "https://docs.github.com/rest", status: "403" },
    });
    const run = await check(w);
    assert.equal(run.code, 1, output(run));
    assert.equal(w.github.count({ route: "token" }), 1);
    const line = assertLogged(run, /403/, "error");
    assert.match(line, /Self-hosted runners: write/);
    assert.match(line, /admin:org/);
    assertStderr(run, /403.*Self-hosted runners: write/);
    assert.equal(w.runner.invocations("config.sh").length, 0);
    const m = await w.metrics();
    assert.equal(m.failed_refreshes, 1);
    assert.equal(m.runners[0].status, "failing");
    assert.match(m.runners[0].last_error, /Self-hosted runners: write/);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a spent primary rate limit (x-ratelimit-remaining: 0, reset in an hour) gives up at once", async () => {
  const w = await makeWorld();
  try {
    w.github.rateLimit.remaining = 0;
    const started = Date.now();
    const run = await check(w);
    assert.equal(run.code, 1, output(run));
    assert.ok(Date.now() - started < 5000, "did not wait for the reset");
    assert.equal(w.github.count({ route: "token" }), 1);
    const line = assertLogged(run, /GitHub rate limit on registration-token for org:acme: it asks to wait \d+s, longer than refresh\.maxRetryWait/, "error");
    const asked = Number(/wait (\d+)s/.exec(line)?.[1]);
    assert.ok(asked > 3500 && asked <= 3601, line);
    assert.equal(w.runner.invocations("config.sh").length, 0);
    assert.equal((await w.metrics()).failed_refreshes, 1);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a failed token refresh does not mint again for a registration: a still-valid cached token is used", async () => {
  const w = await makeWorld();
  try {
    const first = await check(w);
    assert.equal(first.code, 0, output(first));
    // The runner loses its files; the cached token (an hour left) is below a 3700 s threshold,
    // so the pass tries to refresh it and GitHub fails every attempt.
    for (const f of REGISTRATION_FILES) await rm(join(w.runner.dir, f));
    const busy = { status: 503, body: { message: "Service Unavailable" } };
    w.github.inject("token", busy, busy, busy);
    const run = await check(w, ["--threshold", "3700"]);
    assert.equal(run.code, 1, "the failed refresh is still a failure");
    assert.equal(w.github.count({ route: "token" }), 1 + 3, "three attempts in the token step, none in the registration");
    assertLogged(run, /GitHub error 503 on registration-token for org:acme after 3 attempts/, "error");
    const [registered] = eventsOf(run, "runner.registered");
    assert.equal((registered?.data as { reason?: string })?.reason, "not_configured", output(run));
    assert.equal(w.runner.invocations("config.sh").length, 2);
    assert.ok(w.github.runners.has(agentIdOf((await readRegistration(w.runner.dir))[".runner"])));
    const m = await w.metrics();
    assert.equal(m.failed_refreshes, 1);
    assert.equal(m.runners[0].registrations, 2);
    assert.equal(m.runners[0].registered, true);
    await w.assertNoLeaks([first, run]);
  } finally {
    await w.close();
  }
});

test("faults - a 429 without retry-after is retried after a wait capped by maxRetryWait", async () => {
  const w = await makeWorld();
  try {
    const config = await writeConfig(w, { refresh: "maxRetryWait: 0.3" });
    w.github.inject("token", { status: 429, body: { message: "Too many requests" } });
    const run = await check(w, ["--config", config]);
    assert.equal(run.code, 0, output(run));
    assert.equal(w.github.count({ route: "token" }), 2);
    const retry = run.logs.find((l) => /retrying/.test(String(l.msg)));
    assert.equal(retry?.reason, "HTTP 429");
    assert.ok(Number(retry?.wait_seconds) <= 0.3, `waited ${retry?.wait_seconds}s`);
    assert.equal((await w.metrics()).runners[0].status, "ok");
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a retry-after longer than refresh.maxRetryWait gives up at once and says so", async () => {
  const w = await makeWorld();
  try {
    const config = await writeConfig(w, { refresh: "maxRetryWait: 5" });
    w.github.inject("token", { status: 429, headers: { "retry-after": "120" }, body: { message: "Too many requests" } });
    const started = Date.now();
    const run = await check(w, ["--config", config]);
    assert.equal(run.code, 1, output(run));
    assert.ok(Date.now() - started < 5000, "did not wait");
    assert.equal(w.github.count({ route: "token" }), 1, "no second request inside the pass");
    assertLogged(run, /wait 120s, longer than refresh\.maxRetryWait/, "error");
    assertStderr(run, /longer than refresh\.maxRetryWait/);
    assert.equal(w.runner.invocations("config.sh").length, 0);
    const m = await w.metrics();
    assert.equal(m.failed_refreshes, 1);
    assert.match(m.runners[0].last_error, /maxRetryWait/);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - an answer slower than github.requestTimeout is abandoned and retried", async () => {
  const w = await makeWorld();
  try {
    const config = await writeConfig(w, { github: "requestTimeout: 1" });
    w.github.inject("token", { status: 201, delayMs: 3000, body: { token: "never-seen", expires_at: new Date(Date.now() + 3600_000).toISOString() } });
    const run = await check(w, ["--config", config]);
    assert.equal(run.code, 0, output(run));
    // Had the agent waited for the slow 201, that one call would have been enough.
    assert.equal(w.github.count({ route: "token" }), 2, "the slow answer was abandoned and the call retried");
    const retry = run.logs.find((l) => /retrying/.test(String(l.msg)));
    assert.match(String(retry?.reason), /no answer within github\.requestTimeout \(1s\)/);
    assert.equal((await w.metrics()).runners[0].status, "ok");
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a 201 without expires_at is a clear error, not a token cached forever", async () => {
  const w = await makeWorld();
  try {
    w.github.inject("token", { status: 201, body: { token: "AABBCCDDEEFFGGHHIIJJKKLLMMNN" } });
    const run = await check(w);
    assert.equal(run.code, 1, output(run));
    assert.equal(w.github.count({ route: "token" }), 1);
    assertLogged(run, /no usable token\/expires_at.*github\.apiUrl/, "error");
    assertStderr(run, /no usable token\/expires_at/);
    assert.equal(await stat(join(w.stateDir, "tokens", "org=3Aacme.json")).catch(() => null), null, "nothing cached");
    assert.equal(w.runner.invocations("config.sh").length, 0);
    const m = await w.metrics();
    assert.equal(m.failed_refreshes, 1);
    assert.equal(m.token_expires_at, null);
    assert.match(m.runners[0].last_error, /expires_at/);
    await w.assertNoLeaks([run]);
    assertNoSecrets(["AABBCCDDEEFFGGHHIIJJKKLLMMNN"], await w.outputs([run]));
  } finally {
    await w.close();
  }
});

test("faults - a connection reset is retried, and when it persists GitHub is reported unreachable", async () => {
  const w = await makeWorld();
  try {
    w.github.inject("token", { status: 0 });
    const recovered = await check(w);
    assert.equal(recovered.code, 0, output(recovered));
    assert.equal(w.github.count({ route: "token" }), 2);
    assertLogged(recovered, /registration-token failed .*; retrying/, "warn");

    // A stale cached token forces a mint on the next pass: three resets in a row.
    await rm(join(w.stateDir, "tokens"), { recursive: true });
    w.github.inject("token", { status: 0 }, { status: 0 }, { status: 0 });
    const run = await check(w);
    assert.equal(run.code, 1, output(run));
    assert.equal(w.github.count({ route: "token" }), 5);
    assertLogged(run, /GitHub unreachable on registration-token for org:acme after 3 attempts.*check the network/, "error");
    assertStderr(run, /GitHub unreachable/);
    const m = await w.metrics();
    assert.equal(m.failed_refreshes, 1);
    assert.equal(m.total_refreshes, 1);
    assert.equal(m.runners[0].consecutive_failures, 1);
    assert.match(m.runners[0].last_error, /unreachable/);
    await w.assertNoLeaks([recovered, run]);
  } finally {
    await w.close();
  }
});

test("faults - --max-retries 1 means exactly one request", async () => {
  const w = await makeWorld();
  try {
    w.github.inject("token", { status: 503, body: { message: "Service Unavailable" } }, { status: 503, body: { message: "Service Unavailable" } });
    const run = await check(w, ["--max-retries", "1"]);
    assert.equal(run.code, 1, output(run));
    assert.equal(w.github.count({ route: "token" }), 1);
    assert.equal(run.logs.filter((l) => /retrying/.test(String(l.msg))).length, 0);
    assertLogged(run, /GitHub error 503 on registration-token/, "error");
    assertStderr(run, /GitHub error 503/);
    assert.equal((await w.metrics()).failed_refreshes, 1);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a local clock 10 minutes off GitHub's Date header is reported as clock.skew", async () => {
  const w = await makeWorld();
  try {
    w.github.clockOffsetSeconds = 600;
    const run = await check(w);
    assert.equal(run.code, 0, output(run));
    const [skew] = eventsOf(run, "clock.skew");
    assert.ok(skew, `clock.skew emitted\n${output(run)}`);
    const seconds = (skew.data as { skew_seconds: number }).skew_seconds;
    assert.ok(Math.abs(seconds + 600) <= 2, `skew ${seconds}s`);
    assertLogged(run, /local clock is -?\d+s off GitHub's: fix NTP/, "warn");
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a 404 on the runner while the scope list also fails does not count as deleted", async () => {
  const w = await makeWorld();
  try {
    const config = await writeConfig(w, { github: "statusInterval: 0" });
    const first = await check(w, ["--config", config]);
    assert.equal(first.code, 0, output(first));
    const before = await readRegistration(w.runner.dir);
    const listsBefore = w.github.count({ route: "list" });
    // What a credential that lost sight of the org sees: 404 everywhere.
    const notFound = { status: 404, body: { message: "Not Found", documentation_url: "https://docs.github.com/rest", status: "404" } };
    w.github.inject("status", notFound);
    w.github.inject("list", notFound);
    const run = await check(w, ["--config", config]);
    assert.equal(w.github.count({ route: "status" }), 1);
    assert.equal(w.github.count({ route: "list" }), listsBefore + 1, "the 404 was checked with a scope-level call");
    assert.equal(w.github.count({ route: "token" }), 1, "the cached token was used");
    assert.equal(w.runner.invocations("config.sh").length, 1, "config.sh did not run again");
    assert.deepEqual(await readRegistration(w.runner.dir), before, "the registration files are untouched");
    assertLogged(run, /404 for runner id \d+, but the scope itself could not be read.*not treating the registration as deleted/, "warn");
    assert.equal(eventsOf(run, "runner.registered").length, 0);
    assert.equal((await w.metrics()).runners[0].registered, true);
    await w.assertNoLeaks([first, run]);
  } finally {
    await w.close();
  }
});

test("faults - a 404 on the runner confirmed by the scope list re-registers it as deleted_on_github", async () => {
  const w = await makeWorld();
  try {
    const config = await writeConfig(w, { github: "statusInterval: 0" });
    const first = await check(w, ["--config", config]);
    assert.equal(first.code, 0, output(first));
    const oldId = agentIdOf((await readRegistration(w.runner.dir))[".runner"]);
    w.github.deleteRunner(oldId);
    const run = await check(w, ["--config", config]);
    assert.equal(run.code, 0, output(run));
    assert.equal(w.runner.invocations("config.sh").length, 2);
    const [registered] = eventsOf(run, "runner.registered");
    assert.equal((registered?.data as { reason?: string })?.reason, "deleted_on_github", output(run));
    const newId = agentIdOf((await readRegistration(w.runner.dir))[".runner"]);
    assert.notEqual(newId, oldId);
    assert.ok(w.github.runners.has(newId));
    const m = await w.metrics();
    assert.equal(m.runners[0].agent_id, newId);
    assert.equal(m.runners[0].registrations, 2);
    assert.equal(m.runners[0].status, "ok");
    assert.deepEqual(await asideLeftovers(w), [], "the dead registration was discarded");
    await w.assertNoLeaks([first, run]);
  } finally {
    await w.close();
  }
});

test("faults - an expires_at with a -08:00 offset is cached as the right instant", async () => {
  const w = await makeWorld();
  try {
    const run = await check(w);
    assert.equal(run.code, 0, output(run));
    const mint = w.github.calls.find((c) => c.method === "POST" && /registration-token$/.test(c.path));
    assert.ok(mint);
    const cached = JSON.parse(await readFile(join(w.stateDir, "tokens", "org=3Aacme.json"), "utf8"));
    const expected = mint.time + w.github.tokenTtlSeconds * 1000;
    const actual = Date.parse(cached.expires_at);
    assert.ok(Math.abs(actual - expected) < 2000, `cached ${cached.expires_at}, expected about ${new Date(expected).toISOString()}`);
    assert.equal((await w.metrics()).token_expires_at, Math.floor(actual / 1000));
    // The fake really answers in -08:00 (so this test would catch an offset dropped on parse).
    const res = await fetch(`${w.github.url}/orgs/acme/actions/runners/registration-token`, { method: "POST", headers: { authorization: `token ${w.github.pat}` } });
    assert.match(((await res.json()) as { expires_at: string }).expires_at, /-08:00$/);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Runner dir faults
// ---------------------------------------------------------------------------------------------

test("faults - a .runner written with a UTF-8 BOM is accepted as configured: no re-registration", async () => {
  const w = await makeWorld();
  try {
    const existing = w.github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
    w.runner.writeRunnerFiles({ agentId: existing.id, name: "runner-1", url: ORG_URL, bom: true });
    assert.equal((await readFile(join(w.runner.dir, ".runner"), "utf8")).charCodeAt(0), 0xfeff);
    const run = await check(w);
    assert.equal(run.code, 0, output(run));
    assert.equal(w.runner.invocations("config.sh").length, 0, "no re-registration");
    assert.equal(eventsOf(run, "runner.registered").length, 0);
    assert.ok(!messages(run).some((m) => /not valid JSON|is empty|re-registering/.test(m)), output(run));
    const m = await w.metrics();
    assert.equal(m.runners[0].registered, true);
    assert.equal(m.runners[0].agent_id, existing.id);
    assert.equal(m.runners[0].online, true);
    assert.equal(m.runners[0].status, "ok");
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

for (const [what, content] of [
  ["empty", ""],
  ["truncated JSON", '\uFEFF{\n  "agentId": 42,\n  "agentName": "runn'],
  ["not JSON", "this is not json at all\n"],
] as const) {
  test(`faults - a .runner that is ${what} is re-registered as local_files_corrupt and the broken file does not come back`, async () => {
    const w = await makeWorld();
    try {
      w.runner.writeRunnerFiles({ agentId: 42, name: "runner-1", url: ORG_URL });
      await writeFile(join(w.runner.dir, ".runner"), content);
      const run = await check(w);
      assert.equal(run.code, 0, output(run));
      assertLogged(run, /\.runner (is empty|is not valid JSON).*re-registering/, "warn");
      const [registered] = eventsOf(run, "runner.registered");
      assert.equal((registered?.data as { reason?: string })?.reason, "local_files_corrupt", output(run));
      assert.equal(w.runner.invocations("config.sh").length, 1);
      const now = await readRegistration(w.runner.dir);
      assert.notEqual(now[".runner"], content);
      const id = agentIdOf(now[".runner"]);
      assert.ok(w.github.runners.has(id));
      assert.deepEqual(await asideLeftovers(w), [], "the broken file was discarded, not kept to come back");
      const m = await w.metrics();
      assert.equal(m.runners[0].agent_id, id);
      assert.equal(m.runners[0].status, "ok");

      const again = await check(w);
      assert.equal(again.code, 0, output(again));
      assert.equal(w.runner.invocations("config.sh").length, 1, "a sound registration stays");
      assert.deepEqual(await readRegistration(w.runner.dir), now);
      await w.assertNoLeaks([run, again]);
    } finally {
      await w.close();
    }
  });
}

test("faults - a runner dir that does not exist fails with a message naming the dir and the fix", async () => {
  const w = await makeWorld();
  try {
    const missing = join(w.tmp, "no-such-runner");
    const run = await check(w, [], { RUNNER_DIR: missing });
    assert.equal(run.code, 1, output(run));
    assertLogged(run, new RegExp(`${escape(missing)} does not exist: unpack the runner there or fix runners\\[\\]\\.dir`), "error");
    assertStderr(run, new RegExp(`${escape(missing)} does not exist`));
    assert.equal(w.github.count({ route: "list" }) + w.runner.invocations("config.sh").length, 0, "no registration was attempted");
    assert.equal(await stat(missing).catch(() => null), null, "the agent did not create the dir");
    const m = await w.metrics();
    assert.equal(m.runners[0].status, "failing");
    assert.equal(m.runners[0].consecutive_failures, 1);
    assert.match(m.runners[0].last_error, new RegExp(`${escape(missing)} does not exist`));
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a runner dir this user cannot write fails with a message naming the dir", async () => {
  const w = await makeWorld();
  try {
    let run: AgentRun;
    if (process.getuid?.() === 0) {
      // Root writes anywhere: run the agent as nobody, with the test's state dir open to it.
      await chmod(w.tmp, 0o777);
      await chmod(w.runner.dir, 0o755);
      // An agent that is not root can only start config.sh as itself, which runAs must accept.
      const config = await w.config(`runners:\n  - { dir: "${w.runner.dir}", scope: { org: acme }, name: runner-1, runAs: nobody }\n`);
      await chmod(config, 0o644);
      const env: Record<string, string> = { ...w.env, HOME: w.tmp };
      delete env.RUNNER_DIR;
      const agent = spawnAgent(["check", "--config", config], env, { wrapper: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] });
      run = await agent.done;
    } else {
      await chmod(w.runner.dir, 0o555);
      run = await check(w).finally(() => chmod(w.runner.dir, 0o755));
    }
    assert.equal(run.code, 1, output(run));
    assertLogged(run, new RegExp(`${escape(w.runner.dir)}.*writable by this user`), "error");
    assertStderr(run, new RegExp(`${escape(w.runner.dir)}.*writable`));
    assert.equal(w.runner.invocations("config.sh").length, 0);
    const m = await w.metrics();
    assert.equal(m.runners[0].status, "failing");
    assert.match(m.runners[0].last_error, new RegExp(`${escape(w.runner.dir)}.*writable`));
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a missing config.sh fails the registration at configure and names the fix", async () => {
  const w = await makeWorld();
  try {
    await rm(join(w.runner.dir, "config.sh"));
    const before = await deletedRegistration(w);
    const run = await check(w);
    await assertFailedRegistration(w, run, "configure", /config\.sh not found in .*download and unpack the runner/);
    await assertRestored(w, before, run);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a config.sh that is not executable fails the registration and says chmod +x", async () => {
  const w = await makeWorld();
  try {
    await chmod(join(w.runner.dir, "config.sh"), 0o644);
    const before = await deletedRegistration(w);
    const run = await check(w);
    await assertFailedRegistration(w, run, "configure", /config\.sh is not executable: chmod \+x it/);
    assert.equal(w.runner.invocations("config.sh").length, 0);
    await assertRestored(w, before, run);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - config.sh exiting 1 with 'A runner exists with the same name' restores the old registration", async () => {
  const w = await makeWorld();
  try {
    const before = await deletedRegistration(w);
    w.runner.setConfigMode("exists");
    const run = await check(w);
    await assertFailedRegistration(w, run, "configure", /config\.sh exited 1: a runner of this name exists and --replace was refused[\s\S]*A runner exists with the same name/);
    assert.equal(w.runner.invocations("config.sh").length, 1);
    await assertRestored(w, before, run);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a config.sh that hangs is killed after refresh.configureTimeout and the old registration is restored", async () => {
  const w = await makeWorld();
  try {
    const config = await writeConfig(w, { refresh: "configureTimeout: 1" });
    const before = await deletedRegistration(w);
    w.runner.setConfigMode("hang");
    const started = Date.now();
    const run = await check(w, ["--config", config]);
    assert.ok(Date.now() - started < 10_000);
    await assertFailedRegistration(w, run, "configure", /did not finish within refresh\.configureTimeout \(1s\) and was killed/);
    await assertRestored(w, before, run);
    // The stand-in logs its pid; killed by the agent, it is gone (not left hanging for a day).
    const invocations = (await readFile(join(w.runner.dir, ".fake", "argv.log"), "utf8")).split("\n").filter(Boolean);
    assert.equal(invocations.length, 1, "config.sh was started once");
    const hung = (JSON.parse(invocations[0]) as { pid: number }).pid;
    await waitFor(() => {
      try {
        process.kill(hung, 0);
        return false;
      } catch {
        return true;
      }
    }, "the hung config.sh to be gone", 5000);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - config.sh exiting 0 without writing .runner fails at verify and restores the old registration", async () => {
  const w = await makeWorld();
  try {
    const before = await deletedRegistration(w);
    w.runner.setConfigMode("no-runner-file");
    const run = await check(w);
    await assertFailedRegistration(w, run, "verify", /config\.sh exited 0 but \.runner was not written/);
    await assertRestored(w, before, run);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("faults - a retry-after given as an HTTP date past refresh.maxRetryWait names the wait in seconds", async () => {
  const w = await makeWorld();
  try {
    const config = await writeConfig(w, { refresh: "maxRetryWait: 5" });
    w.github.inject("token", { status: 503, headers: { "retry-after": new Date(Date.now() + 600_000).toUTCString() }, body: { message: "Service Unavailable" } });
    const run = await check(w, ["--config", config]);
    assert.equal(run.code, 1, output(run));
    assert.equal(w.github.count({ route: "token" }), 1);
    const line = assertLogged(run, /longer than refresh\.maxRetryWait/, "error");
    const asked = Number(/wait (\S+)s, longer/.exec(line)?.[1]);
    assert.ok(asked >= 590 && asked <= 600, line);
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});
