/**
 * The registration-token cache: one file per scope in the state dir, mode 0600, written
 * atomically. The only file the agent writes that holds a secret.
 */
import { join } from "node:path";
import { addSecret } from "../shared/redact.ts";
import { encodeToken, scopeKey, type Scope } from "../shared/scope.ts";
import type { Runtime } from "../runtime/types.ts";

export interface CachedToken {
  token: string;
  expiresAt: Date;
}

export class TokenCache {
  constructor(
    private readonly runtime: Runtime,
    private readonly stateDir: string,
  ) {}

  path(scope: Scope): string {
    return join(this.stateDir, "tokens", `${encodeToken(scopeKey(scope))}.json`);
  }

  /** The text last read per file, with the file's inode, size and mtime then (writes are renames: a new inode). */
  private readonly texts = new Map<string, { text: string; ino: number; size: number; mtimeMs: number }>();

  /** The file's text; not read again while the same file (inode, size, mtime) is there. */
  private async readText(path: string): Promise<string> {
    const stat = await this.runtime.files.stat(path);
    const known = this.texts.get(path);
    if (stat && known && stat.ino === known.ino && stat.size === known.size && stat.mtimeMs === known.mtimeMs) return known.text;
    this.texts.delete(path);
    const text = await this.runtime.files.readText(path);
    if (stat?.ino !== undefined) this.texts.set(path, { text, ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs });
    return text;
  }

  async read(scope: Scope): Promise<CachedToken | null> {
    let data: { token?: unknown; expires_at?: unknown };
    try {
      data = JSON.parse(await this.readText(this.path(scope)));
    } catch {
      return null;
    }
    if (typeof data.token !== "string" || typeof data.expires_at !== "string") return null;
    const expiresAt = new Date(data.expires_at);
    if (Number.isNaN(expiresAt.getTime())) return null;
    addSecret(data.token, expiresAt);
    return { token: data.token, expiresAt };
  }

  async write(scope: Scope, token: CachedToken): Promise<void> {
    await this.runtime.files.mkdir(join(this.stateDir, "tokens"), 0o700);
    const body = JSON.stringify({ scope: scopeKey(scope), token: token.token, expires_at: token.expiresAt.toISOString() });
    await this.runtime.files.writeAtomic(this.path(scope), `${body}\n`, 0o600);
  }
}

/** SPEC 6: refresh when `expires_at - now < threshold` (+ the daemon's random lead). */
export function needsRefresh(token: CachedToken | null, nowMs: number, thresholdSeconds: number, leadSeconds = 0): boolean {
  if (!token) return true;
  return token.expiresAt.getTime() - nowMs < (thresholdSeconds + leadSeconds) * 1000;
}
