// The alert engine knows plugins only through the registry the entry points hand it (SPEC 10,
// STYLE layout): src/alerts imports no plugin, plugins import only the SDK, and a plugin (with
// its libraries: nodemailer for email) is loaded only when the configuration names it. Proven on
// the sources, through loadPlugins with a real config, with the real CLI, and on the bundle.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import { build, type Metafile } from "esbuild";
import { CHUNK_DIR, bundleOptions } from "../scripts/bundle-options.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { loadConfig } from "../src/config/load.ts";
import { loadPlugins, type PluginRegistry } from "../src/alerts/load.ts";
import { BUILTIN_PLUGINS } from "../src/builtin-plugins.ts";
import { REPO_ROOT, UNDER_DENO, agentCommand } from "./helpers/agent.ts";
import { startSlackReceiver, startWebhookReceiver } from "./helpers/receivers.ts";

const IMPORT = /(?:^|[^\w.])(?:import|export)\s[^;]*?from\s*["']([^"']+)["']|(?:^|[^\w.])import\s*\(\s*["']([^"']+)["']\s*\)|(?:^|[^\w.])import\s+["']([^"']+)["']/gm;

/** The relative imports of one file (static, re-exports, dynamic with a literal path), resolved. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec.startsWith(".")) out.push(resolve(dirname(file), spec));
  }
  return out;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith(".ts") && !path.endsWith(".test.ts") ? [path] : [];
  });
}

/** Every repository file reachable from `roots` through relative imports, with one path to each. */
function importGraph(roots: string[]): Map<string, string[]> {
  const reached = new Map<string, string[]>(roots.map((r) => [r, [r]]));
  const queue = [...roots];
  while (queue.length) {
    const file = queue.shift()!;
    for (const next of importsOf(file)) {
      if (reached.has(next) || !existsSync(next)) continue;
      reached.set(next, [...reached.get(file)!, next]);
      queue.push(next);
    }
  }
  return reached;
}

const rel = (p: string) => relative(REPO_ROOT, p);

test("alert plugins - nothing src/alerts imports, directly or through other modules, is a plugin", () => {
  const graph = importGraph(tsFiles(join(REPO_ROOT, "src/alerts")));
  assert.ok(graph.size > 8, `the scan followed imports: ${[...graph.keys()].map(rel).join(", ")}`);
  const plugins = join(REPO_ROOT, "plugins") + "/";
  const offending = [...graph].filter(([file]) => file.startsWith(plugins)).map(([, path]) => path.map(rel).join(" → "));
  assert.deepEqual(offending, [], "src/alerts must know plugins only through the registry the entry point hands it");
});

test("alert plugins - each built-in imports only the plugin SDK from src, so the arrows run plugins → SDK", () => {
  const sdk = join(REPO_ROOT, "src/alerts/sdk.ts");
  for (const name of ["slack", "email", "pagerduty", "webhook"]) {
    const fromSrc = tsFiles(join(REPO_ROOT, "plugins", name))
      .flatMap(importsOf)
      .filter((p) => p.startsWith(join(REPO_ROOT, "src") + "/"));
    assert.deepEqual([...new Set(fromSrc)].map(rel), fromSrc.length ? [rel(sdk)] : [], `plugins/${name}`);
  }
});

