/**
 * Pools from the config file (SPEC 14), checked when the config loads: every mistake is one line
 * naming `pools[i].field` and the fix, exit 78. The group name is resolved later, once per scope,
 * because that needs GitHub.
 */
import { isAbsolute, join, relative, resolve } from "node:path";
import { ConfigError } from "../shared/errors.ts";
import type { Runtime } from "../runtime/types.ts";
import type { PoolConfig } from "../config/types.ts";
import type { FileConfig } from "../config/schema.ts";
import { lookupUser } from "../privsep/users.ts";

/** Slots must be reachable by the pool's user, the state dir must not: so they live beside it. */
export function defaultPoolsDir(stateDir: string): string {
  return `${stateDir.replace(/\/+$/, "")}-pools`;
}

function inside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

export async function resolvePools(runtime: Runtime, entries: FileConfig["pools"], where: { file: string; baseDir: string; stateDir: string }): Promise<PoolConfig[]> {
  const seen = new Map<string, number>();
  const out: PoolConfig[] = [];
  for (const [i, p] of entries.entries()) {
    const at = `${where.file}: pools[${i}]`;
    if (seen.has(p.name)) throw new ConfigError(`${at}.name: "${p.name}" is also pools[${seen.get(p.name)}].name: pool names must be unique`);
    seen.set(p.name, i);
    const template = resolve(where.baseDir, p.template);
    const stat = await runtime.files.stat(template);
    if (!stat?.isDirectory) throw new ConfigError(`${at}.template: ${template} is not a directory: unpack the actions runner there (docs/pools.md)`);
    const runSh = await runtime.files.stat(join(template, "run.sh"));
    if (!runSh?.isFile || !(runSh.mode & 0o111)) throw new ConfigError(`${at}.template: ${template} has no executable run.sh: unpack the actions runner package there (docs/pools.md)`);
    const user = await lookupUser(runtime, p.runAs);
    if (!user) throw new ConfigError(`${at}.runAs: there is no user "${p.runAs}" on this host: create the user jobs run as (useradd --system ${p.runAs})`);
    if (user.uid === runtime.uid()) {
      throw new ConfigError(`${at}.runAs: "${p.runAs}" is the agent's own user: jobs would read the agent's credentials; give jobs a user of their own (SPEC 15)`);
    }
    if (runtime.uid() !== 0) throw new ConfigError(`${at}.runAs: the agent must run as root to start runners as "${p.runAs}" (the shipped unit does)`);
    const baseDir = p.baseDir ? resolve(where.baseDir, p.baseDir) : defaultPoolsDir(where.stateDir);
    if (inside(baseDir, where.stateDir)) {
      throw new ConfigError(`${at}.baseDir: ${baseDir} is inside the state dir, which ${p.runAs} must not enter: put slots beside it (default ${defaultPoolsDir(where.stateDir)})`);
    }
    if (inside(baseDir, template) || inside(template, baseDir)) throw new ConfigError(`${at}.baseDir: ${baseDir} overlaps the template ${template}: the template is never written; choose another folder`);
    out.push({ name: p.name, scope: p.scope, size: p.size, labels: p.labels, group: p.group, groupId: p.groupId, template, baseDir, runAs: p.runAs, workFolder: p.workFolder });
  }
  return out;
}
