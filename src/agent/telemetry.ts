/**
 * In-process counters fed by the GitHub observer: requests by endpoint and status, the last
 * rate-limit headers, clock skew and credential expiry. The daemon's /metrics (a later issue)
 * reads the same object; the pass turns skew and expiry into events.
 */
import type { GitHubObserver, RateLimitInfo } from "../github/client.ts";
import type { Logger } from "../shared/logger.ts";

export class AgentTelemetry implements GitHubObserver {
  readonly requests = new Map<string, number>();
  rateLimitInfo: RateLimitInfo | null = null;
  clockSkewSeconds: number | null = null;
  credentialExpiresAt: Date | null = null;

  constructor(private readonly log: Logger) {}

  request(endpoint: string, status: string): void {
    const key = `${endpoint} ${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }
  rateLimit(info: RateLimitInfo): void {
    this.rateLimitInfo = info;
    if (info.limit > 0 && info.remaining < info.limit * 0.1) {
      this.log.warn({ remaining: info.remaining, limit: info.limit, reset: info.reset }, "GitHub rate limit below 10%: the credential is shared by too many agents? consider fleet mode");
    }
  }
  clockSkew(seconds: number): void {
    this.clockSkewSeconds = seconds;
  }
  credentialExpiry(at: Date): void {
    this.credentialExpiresAt = at;
  }
  retrying(endpoint: string, attempt: number, waitSeconds: number, reason: string): void {
    this.log.warn({ endpoint, attempt, wait_seconds: Math.round(waitSeconds * 10) / 10, reason }, `GitHub ${endpoint} failed (${reason}); retrying`);
  }
  totalRequests(): number {
    let n = 0;
    for (const v of this.requests.values()) n += v;
    return n;
  }
}
