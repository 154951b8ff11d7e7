/**
 * actions/runner's newest release, asked at most once a day per state dir and cached there with
 * its ETag: the daily call is conditional (If-None-Match), and a 304 does not count against the
 * rate limit. Every release seen is kept, so a runner two releases behind is aged from the
 * release right after its own version once the agent has seen it (until then, from the latest:
 * an age the agent can only under-state).
 */
import { join } from "node:path";
import { AbortedError, GitHubError, errorMessage } from "../shared/errors.ts";
import type { Scope } from "../shared/scope.ts";
import type { Logger } from "../shared/logger.ts";
import type { AgentContext, PassState } from "../agent/context.ts";
import { ReleaseLookupError } from "./errors.ts";
import { hygieneDir, readJsonFile, writeJsonFile } from "./memory.ts";
import { compareVersions } from "./runner-version.ts";

const DAY = 86_400;
/** After a failed lookup: try again within the hour, not the next day. */
const RETRY_AFTER_FAILURE = 3600;

export interface ReleaseCache {
  etag: string | null;
  /** The latest release's version (X.Y.Z, no "v"). */
  latest: string | null;
  /** Every release seen, with when it was published (ISO). */
  releases: { version: string; publishedAt: string }[];
  /** Epoch seconds before which no call is made. */
  nextCheckAt: number;
}

const emptyCache = (): ReleaseCache => ({ etag: null, latest: null, releases: [], nextCheckAt: 0 });
const cacheFile = (ctx: AgentContext) => join(hygieneDir(ctx), "runner-release.json");
/** Also per process: a --dry-run writes no file, and several runners share one pass. */
const inProcess = new WeakMap<AgentContext, ReleaseCache>();

interface ReleaseBody {
  tag_name?: unknown;
  published_at?: unknown;
}

function parseRelease(body: ReleaseBody): { version: string; publishedAt: string } {
  const tag = typeof body.tag_name === "string" ? body.tag_name.replace(/^v/, "") : "";
  const published = typeof body.published_at === "string" && Number.isFinite(Date.parse(body.published_at)) ? body.published_at : null;
  if (!/^\d+\.\d+\.\d+$/.test(tag) || !published) {
    throw new ReleaseLookupError(`actions/runner's latest release has no usable tag_name/published_at (${JSON.stringify(body.tag_name)}): is github.apiUrl a GHES without github.com's releases?`);
  }
  return { version: tag, publishedAt: published };
}

export async function latestRelease(ctx: AgentContext, pass: PassState, scope: Scope, log: Logger): Promise<ReleaseCache> {
  const now = Math.floor(ctx.now() / 1000);
  const cached = inProcess.get(ctx);
  let cache = cached && cached.nextCheckAt > now ? cached : await readJsonFile(ctx, cacheFile(ctx), emptyCache);
  if (cache.nextCheckAt > now || !ctx.github) return cache;
  cache = { ...cache, releases: [...cache.releases] };
  try {
    const headers = cache.etag ? { "if-none-match": cache.etag } : {};
    const res = await ctx.github.rest<ReleaseBody>("runner-release", scope, "GET /repos/{owner}/{repo}/releases/latest", { owner: "actions", repo: "runner", headers }, pass.signal, [304]);
    if (res.status !== 304) {
      const release = parseRelease(res.data ?? {});
      if (!cache.releases.some((r) => r.version === release.version)) cache.releases.push(release);
      cache.releases.sort((a, b) => compareVersions(a.version, b.version));
      cache.latest = release.version;
      cache.etag = typeof res.headers.etag === "string" ? res.headers.etag : null;
    }
    cache.nextCheckAt = now + DAY;
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    const missing = err instanceof GitHubError && err.status === 404;
    log.warn(`could not read actions/runner's latest release (${errorMessage(err)}): runner version age ${missing ? "unknown" : "not refreshed"}`);
    cache.nextCheckAt = now + (missing ? DAY : RETRY_AFTER_FAILURE);
  }
  inProcess.set(ctx, cache);
  await writeJsonFile(ctx, cacheFile(ctx), cache).catch((err) => log.warn(`cannot cache the runner release: ${errorMessage(err)}`));
  return cache;
}

/**
 * Days since the release after `version` came out; 0 when `version` is the latest (or newer).
 * Null when no release is known.
 */
export function versionAgeDays(version: string, cache: ReleaseCache, nowMs: number): number | null {
  if (!cache.latest) return null;
  if (compareVersions(version, cache.latest) >= 0) return 0;
  const next = cache.releases.find((r) => compareVersions(r.version, version) > 0);
  if (!next) return null;
  return Math.max(0, Math.floor((nowMs - Date.parse(next.publishedAt)) / 86_400_000));
}
