/**
 * The runner's version, read from its dir without executing anything (`bin/Runner.Listener
 * --version` would run the runner's own binary, as its user, every check). Two sources, first
 * that answers:
 * 1. `bin` as a link to `bin.X.Y.Z`: every self-update leaves the runner so (actions/runner's
 *    update.sh makes `bin` a link to the new `bin.<version>` dir); a link, never followed.
 * 2. The newest `_diag/Runner_*.log`: the listener writes "Version: X.Y.Z" when it starts (and
 *    "Current runner version: 'X.Y.Z'" once connected); one log per start, so the newest log is
 *    the version running now.
 * A fresh unpacked runner that never ran has neither: its version is unknown (no age, no call).
 * `.runner` does not carry the version; the assemblies' file versions are not the runner's.
 */
import { basename, join } from "node:path";
import type { Runtime } from "../runtime/types.ts";
import { readNewestDiag } from "../runner/local-signals.ts";

export type VersionSource = "bin-link" | "diag";
const SEMVER = /^\d+\.\d+\.\d+$/;

/** The version the newest diag log reports, or null. Exported for tests of the log format. */
export function versionFromDiag(text: string): string | null {
  let found: string | null = null;
  for (const m of text.matchAll(/(?:\bVersion: |Current runner version: ')(\d+\.\d+\.\d+)\b/g)) found = m[1];
  return found;
}

/** `fromDiag`: the version already read from the newest diag log (undefined: read it here). */
export async function readRunnerVersion(runtime: Runtime, dir: string, fromDiag?: string | null): Promise<{ version: string; source: VersionSource } | null> {
  const bin = join(dir, "bin");
  const stat = await runtime.files.lstat(bin).catch(() => null);
  if (stat?.isSymbolicLink) {
    const target = await runtime.files.readlink(bin).catch(() => "");
    const m = /^bin\.(.+)$/.exec(basename(target.replace(/\/+$/, "")));
    if (m && SEMVER.test(m[1])) return { version: m[1], source: "bin-link" };
  }
  let version = fromDiag;
  if (version === undefined) {
    const log = await readNewestDiag(runtime, dir);
    version = log ? versionFromDiag(log.text) : null;
  }
  return version ? { version, source: "diag" } : null;
}

/** Negative when a < b. Versions are X.Y.Z. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
