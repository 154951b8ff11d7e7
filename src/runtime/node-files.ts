/** File operations for Node (and Deno's node: compatibility, which the Deno runtime reuses). */
import { promises as fs, constants as fsConstants } from "node:fs";
import { dirname } from "node:path";
import writeFileAtomic from "write-file-atomic";
import lockfile from "proper-lockfile";
import type { FileStat, RuntimeFiles } from "./types.ts";

async function fsyncDir(dir: string): Promise<void> {
  // A rename is durable only once the directory entry is flushed too.
  try {
    const handle = await fs.open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems refuse to open directories for sync; the rename is still atomic.
  }
}

async function statWith(how: typeof fs.stat, path: string): Promise<FileStat | null> {
  try {
    const s = await how(path);
    return { isFile: s.isFile(), isDirectory: s.isDirectory(), isSymbolicLink: s.isSymbolicLink(), mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtimeMs: s.mtimeMs, size: s.size };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return null;
    throw err;
  }
}

export const nodeFiles: RuntimeFiles = {
  readText: (path) => fs.readFile(path, "utf8"),

  async writeAtomic(path, data, mode = 0o644, options = {}) {
    await writeFileAtomic(path, data, { mode, fsync: true });
    if (options.syncDir !== false) await fsyncDir(dirname(path));
  },

  async appendDurable(path, data) {
    const handle = await fs.open(path, "a", 0o600);
    try {
      await handle.appendFile(data, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
  },

  async mkdir(path, mode = 0o755) {
    await fs.mkdir(path, { recursive: true, mode });
  },

  stat: (path) => statWith(fs.stat, path),
  lstat: (path) => statWith(fs.lstat, path),

  readdir: (path) => fs.readdir(path),

  async rename(from, to) {
    await fs.rename(from, to);
  },

  copyFile: (from, to) => fs.copyFile(from, to),

  async remove(path) {
    await fs.rm(path, { recursive: true, force: true });
  },

  chmod: (path, mode) => fs.chmod(path, mode),
  chown: (path, uid, gid) => fs.lchown(path, uid, gid),
  link: (from, to) => fs.link(from, to),
  symlink: (target, path) => fs.symlink(target, path),
  readlink: (path) => fs.readlink(path),

  async assertWritable(path) {
    await fs.access(path, fsConstants.W_OK | fsConstants.X_OK);
  },

  async lock(path, timeoutMs, staleMs = 60_000, signal) {
    await fs.mkdir(dirname(path), { recursive: true });
    // proper-lockfile needs the locked file to exist; the lock itself is `<path>.lock`. The lock
    // lives in a runner dir that the runner's user (and its jobs) can write: O_NOFOLLOW, so a
    // planted symlink never makes the agent (root) create or open a file elsewhere.
    const handle = await fs.open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW, 0o600);
    await handle.close();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        // `update` keeps the lock's mtime fresh so a long registration is never seen as stale;
        // a crashed holder's lock goes stale after staleMs and is taken over.
        const release = await lockfile.lock(path, {
          stale: staleMs,
          update: Math.floor(staleMs / 2),
          realpath: false,
          // The default throws from a timer and kills the process mid-registration; a compromised
          // lock (its dir removed by hand, a long pause) is noticed again at the next acquisition.
          onCompromised: () => {},
        });
        return async () => {
          try {
            await release();
          } catch {
            // Already released or compromised: nothing left to undo.
          }
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ELOCKED") throw err;
        if (Date.now() >= deadline || signal?.aborted) return null;
        await new Promise((r) => setTimeout(r, Math.min(250, Math.max(10, deadline - Date.now()))));
      }
    }
  },
};
