/**
 * The agent's own retry policy for GitHub calls (SPEC 6), not a library default: `maxRetries`
 * attempts in all; exponential backoff from `retryBackoff` with jitter; `retry-after` and
 * `x-ratelimit-reset` honoured up to `maxRetryWait`, past which the pass records a failure
 * instead of waiting. Retried: 408, 429, 5xx, network errors and timeouts, and a 403 that is a
 * rate limit (`retry-after` present or `x-ratelimit-remaining: 0`). Other 4xx are final.
 */
import { backoffDelay } from "../shared/backoff.ts";

export interface RetryPolicy {
  maxRetries: number;
  retryBackoff: number;
  maxRetryWait: number;
}

export interface FailedAttempt {
  status?: number;
  headers?: Record<string, string | undefined>;
  /** No HTTP answer at all (connection refused, reset, timeout). */
  network: boolean;
}

export function isRateLimit(attempt: FailedAttempt): boolean {
  if (attempt.status !== 403 && attempt.status !== 429) return false;
  const h = attempt.headers ?? {};
  return attempt.status === 429 || h["retry-after"] !== undefined || h["x-ratelimit-remaining"] === "0";
}

export function isRetryable(attempt: FailedAttempt): boolean {
  if (attempt.network) return true;
  const s = attempt.status ?? 0;
  return s === 408 || s === 429 || s >= 500 || isRateLimit(attempt);
}

/**
 * How long the server asks us to wait (`retry-after` in seconds or as an HTTP date, else
 * `x-ratelimit-reset` when the budget is spent), or null when it does not say. Shared with the
 * client's give-up message, which must quote the same number (an HTTP date is not a Number).
 */
export function serverWaitSeconds(attempt: FailedAttempt, nowMs: number): number | null {
  const h = attempt.headers ?? {};
  const retryAfter = h["retry-after"];
  if (retryAfter !== undefined) {
    const seconds = /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) : (Date.parse(retryAfter) - nowMs) / 1000;
    if (Number.isFinite(seconds)) return seconds;
  }
  if (h["x-ratelimit-remaining"] === "0" && h["x-ratelimit-reset"]) {
    const seconds = Number(h["x-ratelimit-reset"]) - nowMs / 1000 + 1;
    if (Number.isFinite(seconds)) return seconds;
  }
  return null;
}

/**
 * Seconds to wait before the next attempt, or `null` when the server asks for longer than
 * `maxRetryWait` (the caller gives up and records a failure).
 */
export function retryWaitSeconds(attempt: FailedAttempt, attemptNumber: number, policy: RetryPolicy, nowMs: number, random = Math.random): number | null {
  const backoff = backoffDelay(attemptNumber, policy.retryBackoff, policy.maxRetryWait, random);
  const asked = serverWaitSeconds(attempt, nowMs);
  if (asked !== null) return asked > policy.maxRetryWait ? null : Math.max(0, asked);
  if (isRateLimit(attempt)) {
    // A secondary limit without a hint: GitHub asks for at least a minute (capped by maxRetryWait).
    return Math.max(backoff, Math.min(60, policy.maxRetryWait));
  }
  return backoff;
}

/**
 * When a rate-limited credential has budget again (epoch ms): `retry-after` when given, else the
 * exact `x-ratelimit-reset` of a spent budget, else null (a secondary limit without a hint).
 */
export function rateLimitBackAt(attempt: FailedAttempt, nowMs: number): number | null {
  const h = attempt.headers ?? {};
  if (h["retry-after"] === undefined && h["x-ratelimit-remaining"] === "0" && h["x-ratelimit-reset"]) {
    const reset = Number(h["x-ratelimit-reset"]);
    if (Number.isFinite(reset) && reset > 0) return reset * 1000;
  }
  const asked = serverWaitSeconds(attempt, nowMs);
  return asked === null ? null : nowMs + asked * 1000;
}
