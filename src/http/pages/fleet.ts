/**
 * The fleet page (`/`, SPEC 9): runners by status, tokens by time left, firing alerts, recent
 * events in sentences and history charts. It takes the API's filters from its own URL (so a
 * filtered view is a link to share) and shows one page of runners at a time; the tiles count the
 * whole fleet.
 */
import type { CollectorAlert, FleetRunner } from "../../collector/types.ts";
import type { History } from "../../collector/history.ts";
import { scopeKey } from "../../shared/scope.ts";
import type { Envelope } from "../../shared/types.ts";
import { FLEET_STATUSES, fleetStatus, type FleetStatus } from "../collector-metrics.ts";
import { FilterError, filtersQuery, hasFilters, pageRunners, parseRunnerFilters, type RunnerFilters } from "../api-filters.ts";
import { eventsTable } from "./events.ts";
import { historySection, parseWindow } from "./history.ts";
import { ago, esc, healthBanner, hostHref, runnerHref, safely, shell, table, tokenLeft, truncate, yesNo } from "./layout.ts";

export interface DashboardInput {
  runners: FleetRunner[];
  alerts: CollectorAlert[];
  /** Newest last, as the view returns them; shown newest first. */
  events: Envelope[];
  health: { ok: boolean; reason: string | null };
  version: string;
  /** Seconds between automatic reloads when live updates are off; 0 turns them off. */
  refreshSeconds?: number;
  /** False: no live-update script (the page alone, as unit tests render it). */
  liveUpdates?: boolean;
  /** The page's query string: filters, cursor, limit, chart window. */
  query?: URLSearchParams;
  history?: History;
}

/** The dashboard shows fewer rows than the API's default: a screenful of trouble, then pages. */
export const DASHBOARD_PAGE = 200;
const ERROR_CHARS = 120;
/** The full error stays readable on hover, within reason. */
const ERROR_TITLE_CHARS = 1000;

function runnerRow(r: FleetRunner, nowMs: number): string {
  const status = fleetStatus(r);
  const reported = r.stale ? ` <span class="muted">(last: ${esc(r.state.status)})</span>` : "";
  const left = tokenLeft(r.state.token_expires_at, nowMs);
  const leftClass = left === "expired" ? "bad" : left === "none" ? "muted" : "";
  const error = r.state.last_error ? truncate(r.state.last_error, ERROR_CHARS) : "";
  return `<tr class="runner">
<td><a href="${esc(hostHref(r.host))}">${esc(r.host)}</a></td><td><a href="${esc(runnerHref(r.host, r.runner))}">${esc(r.runner)}</a></td>
<td><span class="status s-${esc(status)}">${esc(status)}</span>${reported}</td>
<td>${esc(scopeKey(r.state.scope))}</td>
<td>${yesNo(r.state.registered)}</td><td>${yesNo(r.state.online)}</td><td>${yesNo(r.state.busy)}</td>
<td class="${leftClass}">${esc(left)}</td>
<td class="${r.state.consecutive_failures > 0 ? "bad" : ""}">${esc(r.state.consecutive_failures)}</td>
<td>${esc(ago(r.updatedAt, nowMs))}</td>
<td class="err" title="${esc(truncate(r.state.last_error ?? "", ERROR_TITLE_CHARS))}">${esc(error)}</td>
</tr>`;
}

/** A row that says the state could not be shown: one runner's odd state must never cost the page. */
function safeRunnerRow(r: FleetRunner, nowMs: number): string {
  try {
    return runnerRow(r, nowMs);
  } catch {
    return `<tr class="runner"><td>${esc(r.host)}</td><td>${esc(r.runner)}</td><td colspan="9" class="bad">state unreadable: see /api/v1/runners</td></tr>`;
  }
}

export function alertRow(a: CollectorAlert, nowMs: number): string {
  return `<tr><td><span class="sev sev-${esc(a.severity)}">${esc(a.severity)}</span></td>
<td>${esc(a.rule)}</td><td><a href="${esc(hostHref(a.host))}">${esc(a.host)}</a></td><td>${a.runner ? `<a href="${esc(runnerHref(a.host, a.runner))}">${esc(a.runner)}</a>` : "—"}</td><td>${esc(a.summary)}</td>
<td title="${esc(a.startsAt)}">${esc(ago(Date.parse(a.startsAt), nowMs))}</td></tr>`;
}

