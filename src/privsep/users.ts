/**
 * System users by name or uid: /etc/passwd first (no process to start), then `getent passwd`
 * for users that come from NSS (LDAP, sssd), as on most managed fleets.
 */
import type { Runtime } from "../runtime/types.ts";

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function parsePasswdLine(line: string): SystemUser | null {
  const parts = line.split(":");
  if (parts.length < 7 || !/^\d+$/.test(parts[2]) || !/^\d+$/.test(parts[3])) return null;
  return { name: parts[0], uid: Number(parts[2]), gid: Number(parts[3]), home: parts[5] || "/" };
}

function matches(user: SystemUser, key: string | number): boolean {
  return typeof key === "number" ? user.uid === key : user.name === key || (/^\d+$/.test(key) && user.uid === Number(key));
}

export async function lookupUser(runtime: Runtime, key: string | number): Promise<SystemUser | null> {
  const passwd = await runtime.files.readText("/etc/passwd").catch(() => "");
  for (const line of passwd.split("\n")) {
    const user = parsePasswdLine(line);
    if (user && matches(user, key)) return user;
  }
  const result = await runtime.spawn("getent", ["passwd", String(key)], { timeoutMs: 10_000, inheritEnv: false, env: { PATH: SYSTEM_PATH } });
  if (result.code !== 0) return null;
  return parsePasswdLine(result.stdout.split("\n")[0] ?? "");
}

/** The PATH of every program started as a runner's user: system dirs only, never the agent's. */
export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
