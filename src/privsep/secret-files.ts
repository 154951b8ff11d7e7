/**
 * Proves, with a real process of each runner's user, that it cannot read what the agent guards
 * (SPEC 15): secret files, the config file when it holds an inline secret, NATS credentials and
 * TLS key, the state dir and the token cache. Asking the kernel (`test -r` as that user) instead
 * of reasoning about modes gets groups, ACLs and parent directories right.
 */
import { join } from "node:path";
import { ConfigError } from "../shared/errors.ts";
import type { Runtime } from "../runtime/types.ts";
import type { AgentConfig } from "../config/types.ts";
import { secretFiles } from "../config/secrets.ts";
import { runnerEnv } from "./child-env.ts";
import { switchTo } from "./run-as.ts";
import type { SystemUser } from "./users.ts";

/** A path the agent guards, and what to tell the operator about it. */
export interface GuardedPath {
  path: string;
  what: string;
  /** Directories count as exposed when the user may list or enter them. */
  dir: boolean;
}

export class SecretExposedError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = "SecretExposedError";
  }
}

// One shell for all paths: a start-up check costs one process per runner user, not one per file.
const PROBE = 'for f do if [ -d "$f" ]; then if [ -r "$f" ] || [ -x "$f" ]; then printf "%s\\n" "$f"; fi; elif [ -r "$f" ]; then printf "%s\\n" "$f"; fi; done';

export async function guardedPaths(runtime: Runtime, config: AgentConfig): Promise<GuardedPath[]> {
  const out: GuardedPath[] = [];
  const add = async (path: string | undefined, what: string) => {
    if (!path) return;
    const stat = await runtime.files.stat(path).catch(() => null);
    if (stat) out.push({ path, what, dir: stat.isDirectory });
  };
  for (const [path, what] of secretFiles) await add(path, `secret file (${what})`);
  await add(config.nats?.credsFile, "NATS credentials (nats.credsFile)");
  await add(config.nats?.tls?.key, "NATS TLS key (nats.tls.key)");
  await add(config.state.dir, "state dir");
  const tokens = join(config.state.dir, "tokens");
  await add(tokens, "token cache");
  for (const name of await runtime.files.readdir(tokens).catch(() => [] as string[])) await add(join(tokens, name), "token cache");
  return out;
}

/** The guarded paths this user can read (or list or enter, for directories). */
export async function readableBy(runtime: Runtime, user: SystemUser, paths: GuardedPath[]): Promise<GuardedPath[]> {
  if (!paths.length) return [];
  const result = await runtime.spawn("/bin/sh", ["-c", PROBE, "sh", ...paths.map((p) => p.path)], {
    user: switchTo(runtime, user),
    inheritEnv: false,
    env: runnerEnv(runtime, user),
    timeoutMs: 30_000,
  });
  if (result.code !== 0 || result.spawnError) {
    throw new ConfigError(`cannot check what user "${user.name}" can read (${result.spawnError?.message ?? (result.stderr.trim() || `exit ${result.code}`)}): is setpriv (util-linux) installed?`);
  }
  const readable = new Set(result.stdout.split("\n").filter(Boolean));
  return paths.filter((p) => readable.has(p.path));
}

export async function assertSecretsUnreadable(runtime: Runtime, config: AgentConfig, users: { user: SystemUser; where: string }[]): Promise<void> {
  const paths = await guardedPaths(runtime, config);
  for (const { user, where } of users) {
    const exposed = await readableBy(runtime, user, paths);
    if (!exposed.length) continue;
    const first = exposed[0];
    const fix = first.dir ? `chmod 0700 ${first.path} (or 0750 with a group that ${user.name} is not in)` : `chmod 0600 ${first.path} and keep it owned by the agent's user`;
    const more = exposed.length > 1 ? ` (and ${exposed.length - 1} more: ${exposed.slice(1).map((p) => p.path).join(", ")})` : "";
    throw new SecretExposedError(`${first.path}: the ${first.what} is readable by "${user.name}", the user ${where} runs as (and so its jobs): ${fix}${more}`);
  }
}
