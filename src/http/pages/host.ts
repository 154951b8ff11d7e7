/** `/hosts/{host}`: a host's runners, its pools (SPEC 14), alerts and events. */
import type { CollectorView, HostPools } from "../../collector/types.ts";
import { scopeKey } from "../../shared/scope.ts";
import type { Envelope } from "../../shared/types.ts";
import { fleetStatus } from "../collector-metrics.ts";
import { alertsSection } from "./alerts.ts";
import { eventsTable } from "./events.ts";
import { localHistorySection, parseWindow } from "./history.ts";
import { ago, esc, formatDuration, healthBanner, runnerHref, table, tokenLeft } from "./layout.ts";

const HOUR_MS = 3_600_000;

/** Jobs in the last hour per pool, counted from the host's pool.runner_exited events. */
export function jobsLastHour(events: Envelope[], nowMs: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) {
    if (e.type !== "pool.runner_exited" || e.data?.job !== true || nowMs - Date.parse(e.time) > HOUR_MS) continue;
    const pool = String(e.data.pool ?? "");
    out.set(pool, (out.get(pool) ?? 0) + 1);
  }
  return out;
}

function poolsTable(pools: HostPools | undefined, jobs: Map<string, number>, nowMs: number): string {
  const rows = (pools?.doc.pools ?? []).map(
    (p) => `<tr><td>${esc(p.name)}</td><td>${esc(scopeKey(p.scope))}</td><td>${esc(p.size)}</td><td>${esc(p.runners.idle)}</td><td>${esc(p.runners.busy)}</td><td>${esc(p.runners.starting)}</td>
<td>${esc(jobs.get(p.name) ?? 0)}</td><td>${esc(p.jobs_total)}</td><td>${p.draining ? "draining" : p.short_since !== null ? `short for ${esc(formatDuration(nowMs / 1000 - p.short_since))}` : "ok"}</td></tr>`,
  );
  const when = pools ? ` <span class="muted" style="font-weight:normal">reported ${esc(ago(pools.updatedAt, nowMs))}</span>` : "";
  return `<h2>Pools${when}</h2>${table(["pool", "scope", "size", "idle", "busy", "starting", "jobs last hour", "jobs in all", "state"], rows, "This host runs no pools (or its agent does not report them).")}`;
}

export function renderHostLive(view: CollectorView, host: string, events: Envelope[], nowMs: number, query: URLSearchParams = new URLSearchParams()): string | null {
  const runners = view.runners().filter((r) => r.host === host);
  const pools = view.pools?.().find((p) => p.host === host);
  if (runners.length === 0 && !pools && events.length === 0) return null;
  const rows = runners.map(
    (r) => `<tr class="runner"><td><a href="${esc(runnerHref(r.host, r.runner))}">${esc(r.runner)}</a></td><td><span class="status s-${esc(fleetStatus(r))}">${esc(fleetStatus(r))}</span></td>
<td>${esc(scopeKey(r.state.scope))}</td><td>${esc(tokenLeft(r.state.token_expires_at, nowMs))}</td><td>${esc(r.state.consecutive_failures)}</td><td>${esc(ago(r.updatedAt, nowMs))}</td></tr>`,
  );
  const history = view.history?.();
  return `<h1>${esc(host)}</h1>
<div class="muted">as of ${esc(new Date(nowMs).toISOString())} · <a href="/?host=${esc(encodeURIComponent(host))}">in the fleet table</a></div>
${healthBanner(view.health())}
<h2>Runners</h2>
${table(["runner", "status", "scope", "token left", "failures", "last seen"], rows, "No runner state from this host.")}
${poolsTable(pools, jobsLastHour(events, nowMs), nowMs)}
${history ? localHistorySection((s, w) => history.hostPoints(host, s, w), parseWindow(query.get("window")), query, "this host") : ""}
${alertsSection(view.alerts().filter((a) => a.host === host), history?.alertTransitions(host) ?? [], nowMs)}
<h2>Events</h2>
${eventsTable(events, nowMs, "No events from this host in the stream's recent tail.")}`;
}
