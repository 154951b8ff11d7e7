// Real system users for the privilege-separation tests (CI runs as root). The runner's user is
// never the agent's: tests create it, own runner dirs with it, and prove what it cannot read.
import { execFileSync, spawnSync } from "node:child_process";
import process from "node:process";

/** The user test runner dirs belong to (config.sh, svc.sh and jobs run as it). */
export const JOB_USER = "rtr-job";
/** A second runner user, for "host A cannot read host B" style checks. */
export const OTHER_JOB_USER = "rtr-job2";

export const IS_ROOT = typeof process.getuid === "function" && process.getuid() === 0;

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

function lookup(name: string): TestUser | null {
  const r = spawnSync("getent", ["passwd", name], { encoding: "utf8" });
  if (r.status !== 0) return null;
  const parts = r.stdout.trim().split(":");
  return { name, uid: Number(parts[2]), gid: Number(parts[3]) };
}

/** Creates a system user once; test files run in parallel, so losing a useradd race is fine. */
export function ensureUser(name: string): TestUser {
  for (let attempt = 0; attempt < 20; attempt++) {
    const found = lookup(name);
    if (found) return found;
    spawnSync("useradd", ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name], { encoding: "utf8" });
    if (!lookup(name)) execFileSync("sleep", ["0.1"]);
  }
  throw new Error(`could not create the test user ${name} (the tests need root and useradd)`);
}

/** Runs a command as `user` through setpriv, with a minimal environment; returns exit code and output. */
export function runAsUser(user: TestUser, argv: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("setpriv", [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "--", ...argv], {
    encoding: "utf8",
    env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function chownTree(path: string, user: TestUser): void {
  execFileSync("chown", ["-R", `${user.uid}:${user.gid}`, path]);
}