function summary(input: DashboardInput, nowMs: number): string {
  const counts = new Map<FleetStatus, number>(FLEET_STATUSES.map((s) => [s, 0]));
  let expired = 0;
  let soonest = Infinity;
  for (const r of input.runners) {
    try {
      const s = fleetStatus(r);
      if (counts.has(s)) counts.set(s, (counts.get(s) ?? 0) + 1);
      const x = r.state.token_expires_at;
      if (typeof x === "number" && Number.isFinite(x)) {
        if (x <= nowMs / 1000) expired++;
        if (x < soonest) soonest = x;
      }
    } catch {
      // Counted in "runners" only.
    }
  }
  // Each status tile is a link to the runners in that status.
  const tiles = FLEET_STATUSES.map(
    (s) => `<a class="tile${counts.get(s) ? ` s-${s}` : ""}" href="/?status=${esc(s)}"><b>${counts.get(s)}</b><span>${esc(s)}</span></a>`,
  );
  const stale = counts.get("stale") ?? 0;
  const alerts = input.alerts.length;
  const soonestText = Number.isFinite(soonest) ? tokenLeft(soonest, nowMs) : "none";
  return `<div class="tiles">
<a class="tile" href="/"><b>${input.runners.length}</b><span>runners</span></a>
${tiles.join("\n")}
<div class="tile${stale ? " s-stale" : ""}"><b>${stale}</b><span>stale agents</span></div>
<div class="tile${alerts ? " s-failing" : ""}"><b>${alerts}</b><span>firing alerts</span></div>
<div class="tile${expired ? " s-failing" : ""}"><b>${esc(soonestText)}</b><span>soonest token (${expired} expired)</span></div>
</div>`;
}

function filterForm(f: RunnerFilters | null, query: URLSearchParams): string {
  const value = (name: string) => esc(query.getAll(name).join(","));
  const field = (name: string, label: string, hint: string, list = "") =>
    `<label>${esc(label)}<input name="${name}" value="${value(name)}" placeholder="${esc(hint)}"${list ? ` list="${list}"` : ""}></label>`;
  const window = query.get("window");
  return `<form class="filters" method="get" action="/">
${field("status", "status", "failing,stale", "statuses")}
<datalist id="statuses">${FLEET_STATUSES.map((s) => `<option value="${s}">`).join("")}</datalist>
${field("host", "host", "ci-01.example.com")}${field("scope", "scope", "org:NAME")}${field("pool", "pool", "build")}${field("q", "runner name contains", "gpu")}
${window ? `<input type="hidden" name="window" value="${esc(window)}">` : ""}
<button type="submit">Filter</button>${f && hasFilters(f) ? ` <a href="/">clear</a>` : ""}
</form>`;
}

function runnersSection(input: DashboardInput, nowMs: number, query: URLSearchParams): string {
  let f: RunnerFilters;
  try {
    f = parseRunnerFilters(query, DASHBOARD_PAGE);
  } catch (err) {
    if (!(err instanceof FilterError)) throw err;
    return `${filterForm(null, query)}<div class="banner">${esc(err.message)}</div>`;
  }
  const page = pageRunners(input.runners, f, "status");
  const window = query.get("window");
  const next = page.nextCursor ? `<a href="/${esc(filtersQuery(f, { limit: query.get("limit"), window, cursor: page.nextCursor }))}">next page →</a>` : "";
  const first = f.cursor ? `<a href="/${esc(filtersQuery(f, { limit: query.get("limit"), window }))}">← first page</a>` : "";
  const shown = `<span class="muted">${page.runners.length} shown of ${page.total}${hasFilters(f) ? " matching" : ""}</span>`;
  const empty = hasFilters(f) ? "No runner matches these filters." : "No runners have reported yet.";
  return `${filterForm(f, query)}<div class="pager">${shown}${first}${next}</div>
${table(
  ["host", "runner", "status", "scope", "registered", "online", "busy", "token left", "failures", "last seen", "last error"],
  page.runners.map((r) => safeRunnerRow(r, nowMs)),
  empty,
  "runners",
)}`;
}

/** The part of the page live updates replace. */
export function renderFleetLive(input: DashboardInput, nowMs: number): string {
  const query = input.query ?? new URLSearchParams();
  return `<h1>runner-token-refresh fleet</h1>
<div class="muted">as of ${esc(new Date(nowMs).toISOString())}</div>
${healthBanner(input.health)}
${summary(input, nowMs)}
<h2>Firing alerts</h2>
${table(["severity", "rule", "host", "runner", "summary", "since"], input.alerts.flatMap((a) => safely(() => alertRow(a, nowMs))), "No alerts firing.")}
<h2>Runners</h2>
${runnersSection(input, nowMs, query)}
${historySection(input.history, parseWindow(query.get("window")), query)}
<h2>Recent events</h2>
${eventsTable(input.events, nowMs)}`;
}

export function renderDashboard(input: DashboardInput, nowMs: number): string {
  return shell({ title: "runner-token-refresh fleet", live: renderFleetLive(input, nowMs), refreshSeconds: input.refreshSeconds, liveUpdates: input.liveUpdates, version: input.version });
}
