// Runner versions: read from the runner dir without executing it, aged against actions/runner's
// latest release (one conditional call a day, cached in the state dir), warned at 21 days and
// alerted at 28; and the "deprecated and cannot receive messages" line judged real or a broker 403.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { eventsOf, makeWorld, runInProcess, waitFor, type World } from "./helpers/agent.ts";
import { startWebhookReceiver } from "./helpers/receivers.ts";
import { findDeprecation, judgeDeprecation } from "../src/hygiene/deprecation.ts";
import { versionFromDiag } from "../src/hygiene/runner-version.ts";
import { versionAgeDays } from "../src/hygiene/releases.ts";

const DAY_MS = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS).toISOString().replace(/\.\d{3}Z$/, "Z");

/** What the listener writes at start and on a 403 from the broker host (actions/runner#3381). */
const BROKER_403_LOG = (version: string) => [
  `[RUNNER 2026-12-01 10:00:00Z INFO Listener] Version: ${version}`,
  `[RUNNER 2026-12-01 10:00:00Z INFO Listener] Commit: 0123456789abcdef`,
  `[RUNNER 2026-12-01 10:43:26Z ERR  GitHubActionsService] GET request to https://broker.actions.githubusercontent.com/message?sessionId=8baf0469&status=Online&runnerVersion=${version}&os=Linux&architecture=X64&disableUpdate=false failed. HTTP Status: Forbidden`,
  `[RUNNER 2026-12-01 10:43:26Z ERR  Terminal] WRITE ERROR: An error occurred: Error: Forbidden Runner version v${version} is deprecated and cannot receive messages.`,
  "",
].join("\n");
const GENUINE_LOG = (version: string) => [
  `[RUNNER 2026-12-01 10:00:00Z INFO Listener] Version: ${version}`,
  `[RUNNER 2026-12-01 10:00:05Z INFO Terminal] WRITE LINE: Current runner version: '${version}'`,
  `[RUNNER 2026-12-01 10:00:06Z ERR  Terminal] WRITE ERROR: An error occurred: Runner version v${version} is deprecated and cannot receive messages.`,
  `[RUNNER 2026-12-01 10:00:06Z ERR  Listener] GitHub.DistributedTask.WebApi.AccessDeniedException: Runner version v${version} is deprecated and cannot receive messages.`,
  "",
].join("\n");

async function world(extraConfig = ""): Promise<{ w: World; args: string[] }> {
  const w = await makeWorld({ runner: { serviceFile: true } });
  const path = await w.config(`
github: { statusInterval: 0 }
refresh: { retryBackoff: 0.01, onlineTimeout: 5 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: svc.sh }
${extraConfig}`);
  return { w, args: ["check", "--config", path] };
}

/** A runner that self-updated: `bin` links to `bin.<version>` (actions/runner's update.sh). */
async function selfUpdatedTo(w: World, version: string): Promise<void> {
  await mkdir(join(w.runner.dir, `bin.${version}`));
  await symlink(join(w.runner.dir, `bin.${version}`), join(w.runner.dir, "bin"));
}

async function writeDiag(w: World, text: string): Promise<void> {
  await mkdir(join(w.runner.dir, "_diag"), { recursive: true });
  await writeFile(join(w.runner.dir, "_diag", "Runner_20261201-100000-utc.log"), text);
}

const releaseCalls = (w: World) => w.github.calls.filter((c) => c.path.startsWith("/repos/actions/runner/releases/latest"));

test("hygiene version - a runner 25 days behind warns once; the release is asked once a day, then conditionally", async () => {
  const { w, args } = await world();
  try {
    assert.equal((await runInProcess(args, w.env)).code, 0, "registered");
    await selfUpdatedTo(w, "2.320.0");
    w.github.latestRelease = { tag_name: "v2.321.0", published_at: daysAgo(25) };
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(releaseCalls(w).length, 1);
    const stale = eventsOf(run, "runner.version_stale");
    assert.equal(stale.length, 1);
    assert.deepEqual(stale[0].data, { version: "2.320.0", latest: "2.321.0", age_days: 25, level: "warn", source: "bin-link" });

    const again = await runInProcess(args, w.env);
    assert.equal(again.code, 0);
    assert.equal(releaseCalls(w).length, 1, "cached for a day: no second call");
    assert.equal(eventsOf(again, "runner.version_stale").length, 0, "warned once per level, not per pass");

    // A day later (the cache says so): one conditional call, answered 304.
    const cachePath = join(w.stateDir, "hygiene", "runner-release.json");
    const cache = JSON.parse(await readFile(cachePath, "utf8"));
    assert.ok(cache.etag, "the ETag is cached");
    await writeFile(cachePath, JSON.stringify({ ...cache, nextCheckAt: 0 }));
    assert.equal((await runInProcess(args, w.env)).code, 0);
    assert.deepEqual(releaseCalls(w).map((c) => c.status), [200, 304]);
    assert.deepEqual(w.github.schemaErrors, []);
  } finally {
    await w.close();
  }
});

