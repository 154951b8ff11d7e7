// Issue 18, several GitHub Apps (`github.auth.apps`): calls spread by remaining budget, and a
// rate-limited or revoked App hands the same request to the next one mid-request, so the caller
// sees no failure while another App has budget. Real client, real fake GitHub over HTTP.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GitHubClient } from "../src/github/client.ts";
import { AgentTelemetry } from "../src/agent/telemetry.ts";
import { createLogger } from "../src/shared/logger.ts";
import { createAgentApp } from "../src/http/agent-app.ts";
import { GitHubError } from "../src/shared/errors.ts";
import { generateJitConfig } from "../src/pool/github.ts";
import { startFakeGitHub, type FakeCall, type FakeGitHub } from "./helpers/fake-github.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";
import { makeWorld, runInProcess, type World } from "./helpers/agent.ts";

const ORG = { org: "acme" };

function appKey(): string {
  return generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
}
const KEYS = [appKey(), appKey()];

interface Rig {
  github: FakeGitHub;
  gh: GitHubClient;
  telemetry: AgentTelemetry;
  lines: string[];
  metrics(): Promise<string>;
  /** The App id whose installation token a call carried (null: a JWT call or none). */
  appOf(call: FakeCall): number | null;
  /** Every output an operator could see, for the no-secret check. */
  assertNoLeaks(): void;
  close(): Promise<void>;
}

async function rig(apps: { appId: number; remaining?: number; reset?: number; installationId?: boolean }[], retry = { maxRetries: 2, retryBackoff: 0.01, maxRetryWait: 1 }, requestTimeout = 10): Promise<Rig> {
  const github = await startFakeGitHub();
  for (const a of apps) github.addApp(a.appId, { remaining: a.remaining, reset: a.reset });
  const lines: string[] = [];
  const log = createLogger({ level: "info", write: (l) => void lines.push(l) });
  const telemetry = new AgentTelemetry(log);
  const http = createAgentApp({ scopes: ["org:acme"], runners: ["runner-1"], interval: 60, telemetry, alerts: null, outboxPending: async () => 0, outboxDropped: async () => 0 });
  const gh = new GitHubClient({
    apiUrl: github.url,
    auth: { kind: "apps", apps: apps.map((a, i) => ({ appId: a.appId, privateKey: KEYS[i], ...(a.installationId ? { installationId: github.apps.get(a.appId)!.installationId } : {}) })) },
    requestTimeout,
    retry,
    observer: telemetry,
    userAgent: "rtr-test",
  });
  const byInstallation = new Map([...github.apps.values()].map((a) => [a.installationId, a.appId]));
  return {
    github,
    gh,
    telemetry,
    lines,
    metrics: async () => (await http.app.request("/metrics")).text(),
    appOf(call) {
      const token = call.auth?.replace(/^(token|bearer)\s+/i, "") ?? "";
      const installation = github.tokenInstallation.get(token);
      return installation === undefined ? null : byInstallation.get(installation) ?? null;
    },
    assertNoLeaks() {
      const secrets = [...github.installationTokens.keys(), ...github.mintedTokens, ...KEYS.flatMap((k) => k.split("\n").filter((l) => l.length > 40))];
      assertNoSecrets(secrets, [{ label: "log", text: lines.join("") }]);
    },
    async close() {
      http.close();
      await github.close();
    },
  };
}

const signal = new AbortController().signal;
/** Calls made with an installation token (not the App's JWT calls), as [appId, route status]. */
const apiCalls = (r: Rig) => r.github.calls.filter((c) => r.appOf(c) !== null).map((c) => [r.appOf(c), c.status] as const);

test("github apps - spread: with budgets 5000 vs 100 the calls go to the App with 5000, whichever is listed first", async () => {
  for (const [first, second] of [[5000, 100], [100, 5000]]) {
    const r = await rig([{ appId: 11, remaining: first }, { appId: 22, remaining: second }]);
    try {
      const runner = r.github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
      for (let i = 0; i < 20; i++) assert.equal((await r.gh.getRunner(ORG, runner.id, signal))?.status, "online");
      const big = first === 5000 ? 11 : 22;
      const calls = apiCalls(r);
      assert.equal(calls.length, 20, "one counted request per call");
      // With the small one listed first, its first answer is what tells its budget apart.
      const toSmall = calls.filter(([app]) => app !== big).length;
      assert.equal(toSmall, first === 5000 ? 0 : 1, JSON.stringify(calls));
      assert.match(await r.metrics(), new RegExp(`^rtr_github_app_ratelimit_remaining\\{app_id="${big}"\\} ${5000 - (first === 5000 ? 20 : 19)}$`, "m"));
      assert.match(await r.metrics(), /^rtr_github_app_failovers_total\{app_id="11",reason="rate_limit"\} 0$/m);
      assert.deepEqual(r.github.schemaErrors, []);
    } finally {
      await r.close();
    }
  }
});

