/** Signals read off the host: a running job (Runner.Worker) and the runner's _diag logs. */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";

/** A Runner.Worker process whose binary or working dir lies in this runner dir means a job runs. */
export async function localJobRunning(runtime: Runtime, dir: string): Promise<boolean> {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  for (const p of await runtime.processes()) {
    const isWorker = p.cmdline.some((arg) => /(^|\/)Runner\.Worker(\.dll)?$/.test(arg)) || (p.exe ?? "").endsWith("/Runner.Worker");
    if (!isWorker) continue;
    const inDir = [p.exe, p.cwd, ...p.cmdline].some((x) => x && (x === dir || x.startsWith(prefix)));
    if (inDir) return true;
  }
  return false;
}

export type DiagFinding = "registration_deleted" | "session_conflict" | "signature_invalid" | "version_deprecated";

const PATTERNS: [DiagFinding, RegExp][] = [
  ["registration_deleted", /registration has been deleted from the server/i],
  ["session_conflict", /A session for this runner already exists/i],
  ["signature_invalid", /The signature is not valid/i],
  // Also logged, falsely, on any 403 from the broker host (actions/runner#3381): src/hygiene/deprecation.ts tells which.
  ["version_deprecated", /Runner version v?\S+ is deprecated and cannot receive messages/i],
];
const TAIL_BYTES = 64 * 1024;

/** What the newest Runner_*.log says, looking only at its tail (the logs grow large). */
export async function scanDiag(runtime: Runtime, dir: string): Promise<DiagFinding[]> {
  const log = await readNewestDiag(runtime, dir);
  if (!log) return [];
  const tail = log.text.slice(-TAIL_BYTES);
  return PATTERNS.filter(([, re]) => re.test(tail)).map(([finding]) => finding);
}

/** The newest `_diag/Runner_*.log` (one per listener start), whole, with when it was last written. */
export async function readNewestDiag(runtime: Runtime, dir: string): Promise<{ name: string; text: string; mtimeMs: number } | null> {
  const found = await findNewestDiag(runtime, dir);
  if (!found) return null;
  try {
    return { ...found, text: await runtime.files.readText(join(dir, "_diag", found.name)) };
  } catch {
    return null;
  }
}

/** The newest `_diag/Runner_*.log`'s name and last write, without reading it. */
export async function findNewestDiag(runtime: Runtime, dir: string): Promise<{ name: string; mtimeMs: number } | null> {
  const diag = join(dir, "_diag");
  let names: string[];
  try {
    names = (await runtime.files.readdir(diag)).filter((n) => /^Runner_.*\.log$/.test(n)).sort();
  } catch {
    return null;
  }
  const newest = names.at(-1);
  if (!newest) return null;
  // Never through a link or into a device: the runner's user could point the agent (maybe root)
  // at /dev/zero or another user's file.
  const diagStat = await runtime.files.lstat(diag).catch(() => null);
  const logStat = await runtime.files.lstat(join(diag, newest)).catch(() => null);
  if (!diagStat?.isDirectory || !logStat?.isFile) return null;
  return { name: newest, mtimeMs: logStat.mtimeMs };
}
