/**
 * File operations for Node (and Deno's node: compatibility, which the Deno runtime reuses).
 *
 * Metadata calls (stat, lstat, readdir, mkdir, rename) and reads of small regular files are made
 * synchronously: on a local disk each is a few microseconds in the page cache, while the same call
 * through libuv's thread pool costs ~50 µs of CPU in hand-offs (futex, eventfd, epoll) and a
 * promise. A daemon pass makes dozens of them per runner (issue 18). What may block for long stays
 * asynchronous: fsync, large files, anything that is not a regular file (a FIFO planted in a runner
 * dir must not block the event loop).
 */
import { closeSync, constants as fsConstants, fchmodSync, fchownSync, fstatSync, fsync, lstatSync, mkdirSync, openSync, promises as fs, readdirSync, readSync, realpathSync, renameSync, rmdirSync, statSync, unlinkSync, utimesSync, writeSync, type Stats } from "node:fs";
import { Buffer } from "node:buffer";
import { dirname } from "node:path";
import process from "node:process";
import lockfile from "proper-lockfile";
import type { FileStat, RuntimeFiles } from "./types.ts";

/** Files up to this size are read synchronously (state files, runner files, /proc entries). */
const SYNC_READ_MAX = 1024 * 1024;

const fsyncFd = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));

async function fsyncDir(dir: string): Promise<void> {
  // A rename is durable only once the directory entry is flushed too.
  let fd: number;
  try {
    fd = openSync(dir, "r");
  } catch {
    return;
  }
  try {
    await fsyncFd(fd);
  } catch {
    // Some filesystems refuse to sync directories; the rename is still atomic.
  } finally {
    closeSync(fd);
  }
}

function describe(s: Stats): FileStat {
  return { isFile: s.isFile(), isDirectory: s.isDirectory(), isSymbolicLink: s.isSymbolicLink(), mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtimeMs: s.mtimeMs, size: s.size, ino: s.ino };
}

function statWith(how: typeof statSync, path: string): FileStat | null {
  try {
    const s = how(path, { throwIfNoEntry: false });
    return s ? describe(s) : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return null;
    throw err;
  }
}

/**
 * A small regular file read synchronously (O_NONBLOCK: opening a FIFO does not wait for a
 * writer); anything else, or a large file, through the asynchronous call.
 */
async function readText(path: string): Promise<string> {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  let chunks: Buffer[] | null = null;
  try {
    const s = fstatSync(fd);
    if (s.isFile() && s.size <= SYNC_READ_MAX) {
      chunks = [];
      // /proc files report size 0: read until the end whatever the size said.
      for (;;) {
        const buf = Buffer.allocUnsafe(Math.max(4096, s.size + 1));
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        chunks.push(buf.subarray(0, n));
        if (chunks.length * buf.length > SYNC_READ_MAX * 4) break;
      }
    }
  } finally {
    closeSync(fd);
  }
  if (chunks) return chunks.length === 1 ? chunks[0].toString("utf8") : Buffer.concat(chunks).toString("utf8");
  return fs.readFile(path, "utf8");
}

/** The end of a log that grows for days: a positional read of its last bytes, not the whole file. */
async function readTail(path: string, maxBytes: number): Promise<string> {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const s = fstatSync(fd);
    if (!s.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: "EINVAL" });
    const length = Math.min(s.size, maxBytes);
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, s.size - length + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

let tmpCounter = 0;

/**
 * Temp file in the same dir, fsync, rename (what write-file-atomic does, with one call through the
 * thread pool instead of a dozen): symbolic links at `path` are followed and an existing file's
 * owner is kept, as before.
 */
