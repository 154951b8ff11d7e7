/** Signals read off the host: a running job (Runner.Worker) and the runner's _diag logs. */
import { join } from "node:path";
import type { FileStat, Runtime } from "../runtime/types.ts";

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

/**
 * Per runner dir: the newest log's name as of the `_diag` dir's identity (a new log is a new entry:
 * the dir's mtime moves), and the findings as of that log's identity (it only grows). A pass whose
 * runner wrote nothing new costs two lstats here, not a listing and a read (issue 18).
 */
interface DiagMemo {
  dirId: string;
  listedAt: number;
  newest: string | null;
  logId?: string;
  findings?: DiagFinding[];
}
const memos = new Map<string, DiagMemo>();
const MAX_MEMOS = 4096;
/** Listed again after this long whatever the dir's mtime says (a file system with coarse timestamps). */
const RELIST_MS = 300_000;

const identity = (s: FileStat) => `${s.ino ?? "?"}:${s.size}:${s.mtimeMs}`;

/** What the newest Runner_*.log says, looking only at its tail (the logs grow large). */
export async function scanDiag(runtime: Runtime, dir: string): Promise<DiagFinding[]> {
  const found = await findNewestDiag(runtime, dir);
  if (!found) return [];
  const memo = memos.get(dir);
  const logId = `${found.name}@${found.id}`;
  if (memo?.logId === logId && memo.findings) return memo.findings;
  let tail: string;
  try {
    tail = await runtime.files.readTail(join(dir, "_diag", found.name), TAIL_BYTES);
  } catch {
    return [];
  }
  const findings = PATTERNS.filter(([, re]) => re.test(tail)).map(([finding]) => finding);
  if (memo) Object.assign(memo, { logId, findings });
  return findings;
}

/** The newest `_diag/Runner_*.log` (one per listener start), whole, with when it was last written. */
export async function readNewestDiag(runtime: Runtime, dir: string): Promise<{ name: string; text: string; mtimeMs: number } | null> {
  const found = await findNewestDiag(runtime, dir);
  if (!found) return null;
  try {
    return { name: found.name, mtimeMs: found.mtimeMs, text: await runtime.files.readText(join(dir, "_diag", found.name)) };
  } catch {
    return null;
  }
}

/** The newest `_diag/Runner_*.log`'s name, last write and identity, without reading it. */
export async function findNewestDiag(runtime: Runtime, dir: string): Promise<{ name: string; mtimeMs: number; id: string } | null> {
  const diag = join(dir, "_diag");
  // Never through a link or into a device: the runner's user could point the agent (maybe root)
  // at /dev/zero or another user's file.
  const diagStat = await runtime.files.lstat(diag).catch(() => null);
  if (!diagStat?.isDirectory) {
    memos.delete(dir);
    return null;
  }
  const dirId = `${diagStat.ino ?? "?"}:${diagStat.mtimeMs}`;
  let memo = memos.get(dir);
  if (memo?.dirId !== dirId || Date.now() - memo.listedAt > RELIST_MS) {
    let names: string[];
    try {
      names = (await runtime.files.readdir(diag)).filter((n) => /^Runner_.*\.log$/.test(n)).sort();
    } catch {
      return null;
    }
    memos.delete(dir);
    if (memos.size >= MAX_MEMOS) memos.delete(memos.keys().next().value!);
    memo = { dirId, listedAt: Date.now(), newest: names.at(-1) ?? null };
    memos.set(dir, memo);
  }
  if (!memo.newest) return null;
  const logStat = await runtime.files.lstat(join(diag, memo.newest)).catch(() => null);
  if (!logStat?.isFile) return null;
  return { name: memo.newest, mtimeMs: logStat.mtimeMs, id: identity(logStat) };
}
