/**
 * Which page a path is, rendered as its live part: the page routes and the SSE feed (sse.ts) both
 * call this, so a pushed update is exactly what a reload would show.
 */
import type { CollectorView } from "../../collector/types.ts";
import type { Envelope } from "../../shared/types.ts";
import { renderFleetLive } from "./fleet.ts";
import { renderHostLive } from "./host.ts";
import { renderRunnerLive } from "./runner.ts";

/** A page waits this long for the stream; then it shows what this process saw itself. */
const STREAM_WAIT_MS = 1500;
const HOST_EVENTS = 1000;

export interface LivePage {
  title: string;
  live: string;
  status: 200 | 404;
}

/**
 * A host's recent events from the stream (bounded, shared cache in the events reader), or, while
 * NATS is away or slow, from this process's own ring: the page stays readable without NATS.
 */
async function hostEvents(view: CollectorView, host: string): Promise<Envelope[]> {
  const fallback = () => recentEvents(view, HOST_EVENTS).filter((e) => e.host === host);
  if (!view.health().ok) return fallback();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      view.events({ limit: HOST_EVENTS, host }),
      new Promise<Envelope[]>((resolve) => (timer = setTimeout(() => resolve(fallback()), STREAM_WAIT_MS))),
    ]);
  } catch {
    return fallback();
  } finally {
    clearTimeout(timer);
  }
}

/** The stream's newest events as this collector's history feed read them, else its own share. */
function recentEvents(view: CollectorView, limit: number): Envelope[] {
  const fromStream = view.history?.().recentEvents(limit);
  return fromStream?.length ? fromStream : view.recentEvents(limit);
}

function segments(path: string): string[] | null {
  try {
    return path.split("/").filter((s) => s !== "").map((s) => decodeURIComponent(s));
  } catch {
    return null;
  }
}

export async function renderLivePage(view: CollectorView, path: string, query: URLSearchParams, nowMs: number, version: string): Promise<LivePage> {
  const parts = segments(path);
  if (parts && parts.length === 0) {
    const live = renderFleetLive({ runners: view.runners(), alerts: view.alerts(), events: recentEvents(view, 50), health: view.health(), version, query, history: view.history?.() }, nowMs);
    return { title: "runner-token-refresh fleet", live, status: 200 };
  }
  if (parts && parts.length === 3 && parts[0] === "runners") {
    const [, host, runner] = parts;
    const live = view.runner(host, runner) ? renderRunnerLive(view, host, runner, await hostEvents(view, host), nowMs, query) : null;
    if (live !== null) return { title: `${runner} on ${host}`, live, status: 200 };
  }
  if (parts && parts.length === 2 && parts[0] === "hosts") {
    const host = parts[1];
    const live = renderHostLive(view, host, await hostEvents(view, host), nowMs, query);
    if (live !== null) return { title: host, live, status: 200 };
  }
  return { title: "not found", live: `<h1>Not found</h1><p class="muted">No such runner, host or page here. <a href="/">Back to the fleet</a>.</p>`, status: 404 };
}
