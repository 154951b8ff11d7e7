/**
 * `/runners/{host}/{runner}`: one runner's state, token time left, its events from the stream
 * (bounded), its alerts now and before, and its registration history (the runner ids it had and
 * why each re-registration happened, from runner.registered events).
 */
import type { Registration } from "../../collector/history.ts";
import type { CollectorView, FleetRunner } from "../../collector/types.ts";
import { registrationReason } from "../../shared/event-text.ts";
import { scopeKey } from "../../shared/scope.ts";
import type { Envelope } from "../../shared/types.ts";
import { fleetStatus } from "../collector-metrics.ts";
import { alertsSection } from "./alerts.ts";
import { localHistorySection, parseWindow } from "./history.ts";
import { eventsTable } from "./events.ts";
import { ago, esc, healthBanner, hostHref, table, tokenLeft, yesNo } from "./layout.ts";

/**
 * Other hosts reporting a runner of this name in this scope. GitHub keeps one registration per
 * name and scope, so two listeners behind one name take turns failing with "A session for this
 * runner already exists"; the agent on either host cannot see the other (SPEC 15), this page can.
 */
function namesakes(view: CollectorView, r: FleetRunner): FleetRunner[] {
  const scope = scopeKey(r.state.scope);
  return view.runners().filter((x) => x.runner === r.runner && x.host !== r.host && !x.stale && scopeKey(x.state.scope) === scope);
}

function facts(r: FleetRunner, nowMs: number, others: FleetRunner[]): string {
  const s = r.state;
  const rows: [string, string][] = [
    ["status", `<span class="status s-${esc(fleetStatus(r))}">${esc(fleetStatus(r))}</span>${r.stale ? ` <span class="muted">(last reported: ${esc(s.status)})</span>` : ""}`],
    ["scope", esc(scopeKey(s.scope))],
    ["token left", `${esc(tokenLeft(s.token_expires_at, nowMs))}${s.token_expires_at !== null ? ` <span class="muted">(expires ${esc(new Date(s.token_expires_at * 1000).toISOString())})</span>` : ""}`],
    ["last refresh", s.last_refresh_timestamp === null ? "never" : esc(ago(s.last_refresh_timestamp * 1000, nowMs))],
    ["registered", `${yesNo(s.registered)}${s.agent_id !== null ? ` (runner id ${esc(s.agent_id)})` : ""}`],
    ["online / busy", `${yesNo(s.online)} / ${yesNo(s.busy)}`],
    ["service active", yesNo(s.service_active)],
    ["refreshes", `${esc(s.total_refreshes)} ok, ${esc(s.failed_refreshes)} failed, ${esc(s.consecutive_failures)} failing in a row`],
    ["last error", s.last_error ? `<span class="err">${esc(s.last_error)}</span>` : "none"],
    ["last seen", `${esc(ago(r.updatedAt, nowMs))} <span class="muted">(stale after ${esc(r.staleAfter)}s; a pass every ${esc(s.interval)}s)</span>`],
  ];
  if (others.length > 0) {
    const hosts = others.map((o) => `<a href="${esc(hostHref(o.host))}">${esc(o.host)}</a>`).join(", ");
    rows.push(["same name on", `<span class="err">${hosts}</span> <span class="muted">(one registration, two listeners: rename one of them)</span>`]);
  }
  return `<dl class="facts">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("")}</dl>`;
}

function registrations(list: Registration[], nowMs: number): string {
  const rows = [...list].reverse().map(
    (g) => `<tr><td title="${esc(g.time)}">${esc(ago(Date.parse(g.time), nowMs))}</td><td>${g.agentId === null ? "?" : esc(g.agentId)}</td><td>${esc(registrationReason(g.reason))}</td></tr>`,
  );
  return table(["when", "runner id", "why"], rows, "No registration seen in the events this collector read.");
}

/** The runner's own events, and its host's events for its scope (tokens are per scope, SPEC 8). */
function concerns(e: Envelope, r: FleetRunner): boolean {
  if (e.runner !== null) return e.runner === r.runner;
  try {
    return !e.scope || scopeKey(e.scope) === scopeKey(r.state.scope);
  } catch {
    return false;
  }
}

export function renderRunnerLive(view: CollectorView, host: string, runner: string, events: Envelope[], nowMs: number, query: URLSearchParams = new URLSearchParams()): string | null {
  const r = view.runner(host, runner);
  if (!r) return null;
  const history = view.history?.();
  const firing = view.alerts().filter((a) => a.host === host && a.runner === runner);
  return `<h1>${esc(runner)} <span class="muted">on <a href="${esc(hostHref(host))}">${esc(host)}</a></span></h1>
<div class="muted">as of ${esc(new Date(nowMs).toISOString())}</div>
${healthBanner(view.health())}
${facts(r, nowMs, namesakes(view, r))}
${alertsSection(firing, history?.alertTransitions(host, runner) ?? [], nowMs)}
<h2>Registration history</h2>
${registrations(history?.registrationsOf(host, runner) ?? [], nowMs)}
${history ? localHistorySection((s, w) => history.runnerPoints(host, runner, s, w), parseWindow(query.get("window")), query, "this runner") : ""}
<h2>Events</h2>
${eventsTable(events.filter((e) => concerns(e, r)), nowMs, "No events for this runner in the stream's recent tail.")}`;
}