test("hygiene version - a runner whose version cannot be read costs no release call", async () => {
  const { w, args } = await world();
  try {
    w.github.latestRelease = { tag_name: "v2.321.0", published_at: daysAgo(40) };
    for (let i = 0; i < 2; i++) assert.equal((await runInProcess(args, w.env)).code, 0);
    assert.equal(releaseCalls(w).length, 0);
  } finally {
    await w.close();
  }
});

test("hygiene version - 28 days behind fires the runner_version_stale alert", async () => {
  const hook = await startWebhookReceiver();
  const { w, args } = await world(`alerts:\n  plugins:\n    - [webhook, { url: "${hook.url}" }]\n`);
  try {
    assert.equal((await runInProcess(args, w.env)).code, 0, "registered");
    await writeDiag(w, "[RUNNER 2026-12-01 10:00:00Z INFO Listener] Version: 2.319.1\n");
    w.github.latestRelease = { tag_name: "v2.321.0", published_at: daysAgo(29) };
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal((eventsOf(run, "runner.version_stale")[0].data as { level: string }).level, "alert");
    await waitFor(() => hook.received.some((r) => r.body?.rule === "runner_version_stale"), "the alert");
    const n = hook.received.find((r) => r.body?.rule === "runner_version_stale")!.body;
    assert.equal(n.status, "firing");
    assert.equal(n.runner, "runner-1");
    assert.match(n.summary, /v2\.319\.1 is 29 days behind/);
  } finally {
    await w.close();
    await hook.close();
  }
});

test("hygiene version - 'deprecated' on a broker 403 while the version is current is called a false positive", async () => {
  const { w, args } = await world();
  try {
    assert.equal((await runInProcess(args, w.env)).code, 0);
    await writeDiag(w, BROKER_403_LOG("2.330.0"));
    w.github.latestRelease = { tag_name: "v2.330.0", published_at: daysAgo(3) };
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout);
    assert.deepEqual(eventsOf(run, "runner.diag").map((e) => (e.data as { finding: string }).finding), ["version_deprecated"]);
    const verdicts = eventsOf(run, "runner.version_deprecated");
    assert.equal(verdicts.length, 1);
    assert.equal((verdicts[0].data as { verdict: string }).verdict, "broker_403");
    assert.ok(run.logs.some((l) => typeof l.msg === "string" && /false positive: v2\.330\.0 is the latest release: a 403 from the broker host/.test(l.msg)), run.stdout);
    assert.equal(eventsOf(await runInProcess(args, w.env), "runner.version_deprecated").length, 0, "judged once per log");
  } finally {
    await w.close();
  }
});

test("hygiene version - 'deprecated' for a version 40 days behind is called genuine", async () => {
  const { w, args } = await world();
  try {
    assert.equal((await runInProcess(args, w.env)).code, 0);
    await writeDiag(w, GENUINE_LOG("2.300.0"));
    w.github.latestRelease = { tag_name: "v2.331.0", published_at: daysAgo(40) };
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0);
    const verdict = eventsOf(run, "runner.version_deprecated")[0].data as { verdict: string; broker_forbidden: boolean };
    assert.deepEqual([verdict.verdict, verdict.broker_forbidden], ["genuine", false]);
  } finally {
    await w.close();
  }
});

test("hygiene version - the log formats: version lines, the broker 403 marker, the verdict without release data", () => {
  assert.equal(versionFromDiag(BROKER_403_LOG("2.330.0")), "2.330.0");
  assert.equal(versionFromDiag("Current runner version: '2.331.0'\n"), "2.331.0");
  assert.equal(versionFromDiag("no version here"), null);
  assert.deepEqual(findDeprecation(BROKER_403_LOG("2.330.0")), { version: "2.330.0", brokerForbidden: true });
  assert.deepEqual(findDeprecation(GENUINE_LOG("2.300.0")), { version: "2.300.0", brokerForbidden: false });
  assert.equal(findDeprecation("all quiet"), null);
  assert.equal(judgeDeprecation({ version: "2.300.0", brokerForbidden: true }, null, null).kind, "broker_403");
  assert.equal(judgeDeprecation({ version: "2.300.0", brokerForbidden: false }, null, null).kind, "genuine");
  assert.equal(judgeDeprecation({ version: "2.320.0", brokerForbidden: true }, "2.321.0", 12).kind, "broker_403", "a successor under 30 days old");
  assert.equal(judgeDeprecation({ version: "2.320.0", brokerForbidden: true }, "2.321.0", 31).kind, "genuine", "the 403 is real past 30 days");
});

test("hygiene version - the age counts from the release right after the runner's version, when known", () => {
  const now = Date.parse("2026-12-07T00:00:00Z");
  const cache = {
    etag: null,
    latest: "2.331.0",
    nextCheckAt: 0,
    releases: [
      { version: "2.330.0", publishedAt: "2026-11-01T00:00:00Z" },
      { version: "2.331.0", publishedAt: "2026-12-01T00:00:00Z" },
    ],
  };
  assert.equal(versionAgeDays("2.331.0", cache, now), 0);
  assert.equal(versionAgeDays("2.329.0", cache, now), 36, "from 2.330.0, the release after it");
  assert.equal(versionAgeDays("2.330.0", cache, now), 6);
  assert.equal(versionAgeDays("2.330.0", { ...cache, latest: null }, now), null);
});
