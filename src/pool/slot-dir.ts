/**
 * A slot's directory: a fresh copy of the template, made of hard links where the file system
 * allows (a 200 MB runner costs a few inodes, not 200 MB) and copies elsewhere. The template is
 * never written: its files stay owned by root, so the pool's user can replace a file in its slot
 * (its directories are the user's) but never write through a link into the template.
 */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";

export interface SlotOwner {
  uid: number;
  gid: number;
}

export async function makeSlotDir(runtime: Runtime, template: string, slotDir: string, owner: SlotOwner): Promise<{ method: "link" | "copy" }> {
  let method: "link" | "copy" = "link";
  const walk = async (from: string, to: string): Promise<void> => {
    await runtime.files.mkdir(to, 0o755);
    await runtime.files.chown(to, owner.uid, owner.gid);
    for (const name of await runtime.files.readdir(from)) {
      const src = join(from, name);
      const dst = join(to, name);
      const stat = await runtime.files.lstat(src);
      if (!stat) continue;
      if (stat.isSymbolicLink) await runtime.files.symlink(await runtime.files.readlink(src), dst);
      else if (stat.isDirectory) await walk(src, dst);
      else if (method === "copy") await runtime.files.copyFile(src, dst);
      else {
        try {
          await runtime.files.link(src, dst);
        } catch (err) {
          // Another file system, or protected_hardlinks with a template root does not own.
          if (!["EXDEV", "EPERM", "EMLINK"].includes((err as { code?: string }).code ?? "")) throw err;
          method = "copy";
          await runtime.files.copyFile(src, dst);
        }
      }
    }
  };
  await walk(template, slotDir);
  return { method };
}
