// Shared by the config.sh / svc.sh stand-ins. Plain JavaScript run by `node` so the stand-ins
// need no loader; they are copied into <runner dir>/.fake/ by test/helpers/runner-dir.ts.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const RUNNER_VERSION = "2.330.0";
export const root = process.env.FAKE_RUNNER_ROOT ?? process.cwd();
export const fakeDir = join(root, ".fake");
export const at = (name) => join(root, name);

export function logInvocation(script) {
  const env = process.env;
  const entry = {
    script,
    argv: process.argv.slice(2),
    env: {
      ACTIONS_RUNNER_INPUT_TOKEN_present: Boolean(env.ACTIONS_RUNNER_INPUT_TOKEN),
      RUNNER_ALLOW_RUNASROOT: env.RUNNER_ALLOW_RUNASROOT ?? null,
      // names only: the values may be secrets
      inputs: Object.keys(env).filter((k) => k.startsWith("ACTIONS_RUNNER_INPUT_")).sort(),
      names: Object.keys(env).sort(),
    },
    uid: process.getuid?.() ?? -1,
    pid: process.pid,
    time: Date.now(),
  };
  appendFileSync(join(fakeDir, "argv.log"), JSON.stringify(entry) + "\n");
}

// Lets cleanup() kill stand-ins the product left running (a hung config.sh, for instance).
export function trackPid() {
  const dir = join(fakeDir, "pids");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, String(process.pid));
  writeFileSync(file, "");
  const forget = () => rmSync(file, { force: true });
  process.on("exit", forget);
  // die by the signal itself so the parent sees the real cause, but drop the pid file first
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) {
    process.once(sig, () => {
      forget();
      process.kill(process.pid, sig);
    });
  }
}

export function readFake(name, fallback) {
  try {
    return readFileSync(join(fakeDir, name), "utf8").trim();
  } catch {
    return fallback;
  }
}

export function writeFake(name, text) {
  writeFileSync(join(fakeDir, name), text);
}

/** The runner writes its JSON with a UTF-8 BOM (.NET Encoding.UTF8); jitconfig files are raw. */
export function readJson(path) {
  return JSON.parse(readFileSync(path, "utf8").replace(/^\uFEFF/, ""));
}

/** The runner reads the migrated file first when present. */
export function readRunnerSettings() {
  for (const f of [".runner_migrated", ".runner"]) if (existsSync(at(f))) return readJson(at(f));
  return null;
}

export function isConfigured() {
  return existsSync(at(".runner")) || existsSync(at(".runner_migrated"));
}

export async function fakePost(path, body) {
  const res = await fetch(readFake("github-url", "") + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

export function checkRoot() {
  const enabled = process.env.FAKE_RUNNER_CHECK_ROOT === "1" || existsSync(join(fakeDir, "check-root"));
  // FAKE_RUNNER_UID lets a test run by an ordinary user see what root would see.
  const uid = process.env.FAKE_RUNNER_UID !== undefined ? Number(process.env.FAKE_RUNNER_UID) : process.getuid?.();
  if (enabled && uid === 0 && !process.env.RUNNER_ALLOW_RUNASROOT) {
    console.log("Must not run with sudo");
    process.exit(1);
  }
}

export function fail(message, code = 1) {
  process.stderr.write(message + "\n");
  process.exit(code);
}

/** The API host the runner talks to for a given --url (github.com, GHE.com or GHES). */
export function apiBase(url) {
  try {
    const u = new URL(url);
    if (u.hostname === "github.com") return "https://api.github.com";
    if (u.hostname.endsWith(".ghe.com")) return `https://api.${u.hostname}`;
    return `${u.protocol}//${u.host}/api/v3`;
  } catch {
    return "https://api.github.com";
  }
}

/** `actions.runner.<owner-repo | org | enterprises-slug>.<name>.service`, at most 150 chars. */
export function unitName(gitHubUrl, agentName) {
  let scope = "unknown";
  try {
    scope = new URL(gitHubUrl).pathname.split("/").filter(Boolean).join("-");
  } catch {
    // keep "unknown"
  }
  const make = (s, n) => `actions.runner.${s}.${n}.service`;
  let name = make(scope, agentName);
  if (name.length > 150) {
    const shortScope = scope.slice(0, 45);
    const over = name.length - 150 - (scope.length - shortScope.length);
    name = make(shortScope, over > 0 ? agentName.slice(0, agentName.length - over) : agentName);
  }
  return name;
}
