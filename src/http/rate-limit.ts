/**
 * A token bucket for endpoints that cost the server more than a lookup (`/api/v1/events` reads
 * the JetStream stream). One bucket per endpoint, not per client: the point is to bound the load
 * on NATS whoever asks, and a client address is runtime-specific (see src/runtime).
 */
import type { MiddlewareHandler } from "hono";

export interface RateLimit {
  /** Requests allowed at once after a quiet spell. */
  burst: number;
  /** Requests allowed per second on average. */
  perSecond: number;
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {
    // Misused options fail here, not as a bucket that never (or always) lets a request through.
    if (!Number.isInteger(limit.burst) || limit.burst < 1) throw new TypeError(`rate limit: burst must be an integer of at least 1, got ${limit.burst}`);
    if (!(limit.perSecond > 0) || !Number.isFinite(limit.perSecond)) throw new TypeError(`rate limit: perSecond must be a positive number, got ${limit.perSecond}`);
    this.tokens = limit.burst;
    this.last = now();
  }

  /** Takes a token: 0 when one was available, else the milliseconds until one will be. */
  take(): number {
    const now = this.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) / 1000) * this.limit.perSecond);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.limit.perSecond) * 1000);
  }
}

/** 429 with `Retry-After` (whole seconds, at least 1) when the bucket is empty. */
export function rateLimit(limit: RateLimit, now?: () => number): MiddlewareHandler {
  const bucket = new TokenBucket(limit, now);
  return async (c, next) => {
    const waitMs = bucket.take();
    if (waitMs > 0) {
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      c.header("Retry-After", String(seconds));
      return c.json({ error: `too many requests to ${c.req.path}: at most ${limit.burst} at once and ${limit.perSecond} per second; retry after ${seconds}s` }, 429);
    }
    await next();
  };
}
