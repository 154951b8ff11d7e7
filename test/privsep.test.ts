// Privilege separation (SPEC 15) with real users: the agent runs as root (as the shipped unit
// does), the runner dir belongs to the test user rtr-job, and a real process of that user tries
// to read everything the agent guards. Needs root (CI is root): useradd, setpriv, chown.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { makeWorld, parseLogs, runInProcess, spawnAgent, waitFor, type World } from "./helpers/agent.ts";
import { ensureUser, IS_ROOT, JOB_USER, runAsUser, chownTree } from "./helpers/users.ts";
import { isRunnerUnitName } from "../src/runner/service.ts";

assert.ok(IS_ROOT, "the privilege-separation tests need root (CI runs as root): run them with sudo");

/** A world whose tmp dir anyone may traverse, so only the product's own modes protect its files. */
async function openWorld(options: Parameters<typeof makeWorld>[0] = {}): Promise<World> {
  const w = await makeWorld(options);
  await chmod(w.tmp, 0o755);
  return w;
}

/** A secret file the operator made the right way: 0600, in a folder anyone may enter. */
async function secretFile(w: World, name: string, value: string, mode = 0o600): Promise<string> {
  const dir = join(w.tmp, "etc");
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const path = join(dir, name);
  await writeFile(path, `${value}\n`, { mode });
  await chmod(path, mode);
  return path;
}

function configWithTokenFile(w: World, tokenFile: string, extra = ""): Promise<string> {
  return w.config(`github: { apiUrl: "${w.github.url}", auth: { token: { file: "${tokenFile}" } } }
state: { dir: "${w.stateDir}" }
runners:
  - { dir: "${w.runner.dir}", scope: { org: acme }, name: runner-1${extra} }
`);
}

function envWithout(env: Record<string, string>, ...names: string[]): Record<string, string> {
  const out = { ...env };
  for (const n of names) delete out[n];
  return out;
}

