/**
 * The collector's HTTP API (SPEC 9 and 11) as a hono app over the read-only fleet view. The app
 * serves nothing itself: an entry file hands it to the runtime's server, and tests call
 * `app.request()`.
 */
import { Hono } from "hono";
import type { Context, MiddlewareHandler } from "hono";
import type { CollectorView, FleetRunner } from "../collector/types.ts";
import { createCollectorRegistry } from "./collector-metrics.ts";
import { collectorMetricsStream } from "./collector-metrics-runners.ts";
import { FilterError, pageRunners, parseRunnerFilters } from "./api-filters.ts";
import { shell } from "./pages/layout.ts";
import { renderLivePage } from "./pages/render.ts";
import { WINDOW_NAMES, COUNTED, SAMPLED } from "../collector/history.ts";
import { LOCAL_SERIES, type LocalSeries } from "../collector/history-local.ts";
import { parseWindow } from "./pages/history.ts";
import { liveHandler } from "./sse.ts";
import { rateLimit, type RateLimit } from "./rate-limit.ts";

export interface CollectorAppOptions {
  /** When set, every /api route requires `Authorization: Bearer <authToken>`. */
  authToken?: string;
  /** Epoch milliseconds; injectable so the dashboard's "ago" columns are testable. */
  now?: () => number;
  version: string;
  /** Called with an unexpected error before the 500 answer (the collector logs it). */
  onError?: (err: unknown, path: string) => void;
  /** Bounds /api/v1/events, which reads the stream (default EVENTS_RATE_LIMIT). */
  eventsRateLimit?: RateLimit;
}

export const EVENTS_DEFAULT_LIMIT = 100;
export const EVENTS_MAX_LIMIT = 1000;
/** Plenty for people and scripts; a loop hammering the stream gets 429s instead. */
export const EVENTS_RATE_LIMIT: RateLimit = { burst: 20, perSecond: 5 };
const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The runner object of /api/v1/runners: the agent's state document plus the collector's view. */
export function runnerJson(r: FleetRunner): Record<string, unknown> {
  return {
    ...r.state,
    host: r.host,
    runner: r.runner,
    stale: r.stale,
    updated_at: new Date(r.updatedAt).toISOString(),
    stale_after: r.staleAfter,
  };
}