async function writeAtomic(path: string, data: string, mode = 0o644, options: { syncDir?: boolean; replaceLink?: boolean } = {}): Promise<void> {
  let target = path;
  let existing = lstatSync(path, { throwIfNoEntry: false });
  if (existing?.isSymbolicLink() && options.replaceLink) {
    existing = undefined; // the rename below replaces the link, never what it points to
  } else if (existing?.isSymbolicLink()) {
    target = realpathSync.native(path);
    existing = statSync(target, { throwIfNoEntry: false });
  }
  const tmp = `${target}.${process.pid}.${++tmpCounter}.tmp`;
  // O_TRUNC, not O_EXCL: a temp file left by a crashed process that had the same pid is reused.
  const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, mode);
  let renamed = false;
  try {
    try {
      const bytes = Buffer.from(data, "utf8");
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
      // Another user's file stays theirs (compared by uid alone: Deno asks for a permission to
      // read the gid that the agent's documented set does not give).
      if (existing && (typeof process.getuid !== "function" || existing.uid !== process.getuid())) {
        try {
          fchownSync(fd, existing.uid, existing.gid);
        } catch (err) {
          // Only root may give a file away; anyone else keeps it as their own.
          if (typeof process.getuid === "function" && process.getuid() === 0) throw err;
        }
      }
      fchmodSync(fd, mode);
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
    renamed = true;
  } finally {
    if (!renamed) {
      try {
        unlinkSync(tmp);
      } catch {
        // Already gone.
      }
    }
  }
  if (options.syncDir !== false) await fsyncDir(dirname(target));
}

const done = <T>(cb: (err: NodeJS.ErrnoException | null, value?: T) => void, fn: () => T) => {
  let value: T;
  try {
    value = fn();
  } catch (err) {
    queueMicrotask(() => cb(err as NodeJS.ErrnoException));
    return;
  }
  queueMicrotask(() => cb(null, value));
};

/** The calls proper-lockfile makes (mkdir, stat, utimes, rmdir), made synchronously (see the top). */
const lockFs = {
  mkdir: (path: string, cb: (err: NodeJS.ErrnoException | null) => void) => done(cb, () => void mkdirSync(path)),
  stat: (path: string, cb: (err: NodeJS.ErrnoException | null, stat?: Stats) => void) => done(cb, () => statSync(path)),
  utimes: (path: string, atime: Date, mtime: Date, cb: (err: NodeJS.ErrnoException | null) => void) => done(cb, () => utimesSync(path, atime, mtime)),
  rmdir: (path: string, cb: (err: NodeJS.ErrnoException | null) => void) => done(cb, () => rmdirSync(path)),
  realpath: (path: string, cb: (err: NodeJS.ErrnoException | null, path?: string) => void) => done(cb, () => realpathSync(path)),
};

export const nodeFiles: RuntimeFiles = {
  readText,
  readTail,
  writeAtomic,

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
    mkdirSync(path, { recursive: true, mode });
  },

  stat: async (path) => statWith(statSync, path),
  lstat: async (path) => statWith(lstatSync, path),

  readdir: async (path) => readdirSync(path),

  async rename(from, to) {
    renameSync(from, to);
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
    // The lock is the directory `<path>.lock` (proper-lockfile, `realpath: false`: `path` itself
    // is never opened or created, so a symlink planted there by a runner's user leads nowhere).
    // Its parent is made when missing (a state dir's locks/ on first use).
    let parentMade = false;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        // `update` keeps the lock's mtime fresh so a long registration is never seen as stale;
        // a crashed holder's lock goes stale after staleMs and is taken over.
        const release = await lockfile.lock(path, {
          stale: staleMs,
          update: Math.floor(staleMs / 2),
          realpath: false,
          fs: lockFs,
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
        if ((err as NodeJS.ErrnoException).code === "ENOENT" && !parentMade) {
          mkdirSync(dirname(path), { recursive: true });
          parentMade = true;
          continue;
        }
        if ((err as NodeJS.ErrnoException).code !== "ELOCKED") throw err;
        if (Date.now() >= deadline || signal?.aborted) return null;
        await new Promise((r) => setTimeout(r, Math.min(250, Math.max(10, deadline - Date.now()))));
      }
    }
  },
};
