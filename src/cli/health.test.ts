// `health` (SPEC 11) through main() in-process, over metrics files written for each state: exit
// code and the exact one-line output, the perfdata ranges, UNKNOWN for every usage error, and
// where the file is looked for. The clock is pinned so every second in the line is exact.
import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runInProcess, type AgentRun } from "../../test/helpers/agent.ts";
import { createNodeRuntime } from "../runtime/node.ts";
import type { MetricsDocument, RunnerReport } from "../shared/types.ts";
import { SYSTEM_METRICS_FILE, evaluateHealth, locateMetricsFile } from "./health.ts";

const NOW = 1_800_000_000; // epoch seconds
const now = () => NOW * 1000;

function runner(name: string, over: Partial<RunnerReport> = {}): RunnerReport {
  return {
    name,
    dir: `/home/runner/${name}`,
    scope: { org: "acme" },
    ephemeral: false,
    registered: true,
    agent_id: 42,
    service_active: true,
    online: true,
    busy: false,
    token_expires_at: NOW + 3120,
    last_refresh_timestamp: NOW - 480,
    total_refreshes: 12,
    failed_refreshes: 0,
    consecutive_failures: 0,
    registrations: 1,
    status: "ok",
    last_error: null,
    ...over,
  };
}

function doc(runners: RunnerReport[], over: Partial<MetricsDocument> = {}): MetricsDocument {
  const expiries = runners.map((r) => r.token_expires_at).filter((x): x is number => x !== null);
  return {
    version: 1,
    last_check_timestamp: NOW - 25,
    last_refresh_timestamp: NOW - 480,
    total_refreshes: 12,
    failed_refreshes: 0,
    consecutive_failures: Math.max(0, ...runners.map((r) => r.consecutive_failures)),
    runner_org: "acme",
    runner_name: runners[0]?.name ?? null,
    token_expires_at: expiries.length ? Math.min(...expiries) : null,
    interval: 60,
    threshold: 300,
    alert_after_failures: 3,
    host: "ci-01",
    runners,
    ...over,
  };
}

const two = () => [runner("runner-01"), runner("runner-02")];

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "rtr-health-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes the document (or raw text) and runs `health --metrics-file` on it. */
async function health(content: MetricsDocument | string, args: string[] = [], env: Record<string, string> = {}): Promise<AgentRun> {
  return withDir(async (dir) => {
    const path = join(dir, "metrics.json");
    await writeFile(path, typeof content === "string" ? content : JSON.stringify(content));
    return runInProcess(["health", "--metrics-file", path, ...args], env, { now });
  });
}

/** Exactly one line on stdout, nothing on stderr, and the Nagios code. */
function assertLine(run: AgentRun, code: number, line: string): void {
  assert.equal(run.stderr, "", "nothing on stderr");
  assert.equal(run.stdout, `${line}\n`);
  assert.equal(run.code, code, run.stdout);
}

