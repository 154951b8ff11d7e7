/**
 * Moves a runner's registration files aside into the state dir before re-configuring, and puts
 * them back when configuration fails (SPEC 5 step 3). Not `config.sh remove --local`: the runner
 * refuses that while its service is installed, and a remote remove must never be needed.
 */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";
import { REGISTRATION_FILES, parseRunnerFile } from "./files.ts";

export interface MovedAside {
  dir: string;
  asideDir: string;
  files: string[];
  /** The agentId the moved `.runner` carried: an id this host had. */
  previousAgentId: number | null;
}

async function move(runtime: Runtime, from: string, to: string): Promise<void> {
  try {
    await runtime.files.rename(from, to);
  } catch (err) {
    // The state dir may be on another filesystem: copy, then remove.
    if ((err as { code?: string }).code !== "EXDEV") throw err;
    await runtime.files.copyFile(from, to);
    await runtime.files.remove(from);
  }
}

export async function moveAside(runtime: Runtime, dir: string, asideRoot: string): Promise<MovedAside> {
  const asideDir = join(asideRoot, `${Date.now()}`);
  await runtime.files.mkdir(asideDir, 0o700);
  const files: string[] = [];
  let previousAgentId: number | null = null;
  for (const name of REGISTRATION_FILES) {
    const from = join(dir, name);
    const stat = await runtime.files.lstat(from);
    if (!stat) continue;
    // Checked again here: the runner's user may have planted a link since the pass looked.
    if (stat.isSymbolicLink) throw Object.assign(new Error(`${from} is a symbolic link: not moving it`), { code: "ELOOP" });
    if (name === ".runner" || name === ".runner_migrated") {
      const parsed = parseRunnerFile(await runtime.files.readText(from).catch(() => ""), name);
      previousAgentId ??= parsed.runner?.agentId ?? null;
    }
    await move(runtime, from, join(asideDir, name));
    files.push(name);
  }
  return { dir, asideDir, files, previousAgentId };
}

/** Puts the old registration back, first removing whatever a failed config.sh left behind. */
export async function restore(runtime: Runtime, moved: MovedAside): Promise<void> {
  for (const name of REGISTRATION_FILES) {
    if (moved.files.includes(name)) continue;
    await runtime.files.remove(join(moved.dir, name));
  }
  for (const name of moved.files) await move(runtime, join(moved.asideDir, name), join(moved.dir, name));
  await runtime.files.remove(moved.asideDir);
}

/** The new registration is confirmed: the old key is dead weight (and a private key): delete it. */
export async function discard(runtime: Runtime, moved: MovedAside): Promise<void> {
  await runtime.files.remove(moved.asideDir);
}
