// The agent's HTTP endpoints over a telemetry object fed by hand (no daemon): the source, the app,
// SPEC 11's metric names and a runner report / metrics document to feed a pass with.
import assert from "node:assert/strict";
import { AgentTelemetry } from "../../src/agent/telemetry.ts";
import { createLogger } from "../../src/shared/logger.ts";
import type { MetricsDocument, RunnerReport } from "../../src/shared/types.ts";
import { createAgentApp } from "../../src/http/agent-app.ts";
import type { AgentHttpSource } from "../../src/http/agent-metrics.ts";

export const NOW_S = 1_800_000_000;
export const NOW = NOW_S * 1000;

/** Every agent metric name of SPEC 11, plus the outbox drop counter of SPEC 8. */
export const SPEC_METRICS = [
  "runner_token_expiry_timestamp_seconds",
  "runner_token_refreshes_total",
  "runner_token_refresh_duration_seconds",
  "runner_token_last_check_timestamp_seconds",
  "runner_token_last_refresh_timestamp_seconds",
  "runner_token_consecutive_failures",
  "runner_registered",
  "runner_online",
  "runner_busy",
  "runner_registrations_total",
  "runner_token_github_requests_total",
  "runner_token_github_ratelimit_remaining",
  "runner_token_alert_notifications_total",
  "runner_token_nats_outbox_pending",
  "runner_token_nats_outbox_dropped_total",
];

export function report(name: string, over: Partial<RunnerReport> = {}): RunnerReport {
  return {
    name,
    dir: `/home/runner/${name}`,
    scope: { org: "acme" },
    ephemeral: false,
    registered: true,
    agent_id: 42,
    service_active: true,
    online: true,
    busy: false,
    token_expires_at: NOW_S + 3120,
    last_refresh_timestamp: NOW_S - 480,
    total_refreshes: 12,
    failed_refreshes: 1,
    consecutive_failures: 0,
    registrations: 1,
    status: "ok",
    last_error: null,
    ...over,
  };
}

export function metricsDoc(runners: RunnerReport[]): MetricsDocument {
  return {
    version: 1,
    last_check_timestamp: NOW_S - 5,
    last_refresh_timestamp: NOW_S - 480,
    total_refreshes: 12,
    failed_refreshes: 1,
    consecutive_failures: Math.max(0, ...runners.map((r) => r.consecutive_failures)),
    runner_org: "acme",
    runner_name: runners[0].name,
    token_expires_at: NOW_S + 3120,
    interval: 60,
    threshold: 300,
    alert_after_failures: 3,
    host: "ci-01",
    runners,
  };
}

export interface Fixture {
  source: AgentHttpSource;
  telemetry: AgentTelemetry;
  app: ReturnType<typeof createAgentApp>["app"];
  close(): void;
  misconfigured: { plugin: string; error: string }[];
  pending: number;
  dropped: number;
}

export function fixture(options: { alerts?: boolean } = {}): Fixture {
  const telemetry = new AgentTelemetry(createLogger({ level: "silent", write: () => {} }));
  const state = { misconfigured: [] as { plugin: string; error: string }[], pending: 0, dropped: 0 };
  const source: AgentHttpSource = {
    scopes: ["org:acme", "repo:acme/app"],
    runners: ["runner-1", "gpu runner ü"],
    interval: 60,
    telemetry,
    alerts: options.alerts
      ? {
          deliveries: () => [
            { plugin: "slack", outcome: "success", count: 2 },
            { plugin: "slack", outcome: "failure", count: 0 },
          ],
          misconfigured: () => state.misconfigured,
        }
      : null,
    outboxPending: async () => state.pending,
    outboxDropped: async () => state.dropped,
  };
  const { app, close } = createAgentApp(source, { now: () => NOW });
  const f: Fixture = {
    source,
    telemetry,
    app,
    close,
    get misconfigured() {
      return state.misconfigured;
    },
    set misconfigured(v) {
      state.misconfigured = v;
    },
    get pending() {
      return state.pending;
    },
    set pending(v) {
      state.pending = v;
    },
    get dropped() {
      return state.dropped;
    },
    set dropped(v) {
      state.dropped = v;
    },
  };
  return f;
}

export async function scrape(app: Fixture["app"]): Promise<{ text: string; lines: string[] }> {
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  return { text, lines: text.split("\n").filter((l) => l && !l.startsWith("#")) };
}

/** Every name is declared; those given in `withSamples` (default: all) also have a sample line. */
export function assertEverySpecMetric(text: string, withoutSamples: string[] = []): void {
  for (const name of SPEC_METRICS) {
    assert.match(text, new RegExp(`^# TYPE ${name} (gauge|counter|histogram)$`, "m"), `${name} declared`);
    if (withoutSamples.includes(name)) continue;
    assert.match(text, new RegExp(`^${name}(_bucket|_sum|_count)?(\\{[^}]*\\})? -?\\d+(\\.\\d+)?$`, "m"), `${name} has a sample`);
  }
}
