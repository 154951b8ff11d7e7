import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, writeFile, rm, cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, makeWorld, runInProcess } from "./helpers/agent.ts";
import { startWebhookReceiver } from "./helpers/receivers.ts";

const FIXTURES = join(REPO_ROOT, "test/fixtures/plugins");

async function configWith(plugins: string): Promise<{ dir: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), "rtr-plugins-"));
  const path = join(dir, "config.yaml");
  await writeFile(path, `runners:\n  - { dir: ${dir}/runner, scope: { org: acme } }\nalerts:\n  plugins:\n${plugins}\n`);
  return { dir, path };
}

async function alertTest(plugins: string, env: Record<string, string> = {}) {
  const { dir, path } = await configWith(plugins);
  try {
    return await runInProcess(["alert", "test", "--config", path, "--state-dir", join(dir, "state")], env);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function oneLine(run: { stderr: string }): string {
  const lines = run.stderr.trim().split("\n");
  assert.equal(lines.length, 1, run.stderr);
  assert.doesNotMatch(run.stderr, /\n\s+at /);
  return lines[0];
}

test("plugins - a plugin path that does not exist is a config error naming the entry and the path", async () => {
  const run = await alertTest(`    - ["./missing-plugin.mjs", {}]`);
  assert.equal(run.code, 78);
  assert.match(oneLine(run), /config\.yaml: alerts\.plugins\[0\]: plugin "\.\/missing-plugin\.mjs" not found at .*missing-plugin\.mjs/);
});

test("plugins - an npm package that is not installed is a config error saying to install it", async () => {
  const run = await alertTest(`    - ["rtr-plugin-does-not-exist", {}]`);
  assert.equal(run.code, 78);
  assert.match(oneLine(run), /alerts\.plugins\[0\]: plugin "rtr-plugin-does-not-exist" not found \(npm package/);
});

test("plugins - a plugin that throws at load, has no default export, or is not a plugin fails at start", async () => {
  const throws = await alertTest(`    - ["${FIXTURES}/throws-at-load.mjs", {}]`);
  assert.equal(throws.code, 78);
  assert.match(oneLine(throws), /failed to load: boom while loading/);
  const noDefault = await alertTest(`    - ["${FIXTURES}/no-default.mjs", {}]`);
  assert.match(oneLine(noDefault), /has no default export: export default definePlugin/);
  const notPlugin = await alertTest(`    - ["${FIXTURES}/not-a-plugin.mjs", {}]`);
  assert.match(oneLine(notPlugin), /is not a plugin/);
});

test("plugins - a wrong option fails at start with the plugin's name, the config file and the dotted path", async () => {
  const slack = await alertTest(`    - [slack, { webhookUrl: "not a url" }]`);
  assert.equal(slack.code, 78);
  assert.match(oneLine(slack), /config\.yaml: alerts\.plugins\[0\]\[1\]\.webhookUrl: .*\(plugin slack\)/);
  const unknown = await alertTest(`    - [webhook, { url: "http://127.0.0.1:9/x", sekret: abc }]`);
  assert.match(oneLine(unknown), /alerts\.plugins\[0\]\[1\]\.sekret: unknown option/);
  const email = await alertTest(`    - [email, { smtp: { host: localhost, port: "25" }, from: a@example.com, to: [b@example.com] }]`);
  assert.match(oneLine(email), /alerts\.plugins\[0\]\[1\]\.smtp\.port: /);
  const own = await alertTest(`    - ["${FIXTURES}/own-sdk-copy.mjs", {}]`);
  assert.match(oneLine(own), /alerts\.plugins\[0\]\[1\]\.mode: required \(plugin own-sdk-copy\)/);
  const secret = await alertTest(`    - [slack, { webhookUrl: { env: NOT_SET_ANYWHERE } }]`);
  assert.match(oneLine(secret), /alerts\.plugins\[0\]\[1\]\.webhookUrl\.env: environment variable NOT_SET_ANYWHERE is not set/);
});

test("plugins - alert test sends a marked notification through each plugin, prints each outcome, exit 1 if any failed", async () => {
  const hook = await startWebhookReceiver();
  try {
    const ok = await alertTest(`    - [webhook, { url: "${hook.url}" }]\n    - ["${FIXTURES}/own-sdk-copy.mjs", { mode: accept }]`);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^ok +webhook$/m);
    assert.match(ok.stdout, /^ok +own-sdk-copy$/m);
    assert.equal(hook.received.length, 1);
    assert.equal(hook.received[0].body.test, true);
    assert.match(hook.received[0].body.summary, /Test notification/);
    const failed = await alertTest(`    - [webhook, { url: "${hook.url}" }]\n    - ["${FIXTURES}/own-sdk-copy.mjs", { mode: refuse }]`);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /^FAILED own-sdk-copy: receiver said 403 \(not retryable/m);
    assert.match(oneLine(failed), /1 of 2 alert plugins failed the test/);
  } finally {
    await hook.close();
  }
});

test("plugins - the documented example plugin loads from a path relative to the config file and delivers", async () => {
  const hook = await startWebhookReceiver();
  const { dir, path } = await configWith(`    - ["./plugins/example/index.ts", { url: "${hook.url}", prefix: "[ci]" }]`);
  try {
    await cp(join(REPO_ROOT, "plugins/example"), join(dir, "plugins/example"), { recursive: true });
    // The example imports the SDK relative to the repository; a copy next to it keeps that path valid.
    await cp(join(REPO_ROOT, "src/alerts/sdk.ts"), join(dir, "src/alerts/sdk.ts"));
    const run = await runInProcess(["alert", "test", "--config", path, "--state-dir", join(dir, "state")], {});
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(hook.received.length, 1);
    assert.match(JSON.stringify(hook.received[0].body), /\[ci\]/);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await hook.close();
  }
});

test("plugins - the agent never pages in --dry-run and a misconfigured plugin never blocks the refresh loop", async () => {
  const w = await makeWorld();
  const hook = await startWebhookReceiver();
  try {
    hook.failNext({ status: 404, body: "no such hook" });
    const path = await w.config(`
refresh: { retryBackoff: 0.01, maxRetries: 1 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1 }
alerts:
  afterConsecutiveFailures: 1
  plugins:
    - [webhook, { url: "${hook.url}" }]
`);
    const { RUNNER_NAME: _n, RUNNER_DIR: _d, RUNNER_ORG: _o, ...env } = w.env;
    w.github.inject("token", { status: 500 });
    const dry = await runInProcess(["check", "--config", path, "--dry-run"], env);
    assert.equal(dry.code, 0);
    assert.equal(hook.received.length, 0);
    w.github.inject("token", { status: 500 });
    const run = await runInProcess(["check", "--config", path], env);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /not retried: fix the plugin's options/);
    assert.equal(hook.received.length, 0, "the 404 was not retried");
  } finally {
    await hook.close();
    await w.close();
  }
});
