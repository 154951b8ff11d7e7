/**
 * The agent's Prometheus metrics (SPEC 11), for the daemon's GET /metrics. A registry of its own
 * (no default process metrics): the gauges mirror the last pass's metrics document at scrape time,
 * the counters and the histogram count what this process did (they start at 0 with the process,
 * which Prometheus' rate() and increase() expect of a counter).
 *
 * Known label sets start at 0 for counters and the histogram: every configured scope × outcome,
 * every configured runner × registration reason × outcome, every alert plugin × outcome. A gauge
 * whose value is not known (before the first pass, no token held, GitHub status not yet read, no
 * GitHub answer yet) has no sample, as in the collector's metrics, rather than a 0 that would mean
 * something else (an expiry in 1970, an exhausted rate limit, a runner offline).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { registerPoolMetrics } from "./pool-metrics.ts";
import { scopeKey } from "../shared/scope.ts";
import type { MetricsDocument, RunnerReport } from "../shared/types.ts";
import { REGISTRATION_REASONS, type AgentTelemetry } from "../agent/telemetry.ts";
import { registerHygieneMetrics } from "../hygiene/metrics.ts";
import { registerGitHubAppMetrics } from "./github-app-metrics.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Mint calls take well under a second; the upper buckets catch retries with backoff. */
export const REFRESH_DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const OUTCOMES = ["success", "failure"] as const;

/** What the agent's HTTP endpoints read; built from the AgentContext (see agentHttpSource). */
export interface AgentHttpSource {
  /** Scope keys (`org:NAME`) of the configured runners, each once. */
  scopes: string[];
  /** Names of the configured runners. */
  runners: string[];
  interval: number;
  telemetry: AgentTelemetry;
  /** Local alert delivery counts and plugins a receiver refused (null: no alert plugins). */
  alerts: { deliveries(): { plugin: string; outcome: string; count: number }[]; misconfigured(): { plugin: string; error: string }[] } | null;
  /** Events waiting in the NATS outbox (0 without NATS). */
  outboxPending(): Promise<number>;
  /** Events the full outbox dropped, ever (persisted in the state dir; 0 without NATS). */
  outboxDropped(): Promise<number>;
}

/** Epoch seconds as an integer, so the text never depends on how a float prints; null when unknown. */
function seconds(value: number | null | undefined): number | null {
  return typeof value === "number" && Number.isFinite(value) ? Math.floor(value) : null;
}

function flag(value: boolean | null | undefined): number | null {
  return value === null || value === undefined ? null : value ? 1 : 0;
}

/** Sets an unlabelled gauge, or leaves it without a sample when the value is not known. */
function setOrClear(gauge: Gauge, value: number | null): void {
  if (value === null) {
    gauge.reset();
    gauge.remove({});
  } else {
    gauge.set(value);
  }
}

/** Each scope's token expiry and last refresh from the document (runners of one scope share them). */
function scopeValues(doc: MetricsDocument | null, field: "token_expires_at" | "last_refresh_timestamp"): Map<string, number | null> {
  const out = new Map<string, number | null>();
  for (const r of doc?.runners ?? []) if (!out.has(scopeKey(r.scope))) out.set(scopeKey(r.scope), r[field]);
  return out;
}

