/**
 * The state dir: given explicitly, else /var/lib/runner-token-refresh when writable (the systemd
 * unit's StateDirectory=), else $XDG_STATE_HOME/runner-token-refresh (~/.local/state/...).
 */
import { join } from "node:path";
import { ConfigError } from "../shared/errors.ts";
import type { Runtime } from "../runtime/types.ts";

const SYSTEM_STATE_DIR = "/var/lib/runner-token-refresh";

async function usable(runtime: Runtime, dir: string, create: boolean): Promise<boolean> {
  try {
    if (create) await runtime.files.mkdir(dir, 0o750);
    else if (!(await runtime.files.stat(dir))) return false;
    await runtime.files.assertWritable(dir);
    return true;
  } catch {
    return false;
  }
}

export function xdgStateDir(runtime: Runtime): string {
  const base = runtime.env.XDG_STATE_HOME || join(runtime.homedir(), ".local", "state");
  return join(base, "runner-token-refresh");
}

/** `create` is false for --dry-run, which writes nothing: then an existing dir is enough. */
export async function chooseStateDir(runtime: Runtime, explicit: { path: string; from: string } | undefined, create: boolean): Promise<string> {
  if (explicit) {
    if (await usable(runtime, explicit.path, create)) return explicit.path;
    if (!create) return explicit.path;
    throw new ConfigError(`${explicit.from}: state dir ${explicit.path} cannot be created or written by this user: fix its owner/mode or choose another with --state-dir`);
  }
  if (await usable(runtime, SYSTEM_STATE_DIR, false)) return SYSTEM_STATE_DIR;
  const xdg = xdgStateDir(runtime);
  if (await usable(runtime, xdg, create) || !create) return xdg;
  throw new ConfigError(`no writable state dir: ${SYSTEM_STATE_DIR} and ${xdg} cannot be written: pass --state-dir DIR (or set STATE_DIR)`);
}