test("github apps - the first App exhausted mid-run: the same call succeeds through the second, counted and logged, no secret anywhere", async () => {
  const r = await rig([{ appId: 11 }, { appId: 22 }]);
  try {
    const runner = r.github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
    for (let i = 0; i < 3; i++) await r.gh.getRunner(ORG, runner.id, signal);
    // Someone else spends App 11's budget between two of our calls (its last answer said 4997).
    const spend = r.github.onRequest("token", () => void (r.github.apps.get(11)!.rateLimit.remaining = 0));
    const token = await r.gh.mintRegistrationToken(ORG, signal);
    spend();
    assert.ok(r.github.mintedTokens.includes(token.token), "the caller got a real token");
    const mints = r.github.calls.filter((c) => c.path.endsWith("/registration-token")).map((c) => [r.appOf(c), c.status]);
    assert.deepEqual(mints, [[11, 403], [22, 201]], "the same request, sent again at once through App 22");
    // Later calls stay on App 22 until App 11's reset.
    await r.gh.getRunner(ORG, runner.id, signal);
    assert.equal(r.appOf(r.github.calls.at(-1)!), 22);
    const text = await r.metrics();
    assert.match(text, /^rtr_github_app_failovers_total\{app_id="11",reason="rate_limit"\} 1$/m);
    assert.match(text, /^rtr_github_app_failovers_total\{app_id="22",reason="rate_limit"\} 0$/m);
    assert.match(text, /^rtr_github_app_ratelimit_remaining\{app_id="11"\} 0$/m);
    assert.match(text, /^rtr_github_app_ratelimit_remaining\{app_id="22"\} 4998$/m);
    const warn = r.lines.map((l) => JSON.parse(l)).find((l) => l.app_id === 11);
    assert.equal(warn?.level, "warn");
    assert.match(warn.msg, /GitHub App 11 is rate-limited on registration-token: the same request goes on through App 22/);
    assert.equal(r.lines.filter((l) => /"level":"error"/.test(l)).length, 0);
    r.assertNoLeaks();
    assert.deepEqual(r.github.schemaErrors, []);
  } finally {
    await r.close();
  }
});

test("github apps - a revoked App: its calls go to the other, and it is not asked again at every call", async () => {
  for (const explicit of [false, true]) {
    // Without an installation id the App's JWT lookup is refused; with one, its token exchange.
    const r = await rig([{ appId: 11, installationId: explicit }, { appId: 22 }]);
    try {
      r.github.apps.get(11)!.revoked = true;
      const runner = r.github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
      for (let i = 0; i < 5; i++) assert.equal((await r.gh.getRunner(ORG, runner.id, signal))?.id, runner.id);
      const refused = r.github.calls.filter((c) => c.status === 401);
      assert.equal(refused.length, 1, `App 11 was asked once: ${JSON.stringify(r.github.calls.map((c) => [c.method, c.path, c.status]))}`);
      assert.match(refused[0].path, explicit ? /^\/app\/installations\/\d+\/access_tokens$/ : /^\/orgs\/acme\/installation$/);
      assert.deepEqual(apiCalls(r).map(([app]) => app), [22, 22, 22, 22, 22]);
      assert.match(await r.metrics(), /^rtr_github_app_failovers_total\{app_id="11",reason="revoked"\} 1$/m);
      assert.match(r.lines.join(""), /GitHub App 11 was refused \(revoked, suspended or not installed here\?\)/);
      r.assertNoLeaks();
    } finally {
      await r.close();
    }
  }
});

test("github apps - every App exhausted: one error that says so and names when the first budget returns", async () => {
  const nowS = Math.floor(Date.now() / 1000);
  const r = await rig([{ appId: 11, remaining: 0, reset: nowS + 1800 }, { appId: 22, remaining: 0, reset: nowS + 900 }]);
  try {
    const err = await r.gh.mintRegistrationToken(ORG, signal).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof GitHubError, String(err));
    const back = new Date((nowS + 900) * 1000).toISOString();
    assert.match(err.message, /^every GitHub App \(11, 22\) is rate-limited or refused on registration-token for org:acme: the first back is App 22, at /);
    assert.ok(err.message.includes(back), `${err.message} names ${back}`);
    assert.equal(err.message.split("\n").length, 1);
    // Both known spent: the next call fails at once, without asking GitHub.
    const before = r.github.calls.length;
    await assert.rejects(r.gh.mintRegistrationToken(ORG, signal), /every GitHub App/);
    assert.equal(r.github.calls.length, before);
    assert.equal(r.github.mintedTokens.length, 0);
    r.assertNoLeaks();
  } finally {
    await r.close();
  }
});

