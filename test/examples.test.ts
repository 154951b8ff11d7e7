// Deployment files and docs, checked against the code that reads them: every example config loads
// with the real loader (plugins included), the cron lines parse and use only flags the CLI knows,
// the seed-style wrapper runs the CLI, the systemd units say what the docs
// promise, the Grafana dashboard queries only the metrics of SPEC 11, and docs/configuration.md
// names every key of the schema, every flag and every environment variable.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import process from "node:process";
import { build } from "esbuild";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { loadConfig } from "../src/config/load.ts";
import { FLAG_ENV, flagName, type CliFlags } from "../src/config/flags.ts";
import { fileSchema, secretRef } from "../src/config/schema.ts";
import { parseCommandLine } from "../src/cli/args.ts";
import { loadPlugins } from "../src/alerts/load.ts";
import { BUILTIN_PLUGINS } from "../src/builtin-plugins.ts";
import { scopeKey } from "../src/shared/scope.ts";
import { defaultPoolsDir } from "../src/pool/config.ts";
import { bundleOptions } from "../scripts/bundle-options.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const EXAMPLES = join(ROOT, "config/examples");
const CRON_FILE = join(ROOT, "config/cron/runner-token-refresh.cron");
const WRAPPER = join(ROOT, "scripts/runner-token-refresh.sh");
const ETC = "/etc/runner-token-refresh/";

/** SPEC 11: the metric names (agent, plus the collector's fleet-wide two). */
const SPEC_METRICS = [
  "runner_token_expiry_timestamp_seconds",
  "runner_token_refreshes_total",
  "runner_token_refresh_duration_seconds",
  "runner_token_last_check_timestamp_seconds",
  "runner_token_last_refresh_timestamp_seconds",
  "runner_token_consecutive_failures",
  "runner_registered",
  "runner_online",
  "runner_busy",
  "runner_registrations_total",
  "runner_token_github_requests_total",
  "runner_token_github_ratelimit_remaining",
  "runner_token_alert_notifications_total",
  "runner_token_nats_outbox_pending",
  "runner_token_fleet_runners",
  "runner_token_collector_events_total",
];
const HISTOGRAMS = ["runner_token_refresh_duration_seconds"];

/** SPEC 3: every environment variable the agent reads. */
const SPEC_ENV = [
  ...Object.values(FLAG_ENV),
  "GITHUB_TOKEN",
  "GITHUB_APP_ID",
  "GITHUB_APP_PRIVATE_KEY_FILE",
  "GITHUB_APP_INSTALLATION_ID",
  "GITHUB_API_URL",
  "NATS_URL",
  "NATS_CREDS_FILE",
  "NATS_USER",
  "NATS_PASSWORD",
  "NATS_TOKEN",
];

const read = (path: string) => readFile(path, "utf8");

// ---------------------------------------------------------------------------------------------
// Example configs

/** 32 characters: the length of a PagerDuty routing key, so the plugin does not warn. */
const DUMMY_SECRET = "0123456789abcdef0123456789abcdef";
const DUMMY_PEM = "-----BEGIN CERTIFICATE-----\nMIIBdummyCertificateForTheExamplesTest0000000000\n-----END CERTIFICATE-----\n";

/**
 * Copies one example into a scratch dir with /etc/runner-token-refresh/ pointing into it, and
 * creates every file the example names there (secrets, keys, CAs) with dummy content.
 */
async function stageExample(name: string): Promise<{ dir: string; path: string; etc: string; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "rtr-examples-"));
  const etc = join(dir, "etc/");
  await mkdir(etc, { recursive: true });
  const text = (await read(join(EXAMPLES, name))).split(ETC).join(etc);
  const path = join(dir, name);
  await writeFile(path, text);
  const named = new Set(text.match(new RegExp(`${etc.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[A-Za-z0-9._/-]+`, "g")) ?? []);
  for (const file of named) {
    await mkdir(dirname(file), { recursive: true });
    const content = /\.(pem|crt)$/.test(file) ? DUMMY_PEM : /url/i.test(file) ? `https://hooks.slack.com/services/T0000/B0000/${DUMMY_SECRET}\n` : `${DUMMY_SECRET}\n`;
    await writeFile(file, content, { mode: 0o600 });
  }
  return { dir, path, etc, close: () => rm(dir, { recursive: true, force: true }) };
}