test("alert plugins - with only slack configured, loadPlugins asks the registry for slack and nothing else", async () => {
  const dir = await mkdtemp(join(tmpdir(), "rtr-registry-"));
  try {
    const path = join(dir, "config.yaml");
    await writeFile(path, `alerts:\n  plugins:\n    - [slack, { webhookUrl: "http://127.0.0.1:9/services/T0/B0/x" }]\n`);
    const runtime = createNodeRuntime();
    const config = await loadConfig(runtime, { config: path, stateDir: join(dir, "state") }, { needRunners: false, needCredentials: false });
    const asked: string[] = [];
    const spy: PluginRegistry = Object.fromEntries(Object.entries(BUILTIN_PLUGINS).map(([name, load]) => [name, () => (asked.push(name), load())]));
    const plugins = await loadPlugins(runtime, config, spy);
    assert.deepEqual(plugins.map((p) => p.definition.name), ["slack"]);
    assert.deepEqual(asked, ["slack"], "the email, pagerduty and webhook modules were never imported");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Runs the real CLI with a preload that reports, at exit, whether nodemailer was ever loaded. */
function nodemailerLoadedBy(argv: string[]): Promise<{ loaded: boolean; stdout: string; stderr: string }> {
  const probe = join(REPO_ROOT, "test/fixtures/probe-nodemailer.mjs");
  const [bin, ...rest] = agentCommand();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, ["--import", probe, ...rest, ...argv], { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", () => {
      const m = /nodemailer-loaded=(true|false)/.exec(stderr);
      if (!m) return reject(new Error(`the probe did not report: ${stderr.slice(-2000)}`));
      resolvePromise({ loaded: m[1] === "true", stdout, stderr });
    });
  });
}

// Skipped under Deno only: the probe is a Node --import module hook (module.register), which Deno
// has no equivalent of; the Node half of npm test runs it, and the bundle test below covers Deno.
test("alert plugins - the CLI with only slack configured never loads nodemailer; with email configured it does", { skip: UNDER_DENO && "the probe is a Node module hook" }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "rtr-registry-"));
  const hook = await startSlackReceiver();
  try {
    const slackOnly = join(dir, "slack.yaml");
    await writeFile(slackOnly, `alerts:\n  plugins:\n    - [slack, { webhookUrl: "${hook.url}" }]\n`);
    const withEmail = join(dir, "email.yaml");
    await writeFile(withEmail, `alerts:\n  plugins:\n    - [email, { smtp: { host: 127.0.0.1, port: 9 }, from: a@example.com, to: [b@example.com] }]\n`);
    const slack = await nodemailerLoadedBy(["alert", "test", "--config", slackOnly, "--state-dir", join(dir, "state")]);
    assert.match(slack.stdout, /^ok +slack$/m, slack.stdout + slack.stderr);
    assert.equal(hook.received.length, 1);
    assert.equal(slack.loaded, false, "nodemailer loaded although only slack is configured");
    const email = await nodemailerLoadedBy(["alert", "test", "--config", withEmail, "--state-dir", join(dir, "state")]);
    // Nothing listens on port 9: the email plugin was loaded and tried, and failed to connect.
    assert.match(email.stdout, /^FAILED email/m, email.stdout + email.stderr);
    assert.equal(email.loaded, true, "the probe sees nodemailer when the email plugin is configured");
  } finally {
    await hook.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** The output files a command reads at start: the entry and, transitively, the chunks it imports statically. */
function loadedAtStart(metafile: Metafile, entry: string): Set<string> {
  const seen = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const i of metafile.outputs[file].imports) if (i.kind === "import-statement" && !i.external) walk(i.path);
  };
  walk(entry);
  return seen;
}

