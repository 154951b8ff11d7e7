/**
 * In-process counters fed by the GitHub observer: requests by endpoint and status, the last
 * rate-limit headers, clock skew and credential expiry; token mints (duration and outcome) and
 * registrations fed by the token and runner steps; and the daemon's last pass. The daemon's HTTP
 * endpoints (/metrics, /healthz, /status) read this object; the pass turns skew and expiry into events.
 */
import type { FailoverReason, GitHubObserver, RateLimitInfo } from "../github/types.ts";
import type { Logger } from "../shared/logger.ts";
import type { MetricsDocument } from "../shared/types.ts";
import { HygieneTelemetry } from "../hygiene/telemetry.ts";

/** Registration reasons the runner step knows (runner_registrations_total starts each at 0). */
export const REGISTRATION_REASONS = ["not_configured", "local_files_corrupt", "deleted_on_github", "on_refresh", "offline_grace"] as const;

export type RefreshDurationSink = (scope: string, seconds: number, ok: boolean) => void;

/** What the daemon remembers of its last finished pass. */
export interface PassRecord {
  /** Epoch milliseconds when the pass finished. */
  finishedAt: number;
  /** True when the pass succeeded for every runner (exit code 0). */
  ok: boolean;
  /** "runner-1: <last error>" when it did not. */
  error: string | null;
}

export class AgentTelemetry implements GitHubObserver {
  readonly requests = new Map<string, number>();
  /**
   * Requests that count against GitHub's primary rate limit (`true`) and those that do not
   * (`false`: a 304 to a conditional request), this process.
   */
  readonly counted = { true: 0, false: 0 };
  /** Bumped on every change below (the /metrics snapshot is rebuilt only when it moved). */
  version = 0;
  rateLimitInfo: RateLimitInfo | null = null;
  /** GitHub Apps: the configured ids, each one's last budget, failovers by `appId \0 reason`. */
  readonly apps = new GitHubAppTelemetry();
  clockSkewSeconds: number | null = null;
  credentialExpiresAt: Date | null = null;
  /** Token mints by `scope \0 outcome` (outcome success | failure), this process. */
  readonly refreshes = new Map<string, number>();
  /** Registrations by `runner \0 reason \0 outcome`, this process. */
  readonly registrations = new Map<string, number>();
  /** The daemon's last finished pass, and the metrics document of the last pass that built one. */
  lastPass: PassRecord | null = null;
  lastMetrics: MetricsDocument | null = null;
  /** Runner hygiene's repairs and version ages (src/hygiene). */
  readonly hygiene = new HygieneTelemetry();
  private readonly durationSinks = new Set<RefreshDurationSink>();

  constructor(private readonly log: Logger) {}

  request(endpoint: string, status: string): void {
    const key = `${endpoint} ${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    // A request without an answer ("error") is counted: whether GitHub saw it is not known.
    this.counted[status === "304" ? "false" : "true"]++;
    this.version++;
  }
  rateLimit(info: RateLimitInfo): void {
    this.rateLimitInfo = info;
    this.version++;
    if (info.limit > 0 && info.remaining < info.limit * 0.1) {
      this.log.warn({ remaining: info.remaining, limit: info.limit, reset: info.reset }, "GitHub rate limit below 10%: the credential is shared by too many agents? consider fleet mode");
    }
  }
  appsConfigured(appIds: number[]): void {
    for (const id of appIds) this.apps.ids.add(id);
    this.version++;
  }
  appRateLimit(appId: number, info: RateLimitInfo): void {
    this.apps.remaining.set(appId, info.remaining);
    this.version++;
  }
  failover(appId: number, nextAppId: number, endpoint: string, reason: FailoverReason): void {
    const key = `${appId}\u0000${reason}`;
    this.apps.failovers.set(key, (this.apps.failovers.get(key) ?? 0) + 1);
    this.version++;
    const why = reason === "rate_limit" ? "is rate-limited" : "was refused (revoked, suspended or not installed here?)";
    const next = nextAppId ? `the same request goes on through App ${nextAppId}` : "no other App is usable now";
    this.log.warn({ app_id: appId, next_app_id: nextAppId || undefined, endpoint, reason }, `GitHub App ${appId} ${why} on ${endpoint}: ${next}`);
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

  /** One token mint for `scope` (a scope key) finished, with all its retries, in `seconds`. */
  refreshDuration(scope: string, seconds: number, ok: boolean): void {
    const key = `${scope}\u0000${ok ? "success" : "failure"}`;
    this.refreshes.set(key, (this.refreshes.get(key) ?? 0) + 1);
    this.version++;
    for (const sink of this.durationSinks) {
      try {
        sink(scope, Math.max(0, seconds), ok);
      } catch (err) {
        // Metrics must never break token work.
        this.log.debug(`refresh duration not recorded: ${String(err)}`);
      }
    }
  }

  /** Subscribes to mint durations (the /metrics histogram); returns the unsubscribe function. */
  onRefreshDuration(sink: RefreshDurationSink): () => void {
    this.durationSinks.add(sink);
    return () => this.durationSinks.delete(sink);
  }

  /** One registration attempt for `runner` finished (config.sh and the checks after it). */
  registration(runner: string, reason: string, ok: boolean): void {
    const key = `${runner}\u0000${reason}\u0000${ok ? "success" : "failure"}`;
    this.registrations.set(key, (this.registrations.get(key) ?? 0) + 1);
    this.version++;
  }

  /** The daemon finished a pass; `metrics` is null when the pass broke before building one. */
  passFinished(record: PassRecord, metrics: MetricsDocument | null): void {
    this.lastPass = record;
    if (metrics) this.lastMetrics = metrics;
    this.version++;
  }
}

/** What the Apps of `github.auth.app`/`apps` did, for the agent's and the collector's /metrics. */
export class GitHubAppTelemetry {
  readonly ids = new Set<number>();
  /** Requests left per App, from its installation's last answer. */
  readonly remaining = new Map<number, number>();
  /** Failovers by `appId \0 reason` (reason: rate_limit | revoked). */
  readonly failovers = new Map<string, number>();
}
