/**
 * The `fetch` every Octokit of the client uses: it sees every request, including an App's
 * installation-token exchange, so every credential is registered for redaction before it travels
 * and every answer's rate-limit, Date and token-expiry headers are observed.
 */
import { headersFrom } from "../shared/headers.ts";
import { addSecret } from "../shared/redact.ts";
import type { GitHubObserver, RateLimitInfo } from "./types.ts";

const CLOCK_SKEW_LIMIT_SECONDS = 60;
/** Registration and installation tokens live one hour at GitHub; used when no expiry is known. */
export const TOKEN_LIFETIME_MS = 3600_000;

export interface FetchObservation {
  base: typeof fetch;
  observer: GitHubObserver;
  now: () => number;
  /** A PAT: registered for redaction for good (an App's JWTs and tokens expire). */
  longLived: boolean;
  /** The credential's own budget: fed by answers to its installation token, not to its JWT calls. */
  budget?: (info: RateLimitInfo) => void;
}

function requestPath(input: RequestInfo | URL): string {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  return url.replace(/[?#].*$/, "");
}

/** Calls made with the App's JWT: GitHub counts them apart from the installation's budget. */
export function isAppJwtPath(path: string): boolean {
  return /\/app\/installations\/[^/]+\/access_tokens$/.test(path) || /\/(orgs\/[^/]+|repos\/[^/]+\/[^/]+)\/installation$/.test(path);
}

/**
 * When an App credential seen in a request stops mattering: a JWT says so itself (`exp`, at most
 * 10 minutes out); an installation token is registered from its exchange with the real expiry
 * first, so this guess (its one-hour lifetime from now) only covers a token we never saw minted.
 */
function shortLivedExpiry(credential: string, now: number): Date {
  const parts = credential.split(".");
  if (parts.length === 3) {
    try {
      const exp = (JSON.parse(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: unknown }).exp;
      if (typeof exp === "number") return new Date(exp * 1000);
    } catch {
      // Not a JWT after all: fall through to the token lifetime.
    }
  }
  return new Date(now + TOKEN_LIFETIME_MS);
}

/** Registers a new installation token with its real expiry, before any request carries it. */
async function observeInstallationToken(response: Response): Promise<void> {
  try {
    const data = (await response.clone().json()) as { token?: unknown; expires_at?: unknown };
    if (typeof data.token === "string" && typeof data.expires_at === "string") addSecret(data.token, new Date(data.expires_at));
  } catch {
    // Not JSON: auth-app fails on it too, and no token was handed out.
  }
}

function observeHeaders(o: FetchObservation, headers: Pick<Headers, "get">, path: string): void {
  const remaining = headers.get("x-ratelimit-remaining");
  if (remaining !== null) {
    const info: RateLimitInfo = {
      limit: Number(headers.get("x-ratelimit-limit") ?? 0),
      remaining: Number(remaining),
      reset: Number(headers.get("x-ratelimit-reset") ?? 0),
      used: Number(headers.get("x-ratelimit-used") ?? 0),
      resource: headers.get("x-ratelimit-resource") ?? "core",
    };
    o.observer.rateLimit(info);
    if (o.budget && !isAppJwtPath(path) && Number.isFinite(info.remaining)) o.budget(info);
  }
  const date = headers.get("date");
  if (date) {
    const server = Date.parse(date);
    // The Date header has one-second resolution: compare whole seconds.
    const skew = Math.round((o.now() - server) / 1000);
    if (Number.isFinite(server) && Math.abs(skew) > CLOCK_SKEW_LIMIT_SECONDS) o.observer.clockSkew(skew);
  }
  const expiry = headers.get("github-authentication-token-expiration");
  if (expiry) {
    const at = Date.parse(expiry.replace(" UTC", "Z").replace(" ", "T"));
    if (Number.isFinite(at)) o.observer.credentialExpiry(new Date(at));
  }
}

export function observedFetch(o: FetchObservation): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const authorization = headersFrom(init?.headers).get("authorization");
    if (authorization) {
      const credential = authorization.replace(/^(token|bearer)\s+/i, "");
      // With a PAT this is the PAT (long-lived); with an App, a JWT or an installation token.
      addSecret(credential, o.longLived ? null : shortLivedExpiry(credential, o.now()));
    }
    const response = await o.base(input, init);
    const path = requestPath(input);
    observeHeaders(o, response.headers, path);
    if (response.ok && /\/app\/installations\/[^/]+\/access_tokens$/.test(path)) await observeInstallationToken(response);
    return response;
  }) as typeof fetch;
}