test("privsep - config.sh runs as the runner dir's owner with only the registration token in its environment", async () => {
  const w = await openWorld();
  try {
    const env = { ...w.env, NATS_PASSWORD: "nats-pass-do-not-leak", AGENT_ONLY_SETTING: "agent-only", LANG: "C.UTF-8" };
    const run = await spawnAgent(["check"], env).done;
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const calls = w.runner.invocationLog().filter((i) => i.script === "config.sh");
    assert.equal(calls.length, 1, "config.sh ran once");
    const [call] = calls;
    assert.equal(call.uid, w.runner.owner!.uid, "config.sh ran as the runner's user, not as root");
    assert.ok(call.env.ACTIONS_RUNNER_INPUT_TOKEN_present, "the token came in the environment");
    // What the child sees: the system PATH, its own HOME/USER/LOGNAME, locale, the token; the
    // stand-in's wrapper adds FAKE_RUNNER_ROOT and sh adds PWD. Nothing of the agent's.
    const allowed = new Set(["PATH", "HOME", "USER", "LOGNAME", "LANG", "ACTIONS_RUNNER_INPUT_TOKEN", "FAKE_RUNNER_ROOT", "PWD"]);
    assert.deepEqual(call.env.names.filter((n) => !allowed.has(n)), [], "no other variable reached config.sh");
    for (const name of ["GITHUB_TOKEN", "NATS_PASSWORD", "AGENT_ONLY_SETTING", "STATE_DIR", "GITHUB_API_URL"]) assert.ok(!call.env.names.includes(name), `${name} is not in config.sh's environment`);
    assert.ok(!call.argv.some((a) => w.github.mintedTokens.includes(a)), "the token is not in argv");
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("privsep - a process of the runner's user cannot read the PAT file, the token cache, the state files or the agent's environment", async () => {
  const w = await openWorld();
  const job = ensureUser(JOB_USER);
  const agentEnvSecret = "agent-env-secret-4711";
  let daemon: ReturnType<typeof spawnAgent> | null = null;
  try {
    const tokenFile = await secretFile(w, "github-token", w.github.pat);
    const config = await configWithTokenFile(w, tokenFile);
    daemon = spawnAgent(["daemon", "--config", config, "--interval", "1", "--listen", "127.0.0.1:0"], { ...envWithout(w.env, "GITHUB_TOKEN", "RUNNER_ORG", "RUNNER_DIR", "RUNNER_NAME", "STATE_DIR"), NATS_TOKEN: agentEnvSecret });
    const agent = daemon;
    await waitFor(() => parseLogs(agent.output()).some((l) => l.msg === "pass finished"), "the daemon's first pass", 60_000);
    const tokenCache = join(w.stateDir, "tokens", (await readdir(join(w.stateDir, "tokens")))[0]);
    const stateFiles = [join(w.stateDir, "metrics.json"), join(w.stateDir, "seq"), ...(await readdir(join(w.stateDir, "runners"))).map((n) => join(w.stateDir, "runners", n))];
    const environ = `/proc/${agent.child.pid}/environ`;
    // Root (the agent's side) reads every one of them: the paths are real.
    assert.match(await readFile(tokenCache, "utf8"), /expires_at/);
    assert.match(await readFile(environ, "utf8"), new RegExp(agentEnvSecret));
    for (const path of [tokenFile, tokenCache, ...stateFiles, environ]) {
      const r = runAsUser(job, ["cat", path]);
      assert.notEqual(r.code, 0, `${JOB_USER} could read ${path}`);
      assert.match(r.stderr, /Permission denied/, `${path}: ${r.stderr}`);
      for (const secret of [w.github.pat, agentEnvSecret, ...w.github.mintedTokens]) assert.ok(!r.stdout.includes(secret), `${path} leaked to ${JOB_USER}`);
    }
    const list = runAsUser(job, ["ls", w.stateDir]);
    assert.notEqual(list.code, 0, "the state dir cannot be listed by the runner's user");
    const calls = w.runner.invocationLog().filter((i) => i.script === "config.sh");
    assert.equal(calls.length, 1);
    assert.equal(calls[0].uid, job.uid, "config.sh ran as rtr-job");
  } finally {
    daemon?.kill("SIGTERM");
    if (daemon) await daemon.done;
    await w.close();
  }
});

test("privsep - a secret file the runner's user can read stops the agent with exit 78 naming the file", async () => {
  const w = await openWorld();
  try {
    const tokenFile = await secretFile(w, "github-token", w.github.pat, 0o644);
    const config = await configWithTokenFile(w, tokenFile);
    const run = await spawnAgent(["check", "--config", config], envWithout(w.env, "GITHUB_TOKEN", "RUNNER_ORG", "RUNNER_DIR", "RUNNER_NAME")).done;
    assert.equal(run.code, 78, run.stderr);
    assert.match(run.stderr, new RegExp(`^error: ${tokenFile.replace(/[.]/g, "\\.")}: .*readable by "${JOB_USER}".*chmod 0600`, "m"));
    assert.equal(w.runner.invocations("config.sh").length, 0, "nothing ran as the runner's user");
    assert.equal(w.github.mintedTokens.length, 0, "no token was minted");
    await w.assertNoLeaks([run]);
  } finally {
    await w.close();
  }
});

test("privsep - a state dir or token cache opened to the runner's user stops the next run with exit 78", async () => {
  const w = await openWorld();
  try {
    const first = await spawnAgent(["check"], w.env).done;
    assert.equal(first.code, 0, first.stderr);
    const tokens = join(w.stateDir, "tokens");
    await chmod(w.stateDir, 0o755);
    await chmod(tokens, 0o755);
    for (const f of await readdir(tokens)) await chmod(join(tokens, f), 0o644);
    const second = await spawnAgent(["check"], w.env).done;
    assert.equal(second.code, 78, second.stderr);
    assert.match(second.stderr, new RegExp(`${w.stateDir}: the state dir is readable by "${JOB_USER}"`));
    assert.match(second.stderr, /tokens\/org=3Aacme\.json/, "the token cache is named too");
    // Enterable but not listable: the token file's name is predictable, so this still exposes it.
    await chmod(w.stateDir, 0o711);
    const third = await spawnAgent(["check"], w.env).done;
    assert.equal(third.code, 78, "a state dir others may enter still counts");
    assert.ok(runAsUser(ensureUser(JOB_USER), ["cat", join(tokens, (await readdir(tokens))[0])]).code === 0, "(the token really was readable)");
    await chmod(w.stateDir, 0o700);
    await chmod(tokens, 0o700);
    const fixed = await spawnAgent(["check"], w.env).done;
    assert.equal(fixed.code, 0, fixed.stderr);
    await w.assertNoLeaks([first, second, third, fixed]);
  } finally {
    await w.close();
  }
});

test("privsep - a root-owned runner dir is refused unless runAs says root", async () => {
  const w = await openWorld({ runner: { owner: "root" } });
  try {
    const config = await w.config(`runners:\n  - { dir: "${w.runner.dir}", scope: { org: acme }, name: runner-1 }\n`);
    const env = envWithout(w.env, "RUNNER_ORG", "RUNNER_DIR", "RUNNER_NAME");
    const refused = await spawnAgent(["check", "--config", config], env).done;
    assert.equal(refused.code, 78, refused.stderr);
    assert.match(refused.stderr, /runners\[0\]: .* is owned by root, so config\.sh and the runner's jobs would run as root: .*runners\[0\]\.runAs/);
    assert.equal(w.runner.invocations("config.sh").length, 0);
    const accepted = await w.config(`runners:\n  - { dir: "${w.runner.dir}", scope: { org: acme }, name: runner-1, runAs: root }\n`);
    const run = await spawnAgent(["check", "--config", accepted], env).done;
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.logs.some((l) => l.level === "warn" && /runs as "root" \(root\): its jobs can read the agent's credentials/.test(String(l.msg))), "the agent warns about runAs: root");
    assert.equal(w.runner.invocationLog().find((i) => i.script === "config.sh")?.uid, 0);
  } finally {
    await w.close();
  }
});

test("privsep - runAs naming another user runs config.sh as that user", async () => {
  const other = ensureUser("rtr-job2");
  const w = await openWorld();
  try {
    const config = await w.config(`runners:\n  - { dir: "${w.runner.dir}", scope: { org: acme }, name: runner-1, runAs: rtr-job2 }\n`);
    chownTree(w.runner.dir, other);
    const run = await spawnAgent(["check", "--config", config], envWithout(w.env, "RUNNER_ORG", "RUNNER_DIR", "RUNNER_NAME")).done;
    assert.equal(run.code, 0, run.stderr);
    assert.equal(w.runner.invocationLog().find((i) => i.script === "config.sh")?.uid, other.uid);
    const missing = await w.config(`runners:\n  - { dir: "${w.runner.dir}", scope: { org: acme }, name: runner-1, runAs: no-such-user-xyz }\n`);
    const bad = await spawnAgent(["check", "--config", missing], envWithout(w.env, "RUNNER_ORG", "RUNNER_DIR", "RUNNER_NAME")).done;
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /runners\[0\]\.runAs: there is no user "no-such-user-xyz" on this host/);
  } finally {
    await w.close();
  }
});

test("privsep - svc.sh and custom service commands run as the runner's user, never as root", async () => {
  const w = await openWorld({ runner: { serviceFile: true } });
  try {
    const config = await w.config(`runners:\n  - { dir: "${w.runner.dir}", scope: { org: acme }, name: runner-1, service: svc.sh }\n`);
    const env = envWithout(w.env, "RUNNER_ORG", "RUNNER_DIR", "RUNNER_NAME");
    const run = await spawnAgent(["check", "--config", config], env).done;
    assert.equal(run.code, 0, run.stderr);
    const svc = w.runner.invocationLog().filter((i) => i.script === "svc.sh");
    assert.ok(svc.length >= 2, "svc.sh status and start ran");
    for (const call of svc) {
      assert.equal(call.uid, w.runner.owner!.uid, `svc.sh ${call.argv.join(" ")} ran as the runner's user`);
      assert.ok(!call.env.names.includes("GITHUB_TOKEN") && !call.env.names.includes("ACTIONS_RUNNER_INPUT_TOKEN"), "svc.sh gets no token");
    }
    const marker = join(w.tmp, "custom-uid");
    await writeFile(marker, "");
    await chmod(marker, 0o666);
    const custom = await w.config(`runners:
  - dir: "${w.runner.dir}"
    scope: { org: acme }
    name: runner-1
    service: { start: ["true"], stop: ["true"], status: ["sh", "-c", "id -u > ${marker}; exit 3"] }
`);
    const run2 = await spawnAgent(["check", "--config", custom], env).done;
    assert.equal(Number((await readFile(marker, "utf8")).trim()), w.runner.owner!.uid, `custom status command ran as the runner's user: ${run2.stderr}`);
  } finally {
    await w.close();
  }
});

test("privsep - a .service naming another unit is never handed to systemctl", async () => {
  const w = await openWorld({ runner: { serviceFile: true, serviceUnit: "debug-shell.service" } });
  const bin = await mkdtemp(join(tmpdir(), "rtr-fake-systemctl-"));
  try {
    const log = join(bin, "calls.log");
    await writeFile(join(bin, "systemctl"), `#!/bin/sh\necho "$@" >> ${log}\necho inactive\nexit 3\n`, { mode: 0o755 });
    const existing = w.github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
    w.runner.writeRunnerFiles({ agentId: existing.id, name: "runner-1", url: "https://github.com/acme" });
    const env = { ...w.env, PATH: `${bin}:${process.env.PATH}` };
    const run = await spawnAgent(["check"], env).done;
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /\.service names "debug-shell\.service", not an actions\.runner\.\*\.service unit/);
    const calls = await readFile(log, "utf8").catch(() => "");
    assert.ok(!calls.includes("debug-shell"), `systemctl was never asked about debug-shell: ${calls}`);
    // The same agent does use systemctl for a real runner unit (the fake is on its PATH).
    await writeFile(join(w.runner.dir, ".service"), "actions.runner.acme.runner-1.service\n");
    const ok = await spawnAgent(["check"], env).done;
    assert.match(await readFile(log, "utf8"), /is-active actions\.runner\.acme\.runner-1\.service/, ok.stdout);
  } finally {
    await rm(bin, { recursive: true, force: true });
    await w.close();
  }
});

test("privsep - runner files that are symbolic links out of the dir are refused and never read", async () => {
  const w = await openWorld({ runner: { serviceFile: true } });
  try {
    const target = await secretFile(w, "root-only", "ROOT-ONLY-CONTENT-9321");
    await rm(join(w.runner.dir, ".service"));
    await symlink(target, join(w.runner.dir, ".service"));
    const run = await spawnAgent(["check"], w.env).done;
    assert.equal(run.code, 1);
    assert.match(run.stderr, /\.service is a symbolic link: the agent never follows links in a runner dir/);
    assert.ok(!(run.stdout + run.stderr).includes("ROOT-ONLY-CONTENT"), "the link's target was never read");
    assert.equal(w.runner.invocations("config.sh").length, 0, "nothing was configured");

    const linkedDir = join(w.tmp, "runner-link");
    await symlink(w.runner.dir, linkedDir);
    await rm(join(w.runner.dir, ".service"));
    const viaLink = await spawnAgent(["check"], { ...w.env, RUNNER_DIR: linkedDir }).done;
    assert.equal(viaLink.code, 1);
    assert.match(viaLink.stderr, /runner dir .*runner-link is a symbolic link: set runners\[\]\.dir to the real path/);
  } finally {
    await w.close();
  }
});

test("privsep - hold replaces a .rtr-hold link planted in the runner dir, never writing through it", async () => {
  const w = await openWorld();
  try {
    const target = await secretFile(w, "root-owned", "ROOT-OWNED-CONTENT-5521");
    await symlink(target, join(w.runner.dir, ".rtr-hold"));
    const hold = await runInProcess(["hold", "runner-1"], w.env);
    assert.equal(hold.code, 0, hold.stderr);
    assert.equal(await readFile(target, "utf8"), "ROOT-OWNED-CONTENT-5521\n", "the link's target is untouched");
    const { lstat } = await import("node:fs/promises");
    const held = await lstat(join(w.runner.dir, ".rtr-hold"));
    assert.ok(held.isFile() && !held.isSymbolicLink(), ".rtr-hold is now a plain file of the agent's");
  } finally {
    await w.close();
  }
});

test("privsep - as root, code configs in the working directory are never loaded; YAML ones are", async () => {
  const w = await openWorld();
  const cwd = await mkdtemp(join(tmpdir(), "rtr-cwd-"));
  try {
    const marker = join(cwd, "code-ran");
    await writeFile(join(cwd, ".runner-token-refreshrc.mjs"), `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "ran");\nexport default { refresh: { threshold: 999 } };\n`);
    const code = await runInProcess(["check"], w.env, { cwd });
    assert.equal(code.code, 0, code.stderr);
    await assert.rejects(readFile(marker), "the .mjs config was not run");
    assert.equal((await w.metrics()).threshold, 300, "the default threshold: the .mjs config's 999 was not applied");
    await writeFile(join(cwd, ".runner-token-refreshrc.yaml"), "refresh: { threshold: 1000 }\n");
    const yaml = await runInProcess(["check"], w.env, { cwd });
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.equal((await w.metrics()).threshold, 1000, "the YAML config in the working directory was used");
    const explicit = join(cwd, "writable.config.mjs");
    await writeFile(explicit, "export default {};\n", { mode: 0o666 });
    await chmod(explicit, 0o666);
    const refused = await runInProcess(["check", "--config", explicit], w.env, { cwd });
    assert.equal(refused.code, 78);
    assert.match(refused.stderr, /writable\.config\.mjs: a JavaScript\/TypeScript config runs as code, and the agent runs as root: .*chmod go-w/);
  } finally {
    await rm(cwd, { recursive: true, force: true });
    await w.close();
  }
});

test("privsep - an agent running as its runner's own user is refused unless runAs accepts it", async () => {
  const w = await openWorld();
  const job = w.runner.owner!;
  try {
    const state = join(w.tmp, "job-state");
    await mkdir(state, { mode: 0o700 });
    chownTree(state, job);
    const env = { ...w.env, STATE_DIR: state, HOME: w.tmp, LOG_FILE: join(state, "agent.log") };
    const wrapper = ["setpriv", `--reuid=${job.uid}`, `--regid=${job.gid}`, "--init-groups"];
    const refused = await spawnAgent(["check"], env, { wrapper }).done;
    assert.equal(refused.code, 78, refused.stdout + refused.stderr);
    assert.match(refused.stderr, new RegExp(`belongs to "${JOB_USER}", the agent's own user, so the runner's jobs could read the agent's credentials`));
    assert.equal(w.runner.invocations("config.sh").length, 0);
  } finally {
    await w.close();
  }
});

test("privsep - unit names: only actions runner units pass", () => {
  assert.ok(isRunnerUnitName("actions.runner.acme.runner-1.service"));
  assert.ok(isRunnerUnitName("actions.runner.octo-org-repo.ci\\x2d01.service"));
  for (const bad of ["debug-shell.service", "actions.runner.x.service/../../y", "--global", "actions.runner..service x", "actions.runner.a.b.socket", "sshd.service"]) {
    assert.ok(!isRunnerUnitName(bad), bad);
  }
});