test("bundle - what only some commands or configurations need is in chunks read on first use: nodemailer, @octokit/auth-app, the collector, the demo, the daemon's HTTP app with prom-client; zod only as zod/mini", async () => {
  const dir = await mkdtemp(join(tmpdir(), "rtr-registry-chunks-"));
  try {
    const { metafile } = await build({ ...bundleOptions(REPO_ROOT, join(dir, "runner-token-refresh.mjs")), logLevel: "error", metafile: true, write: false });
    const entry = Object.keys(metafile!.outputs).find((o) => o.endsWith("/runner-token-refresh.mjs"))!;
    const atStart = loadedAtStart(metafile!, entry);
    const inputsAtStart = [...atStart].flatMap((o) => Object.keys(metafile!.outputs[o].inputs));
    const onDemand = Object.keys(metafile!.outputs).filter((o) => !atStart.has(o)).flatMap((o) => Object.keys(metafile!.outputs[o].inputs));
    for (const lazy of ["node_modules/nodemailer/", "node_modules/@octokit/auth-app/", "src/collector/collector.ts", "src/demo/demo.ts", "plugins/email/index.ts", "src/http/agent-app.ts", "node_modules/prom-client/"]) {
      assert.ok(!inputsAtStart.some((i) => i.includes(lazy)), `${lazy} is not read at start`);
      assert.ok(onDemand.some((i) => i.includes(lazy)), `${lazy} is in a chunk of its own`);
    }
    // The full build (zod/v4/classic) and its 40-odd locales are in no file at all (what esbuild read but shook out has no bytes).
    const all = Object.values(metafile!.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([path]) => path));
    assert.ok(!all.some((i) => /node_modules\/zod\/v4\/classic\//.test(i)), "zod's full build is not bundled");
    assert.deepEqual(all.filter((i) => /node_modules\/zod\/v4\/locales\/(?!index)/.test(i)).map((i) => i.replace(/.*\//, "")), ["en.js"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("bundle - carries the built-ins through the registry: --help runs, alert test delivers with a built-in, and email loads nodemailer from its chunk", async () => {
  const dir = await mkdtemp(join(tmpdir(), "rtr-registry-bundle-"));
  const hook = await startWebhookReceiver();
  try {
    const outfile = join(dir, "runner-token-refresh.mjs");
    const result = await build({ ...bundleOptions(REPO_ROOT, outfile), logLevel: "error", metafile: true });
    const inputs = Object.keys(result.metafile!.inputs);
    for (const name of ["slack", "email", "pagerduty", "webhook"]) assert.ok(inputs.includes(`plugins/${name}/index.ts`), `plugins/${name} bundled in`);
    assert.ok(inputs.some((i) => i.includes("node_modules/nodemailer/")), "nodemailer bundled in (for the email plugin)");
    const written = [outfile, ...readdirSync(join(dir, CHUNK_DIR)).map((f) => join(dir, CHUNK_DIR, f))];
    for (const file of written) assert.doesNotMatch(readFileSync(file, "utf8"), /import\(\s*["'][^"']*(plugins|node_modules)\//, `${relative(dir, file)}: no dynamic import left pointing at a source file`);
    // The bundle under Node here; runtime-smoke.test.ts runs it under Deno too.
    const node = UNDER_DENO ? "node" : process.execPath;
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((done, reject) => {
        const child = spawn(node, [outfile, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: dir }, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
        child.on("error", reject);
        child.on("close", (code) => done({ code, out }));
      });
    const help = await run(["--help"]);
    assert.equal(help.code, 0, help.out);
    assert.match(help.out, /alert test/);
    const config = join(dir, "config.yaml");
    await writeFile(config, `alerts:\n  plugins:\n    - [webhook, { url: "${hook.url}" }]\n`);
    const sent = await run(["alert", "test", "--config", config, "--state-dir", join(dir, "state")]);
    assert.equal(sent.code, 0, sent.out);
    assert.match(sent.out, /^ok +webhook$/m);
    assert.equal(hook.received.length, 1);
    assert.equal(hook.received[0].body.test, true);
    // Nothing listens on port 9: the email plugin's chunk (with nodemailer) loaded beside the entry, and tried.
    const email = join(dir, "email.yaml");
    await writeFile(email, `alerts:\n  plugins:\n    - [email, { smtp: { host: 127.0.0.1, port: 9 }, from: a@example.com, to: [b@example.com] }]\n`);
    const mailed = await run(["alert", "test", "--config", email, "--state-dir", join(dir, "state")]);
    assert.match(mailed.out, /^FAILED email/m, mailed.out);
    assert.doesNotMatch(mailed.out, /Cannot find|ERR_MODULE_NOT_FOUND/, mailed.out);
  } finally {
    await hook.close();
    await rm(dir, { recursive: true, force: true });
  }
});