/** runnerJson for a list, where one runner that cannot be shown gets a placeholder, not a 500. */
function runnersJson(list: FleetRunner[]): Record<string, unknown>[] {
  return list.map((r) => {
    try {
      return runnerJson(r);
    } catch {
      return { key: r.key, host: r.host, runner: r.runner, error: "state unreadable" };
    }
  });
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/**
 * Compares fixed-length digests byte by byte without an early exit, so neither the position of the
 * first wrong character nor the token's length shows in the response time.
 */
async function sameSecret(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(given), sha256(expected)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function bearerAuth(token: string): MiddlewareHandler {
  const deny = (c: Context, error: string, extra = "") => {
    c.header("WWW-Authenticate", `Bearer realm="runner-token-refresh"${extra}`);
    return c.json({ error }, 401);
  };
  return async (c, next) => {
    const header = c.req.header("Authorization");
    if (!header) return deny(c, "authentication required: send Authorization: Bearer <token>");
    // The scheme is case-insensitive (RFC 7235); the token itself is compared exactly.
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (!match || !(await sameSecret(match[1], token))) {
      return deny(c, "invalid bearer token", ', error="invalid_token"');
    }
    await next();
  };
}

/** `limit` as an integer from 1 to EVENTS_MAX_LIMIT, or the message to answer 400 with. */
export function parseLimit(raw: string | undefined): number | string {
  if (raw === undefined || raw === "") return EVENTS_DEFAULT_LIMIT;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > EVENTS_MAX_LIMIT) {
    return `invalid query parameter limit=${JSON.stringify(raw)}: use an integer from 1 to ${EVENTS_MAX_LIMIT} (default ${EVENTS_DEFAULT_LIMIT})`;
  }
  return n;
}

export function createCollectorApp(view: CollectorView, options: CollectorAppOptions): Hono {
  // Misused options fail here, not on the first request: an empty token (say, an unset variable
  // expanded to "") must not quietly mean "any request with `Bearer ` passes" or "no auth".
  if (options.authToken !== undefined && options.authToken.trim() === "") {
    throw new TypeError("collector http: authToken is empty; unset it to serve /api without authentication, or set a token");
  }
  if (options.authToken !== undefined && /\s/.test(options.authToken)) {
    throw new TypeError("collector http: authToken contains whitespace, which a bearer token cannot carry; use a token without spaces");
  }
  const now = options.now ?? (() => Date.now());
  const registry = createCollectorRegistry(view);
  const app = new Hono();

  // Only /api is behind the token. /metrics and /healthz stay open because Prometheus scrapers
  // and load-balancer probes rarely carry credentials, and they expose only counts, timestamps and
  // names; / is the same data rendered on the server (it never fetches /api from the browser).
  // None of them carries a secret: the agents publish none (SPEC 8).
  if (options.authToken !== undefined) app.use("/api/*", bearerAuth(options.authToken));

  // Filters and pages (SPEC 9): parsed by the same code as the dashboard's URL.
  app.get("/api/v1/runners", (c) => {
    let filters;
    try {
      filters = parseRunnerFilters(new URL(c.req.url).searchParams);
    } catch (err) {
      if (err instanceof FilterError) return c.json({ error: err.message, parameter: err.parameter }, 400);
      throw err;
    }
    const page = pageRunners(view.runners(), filters, "name");
    return c.json({ runners: runnersJson(page.runners), total: page.total, next_cursor: page.nextCursor });
  });

  // A host's runners and pools (SPEC 14 reports, issue 19).
  app.get("/api/v1/hosts/:host", (c) => {
    const host = c.req.param("host");
    const runners = view.runners().filter((r) => r.host === host);
    const pools = view.pools?.().find((p) => p.host === host);
    if (!runners.length && !pools) return c.json({ error: `no host ${JSON.stringify(host)}` }, 404);
    return c.json({ host, runners: runnersJson(runners), pools: pools?.doc.pools ?? [], pools_updated_at: pools ? new Date(pools.updatedAt).toISOString() : null });
  });

  // The dashboard's charts as numbers: in-memory rollups, never a stream scan.
  app.get("/api/v1/history", (c) => {
    const raw = c.req.query("window");
    if (raw !== undefined && !(WINDOW_NAMES as string[]).includes(raw)) return c.json({ error: `invalid query parameter window=${JSON.stringify(raw)}: use ${WINDOW_NAMES.join(", ")}`, parameter: "window" }, 400);
    const history = view.history?.();
    const window = parseWindow(raw);
    const asPairs = (points: { t: number; v: number }[] | null | undefined) => (points ?? []).map((p) => [new Date(p.t).toISOString(), p.v]);
    // ?host=… (and &runner=…): that host's or runner's counted series, as on its page.
    const host = c.req.query("host");
    const runner = c.req.query("runner");
    if (runner !== undefined && !host) return c.json({ error: "query parameter runner needs host: use ?host=<host>&runner=<runner>", parameter: "runner" }, 400);
    if (host !== undefined) {
      const of = (s: LocalSeries) => (runner !== undefined ? history?.runnerPoints(host, runner, s, window) : history?.hostPoints(host, s, window));
      return c.json({ window, host, ...(runner !== undefined ? { runner } : {}), series: Object.fromEntries(LOCAL_SERIES.map((s) => [s, asPairs(of(s))])) });
    }
    const series = Object.fromEntries([...COUNTED, ...SAMPLED].map((s) => [s, asPairs(history?.points(s, window))]));
    return c.json({ window, series });
  });

  // hono decodes path parameters, so `/api/v1/runners/ci.example.com/runner%2001` finds "runner 01".
  app.get("/api/v1/runners/:host/:runner", (c) => {
    const host = c.req.param("host");
    const runner = c.req.param("runner");
    const found = view.runner(host, runner);
    if (!found) return c.json({ error: `no runner ${JSON.stringify(runner)} on host ${JSON.stringify(host)}` }, 404);
    return c.json(runnerJson(found));
  });

  // After the token check: requests without it get their 401 and never use up the bucket.
  app.use("/api/v1/events", rateLimit(options.eventsRateLimit ?? EVENTS_RATE_LIMIT, now));
  app.get("/api/v1/events", async (c) => {
    const limit = parseLimit(c.req.query("limit"));
    if (typeof limit === "string") return c.json({ error: limit }, 400);
    const type = c.req.query("type") || undefined;
    const host = c.req.query("host") || undefined;
    let events;
    try {
      events = await view.events({ limit, ...(type ? { type } : {}), ...(host ? { host } : {}) });
    } catch (err) {
      // The events come from the stream itself (SPEC 9); NATS being away is not our bug.
      options.onError?.(err, c.req.path);
      return c.json({ error: `events unavailable: ${err instanceof Error ? err.message : String(err)}` }, 503);
    }
    return c.json({ events });
  });

  app.get("/api/v1/alerts", (c) => c.json({ alerts: view.alerts() }));

  app.get("/healthz", (c) => {
    const health = view.health();
    if (health.ok) return c.json({ status: "ok" });
    return c.json({ status: "unavailable", reason: health.reason ?? "unknown" }, 503);
  });

  // The bounded families first (a failure there is a 500 like any other), then the snapshot of
  // the fleet, whose per-runner text is written as the scraper reads it.
  app.get("/metrics", async (c) => {
    const tail = await registry.metrics();
    return c.body(collectorMetricsStream(view, tail), 200, { "Content-Type": PROMETHEUS_CONTENT_TYPE });
  });

  // The pages stay open like / always was: they show what /metrics shows, never a secret.
  const page = async (c: Context) => {
    const url = new URL(c.req.url);
    const rendered = await renderLivePage(view, url.pathname, url.searchParams, now(), options.version);
    c.header("Cache-Control", "no-store");
    return c.html(shell({ title: rendered.title, live: rendered.live, version: options.version }), rendered.status);
  };
  app.get("/", page);
  app.get("/runners/:host/:runner", page);
  app.get("/hosts/:host", page);
  app.get("/live", liveHandler(view, { now, version: options.version }));

  app.notFound((c) => c.json({ error: `not found: ${c.req.method} ${c.req.path}` }, 404));

  app.onError((err, c) => {
    options.onError?.(err, c.req.path);
    return c.json({ error: "internal error" }, 500);
  });

  return app;
}
