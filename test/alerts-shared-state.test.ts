// One host's alert state (alerts.json in the state dir) is shared by a cron `check` and a daemon:
// two alert hosts over the same file, each with the real webhook plugin and a real receiver, take
// turns as the two processes would. Whatever the interleaving, the receiver gets exactly one
// firing and one resolve (SPEC 10), and a resolve owed by a process that is gone is sent once.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createLogger } from "../src/shared/logger.ts";
import { loadConfig } from "../src/config/load.ts";
import { loadPlugins } from "../src/alerts/load.ts";
import { AlertHost } from "../src/alerts/host.ts";
import { FileAlertStore } from "../src/alerts/stores.ts";
import type { AlertCondition } from "../src/alerts/engine.ts";
import { BUILTIN_PLUGINS } from "../src/builtin-plugins.ts";
import { startWebhookReceiver, type HttpReceiver } from "./helpers/receivers.ts";

const runtime = createNodeRuntime();
const log = createLogger({ level: "silent", write: () => {} });
const KEY = "refresh_failures/ci-01/org:acme";

const failing: AlertCondition = {
  key: KEY,
  rule: "refresh_failures",
  host: "ci-01",
  runner: null,
  scope: { org: "acme" },
  severity: "error",
  summary: "registration token refresh for org:acme failed 3 times in a row",
  details: { consecutive_failures: 3 },
  state: "firing",
};

interface Fixture {
  hook: HttpReceiver;
  stateDir: string;
  /** A new alert host over the shared state dir: one process (a `check` or the daemon). */
  process(): Promise<AlertHost>;
  /** What the receiver got, as "firing"/"resolved" in order. */
  got(): string[];
  close(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const hook = await startWebhookReceiver();
  const dir = await mkdtemp(join(tmpdir(), "rtr-alert-state-"));
  const configPath = join(dir, "config.yaml");
  await writeFile(configPath, `alerts:\n  repeatInterval: 1h\n  plugins:\n    - [webhook, { url: "${hook.url}" }]\n`);
  const stateDir = join(dir, "state");
  const config = await loadConfig(runtime, { config: configPath, stateDir }, { needRunners: false, needCredentials: false });
  const plugins = await loadPlugins(runtime, config, BUILTIN_PLUGINS);
  const hosts: AlertHost[] = [];
  return {
    hook,
    stateDir,
    async process() {
      const host = await AlertHost.create(plugins, new FileAlertStore(runtime, stateDir), config, log, { policy: { backoffSeconds: 0.05, maxBackoffSeconds: 0.1 } });
      hosts.push(host);
      return host;
    },
    got: () => hook.received.map((r) => `${r.body.status}:${r.body.key}`),
    async close() {
      for (const h of hosts) await h.close();
      await hook.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function alertsFile(stateDir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(stateDir, "alerts.json"), "utf8"));
}

test("alert state - a check and a daemon firing and resolving in turns deliver one firing and one resolve", async () => {
  const f = await fixture();
  try {
    const daemon = await f.process();
    const check = await f.process();
    await daemon.evaluate([failing]);
    await check.evaluate([failing]);
    await Promise.all([daemon.idle(), check.idle()]);
    await check.evaluate([failing]);
    await daemon.evaluate([failing]);
    await Promise.all([daemon.idle(), check.idle()]);
    assert.deepEqual(f.got(), [`firing:${KEY}`], "the second process saw the alert already firing");
    await daemon.evaluate([]);
    await check.evaluate([]);
    await Promise.all([daemon.idle(), check.idle()]);
    await check.evaluate([]);
    await daemon.evaluate([]);
    await Promise.all([daemon.idle(), check.idle()]);
    assert.deepEqual(f.got(), [`firing:${KEY}`, `resolved:${KEY}`]);
    assert.deepEqual(await alertsFile(f.stateDir), {}, "back to ok in the shared file");
  } finally {
    await f.close();
  }
});

test("alert state - a resolve one process sees while the other is still retrying the firing is sent once, after the firing", async () => {
  const f = await fixture();
  try {
    const daemon = await f.process();
    f.hook.failNext({ status: 503 }, { status: 503 });
    await daemon.evaluate([failing]);
    // The daemon's firing is being retried; a cron check starts and finds the trouble over. The
    // daemon evaluates no more (it is being stopped): the resolve must still go out, once.
    const check = await f.process();
    await check.evaluate([]);
    await Promise.all([daemon.idle(), check.idle()]);
    await check.evaluate([]);
    await Promise.all([daemon.idle(), check.idle()]);
    assert.deepEqual(f.got(), [`firing:${KEY}`, `resolved:${KEY}`]);
    assert.deepEqual(await alertsFile(f.stateDir), {});
  } finally {
    await f.close();
  }
});

test("alert state - a resolve still being retried by the daemon is not sent again by a check that starts meanwhile", async () => {
  const f = await fixture();
  try {
    const daemon = await f.process();
    await daemon.evaluate([failing]);
    await daemon.idle();
    f.hook.failNext({ status: 503 }, { status: 503 });
    await daemon.evaluate([]);
    // A cron check starts now: it finds the resolve owed in the file, but the daemon has it.
    const check = await f.process();
    await check.evaluate([]);
    await check.evaluate([]);
    await Promise.all([daemon.idle(), check.idle()]);
    await check.evaluate([]);
    await Promise.all([daemon.idle(), check.idle()]);
    assert.deepEqual(f.got(), [`firing:${KEY}`, `resolved:${KEY}`]);
    assert.deepEqual(await alertsFile(f.stateDir), {});
  } finally {
    await f.close();
  }
});

test("alert state - a resolve owed by a process that died is sent once by the next one", async () => {
  const f = await fixture();
  try {
    const daemon = await f.process();
    await daemon.evaluate([failing]);
    await daemon.idle();
    // The daemon decided the resolve, then was killed before it went out: the file says so.
    const records = (await alertsFile(f.stateDir)) as Record<string, Record<string, unknown>>;
    Object.assign(records[KEY], { state: "resolved", endsAt: new Date().toISOString(), resolvePending: ["webhook"], claim: "a-process-that-is-gone" });
    await daemon.close();
    await writeFile(join(f.stateDir, "alerts.json"), JSON.stringify(records));
    const check = await f.process();
    const other = await f.process();
    await check.evaluate([]);
    await other.evaluate([]);
    await Promise.all([check.idle(), other.idle()]);
    assert.deepEqual(f.got(), [`firing:${KEY}`, `resolved:${KEY}`]);
    assert.deepEqual(await alertsFile(f.stateDir), {});
  } finally {
    await f.close();
  }
});