export function createAgentRegistry(source: AgentHttpSource): { registry: Registry; close(): void } {
  const registry = new Registry();
  const registers = [registry];
  const { telemetry } = source;
  const doc = () => telemetry.lastMetrics;

  const perScope = (name: string, help: string, field: "token_expires_at" | "last_refresh_timestamp") =>
    new Gauge({
      name,
      help,
      labelNames: ["scope"] as const,
      registers,
      collect() {
        this.reset();
        const values = scopeValues(doc(), field);
        const scopes = new Set([...source.scopes, ...values.keys()]);
        for (const scope of scopes) {
          const v = seconds(values.get(scope));
          if (v !== null) this.set({ scope }, v);
        }
      },
    });
  registerPoolMetrics(registers, () => doc()?.pools ?? []);
  perScope("runner_token_expiry_timestamp_seconds", "When the scope's registration token expires (epoch seconds; no sample while no token is held).", "token_expires_at");
  perScope("runner_token_last_refresh_timestamp_seconds", "When the scope's registration token was last minted (epoch seconds; no sample when never).", "last_refresh_timestamp");

  new Gauge({
    name: "runner_token_last_check_timestamp_seconds",
    help: "When the last pass checked the runners (epoch seconds; no sample before the first pass).",
    registers,
    collect() {
      setOrClear(this, seconds(doc()?.last_check_timestamp));
    },
  });

  const perRunner = (name: string, help: string, value: (r: RunnerReport) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ["runner"] as const,
      registers,
      collect() {
        this.reset();
        for (const report of doc()?.runners ?? []) {
          const v = value(report);
          if (v !== null) this.set({ runner: report.name }, v);
        }
      },
    });
  // From the last pass's document: no sample before the first pass, nor while GitHub's view is unknown.
  perRunner("runner_token_consecutive_failures", "Consecutive failed passes for this runner.", (r) => r.consecutive_failures);
  perRunner("runner_registered", "1 when the runner is registered (its .runner file is intact).", (r) => flag(r.registered));
  perRunner("runner_online", "1 when GitHub last reported the runner online (no sample when unknown).", (r) => flag(r.online));
  perRunner("runner_busy", "1 when GitHub last reported the runner running a job (no sample when unknown).", (r) => flag(r.busy));

  new Counter({
    name: "runner_token_refreshes_total",
    help: "Registration token mints by scope and outcome, this process.",
    labelNames: ["scope", "outcome"] as const,
    registers,
    collect() {
      this.reset();
      for (const scope of source.scopes) for (const outcome of OUTCOMES) this.inc({ scope, outcome }, 0);
      for (const [key, n] of telemetry.refreshes) {
        const [scope, outcome] = key.split("\u0000");
        this.inc({ scope, outcome }, n);
      }
    },
  });

  const duration = new Histogram({
    name: "runner_token_refresh_duration_seconds",
    help: "How long a registration token mint took, retries included, by outcome.",
    labelNames: ["outcome"] as const,
    buckets: REFRESH_DURATION_BUCKETS,
    registers,
  });
  for (const outcome of OUTCOMES) duration.zero({ outcome });
  const unsubscribe = telemetry.onRefreshDuration((_scope, secs, ok) => duration.observe({ outcome: ok ? "success" : "failure" }, secs));

  new Counter({
    name: "runner_registrations_total",
    help: "Runner registrations (config.sh) by runner, reason and outcome, this process.",
    labelNames: ["runner", "reason", "outcome"] as const,
    registers,
    collect() {
      this.reset();
      for (const runner of source.runners) for (const reason of REGISTRATION_REASONS) for (const outcome of OUTCOMES) this.inc({ runner, reason, outcome }, 0);
      for (const [key, n] of telemetry.registrations) {
        const [runner, reason, outcome] = key.split("\u0000");
        this.inc({ runner, reason, outcome }, n);
      }
    },
  });

  new Counter({
    name: "runner_token_github_requests_total",
    help: "GitHub API requests by endpoint and HTTP status (error: no answer), this process.",
    labelNames: ["endpoint", "status"] as const,
    registers,
    collect() {
      this.reset();
      for (const [key, n] of telemetry.requests) {
        const cut = key.lastIndexOf(" ");
        this.inc({ endpoint: key.slice(0, cut), status: key.slice(cut + 1) }, n);
      }
    },
  });

  new Counter({
    name: "rtr_github_requests_total",
    help: "GitHub API requests by whether they count against the primary rate limit (false: a 304 to a conditional request), this process.",
    labelNames: ["counted"] as const,
    registers,
    collect() {
      this.reset();
      this.inc({ counted: "true" }, telemetry.counted.true);
      this.inc({ counted: "false" }, telemetry.counted.false);
    },
  });

  new Gauge({
    name: "runner_token_github_ratelimit_remaining",
    help: "GitHub API requests left in the current rate-limit window, from the last answer (no sample before one).",
    registers,
    collect() {
      setOrClear(this, telemetry.rateLimitInfo ? telemetry.rateLimitInfo.remaining : null);
    },
  });

  new Counter({
    name: "runner_token_alert_notifications_total",
    help: "Local alert notifications by plugin and outcome (success, failure, retry, skipped), this process.",
    labelNames: ["plugin", "outcome"] as const,
    registers,
    collect() {
      this.reset();
      for (const d of source.alerts?.deliveries() ?? []) this.inc({ plugin: d.plugin, outcome: d.outcome }, Math.max(0, d.count));
    },
  });

  new Gauge({
    name: "runner_token_nats_outbox_pending",
    help: "Events waiting in the on-disk NATS outbox.",
    registers,
    async collect() {
      setOrClear(this, await source.outboxPending().catch(() => null));
    },
  });

  new Counter({
    name: "runner_token_nats_outbox_dropped_total",
    help: "Events the full NATS outbox dropped (oldest routine events first), as counted in the state dir.",
    registers,
    async collect() {
      this.reset();
      this.inc(Math.max(0, await source.outboxDropped().catch(() => 0)));
    },
  });

  registerHygieneMetrics(registers, source.runners, telemetry.hygiene);
  registerGitHubAppMetrics(registers, () => telemetry.apps);

  return { registry, close: () => void unsubscribe() };
}
