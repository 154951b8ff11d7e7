/**
 * The daemon's local HTTP endpoints (SPEC 11) as a hono app: GET /metrics (Prometheus text
 * 0.0.4), GET /healthz and GET /status (the section-7 metrics document). Read-only, no secrets
 * (the document and the metrics carry none), so no authentication: bind it to loopback (the
 * default 127.0.0.1:9469) or to an interface only the scraper reaches.
 *
 * /healthz:
 * - 503 `{"status":"starting","reason":…}` until the first pass has finished;
 * - 200 `{"status":"ok"}` when the last pass succeeded for every runner;
 * - 503 `{"status":"failing","reason":"runner-1: <last_error>"}` when it did not;
 * - 503 `{"status":"stale","reason":…}` when no pass finished for 3 × interval + 60 s (a hung pass).
 * Alert plugins a receiver refused for good are listed under `warnings` without changing the code:
 * they do not stop the agent's work.
 */
import { Hono } from "hono";
import type { AgentContext } from "../agent/context.ts";
import { scopeKey } from "../shared/scope.ts";
import { Outbox } from "../nats/outbox.ts";
import { conditional, type PreparedRoute } from "../runtime/prepared.ts";
import { createAgentRegistry, type AgentHttpSource } from "./agent-metrics.ts";
import { createMetricsSnapshot } from "./agent-metrics-snapshot.ts";

/** How long the daemon's outbox counts are reused (a gauge scraped every 15-60 s; the outbox is on disk). */
const OUTBOX_COUNT_TTL_MS = 1000;

/** `read`, reused for `ttlMs` (a failed read is not kept). */
function reusedFor(ttlMs: number, read: () => Promise<number>): () => Promise<number> {
  let at = -Infinity;
  let value: Promise<number> = Promise.resolve(0);
  return () => {
    const now = Date.now();
    if (now - at >= ttlMs) {
      at = now;
      value = read();
      value.catch(() => (at = -Infinity));
    }
    return value;
  };
}

export interface AgentAppOptions {
  /** Epoch milliseconds; injectable for the staleness rule. */
  now?: () => number;
  /** Called with an unexpected error before the 500 answer (the daemon logs it). */
  onError?: (err: unknown, path: string) => void;
}

/** The source the app reads, from a daemon's context. */
export function agentHttpSource(ctx: AgentContext): AgentHttpSource {
  const outbox = ctx.config.nats ? new Outbox(ctx.runtime, `${ctx.config.state.dir}/outbox`) : null;
  return {
    scopes: [...new Set(ctx.config.runners.map((r) => scopeKey(r.scope)))],
    runners: ctx.config.runners.map((r) => r.name),
    interval: ctx.config.refresh.interval,
    telemetry: ctx.telemetry,
    alerts: ctx.alerts,
    outboxPending: reusedFor(OUTBOX_COUNT_TTL_MS, async () => (await ctx.events.publisher.pending?.()) ?? 0),
    // Read-only use of the outbox: its drop count lives in the state dir, shared with cron checks.
    outboxDropped: reusedFor(OUTBOX_COUNT_TTL_MS, async () => (outbox ? outbox.dropped() : 0)),
  };
}

export interface AgentHealth {
  ok: boolean;
  body: { status: "ok" | "starting" | "failing" | "stale"; reason?: string; warnings?: string[] };
}

export function agentHealth(source: AgentHttpSource, nowMs: number): AgentHealth {
  const last = source.telemetry.lastPass;
  const warnings = (source.alerts?.misconfigured() ?? []).map((m) => `alert plugin ${m.plugin}: ${m.error}`);
  const extra = warnings.length ? { warnings } : {};
  if (!last) return { ok: false, body: { status: "starting", reason: "starting: the first pass has not finished yet", ...extra } };
  const staleAfter = 3 * source.interval + 60;
  const since = Math.floor((nowMs - last.finishedAt) / 1000);
  if (since > staleAfter) {
    return { ok: false, body: { status: "stale", reason: `no pass finished for ${since}s (interval ${source.interval}s): the daemon may be stuck in a pass, see its log`, ...extra } };
  }
  if (!last.ok) return { ok: false, body: { status: "failing", reason: last.error ?? "the last pass failed: see the log", ...extra } };
  return { ok: true, body: { status: "ok", ...extra } };
}

export interface AgentApp {
  app: Hono;
  /**
   * GET /metrics as a prepared route, for the runtime's server to answer before the app (same
   * bytes and headers as the app's own route, which stays for app.request() and errors).
   */
  prepared: PreparedRoute[];
  close(): void;
}

export function createAgentApp(source: AgentHttpSource, options: AgentAppOptions = {}): AgentApp {
  const now = options.now ?? (() => Date.now());
  const metrics = createAgentRegistry(source);
  const snapshot = createMetricsSnapshot(source, metrics.registry);
  const app = new Hono();

  app.get("/metrics", async (c) => {
    const answer = conditional(await snapshot.current(), c.req.header("if-none-match"));
    if (answer.status === 304) return c.body(null, 304, answer.headers);
    // A copy of the cached bytes: the Response must not share the buffer every scrape reuses.
    return c.body(answer.body.slice(), 200, answer.headers);
  });

  app.get("/healthz", (c) => {
    const health = agentHealth(source, now());
    c.header("Cache-Control", "no-store");
    return c.json(health.body, health.ok ? 200 : 503);
  });

  app.get("/status", (c) => {
    c.header("Cache-Control", "no-store");
    const doc = source.telemetry.lastMetrics;
    if (!doc) return c.json({ status: "starting", reason: "starting: the first pass has not finished yet" }, 503);
    return c.json(doc);
  });

  app.notFound((c) => c.json({ error: `not found: ${c.req.method} ${c.req.path}: try /metrics, /healthz or /status` }, 404));

  app.onError((err, c) => {
    options.onError?.(err, c.req.path);
    return c.json({ error: "internal error" }, 500);
  });

  return { app, prepared: [{ path: "/metrics", respond: () => snapshot.current() }], close: metrics.close };
}