test("health - OK: runner count, time left, perfdata with Nagios ranges", async () => {
  assertLine(
    await health(doc(two())),
    0,
    "RUNNER TOKEN OK - 2 runners, token valid 52m | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
});

test("health - a 30-minute cron (interval 1800) is healthy 25 minutes after its check", async () => {
  const checkedAt = NOW - 25 * 60;
  const cron = doc([runner("runner-01", { token_expires_at: checkedAt + 3600 })], { last_check_timestamp: checkedAt, interval: 1800, threshold: 1860 });
  assertLine(
    await health(cron),
    0,
    "RUNNER TOKEN OK - 1 runner, token valid 35m | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=2100s;930:;1:;0 'seconds_since_check'=1500s;3600;5460;0",
  );
  // The same cron with the default threshold (a token that had just over 300 s left at the check
  // was not refreshed): still OK while it has more than half the threshold left.
  const lazy = doc([runner("runner-01", { token_expires_at: NOW + 200 })], { last_check_timestamp: checkedAt, interval: 1800 });
  assert.equal((await health(lazy)).code, 0);
});

test("health - ephemeral and held runners without a registration are not a problem", async () => {
  const runners = [runner("runner-01"), runner("ephemeral-1", { ephemeral: true, registered: false, status: "unregistered" }), runner("held-1", { registered: false, status: "held" })];
  assertLine(
    await health(doc(runners)),
    0,
    "RUNNER TOKEN OK - 3 runners, token valid 52m | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
});

test("health - WARNING: failures at --warn-failures, below --crit-failures (the error quoted, | kept out of the text)", async () => {
  const failing = runner("runner-01", { consecutive_failures: 1, status: "failing", last_error: "GitHub registration-token: HTTP 502 | bad gateway\nafter 3 attempts" });
  assertLine(
    await health(doc([failing, runner("runner-02")])),
    1,
    "RUNNER TOKEN WARNING - runner-01: 1 consecutive failure (GitHub registration-token: HTTP 502 / bad gateway after 3 attempts) | 'consecutive_failures'=1;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
});

test("health - WARNING: a token with less than half the threshold left (its refresh is overdue)", async () => {
  const low = two().map((r) => ({ ...r, token_expires_at: NOW + 120 }));
  assertLine(
    await health(doc(low)),
    1,
    "RUNNER TOKEN WARNING - token valid 2m, under half the 300s threshold: refresh overdue | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=120s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
});

test("health - WARNING: the last check older than 2 × interval (but within --max-age)", async () => {
  assertLine(
    await health(doc(two(), { last_check_timestamp: NOW - 150 })),
    1,
    "RUNNER TOKEN WARNING - last check 2m30s ago (expected every 1m) | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=150s;120;240;0",
  );
});

test("health - WARNING: no token at all (no seconds_to_expiry perfdata then)", async () => {
  const none = two().map((r) => ({ ...r, token_expires_at: null }));
  assertLine(await health(doc(none)), 1, "RUNNER TOKEN WARNING - no registration token held | 'consecutive_failures'=0;0;2;0 'seconds_since_check'=25s;120;240;0");
});

test("health - CRITICAL: failures at --crit-failures (default alert_after_failures)", async () => {
  const failing = runner("runner-02", { consecutive_failures: 3, status: "failing", last_error: "config.sh exited 1: Http response code: NotFound" });
  assertLine(
    await health(doc([runner("runner-01"), failing])),
    2,
    "RUNNER TOKEN CRITICAL - runner-02: 3 consecutive failures (config.sh exited 1: Http response code: NotFound) | 'consecutive_failures'=3;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
  // alert_after_failures from the file sets the default critical threshold.
  const run = await health(doc([runner("runner-01"), failing], { alert_after_failures: 5 }));
  assert.equal(run.code, 1, run.stdout);
  assert.match(run.stdout, /'consecutive_failures'=3;0;4;0 /);
});

test("health - CRITICAL: a non-ephemeral runner unregistered", async () => {
  const gone = runner("runner-01", { registered: false, agent_id: null, status: "unregistered" });
  assertLine(
    await health(doc([gone, runner("runner-02")])),
    2,
    "RUNNER TOKEN CRITICAL - runner-01 unregistered | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
});

test("health - CRITICAL: a token expired (seconds_to_expiry floors at 0)", async () => {
  const expired = two().map((r) => ({ ...r, token_expires_at: NOW - 180 }));
  assertLine(
    await health(doc(expired)),
    2,
    "RUNNER TOKEN CRITICAL - token expired 3m ago | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=0s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
});

test("health - CRITICAL: the file older than --max-age (3 × interval + 60 by default)", async () => {
  assertLine(
    await health(doc(two(), { last_check_timestamp: NOW - 300 })),
    2,
    "RUNNER TOKEN CRITICAL - last check 5m ago (max age 4m) | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=300s;120;240;0",
  );
});

test("health - several problems: the worst ones are named, warnings under a critical are left out", async () => {
  const runners = [
    runner("runner-01", { registered: false, agent_id: null, status: "unregistered", token_expires_at: NOW - 180 }),
    runner("runner-02", { consecutive_failures: 1, status: "failing", last_error: "boom", token_expires_at: NOW - 180 }),
  ];
  assertLine(
    await health(doc(runners)),
    2,
    "RUNNER TOKEN CRITICAL - runner-01 unregistered; token expired 3m ago | 'consecutive_failures'=1;0;2;0 'seconds_to_expiry'=0s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
});

test("health - with several scopes the soonest token expiry counts", async () => {
  const runners = [runner("runner-01"), runner("runner-02", { scope: { repo: "acme/app" }, token_expires_at: NOW + 600 })];
  assertLine(
    await health(doc(runners)),
    0,
    "RUNNER TOKEN OK - 2 runners, token for repo:acme/app valid 10m | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=600s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
  const expired = [runner("runner-01"), runner("runner-02", { scope: { repo: "acme/app" }, token_expires_at: NOW - 60 })];
  const run = await health(doc(expired));
  assert.equal(run.code, 2);
  assert.match(run.stdout, /^RUNNER TOKEN CRITICAL - token for repo:acme\/app expired 1m ago \| /);
});

test("health - --warn-failures, --crit-failures and --max-age override the file's defaults", async () => {
  const failing = [runner("runner-01", { consecutive_failures: 1, status: "failing", last_error: "x" })];
  assertLine(
    await health(doc(failing), ["--warn-failures", "2", "--crit-failures", "5"]),
    0,
    "RUNNER TOKEN OK - 1 runner, token valid 52m | 'consecutive_failures'=1;1;4;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=25s;120;240;0",
  );
  assertLine(
    await health(doc(two(), { last_check_timestamp: NOW - 100 }), ["--max-age", "90"]),
    2,
    "RUNNER TOKEN CRITICAL - last check 1m40s ago (max age 1m30s) | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=100s;120;90;0",
  );
  // A duration with a unit is accepted, and the perfdata stays in whole seconds.
  assert.match((await health(doc(two()), ["--max-age", "1h"])).stdout, /'seconds_since_check'=25s;120;3600;0\n$/);
});

test("health - a seed-style file (no runners[], no interval) still gets a verdict from the defaults", async () => {
  const seed = JSON.stringify({ last_check_timestamp: NOW - 30, last_refresh_timestamp: NOW - 600, total_refreshes: 3, failed_refreshes: 0, consecutive_failures: 0, token_expires_at: NOW + 3000 });
  assertLine(await health(seed), 0, "RUNNER TOKEN OK - token valid 50m | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=3000s;150:;1:;0 'seconds_since_check'=30s;120;240;0");
});

test("health - UNKNOWN (3): missing, unreadable-as-JSON and foreign files", async () => {
  await withDir(async (dir) => {
    const missing = join(dir, "nope", "metrics.json");
    assertLine(
      await runInProcess(["health", "--metrics-file", missing], {}, { now }),
      3,
      `RUNNER TOKEN UNKNOWN - no metrics file at ${missing} (from --metrics-file): has the agent run yet? pass --metrics-file PATH (or set METRICS_FILE)`,
    );
  });
  await withDir(async (dir) => {
    // A path that exists but cannot be read as a file (root reads every mode, so a dir stands in).
    const run = await runInProcess(["health", "--metrics-file", dir], {}, { now });
    assert.equal(run.code, 3);
    assert.match(run.stdout, new RegExp(`^RUNNER TOKEN UNKNOWN - cannot read ${dir} \\(from --metrics-file\\): [^\n]+: the file must be readable by this user \\(mode 0644\\)\n$`));
  });
  const invalid = await health("{ torn");
  assert.equal(invalid.code, 3);
  assert.match(invalid.stdout, /^RUNNER TOKEN UNKNOWN - \S+metrics\.json is not valid JSON: the agent rewrites it on its next pass\n$/);
  const foreign = await health(JSON.stringify({ hello: "world" }));
  assert.equal(foreign.code, 3);
  assert.match(foreign.stdout, /^RUNNER TOKEN UNKNOWN - \S+ has no last_check_timestamp: not a runner-token-refresh metrics file\?\n$/);
  const array = await health("[1,2]");
  assert.equal(array.code, 3);
  assert.match(array.stdout, /^RUNNER TOKEN UNKNOWN - \S+ is not a runner-token-refresh metrics file \(not a JSON object\)\n$/);
});

test("health - UNKNOWN (3), not 64, for every usage error", async () => {
  const cases: [string[], RegExp][] = [
    [["health", "--bogus"], /usage: Unknown option '--bogus'/],
    [["health", "--org", "acme"], /usage: Unknown option '--org'/],
    [["health", "--max-age", "soon"], /usage: --max-age "soon": expected seconds/],
    [["health", "--warn-failures", "0"], /usage: --warn-failures "0": expected a whole number of at least 1/],
    [["health", "--crit-failures", "2.5"], /usage: --crit-failures "2.5": expected a whole number/],
    [["health", "--metrics-file"], /usage: Option '--metrics-file <value>' argument missing/],
    [["health", "extra"], /usage: unexpected argument "extra"/],
    [["--max-age", "60", "health", "--json"], /usage: Unknown option '--json'/],
  ];
  for (const [args, message] of cases) {
    const run = await runInProcess(args, {}, { now });
    assert.equal(run.code, 3, `${args.join(" ")}: ${run.stdout}${run.stderr}`);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, /^RUNNER TOKEN UNKNOWN - usage: [^\n]+: see runner-token-refresh health --help\n$/);
    assert.match(run.stdout, message);
  }
  const help = await runInProcess(["health", "--help"], {}, { now });
  assert.equal(help.code, 3);
  assert.match(help.stdout, /^Usage: runner-token-refresh health \[--metrics-file PATH\]/);
});

test("health - needs no scope, credentials or config: a broken config file in the working dir is never read", async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, ".runner-token-refreshrc.json"), "{ not json");
    await writeFile(join(dir, "metrics.json"), JSON.stringify(doc(two())));
    const run = await runInProcess(["health", "--metrics-file", "metrics.json"], {}, { now, cwd: dir });
    assertLine(run, 0, "RUNNER TOKEN OK - 2 runners, token valid 52m | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=25s;120;240;0");
  });
});

test("health - the file is --metrics-file, else METRICS_FILE, else $STATE_DIR/metrics.json, else the XDG state path", async () => {
  await withDir(async (dir) => {
    // Each place holds a file with a different runner count, so the line says which one was read.
    const place = async (sub: string, runners: number) => {
      await mkdir(join(dir, sub), { recursive: true });
      const path = join(dir, sub, "metrics.json");
      await writeFile(path, JSON.stringify(doc(Array.from({ length: runners }, (_, i) => runner(`r${i}`)))));
      return path;
    };
    const flag = await place("flag", 1);
    const env = await place("env", 2);
    await place("state", 3);
    await place("xdg/runner-token-refresh", 4);
    const base = { XDG_STATE_HOME: join(dir, "xdg"), HOME: join(dir, "home") };
    const count = async (args: string[], extra: Record<string, string>) => {
      const run = await runInProcess(["health", ...args], { ...base, ...extra }, { now });
      assert.equal(run.code, 0, run.stdout);
      return /OK - (\d+) runner/.exec(run.stdout)?.[1];
    };
    const all = { METRICS_FILE: env, STATE_DIR: join(dir, "state") };
    assert.equal(await count(["--metrics-file", flag], all), "1", "--metrics-file first");
    assert.equal(await count([], all), "2", "then METRICS_FILE");
    assert.equal(await count([], { STATE_DIR: join(dir, "state") }), "3", "then $STATE_DIR/metrics.json");
    assert.equal(await count(["--state-dir", join(dir, "state")], {}), "3", "--state-dir as STATE_DIR's flag");
    // The system file is checked next only when it exists (it does not on a test machine, see below).
    const systemFileExists = await stat(SYSTEM_METRICS_FILE).then(() => true, () => false);
    if (!systemFileExists) {
      assert.equal(await count([], {}), "4", "then $XDG_STATE_HOME/runner-token-refresh/metrics.json");
    }
  });
});

test("health - the system state dir's file is used when it exists, before the XDG one", async () => {
  await withDir(async (dir) => {
    const systemFile = join(dir, "var-lib", "metrics.json");
    const base = createNodeRuntime();
    const runtime = { ...base, env: { HOME: join(dir, "home"), XDG_STATE_HOME: join(dir, "xdg") } };
    assert.deepEqual(await locateMetricsFile(runtime, {}, systemFile), {
      path: join(dir, "xdg", "runner-token-refresh", "metrics.json"),
      from: "the user default",
      alsoTried: systemFile,
    });
    await mkdir(join(dir, "var-lib"));
    await writeFile(systemFile, "{}");
    assert.deepEqual(await locateMetricsFile(runtime, {}, systemFile), { path: systemFile, from: "the system default" });
    // Without XDG_STATE_HOME: ~/.local/state.
    const noXdg = { ...runtime, env: {}, homedir: () => join(dir, "home") };
    await rm(systemFile);
    assert.equal((await locateMetricsFile(noXdg, {}, systemFile)).path, join(dir, "home", ".local", "state", "runner-token-refresh", "metrics.json"));
    await writeFile(systemFile, "{}");
    // STATE_DIR still beats it; relative paths resolve against the working dir.
    const withState = { ...runtime, env: { ...runtime.env, STATE_DIR: "state" }, cwd: dir };
    assert.equal((await locateMetricsFile(withState, {}, systemFile)).path, join(dir, "state", "metrics.json"));
  });
});

test("health - evaluateHealth prints integers only, never exponent notation", () => {
  const big = doc([runner("r", { token_expires_at: NOW + 1e9 + 0.5 })], { interval: 1e7 + 0.25, threshold: 1e8 + 0.5, last_check_timestamp: NOW - 0.5 });
  const { line, code } = evaluateHealth(big, NOW + 0.9);
  assert.equal(code, 0);
  const perf = line.split(" | ")[1];
  assert.doesNotMatch(perf, /e[+-]?\d|\.\d/i, perf);
  assert.equal(perf, "'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=1000000000s;50000001:;1:;0 'seconds_since_check'=0s;20000001;30000061;0");
});
