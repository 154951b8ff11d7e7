// Configuration loading (SPEC 3 and 4): through the CLI (exit codes and the one-line stderr error)
// and through loadConfig directly where only the resolved values matter.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { loadConfig } from "../src/config/load.ts";
import type { CliFlags } from "../src/config/flags.ts";
import type { AgentConfig } from "../src/config/types.ts";
import { ConfigError, UsageError } from "../src/shared/errors.ts";
import { makeWorld, runInProcess, type AgentRun } from "./helpers/agent.ts";

const FAKE_PAT = `ghp_${"x".repeat(12)}configtest`;

/** A scratch folder (the working directory and config files of one test). */
async function scratch(): Promise<{ dir: string; env: Record<string, string>; write(name: string, text: string): Promise<string>; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "rtr-config-"));
  return {
    dir,
    // A state dir in the scratch folder, so nothing is written to /var/lib or ~/.local/state.
    env: { STATE_DIR: join(dir, "state") },
    async write(name, text) {
      const path = join(dir, name);
      await mkdir(join(path, ".."), { recursive: true });
      await writeFile(path, text);
      return path;
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** SPEC 3: one stderr line naming the problem and the fix; never a stack trace. */
function assertError(run: AgentRun, code: number, ...mentions: string[]): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.stderr}`);
  assert.match(run.stderr, /^error: [^\n]+\n$/, `exactly one stderr line, got ${JSON.stringify(run.stderr)}`);
  assert.ok(!run.stderr.includes("    at "), `no stack trace: ${run.stderr}`);
  assert.equal(run.stdout, "", "nothing on stdout");
  for (const m of mentions) assert.ok(run.stderr.includes(m), `stderr names ${JSON.stringify(m)}: ${run.stderr}`);
}

function load(cwd: string, env: Record<string, string>, flags: CliFlags = {}, options = { needRunners: true, needCredentials: true }): Promise<AgentConfig> {
  const runtime = { ...createNodeRuntime(), env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env }, cwd };
  return loadConfig(runtime, flags, options);
}

test("config - a check without any scope exits 64 with the one line that says to pass --org, --repo or --enterprise", async () => {
  const s = await scratch();
  try {
    const run = await runInProcess(["check"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 64);
    assert.equal(run.stderr, "error: no scope: pass --org, --repo or --enterprise (or set RUNNER_ORG)\n");
  } finally {
    await s.close();
  }
});

test("config - --org together with --repo is a usage error naming both flags", async () => {
  const s = await scratch();
  try {
    const run = await runInProcess(["check", "--org", "acme", "--repo", "acme/app"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 64, "--org", "--repo");
  } finally {
    await s.close();
  }
});

test("config - RUNNER_ORG and RUNNER_REPO both set is a usage error naming both variables", async () => {
  const s = await scratch();
  try {
    const run = await runInProcess(["check"], { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_ORG: "acme", RUNNER_REPO: "acme/app" }, { cwd: s.dir });
    assertError(run, 64, "RUNNER_ORG", "RUNNER_REPO");
  } finally {
    await s.close();
  }
});

test("config - an unknown flag is a usage error naming the flag and --help", async () => {
  const s = await scratch();
  try {
    const run = await runInProcess(["check", "--org", "acme", "--treshold", "300"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 64, "--treshold", "--help");
  } finally {
    await s.close();
  }
});

test("config - malformed YAML exits 78 naming the file and the line", async () => {
  const s = await scratch();
  try {
    await s.write("config.yaml", "refresh:\n  threshold: 300\n    interval: 60\n");
    const run = await runInProcess(["check", "--config", "config.yaml", "--org", "acme"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 78, "config.yaml", "line 3", "fix the syntax");
  } finally {
    await s.close();
  }
});

test("config - a malformed JSON config exits 78 naming the file and the line without quoting the file", async () => {
  const s = await scratch();
  try {
    const inline = `ghp_${"s".repeat(36)}`;
    await s.write("config.json", `{\n  "github": { "auth": { "token": "${inline}" } }\n  "refresh": { "threshold": 300 }\n}\n`);
    const run = await runInProcess(["check", "--config", "config.json", "--org", "acme"], { ...s.env }, { cwd: s.dir });
    assertError(run, 78, "config.json", "line 3", "fix the syntax");
    assert.ok(!run.stderr.includes("ghp_"), "the file's text (an inline token) is not quoted");
  } finally {
    await s.close();
  }
});

test("config - an unknown key exits 78 naming refresh.treshold", async () => {
  const s = await scratch();
  try {
    await s.write("config.yaml", "refresh:\n  treshold: 300\n");
    const run = await runInProcess(["check", "--config", "config.yaml", "--org", "acme"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 78, "config.yaml: refresh.treshold", "unknown key");
  } finally {
    await s.close();
  }
});

test("config - a scope with an unknown kind exits 78 with runners[1].scope: expected one of org, repo, enterprise", async () => {
  const s = await scratch();
  try {
    await s.write(
      "config.yaml",
      ["runners:", "  - dir: ./r0", "    scope: { org: acme }", "  - dir: ./r1", "    scope: { organization: x }", ""].join("\n"),
    );
    const run = await runInProcess(["check", "--config", "config.yaml"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 78, "config.yaml: runners[1].scope: expected one of org, repo, enterprise");
  } finally {
    await s.close();
  }
});

test("config - a duration that is not one exits 78 naming the file, refresh.threshold and the accepted forms", async () => {
  const s = await scratch();
  try {
    await s.write("config.yaml", "refresh:\n  threshold: soon\n");
    const run = await runInProcess(["check", "--config", "config.yaml", "--org", "acme"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 78, "config.yaml: refresh.threshold", '"soon"', '"5m"');
  } finally {
    await s.close();
  }
});

test("config - durations are seconds as a number or a string with a unit (30s, 5m, 4h, 7d)", async () => {
  const s = await scratch();
  try {
    await s.write(
      "config.yaml",
      [
        "runners:",
        "  - dir: ./r",
        "    scope: { org: acme }",
        "    offlineGrace: 5m",
        "    offlineWarnAfter: 7d",
        "refresh:",
        "  threshold: 4h",
        "  interval: 30s",
        "  retryBackoff: 90",
        "  lockTimeout: '2m'",
        "",
      ].join("\n"),
    );
    const config = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { config: "config.yaml" });
    assert.equal(config.runners[0].offlineGrace, 300);
    assert.equal(config.runners[0].offlineWarnAfter, 7 * 86400);
    assert.equal(config.refresh.threshold, 4 * 3600);
    assert.equal(config.refresh.interval, 30);
    assert.equal(config.refresh.retryBackoff, 90);
    assert.equal(config.refresh.lockTimeout, 120);
    // The same forms from the environment and flags.
    const fromEnv = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_ORG: "acme", REFRESH_THRESHOLD: "5m" }, { interval: "2m" });
    assert.equal(fromEnv.refresh.threshold, 300);
    assert.equal(fromEnv.refresh.interval, 120);
  } finally {
    await s.close();
  }
});

test("config - the threshold comes from the flag over the environment over the file over the default", async () => {
  const s = await scratch();
  try {
    await s.write("config.yaml", "refresh:\n  threshold: 100\n");
    const base = { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_ORG: "acme" };
    const all = await load(s.dir, { ...base, REFRESH_THRESHOLD: "200" }, { config: "config.yaml", threshold: "300" });
    assert.equal(all.refresh.threshold, 300, "flag beats env and file");
    const envAndFile = await load(s.dir, { ...base, REFRESH_THRESHOLD: "200" }, { config: "config.yaml" });
    assert.equal(envAndFile.refresh.threshold, 200, "env beats file");
    const fileOnly = await load(s.dir, base, { config: "config.yaml" });
    assert.equal(fileOnly.refresh.threshold, 100, "file beats default");
    const none = await load(s.dir, base);
    assert.equal(none.refresh.threshold, 300, "the default");
    const flagOnly = await load(s.dir, base, { threshold: "400" });
    assert.equal(flagOnly.refresh.threshold, 400);
  } finally {
    await s.close();
  }
});

test("config - secrets given as {env: NAME} and {file: PATH} resolve, the file relative to the config file's folder", async () => {
  const s = await scratch();
  try {
    const fromFile = `ghp_${"f".repeat(36)}`;
    const fromEnv = `secret-${"e".repeat(20)}`;
    await s.write("etc/token.txt", `${fromFile}\n`);
    await s.write("etc/config.yaml", ["github:", "  auth:", "    token: { file: token.txt }", "http:", "  auth:", "    token: { env: HTTP_API_TOKEN }", ""].join("\n"));
    const config = await load(s.dir, { ...s.env, RUNNER_ORG: "acme", HTTP_API_TOKEN: fromEnv }, { config: "etc/config.yaml" });
    assert.deepEqual(config.github.auth, { kind: "token", token: fromFile }, "the trailing newline is dropped; the path is relative to etc/");
    assert.equal(config.http.authToken, fromEnv);
    assert.equal(config.configDir, join(s.dir, "etc"));
  } finally {
    await s.close();
  }
});

test("config - a secret {env: NAME} naming an unset variable exits 78 naming the path and the variable", async () => {
  const s = await scratch();
  try {
    await s.write("config.yaml", "github:\n  auth:\n    token: { env: RTR_TEST_MISSING_TOKEN }\n");
    const run = await runInProcess(["check", "--config", "config.yaml", "--org", "acme"], s.env, { cwd: s.dir });
    assertError(run, 78, "config.yaml", "github.auth.token", "RTR_TEST_MISSING_TOKEN");
  } finally {
    await s.close();
  }
});

test("config - a secret {file: PATH} that does not exist exits 78 naming the path and the file", async () => {
  const s = await scratch();
  try {
    await s.write("etc/config.yaml", "github:\n  auth:\n    token: { file: missing-token.txt }\n");
    const run = await runInProcess(["check", "--config", "etc/config.yaml", "--org", "acme"], s.env, { cwd: s.dir });
    assertError(run, 78, "github.auth.token", join(s.dir, "etc", "missing-token.txt"));
  } finally {
    await s.close();
  }
});

test("config - an environment-only setup (RUNNER_ORG, GITHUB_TOKEN, RUNNER_DIR) with no file registers the runner", async () => {
  const w = await makeWorld();
  const s = await scratch();
  try {
    const env = {
      RUNNER_ORG: "acme",
      GITHUB_TOKEN: w.github.pat,
      RUNNER_DIR: w.runner.dir,
      // Hermetic test plumbing only: the fake GitHub's address and a temporary state dir.
      GITHUB_API_URL: w.github.url,
      STATE_DIR: w.stateDir,
    };
    const config = await load(s.dir, env);
    assert.equal(config.configFile, null, "no config file was found or needed");
    assert.equal(config.runners.length, 1);
    assert.deepEqual(config.runners[0].scope, { org: "acme" });
    assert.equal(config.runners[0].dir, w.runner.dir);
    assert.equal(config.runners[0].url, "https://github.com/acme");
    const run = await runInProcess(["check"], env, { cwd: s.dir });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.stderr, "");
    assert.equal(w.runner.invocations("config.sh").length, 1);
    assert.equal((await w.metrics()).runners[0].registered, true);
    await w.assertNoLeaks([run]);
  } finally {
    await s.close();
    await w.close();
  }
});

test("config - no GitHub credentials at all exits 78 saying how to provide them", async () => {
  const s = await scratch();
  try {
    const run = await runInProcess(["check", "--org", "acme"], s.env, { cwd: s.dir });
    assertError(run, 78, "no GitHub credentials", "GITHUB_TOKEN", "GITHUB_APP_ID");
  } finally {
    await s.close();
  }
});

test("config - GitHub App auth with an enterprise scope exits 78 naming where the scope came from", async () => {
  const s = await scratch();
  try {
    const key = await s.write("app.pem", `-----BEGIN RSA PRIVATE KEY-----\n${"A".repeat(64)}\n-----END RSA PRIVATE KEY-----\n`);
    const appEnv = { ...s.env, GITHUB_APP_ID: "12345", GITHUB_APP_PRIVATE_KEY_FILE: key };
    const viaFlag = await runInProcess(["check", "--enterprise", "big-co"], appEnv, { cwd: s.dir });
    assertError(viaFlag, 78, "--enterprise", "classic PAT");
    await s.write("config.yaml", ["runners:", "  - dir: ./r", "    scope: { enterprise: big-co }", ""].join("\n"));
    const viaFile = await runInProcess(["check", "--config", "config.yaml"], appEnv, { cwd: s.dir });
    assertError(viaFile, 78, "config.yaml: runners[0].scope", "classic PAT");
    assert.ok(!viaFile.stderr.includes("A".repeat(20)), "no key material");
  } finally {
    await s.close();
  }
});

test("config - the API URL is GITHUB_API_URL when set, else derived from github.url (github.com, GHES, *.ghe.com)", async () => {
  const s = await scratch();
  try {
    const base = { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_ORG: "acme" };
    assert.equal((await load(s.dir, base)).github.apiUrl, "https://api.github.com");
    await s.write("ghes.yaml", "github:\n  url: https://ghes.example.com\n");
    const ghes = await load(s.dir, base, { config: "ghes.yaml" });
    assert.equal(ghes.github.apiUrl, "https://ghes.example.com/api/v3");
    assert.equal(ghes.runners[0].url, "https://ghes.example.com/acme", "the runner URL follows github.url too");
    await s.write("ghec.yaml", "github:\n  url: https://octo.ghe.com\n");
    assert.equal((await load(s.dir, base, { config: "ghec.yaml" })).github.apiUrl, "https://api.octo.ghe.com");
    const overridden = await load(s.dir, { ...base, GITHUB_API_URL: "https://proxy.example.net/github/" }, { config: "ghes.yaml" });
    assert.equal(overridden.github.apiUrl, "https://proxy.example.net/github", "the variable wins; a trailing slash is dropped");
    const bad = await runInProcess(["check"], { ...base, GITHUB_API_URL: "not a url" }, { cwd: s.dir });
    assertError(bad, 78, "GITHUB_API_URL");
  } finally {
    await s.close();
  }
});

test("config - the cosmiconfig search finds .runner-token-refreshrc.yaml in the working directory", async () => {
  const s = await scratch();
  try {
    await s.write(".runner-token-refreshrc.yaml", ["runners:", "  - dir: ./found-runner", "    scope: { repo: acme/app }", "    name: from-rc", "refresh:", "  threshold: 7m", ""].join("\n"));
    const config = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT });
    assert.equal(config.configFile, ".runner-token-refreshrc.yaml");
    assert.equal(config.runners[0].name, "from-rc");
    assert.deepEqual(config.runners[0].scope, { repo: "acme/app" });
    assert.equal(config.runners[0].dir, join(s.dir, "found-runner"));
    assert.equal(config.refresh.threshold, 420);
    // An error in the found file names it, though --config was not given.
    await s.write(".runner-token-refreshrc.yaml", "refresh:\n  treshold: 1\n");
    const run = await runInProcess(["check"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 78, ".runner-token-refreshrc.yaml: refresh.treshold");
  } finally {
    await s.close();
  }
});

test("config - a state dir that cannot be created exits 78 naming it and where it was set", async () => {
  const s = await scratch();
  try {
    // Tests run as root, for whom no mode bit is a barrier: a path under a regular file is.
    const file = await s.write("not-a-dir", "x");
    const blocked = join(file, "sub");
    const base = { GITHUB_TOKEN: FAKE_PAT, RUNNER_ORG: "acme" };
    const viaEnv = await runInProcess(["check"], { ...base, STATE_DIR: blocked }, { cwd: s.dir });
    assertError(viaEnv, 78, "STATE_DIR", blocked);
    const viaFlag = await runInProcess(["check", "--state-dir", blocked], base, { cwd: s.dir });
    assertError(viaFlag, 78, "--state-dir", blocked);
    await s.write("config.yaml", "state:\n  dir: ./not-a-dir/sub\n");
    const viaFile = await runInProcess(["check", "--config", "config.yaml"], base, { cwd: s.dir });
    assertError(viaFile, 78, "config.yaml: state.dir", blocked);
  } finally {
    await s.close();
  }
});

test("config - a relative runner dir is resolved against the config file's folder in a file and against the working directory from a flag or variable", async () => {
  const s = await scratch();
  try {
    await s.write("etc/config.yaml", ["runners:", "  - dir: ./runner-a", "    scope: { org: acme }", ""].join("\n"));
    const fromFile = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { config: "etc/config.yaml" });
    assert.equal(fromFile.runners[0].dir, join(s.dir, "etc", "runner-a"));
    const fromFlag = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { config: "etc/config.yaml", runnerDir: "./runner-b" });
    assert.equal(fromFlag.runners[0].dir, join(s.dir, "runner-b"));
    const fromEnv = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_DIR: "runner-c" }, { config: "etc/config.yaml" });
    assert.equal(fromEnv.runners[0].dir, join(s.dir, "runner-c"));
    const defaulted = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_ORG: "acme" });
    assert.equal(defaulted.runners[0].dir, join(s.dir, "actions-runner"), "the default ./actions-runner, against the working directory");
  } finally {
    await s.close();
  }
});

test("config - flags and their variables override the fields of the only runner of a one-runner config", async () => {
  const s = await scratch();
  try {
    await s.write(
      "config.yaml",
      ["runners:", "  - dir: ./runner", "    scope: { org: acme }", "    name: from-file", "    labels: [linux]", ""].join("\n"),
    );
    const config = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_NAME: "from-env" }, { config: "config.yaml", repo: "acme/app", url: "https://github.com/acme/app" });
    assert.equal(config.runners.length, 1);
    const [r] = config.runners;
    assert.deepEqual(r.scope, { repo: "acme/app" }, "--repo replaces the file's scope");
    assert.equal(r.name, "from-env", "RUNNER_NAME replaces the file's name");
    assert.equal(r.url, "https://github.com/acme/app");
    assert.equal(r.dir, join(s.dir, "runner"), "fields not overridden come from the file");
    assert.deepEqual(r.labels, ["linux"]);
    const byFlag = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_NAME: "from-env" }, { config: "config.yaml", name: "from-flag" });
    assert.equal(byFlag.runners[0].name, "from-flag", "the flag beats the variable");
  } finally {
    await s.close();
  }
});

test("config - runner flags with a several-runner config are a usage error that says to edit the file", async () => {
  const s = await scratch();
  try {
    await s.write(
      "config.yaml",
      ["runners:", "  - dir: ./r0", "    scope: { org: acme }", "  - dir: ./r1", "    scope: { org: acme }", ""].join("\n"),
    );
    const run = await runInProcess(["check", "--config", "config.yaml", "--name", "x"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 64, "config.yaml", "edit the file");
    await assert.rejects(load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_DIR: "/srv/x" }, { config: "config.yaml" }), UsageError);
    const fine = await load(s.dir, { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { config: "config.yaml" });
    assert.deepEqual(fine.runners.map((r) => r.dir), [join(s.dir, "r0"), join(s.dir, "r1")]);
  } finally {
    await s.close();
  }
});

test("config - a bad number in a variable exits 78 naming the variable, and in a flag exits 64 naming the flag", async () => {
  const s = await scratch();
  try {
    const base = { ...s.env, GITHUB_TOKEN: FAKE_PAT, RUNNER_ORG: "acme" };
    const env = await runInProcess(["check"], { ...base, MAX_RETRY_ATTEMPTS: "abc" }, { cwd: s.dir });
    assertError(env, 78, "MAX_RETRY_ATTEMPTS", '"abc"');
    const flag = await runInProcess(["check", "--max-retries", "abc"], base, { cwd: s.dir });
    assertError(flag, 64, "--max-retries", '"abc"');
    const interval = await runInProcess(["check"], { ...base, CHECK_INTERVAL: "often" }, { cwd: s.dir });
    assertError(interval, 78, "CHECK_INTERVAL", '"often"');
    const threshold = await runInProcess(["check", "--threshold", "soon"], base, { cwd: s.dir });
    assertError(threshold, 64, "--threshold", '"soon"');
    const zero = await runInProcess(["check", "--interval", "0"], base, { cwd: s.dir });
    assertError(zero, 64, "--interval", "at least 1 second");
    await assert.rejects(load(s.dir, { ...base, MAX_RETRY_ATTEMPTS: "0" }), ConfigError, "attempts start at 1");
  } finally {
    await s.close();
  }
});

test("config - a config error writes nothing: the state dir and log file are not created", async () => {
  const s = await scratch();
  try {
    await s.write("config.yaml", "refresh:\n  treshold: 300\n");
    const run = await runInProcess(["check", "--config", "config.yaml", "--org", "acme", "--log-file", "agent.log"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
    assertError(run, 78);
    await assert.rejects(readFile(join(s.dir, "agent.log")), { code: "ENOENT" });
    await assert.rejects(readFile(join(s.dir, "state", "metrics.json")), { code: "ENOENT" });
  } finally {
    await s.close();
  }
});

test("config - a YAML file given with --config reads exactly as the same file found by the search (empty and comment-only files are no settings)", async () => {
  const s = await scratch();
  try {
    const text = "# anchors and YAML 1.1 words, as js-yaml reads them\nrefresh: { interval: 90, threshold: 600 }\nrunners:\n  - { dir: /srv/runner-1, scope: &acme { org: acme }, name: runner-1, labels: [gpu, on] }\n  - { dir: /srv/runner-2, scope: *acme, name: runner-2 }\n";
    await s.write(".runner-token-refreshrc.yaml", text);
    await s.write("explicit.yaml", text);
    const env = { ...s.env, GITHUB_TOKEN: FAKE_PAT };
    const searched = await load(s.dir, env);
    const explicit = await load(s.dir, env, { config: "explicit.yaml" });
    const { configFile: _a, ...fromSearch } = searched as AgentConfig & { configFile?: string };
    const { configFile: _b, ...fromPath } = explicit as AgentConfig & { configFile?: string };
    assert.deepEqual(fromPath, fromSearch);
    assert.equal(explicit.refresh.interval, 90);
    assert.deepEqual(explicit.runners[0].labels, ["gpu", "on"], "`on` stays a word (YAML 1.2, as cosmiconfig reads it)");
    assert.deepEqual(explicit.runners[1].scope, { org: "acme" });
    for (const empty of ["", "# nothing set yet\n"]) {
      await s.write("empty.yaml", empty);
      const run = await runInProcess(["check", "--config", "empty.yaml"], { ...s.env, GITHUB_TOKEN: FAKE_PAT }, { cwd: s.dir });
      assertError(run, 64, "scope");
    }
  } finally {
    await s.close();
  }
});
