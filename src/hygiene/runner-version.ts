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
import { findNewestDiag, readNewestDiag } from "../runner/local-signals.ts";

export type VersionSource = "bin-link" | "diag";
const SEMVER = /^\d+\.\d+\.\d+$/;

/** The version the newest diag log reports, or null. Exported for tests of the log format. */
export function versionFromDiag(text: string): string | null {
  let found: string | null = null;
  for (const m of text.matchAll(/(?:\bVersion: |Current runner version: ')(\d+\.\d+\.\d+)\b/g)) found = m[1];
  return found;
}

/** The version `bin` links to (`bin -> bin.X.Y.Z`), or null when `bin` is a plain dir or missing. */
export async function versionFromBinLink(runtime: Runtime, dir: string): Promise<string | null> {
  const bin = join(dir, "bin");
  const stat = await runtime.files.lstat(bin).catch(() => null);
  if (!stat?.isSymbolicLink) return null;
  const target = await runtime.files.readlink(bin).catch(() => "");
  const m = /^bin\.(.+)$/.exec(basename(target.replace(/\/+$/, "")));
  return m && SEMVER.test(m[1]) ? m[1] : null;
}

/**
 * The runner's version and where it was read. `remembered`: the version read from a diag log
 * before; the newest log is read again only when it is another file (a new listener start), since
 * the version line sits at a log's start and the logs grow large.
 */
export async function readRunnerVersion(
  runtime: Runtime,
  dir: string,
  remembered: { log: string | null; version: string | null },
): Promise<{ version: string; source: VersionSource; log: string | null } | null> {
  const linked = await versionFromBinLink(runtime, dir);
  if (linked) return { version: linked, source: "bin-link", log: null };
  const newest = await findNewestDiag(runtime, dir);
  if (!newest) return null;
  if (remembered.log === newest.name && remembered.version) return { version: remembered.version, source: "diag", log: newest.name };
  const log = await readNewestDiag(runtime, dir);
  const version = log ? versionFromDiag(log.text) : null;
  return version ? { version, source: "diag", log: log!.name } : null;
}

/** Negative when a < b. Versions are X.Y.Z. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