function exampleRuntime(cwd: string, extra: Record<string, string> = {}) {
  return {
    ...createNodeRuntime(),
    cwd,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: cwd,
      STATE_DIR: join(cwd, "state"),
      SLACK_WEBHOOK_URL: "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
      ALERT_WEBHOOK_URL: "https://hooks.example.com/rtr",
      ALERT_WEBHOOK_AUTHORIZATION: `Bearer ${DUMMY_SECRET}`,
      ...extra,
    },
  };
}

/** How each example is used: which command loads it, and with which flags. */
function usageOf(name: string, dir: string): { flags: CliFlags; needRunners: boolean; needCredentials: boolean } {
  if (name.startsWith("collector")) return { flags: {}, needRunners: false, needCredentials: false };
  if (name.startsWith("alerting")) return { flags: {}, needRunners: false, needCredentials: false };
  // cron.yaml holds credentials only; the cron line names the runner with flags.
  if (name.startsWith("cron")) return { flags: { org: "acme", runnerDir: join(dir, "actions-runner") }, needRunners: true, needCredentials: true };
  return { flags: {}, needRunners: true, needCredentials: true };
}

test("examples - every file under config/examples loads and validates with the real loader, alert plugins included", async () => {
  const names = (await readdir(EXAMPLES)).filter((n) => /\.(ya?ml|json)$/.test(n)).sort();
  for (const wanted of ["agent.yaml", "agent-app-auth.yaml", "collector.yaml", "alerting.yaml", "cron.yaml"]) {
    assert.ok(names.includes(wanted), `config/examples/${wanted} exists`);
  }
  assert.deepEqual((await readdir(EXAMPLES)).filter((n) => !names.includes(n)), [], "only YAML/JSON files in config/examples");
  for (const name of names) {
    const staged = await stageExample(name);
    try {
      const usage = usageOf(name, staged.dir);
      const runtime = exampleRuntime(staged.dir);
      const config = await loadConfig(runtime, { ...usage.flags, config: staged.path }, usage);
      const plugins = await loadPlugins(runtime, config, BUILTIN_PLUGINS).catch((err: Error) => assert.fail(`${name}: alert plugins: ${err.message}`));
      assert.equal(plugins.length, config.alerts.plugins.length, `${name}: every plugin loaded`);

      switch (name) {
        case "agent.yaml": {
          assert.equal(config.github.auth?.kind, "token");
          assert.equal(config.runners.length, 4);
          assert.deepEqual(config.runners.map((r) => scopeKey(r.scope)), ["org:acme", "org:acme", "repo:acme/widgets", "org:acme"]);
          assert.deepEqual(config.runners.map((r) => r.service.kind), ["systemd", "auto", "custom", "none"]);
          assert.deepEqual(config.runners[0].labels, ["linux", "x64", "gpu"]);
          assert.equal(config.runners[3].ephemeral, true);
          assert.equal(config.refresh.maxRetryWait, 300);
          assert.equal(config.refresh.configureTimeout, 300);
          assert.equal(config.nats?.password, DUMMY_SECRET);
          assert.equal(config.nats?.tls?.ca, join(staged.etc, "nats-ca.pem"));
          assert.deepEqual(plugins.map((p) => p.name), ["slack"]);
          break;
        }
        case "agent-app-auth.yaml":
          assert.equal(config.github.auth?.kind, "app");
          assert.equal(config.github.auth?.kind === "app" && config.github.auth.installationId, 7654321);
          assert.deepEqual(config.runners.map((r) => scopeKey(r.scope)), ["org:acme", "repo:acme/tools"]);
          break;
        case "collector.yaml":
          assert.equal(config.http.listen, "0.0.0.0:9470");
          assert.equal(config.http.authToken, DUMMY_SECRET);
          assert.equal(config.collector.staleAfter, 300);
          assert.deepEqual(config.nats?.servers, ["tls://nats-1.example.com:4222", "tls://nats-2.example.com:4222"]);
          assert.equal(config.nats?.user, "collector");
          assert.deepEqual(Object.keys(config.nats?.tls ?? {}).sort(), ["ca", "cert", "key"]);
          assert.deepEqual(plugins.map((p) => p.name), ["slack", "pagerduty"]);
          break;
        case "alerting.yaml":
          assert.deepEqual(plugins.map((p) => p.name), ["slack", "email", "pagerduty", "webhook"]);
          assert.equal(config.alerts.groupWait, 60);
          assert.equal(config.alerts.maxPerMinute, 10);
          break;
        case "cron.yaml":
          assert.equal(config.runners.length, 1);
          assert.equal(config.github.auth?.kind, "token");
          break;
        default:
          break;
      }
    } catch (err) {
      throw new Error(`config/examples/${name}: ${(err as Error).message}`, { cause: err });
    } finally {
      await staged.close();
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Cron

interface CronEntry {
  line: string;
  active: boolean;
  fields: string[];
  user: string;
  env: Record<string, string>;
  argv: string[];
}

const CRON_FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/;

/** Active lines and commented-out examples ("# 7,37 * * * * runner ..."); variables and comments skipped. */
function cronEntries(text: string): CronEntry[] {
  const out: CronEntry[] = [];
  for (const raw of text.split("\n")) {
    const active = !raw.startsWith("#");
    const line = raw.replace(/^#\s?/, "").trim();
    const words = line.split(/\s+/);
    if (words.length < 7 || !words.slice(0, 5).every((w) => CRON_FIELD.test(w))) continue;
    const fields = words.slice(0, 5);
    const user = words[5];
    const command = words.slice(6);
    const env: Record<string, string> = {};
    let i = 0;
    for (; i < command.length && /^[A-Z_][A-Z0-9_]*=/.test(command[i]); i++) {
      const [k, ...v] = command[i].split("=");
      env[k] = v.join("=");
    }
    const program = command[i] ?? "";
    const rest = command.slice(i + 1);
    const redirect = rest.findIndex((w) => /^(\d?>|>>|<|\||&&|;)/.test(w));
    out.push({ line, active, fields, user, env, argv: [program, ...(redirect < 0 ? rest : rest.slice(0, redirect))] });
  }
  return out;
}

/** Minutes between runs of an hourly-repeating schedule ("2-59/15 * * * *" → 15). */
function periodMinutes(fields: string[]): number {
  assert.deepEqual(fields.slice(1), ["*", "*", "*", "*"], "the examples repeat every hour");
  const minutes = new Set<number>();
  for (const part of fields[0].split(",")) {
    const [range, step] = part.split("/");
    const [from, to] = range === "*" ? [0, 59] : range.includes("-") ? range.split("-").map(Number) : [Number(range), step ? 59 : Number(range)];
    for (let m = from; m <= to; m += step ? Number(step) : 1) minutes.add(m);
  }
  const list = [...minutes].sort((a, b) => a - b);
  const gaps = list.map((m, i) => (i + 1 < list.length ? list[i + 1] - m : list[0] + 60 - m));
  assert.ok(gaps.every((g) => g === gaps[0]), `evenly spaced minutes in ${fields[0]}`);
  return gaps[0];
}

function flagValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** A tiny seeded PRNG, so the simulation is the same on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Runs the cron schedule for a while with random splays and reports the worst the `health` check
 * would see between runs: the least token time left (as a fraction of the threshold) and the
 * longest gap between two checks. Tokens live 3600 s and are minted when less than `threshold` is left.
 */
function simulate(periodSeconds: number, splay: number, threshold: number): { minLeft: number; maxGap: number; mintsPerHour: number } {
  const random = prng(periodSeconds * 7919 + splay);
  let expiry = -Infinity;
  let minLeft = Infinity;
  let maxGap = 0;
  let mints = 0;
  let last: number | null = null;
  const runs = Math.ceil((48 * 3600) / periodSeconds);
  for (let k = 0; k < runs; k++) {
    // Worst cases first (no delay, full delay), then random delays.
    const delay = k % 4 === 0 ? 0 : k % 4 === 1 ? splay : random() * splay;
    const t = k * periodSeconds + delay;
    if (last !== null) {
      if (k > 3) minLeft = Math.min(minLeft, expiry - t); // just before this run refreshes
      maxGap = Math.max(maxGap, t - last);
    }
    if (expiry - t < threshold) {
      expiry = t + 3600;
      mints++;
    }
    last = t;
  }
  return { minLeft, maxGap, mintsPerHour: mints / 48 };
}

test("examples - the cron file's lines parse: 5 time fields, root (never the runner's user), a check of runner-token-refresh", async () => {
  const entries = cronEntries(await read(CRON_FILE));
  assert.ok(entries.some((e) => e.active), "at least one active line");
  const byPeriod = new Map<number, CronEntry[]>();
  for (const e of entries) {
    assert.equal(e.fields.length, 5, e.line);
    assert.equal(e.user, "root", `runs as root, not as the runner's user: ${e.line}`);
    assert.match(e.argv[0], /(^|\/)runner-token-refresh$/, `runs runner-token-refresh: ${e.line}`);
    assert.ok(e.argv.includes("check") || e.argv.includes("--check-and-refresh"), `a check pass: ${e.line}`);
    const parsed = parseCommandLine(e.argv.slice(1));
    assert.equal(parsed.command, "check", e.line);
    assert.ok(parsed.flags.logFile, `logs to a file: ${e.line}`);
    assert.ok(parsed.flags.splay, `has a splay: ${e.line}`);
    assert.ok(parsed.flags.org || parsed.flags.repo, `names its scope: ${e.line}`);
    const period = periodMinutes(e.fields);
    byPeriod.set(period, [...(byPeriod.get(period) ?? []), e]);
  }
  assert.deepEqual([...byPeriod.keys()].sort((a, b) => a - b), [15, 30, 60], "15, 30 and 60-minute examples");
  for (const [period, list] of byPeriod) {
    assert.ok(new Set(list.filter((e) => flagValue(e.argv, "--org")).map((e) => flagValue(e.argv, "--org"))).size >= 2, `several orgs every ${period} minutes`);
    assert.equal(new Set(list.map((e) => flagValue(e.argv, "--state-dir"))).size, list.length, `one state dir per line every ${period} minutes`);
    assert.equal(new Set(list.map((e) => flagValue(e.argv, "--runner-dir"))).size, list.length, `one runner dir per line every ${period} minutes`);
    for (const e of list) {
      const seconds = period * 60;
      assert.equal(Number(e.env.CHECK_INTERVAL), seconds, `CHECK_INTERVAL is the cron period: ${e.line}`);
      const threshold = Number(flagValue(e.argv, "--threshold"));
      const splay = Number(flagValue(e.argv, "--splay"));
      assert.ok(threshold >= seconds + 60, `threshold >= period + 60 s (else the agent warns): ${e.line}`);
      const sim = simulate(seconds, splay, threshold);
      // health: WARNING when the last check is older than 2 × interval.
      assert.ok(sim.maxGap <= 2 * seconds, `checks at most 2 × the period apart: ${e.line}`);
      if (seconds < 3600) {
        // health: WARNING under half the threshold, CRITICAL when expired. Tokens live an hour,
        // so only cadences under an hour can keep one valid (the file says so for 60 minutes).
        assert.ok(sim.minLeft >= threshold / 2, `token never under half the threshold (${Math.round(sim.minLeft)}s left at worst): ${e.line}`);
      }
      assert.ok(sim.mintsPerHour <= 2.01, `at most two token mints an hour: ${e.line}`);
    }
  }
});

/** Long options named in a file (the wrapper's usage text, the cron lines). */
function longFlags(text: string): string[] {
  return [...new Set(text.match(/(?<![\w-])--[a-z][a-z-]+/g) ?? [])];
}

test("examples - every --flag in the cron file and in scripts/runner-token-refresh.sh exists in the CLI parser", async () => {
  const flags = [...longFlags(await read(CRON_FILE)), ...longFlags(await read(WRAPPER))];
  assert.ok(flags.includes("--check-and-refresh") && flags.includes("--daemon") && flags.includes("--org"), `found the seed's flags: ${flags.join(" ")}`);
  for (const flag of new Set(flags)) {
    // A known string flag parses with a value; a known boolean flag parses alone (an alias such
    // as --daemon may conflict with "check", which is a different complaint than "unknown").
    let message = "";
    for (const argv of [[flag, "x"], [flag], ["check", flag, "x"]]) {
      try {
        parseCommandLine(argv);
        message = "";
        break;
      } catch (err) {
        message = (err as Error).message;
      }
    }
    assert.doesNotMatch(message, /unknown option/i, `${flag} is a flag the CLI knows`);
  }
});

// ---------------------------------------------------------------------------------------------
// The seed-style wrapper

function runWrapper(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [WRAPPER, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 128, stdout, stderr }));
  });
}

/** PATH without any installed runner-token-refresh, so the wrapper's own fallback is what runs. */
function pathWithoutInstalledCli(): string {
  return (process.env.PATH ?? "/usr/bin:/bin")
    .split(delimiter)
    .filter((d) => d && !existsSync(join(d, "runner-token-refresh")))
    .join(delimiter);
}

test("wrapper - scripts/runner-token-refresh.sh runs the CLI: --version, and --check-and-refresh without a scope exits 64 with the one-line error", async () => {
  const dir = await mkdtemp(join(tmpdir(), "rtr-wrapper-"));
  try {
    // An empty config in the working directory is found before any system one: no scope anywhere.
    await writeFile(join(dir, ".runner-token-refreshrc.yaml"), "{}\n");
    assert.ok(statSync(WRAPPER).mode & 0o111, "the wrapper is executable");
    const bundle = join(dir, "lib", "runner-token-refresh.mjs");
    await build({ ...bundleOptions(ROOT, bundle), logLevel: "error" });
    const cases: [string, string][] = [
      ["the installed bundle", bundle],
      ["the repository's bin (no bundle installed)", join(dir, "no-such-bundle.mjs")],
    ];
    for (const [label, bundlePath] of cases) {
      const env = { PATH: pathWithoutInstalledCli(), HOME: dir, RUNNER_TOKEN_REFRESH_BUNDLE: bundlePath };
      const version = await runWrapper(["--version"], env, dir);
      assert.equal(version.code, 0, `${label}: --version exits 0; stderr: ${version.stderr}`);
      assert.match(version.stdout, /^runner-token-refresh \d+\.\d+\.\d+ \(node /, label);
      const noScope = await runWrapper(["--check-and-refresh", "--dry-run", "--threshold", "600"], env, dir);
      assert.equal(noScope.code, 64, `${label}: exit 64; stderr: ${noScope.stderr}`);
      assert.equal(noScope.stderr, "error: no scope: pass --org, --repo or --enterprise (or set RUNNER_ORG)\n", label);
      assert.equal(noScope.stdout, "", label);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// systemd

interface UnitFile {
  /** Last value of each directive (what systemd applies for single-valued ones). */
  last: Map<string, string>;
  /** Every value of each directive, in order. */
  all: Map<string, string[]>;
}

function parseUnit(text: string): UnitFile {
  const last = new Map<string, string>();
  const all = new Map<string, string[]>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";") || line.startsWith("[")) continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    last.set(key, value);
    all.set(key, [...(all.get(key) ?? []), value]);
  }
  return { last, all };
}

/** systemd.exec(5), NoNewPrivileges=: these settings force no_new_privs on for a non-root service. */
const IMPLIES_NO_NEW_PRIVILEGES = [
  "DynamicUser", "LockPersonality", "MemoryDenyWriteExecute", "PrivateDevices", "ProtectClock", "ProtectHostname",
  "ProtectKernelLogs", "ProtectKernelModules", "ProtectKernelTunables", "RestrictAddressFamilies", "RestrictNamespaces",
  "RestrictRealtime", "RestrictSUIDSGID", "SystemCallArchitectures", "SystemCallFilter", "SystemCallLog",
];

/** Whether a directive, after all its assignments, is in force ("" resets a list; "no" turns a boolean off). */
function inForce(unit: UnitFile, key: string): boolean {
  const values = unit.all.get(key);
  if (!values) return false;
  const after = values.slice(values.lastIndexOf("") + 1);
  if (!after.length) return false;
  return !/^(no|false|0|off)$/i.test(after[after.length - 1]);
}

test("deploy - the systemd units carry the promised settings; the agent is root with four capabilities, not the runner's user", async () => {
  const agentText = await read(join(ROOT, "systemd/runner-token-refresh.service"));
  const collectorText = await read(join(ROOT, "systemd/runner-token-refresh-collector.service"));
  const agent = parseUnit(agentText);
  const collector = parseUnit(collectorText);
  for (const [name, unit, user, envFile, execStart, caps] of [
    ["agent", agent, "root", "-/etc/runner-token-refresh/env", "/usr/bin/node /usr/local/lib/runner-token-refresh/runner-token-refresh.mjs daemon", "CAP_SETUID CAP_SETGID CAP_DAC_OVERRIDE CAP_FOWNER"],
    ["collector", collector, "rtr-collector", "-/etc/runner-token-refresh/collector.env", "/usr/bin/node /usr/local/lib/runner-token-refresh/runner-token-refresh.mjs collector", ""],
  ] as const) {
    const want: Record<string, string> = {
      User: user,
      ExecStart: execStart,
      EnvironmentFile: envFile,
      Restart: "on-failure",
      RestartSec: "10",
      RestartPreventExitStatus: "64 78",
      NoNewPrivileges: "yes",
      ProtectSystem: "strict",
      PrivateTmp: "yes",
      KillSignal: "SIGTERM",
      CapabilityBoundingSet: caps,
      AmbientCapabilities: "",
      SystemCallArchitectures: "native",
    };
    for (const [key, value] of Object.entries(want)) assert.equal(unit.last.get(key), value, `${name}: ${key}=${value}`);
    assert.ok(unit.last.get("StateDirectory"), `${name}: StateDirectory=`);
    assert.ok(!inForce(unit, "MemoryDenyWriteExecute"), `${name}: no MemoryDenyWriteExecute (V8's JIT)`);
  }
  // SPEC 15: the state dir is the agent's alone; nothing it creates is readable by others by default.
  assert.equal(agent.last.get("StateDirectoryMode"), "0750");
  assert.equal(agent.last.get("UMask"), "0077");
  assert.equal(agent.last.get("StateDirectory"), "runner-token-refresh");
  assert.equal(agent.last.get("ProtectHome"), "read-only");
  assert.match(agent.last.get("ReadWritePaths") ?? "", /\/home\/runner\/actions-runner/);
  // SIGTERM to the agent only, so an in-flight config.sh finishes (refresh.configureTimeout, 300 s
  // by default, plus the service start that follows).
  assert.equal(agent.last.get("KillMode"), "mixed");
  const stop = Number(/^(\d+)s$/.exec(agent.last.get("TimeoutStopSec") ?? "")?.[1]);
  assert.ok(stop >= 300 + 60, `TimeoutStopSec (${stop}s) covers configureTimeout + a service start`);
  assert.equal(fileSchema.parse({}).refresh.configureTimeout, 300, "the default configureTimeout the unit's TimeoutStopSec was sized for");
  // Root needs neither polkit nor sudo: both are gone, and no doc tells anyone to install them.
  for (const gone of ["systemd/50-runner-token-refresh.rules", "systemd/runner-token-refresh-sudo.conf"]) {
    assert.equal(await stat(join(ROOT, gone)).catch(() => null), null, `${gone} is not shipped`);
  }
  for (const doc of ["docs/install.md", "docs/security.md", "README.md"]) {
    assert.doesNotMatch(await read(join(ROOT, doc)), /50-runner-token-refresh\.rules|runner-token-refresh-sudo\.conf/, `${doc} does not install polkit or sudo files`);
  }
});

test("deploy - the pools drop-in makes the default pools dir writable (0755, made outside the sandbox) and waits for long jobs", async () => {
  const unit = parseUnit(await read(join(ROOT, "systemd/runner-token-refresh.service")));
  const dropIn = parseUnit(await read(join(ROOT, "systemd/runner-token-refresh.service.d/pools.conf")));
  // The default baseDir, derived from the unit's StateDirectory= the way the agent derives it.
  const poolsDir = defaultPoolsDir(`/var/lib/${unit.last.get("StateDirectory")}`);
  const writable = dropIn.all.get("ReadWritePaths") ?? [];
  assert.ok(writable.includes(poolsDir), `ReadWritePaths=${poolsDir} in pools.conf (has ${writable.join(", ")})`);
  // Created before the sandbox is set up ("+"), traversable by the jobs' user.
  assert.ok(
    (dropIn.all.get("ExecStartPre") ?? []).some((l) => l.startsWith("+") && l.includes(`-m 0755`) && l.endsWith(poolsDir)),
    `ExecStartPre=+... install -d -m 0755 ... ${poolsDir}`,
  );
  const stop = Number(/^(\d+)h$/.exec(dropIn.last.get("TimeoutStopSec") ?? "")?.[1]);
  assert.ok(stop >= 1, "TimeoutStopSec in hours: busy pool runners finish their job on stop");
  assert.match(await read(join(ROOT, "docs/pools.md")), /runner-token-refresh\.service\.d\/pools\.conf/, "docs/pools.md installs the drop-in");
});

test("deploy - systemd-analyze security rates the agent unit as the docs say", () => {
  assert.ok(commandExists("systemd-analyze"), "systemd-analyze is needed: apt-get install systemd");
  const r = spawnSync("systemd-analyze", ["security", "--offline=yes", join(ROOT, "systemd/runner-token-refresh.service")], { encoding: "utf8" });
  const score = Number(/Overall exposure level for runner-token-refresh\.service: ([\d.]+)/.exec(r.stdout + r.stderr)?.[1]);
  assert.ok(score > 0, r.stdout + r.stderr);
  assert.ok(score <= 2.6, `exposure ${score}: keep the sandbox at least as tight as documented (2.6)`);
});

test("deploy - token-refresh.env.example documents every environment variable of SPEC 3", async () => {
  const text = await read(join(ROOT, "systemd/token-refresh.env.example"));
  const lines = text.split("\n");
  for (const name of SPEC_ENV) {
    assert.ok(lines.some((l) => new RegExp(`^#?${name}=`).test(l)), `${name}= is in the env example`);
  }
  // Everything uncommented is a plain KEY=VALUE systemd can read.
  for (const l of lines.filter((l) => l.trim() && !l.startsWith("#"))) assert.match(l, /^[A-Z_][A-Z0-9_]*=\S*$/, l);
});

test("deploy - scripts/verify-units.sh passes, and fails on anything but a missing ExecStart program", async () => {
  // npm test and .ci/run install Debian's systemd package when systemd-analyze is missing.
  assert.ok(commandExists("systemd-analyze"), "systemd-analyze is needed: apt-get install systemd");
  const run = (env: Record<string, string> = {}) => spawnSync("bash", [join(ROOT, "scripts/verify-units.sh")], { encoding: "utf8", env: { ...process.env, ...env } });
  const ok = run();
  assert.equal(ok.status, 0, `verify-units.sh: ${ok.stdout}${ok.stderr}`);
  assert.match(ok.stdout, /^ok {3}agent \(/m);
  assert.match(ok.stdout, /^ok {3}collector \(/m);

  const dir = await mkdtemp(join(tmpdir(), "rtr-units-"));
  try {
    await cp(join(ROOT, "systemd"), dir, { recursive: true });
    const agentPath = join(dir, "runner-token-refresh.service");
    const agentText = await read(agentPath);
    // A build machine without node at that path: the one finding that is let through.
    await writeFile(agentPath, agentText.replace("ExecStart=/usr/bin/node ", "ExecStart=/nonexistent/bin/node "));
    const missing = run({ UNITS_DIR: dir });
    assert.equal(missing.status, 0, missing.stdout + missing.stderr);
    assert.match(missing.stdout, /Command \/nonexistent\/bin\/node is not executable/);
    // Anything else fails and is printed.
    await writeFile(agentPath, agentText.replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectSystm=full"));
    const typo = run({ UNITS_DIR: dir });
    assert.equal(typo.status, 1, typo.stdout + typo.stderr);
    assert.match(typo.stdout, /FAIL agent[^\n]*\n[^\n]*Unknown key 'ProtectSystm'/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function commandExists(name: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, name)));
}

// ---------------------------------------------------------------------------------------------
// Docs

/** Every `expr` in a Grafana dashboard (panels, rows' nested panels, templating queries). */
function exprs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) exprs(v, out);
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if ((k === "expr" || (k === "query" && typeof v === "string")) && typeof v === "string") out.push(v);
      else exprs(v, out);
    }
  }
  return out;
}

test("docs - grafana-dashboard.json is a dashboard model that queries only the metrics of SPEC 11", async () => {
  const dashboard = JSON.parse(await read(join(ROOT, "docs/grafana-dashboard.json"))) as {
    __inputs: { name: string; type: string; pluginId: string }[];
    title: string;
    uid: string;
    schemaVersion: number;
    templating: unknown;
    panels: { title: string; type: string; datasource?: { uid: string }; targets?: { expr: string }[]; gridPos: unknown; panels?: unknown[] }[];
  };
  assert.deepEqual(dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]), [["DS_PROMETHEUS", "datasource", "prometheus"]]);
  assert.ok(dashboard.title && dashboard.uid && dashboard.schemaVersion >= 30);
  const queries = exprs([dashboard.panels, dashboard.templating]);
  assert.ok(queries.length >= 8, `queries: ${queries.length}`);
  const used = new Set<string>();
  for (const q of queries) {
    for (const name of q.match(/\brunner_[a-z_]+\b/g) ?? []) {
      const base = HISTOGRAMS.find((h) => name === `${h}_bucket` || name === `${h}_sum` || name === `${h}_count`) ?? name;
      assert.ok(SPEC_METRICS.includes(base), `${name} (in ${q}) is a metric of SPEC 11`);
      used.add(base);
    }
  }
  for (const panel of dashboard.panels) {
    if (panel.type === "row") continue;
    assert.equal(panel.datasource?.uid, "${DS_PROMETHEUS}", `panel "${panel.title}" uses the DS_PROMETHEUS input`);
    assert.ok(panel.gridPos, `panel "${panel.title}" has a position`);
  }
  // The panels the docs promise.
  assert.ok(queries.some((q) => /runner_token_expiry_timestamp_seconds[^\n]*-\s*time\(\)/.test(q)), "tokens by time left");
  for (const m of ["runner_token_fleet_runners", "runner_token_consecutive_failures", "runner_registrations_total", "runner_token_github_requests_total", "runner_token_github_ratelimit_remaining", "runner_token_alert_notifications_total", "runner_token_nats_outbox_pending"]) {
    assert.ok(used.has(m), `a panel shows ${m}`);
  }
});

test("docs - metrics.md describes every metric of SPEC 11", async () => {
  const text = await read(join(ROOT, "docs/metrics.md"));
  for (const m of SPEC_METRICS) assert.ok(text.includes(`\`${m}`), `docs/metrics.md names ${m}`);
});

/** `a.{b,c}` → `a.b`, `a.c` (a brace list of words only: `{ env: NAME }` stays as it is). */
function expandBraces(span: string): string[] {
  const m = /^(.*?)\{([\w.-]*,[\w.,-]*)\}(.*)$/.exec(span);
  if (!m) return [span];
  return m[2].split(",").flatMap((alt) => expandBraces(`${m[1]}${alt.trim()}${m[3]}`));
}

function spans(text: string): string[] {
  return [...text.matchAll(/`([^`\n]+)`/g)].flatMap((m) => expandBraces(m[1].trim()));
}

/** Every key path of the config schema: objects, through defaults, optionals, pipes, unions and arrays. Secrets are leaves. */
function schemaKeys(): string[][] {
  const out = new Map<string, string[]>();
  const walk = (schema: unknown, path: string[]) => {
    if (schema === secretRef) return;
    const def = (schema as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
    switch (def.type) {
      case "object":
        for (const [key, child] of Object.entries(def.shape as Record<string, unknown>)) {
          out.set([...path, key].join("."), [...path, key]);
          walk(child, [...path, key]);
        }
        break;
      case "default":
      case "prefault":
      case "optional":
      case "nullable":
      case "nonoptional":
      case "readonly":
      case "catch":
        walk(def.innerType, path);
        break;
      case "pipe":
        walk(def.in, path);
        walk(def.out, path);
        break;
      case "union":
        for (const option of def.options as unknown[]) walk(option, path);
        break;
      case "array":
        walk(def.element, path);
        break;
      default:
        break;
    }
  };
  walk(fileSchema, []);
  return [...out.values()];
}

test("docs - configuration.md mentions every key of the config schema, every flag and every environment variable", async () => {
  const text = await read(join(ROOT, "docs/configuration.md"));
  const all = new Set(spans(text));
  // "### nats, http, collector" → the section body, for each top-level key named in the heading.
  const sections = new Map<string, Set<string>>();
  const parts = text.split(/^### /m).slice(1);
  for (const part of parts) {
    const [heading, ...body] = part.split("\n");
    const bodyText = body.join("\n").split(/^## /m)[0];
    for (const word of heading.split(/[,\s]+/).map((w) => w.replace(/\[\]$/, "")).filter(Boolean)) {
      sections.set(word, new Set([...(sections.get(word) ?? []), ...spans(bodyText)]));
    }
  }
  const keys = schemaKeys();
  assert.ok(keys.length > 60, `walked the schema: ${keys.length} keys`);
  const missing: string[] = [];
  for (const [top, ...rest] of keys) {
    const section = sections.get(top);
    if (!section) {
      missing.push(`${top} (no "### ${top}" section)`);
      continue;
    }
    if (!rest.length) continue;
    const local = rest.join(".");
    const full = `${top}.${local}`;
    const mentioned = [...section].some((s) => s === local || s.startsWith(`${local}.`) || s === full || s.startsWith(`${full}.`));
    if (!mentioned) missing.push(full);
  }
  assert.deepEqual(missing, [], "schema keys docs/configuration.md does not name");
  assert.ok(all.has("{ env: NAME }") && all.has("{ file: PATH }"), "the two secret forms");

  for (const key of Object.keys(FLAG_ENV) as (keyof CliFlags)[]) {
    const flag = flagName(key);
    assert.ok([...all].some((s) => s === flag || s.startsWith(`${flag} `)), `docs/configuration.md names ${flag}`);
  }
  for (const flag of ["--config", "--splay", "--dry-run", "--json", "--listen"]) {
    assert.ok([...all].some((s) => s === flag || s.startsWith(`${flag} `)), `docs/configuration.md names ${flag}`);
  }
  for (const name of SPEC_ENV) assert.ok(all.has(name), `docs/configuration.md names ${name}`);
});