test("github apps - generate-jitconfig fails over on a rate-limit answer, never after a timeout (a resent success would be 409)", async () => {
  const r = await rig([{ appId: 11 }, { appId: 22 }], { maxRetries: 3, retryBackoff: 0.01, maxRetryWait: 1 }, 1);
  try {
    const body = { name: "jit-1", runnerGroupId: 1, labels: ["gpu"], workFolder: "_work" };
    await r.gh.getRunner(ORG, 999, signal); // App 11 is warm
    const spend = r.github.onRequest("jit", () => void (r.github.apps.get(11)!.rateLimit.remaining = 0));
    const made = await generateJitConfig(r.gh, ORG, body, signal);
    spend();
    assert.notEqual(made, "name_taken");
    const jits = () => r.github.calls.filter((c) => c.path.endsWith("/generate-jitconfig")).map((c) => [r.appOf(c), c.status]);
    assert.deepEqual(jits(), [[11, 403], [22, 201]]);
    // No answer at all: GitHub may have made the runner, so nobody sends it again.
    r.github.inject("jit", { status: 201, delayMs: 3000, body: {} });
    await assert.rejects(generateJitConfig(r.gh, ORG, { ...body, name: "jit-2" }, signal), /no answer within github\.requestTimeout/);
    assert.equal(jits().length, 3, "one attempt only");
    assert.match(await r.metrics(), /^rtr_github_app_failovers_total\{app_id="22",reason="rate_limit"\} 0$/m);
  } finally {
    await r.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The agent, through its config file

/** The world's runner under `github.auth.apps` (keys in files beside the config). */
async function appsConfig(w: World, appIds: number[], extra = ""): Promise<string> {
  const entries = [];
  for (const [i, id] of appIds.entries()) {
    await writeFile(join(w.tmp, `app-${id}.pem`), KEYS[i] ?? KEYS[0], { mode: 0o600 });
    entries.push(`      - { appId: ${id}, privateKeyFile: app-${id}.pem${extra} }`);
  }
  return w.config(["github:", "  auth:", "    apps:", ...entries, "runners:", `  - { dir: ${JSON.stringify(w.runner.dir)}, scope: { org: acme }, name: runner-1 }`, ""].join("\n"));
}

function withoutPat(w: World): Record<string, string> {
  const { GITHUB_TOKEN: _pat, RUNNER_ORG: _o, RUNNER_NAME: _n, RUNNER_DIR: _d, ...env } = w.env;
  return env;
}

test("github apps - agent check: App 11 runs out while registering, the token comes through App 22, the pass succeeds and nothing leaks", async () => {
  const w = await makeWorld();
  try {
    w.github.addApp(11);
    w.github.addApp(22);
    const path = await appsConfig(w, [11, 22]);
    const spend = w.github.onRequest("token", () => void (w.github.apps.get(11)!.rateLimit.remaining = 0));
    const run = await runInProcess(["check", "--config", path], withoutPat(w));
    spend();
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal((await w.metrics()).runners[0].registered, true);
    assert.equal(w.github.mintedTokens.length, 1);
    const warn = run.logs.find((l) => l.app_id === 11);
    assert.equal(warn?.level, "warn", run.stdout);
    assert.equal(warn?.next_app_id, 22);
    assert.deepEqual(run.logs.filter((l) => l.level === "error"), []);
    await w.assertNoLeaks([run]);
    assertNoSecrets(KEYS.flatMap((k) => k.split("\n").filter((l) => l.length > 40)), await w.outputs([run]));
    assert.deepEqual(w.github.schemaErrors, []);
  } finally {
    await w.close();
  }
});

test("github apps - config: a missing key file or a repeated App is one line naming the field, exit 78", async () => {
  const w = await makeWorld();
  try {
    const path = await appsConfig(w, [11, 22]);
    await rm(join(w.tmp, "app-22.pem"));
    let run = await runInProcess(["check", "--config", path], withoutPat(w));
    assert.equal(run.code, 78, run.stderr);
    assert.match(run.stderr, /^error: \S*config\.yaml: github\.auth\.apps\[1\]\.privateKeyFile: cannot read \S*app-22\.pem \(ENOENT\): check the path/);
    assert.equal(run.stderr.trim().split("\n").length, 1);
    run = await runInProcess(["check", "--config", await appsConfig(w, [11, 11])], withoutPat(w));
    assert.equal(run.code, 78, run.stderr);
    assert.match(run.stderr, /github\.auth\.apps\[1\]\.appId: App 11 is listed twice: remove one entry/);
    await w.config(["github:", "  auth:", "    apps: []", ""].join("\n"));
    run = await runInProcess(["check", "--config", path], withoutPat(w));
    assert.match(run.stderr, /github\.auth\.apps: expected at least one App: \{ appId, privateKeyFile \}/);
    assert.equal(run.code, 78);
    await writeFile(path, ["github:", "  auth:", "    apps:", "      - { appId: 11, privateKey: inline-key }", ""].join("\n"));
    run = await runInProcess(["check", "--config", path], withoutPat(w));
    assert.equal(run.code, 78);
    assert.match(run.stderr, /github\.auth\.apps\[0\]\.privateKey: unknown key/);
  } finally {
    await w.close();
  }
});
