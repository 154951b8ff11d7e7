/**
 * The collector's HTML dashboard (SPEC 9): one self-contained page rendered on the server from
 * the fleet view. No script and no external assets, so it works air-gapped and needs no build; it
 * never calls /api from the browser, which lets it stay open while /api requires a token.
 * Every value that came from an agent or a rule goes through `esc`: names and error texts are
 * whatever a runner host sent.
 */
import type { CollectorAlert, FleetRunner } from "../collector/types.ts";
import { scopeKey } from "../shared/scope.ts";
import type { Envelope } from "../shared/types.ts";
import { FLEET_STATUSES, fleetStatus, type FleetStatus } from "./collector-metrics.ts";

export interface DashboardInput {
  runners: FleetRunner[];
  alerts: CollectorAlert[];
  /** Newest last, as the view returns them; shown newest first. */
  events: Envelope[];
  health: { ok: boolean; reason: string | null };
  version: string;
  /** Seconds between automatic reloads; 0 turns them off. */
  refreshSeconds?: number;
}

const ERROR_CHARS = 120;
/** The full error stays readable on hover, within reason. */
const ERROR_TITLE_CHARS = 1000;
const DATA_CHARS = 160;

export function esc(value: unknown): string {
  return String(value ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A coarse duration for reading at a glance: 45s, 52m, 3h 5m, 2d 4h. */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) {
    const m = Math.floor((s % 3600) / 60);
    return `${Math.floor(s / 3600)}h${m ? ` ${m}m` : ""}`;
  }
  const h = Math.floor((s % 86400) / 3600);
  return `${Math.floor(s / 86400)}d${h ? ` ${h}h` : ""}`;
}

/** "52m", "expired" or "none" (SPEC 11's health wording, so both tools read alike). */
export function tokenLeft(expiresAt: number | null, nowMs: number): string {
  if (expiresAt === null) return "none";
  const left = expiresAt - nowMs / 1000;
  return left <= 0 ? "expired" : formatDuration(left);
}

function ago(ms: number, nowMs: number): string {
  return Number.isFinite(ms) ? `${formatDuration((nowMs - ms) / 1000)} ago` : "?";
}

function yesNo(value: boolean | null): string {
  return value === null ? '<span class="muted">?</span>' : value ? "yes" : "no";
}

/** Worst first, so a problem is on screen without scrolling. */
const RANK: Record<FleetStatus, number> = { failing: 0, unregistered: 1, stale: 2, deferred_busy: 3, refreshing: 4, held: 5, ok: 6 };

function runnerRow(r: FleetRunner, nowMs: number): string {
  const status = fleetStatus(r);
  const reported = r.stale ? ` <span class="muted">(last: ${esc(r.state.status)})</span>` : "";
  const left = tokenLeft(r.state.token_expires_at, nowMs);
  const leftClass = left === "expired" ? "bad" : left === "none" ? "muted" : "";
  const error = r.state.last_error ? truncate(r.state.last_error, ERROR_CHARS) : "";
  return `<tr>
<td>${esc(r.host)}</td><td>${esc(r.runner)}</td>
<td><span class="status s-${esc(status)}">${esc(status)}</span>${reported}</td>
<td>${esc(scopeKey(r.state.scope))}</td>
<td>${yesNo(r.state.registered)}</td><td>${yesNo(r.state.online)}</td><td>${yesNo(r.state.busy)}</td>
<td class="${leftClass}">${esc(left)}</td>
<td class="${r.state.consecutive_failures > 0 ? "bad" : ""}">${esc(r.state.consecutive_failures)}</td>
<td>${esc(ago(r.updatedAt, nowMs))}</td>
<td class="err" title="${esc(truncate(r.state.last_error ?? "", ERROR_TITLE_CHARS))}">${esc(error)}</td>
</tr>`;
}

/**
 * One runner's row, or a row that says its state could not be shown: one runner's odd state
 * must never cost the page (the collector validates documents; this is the second line).
 */
function safeRunnerRow(r: FleetRunner, nowMs: number): string {
  try {
    return runnerRow(r, nowMs);
  } catch {
    return `<tr><td>${esc(r.host)}</td><td>${esc(r.runner)}</td><td colspan="9" class="bad">state unreadable: see /api/v1/runners</td></tr>`;
  }
}

function alertRow(a: CollectorAlert, nowMs: number): string {
  return `<tr><td><span class="sev sev-${esc(a.severity)}">${esc(a.severity)}</span></td>
<td>${esc(a.rule)}</td><td>${esc(a.host)}</td><td>${esc(a.runner)}</td><td>${esc(a.summary)}</td>
<td title="${esc(a.startsAt)}">${esc(ago(Date.parse(a.startsAt), nowMs))}</td></tr>`;
}

function eventRow(e: Envelope, nowMs: number): string {
  const bad = /failed|offline|skew|conflict|expiring/.test(e.type);
  const data = truncate(JSON.stringify(e.data ?? {}), DATA_CHARS);
  return `<tr><td title="${esc(e.time)}">${esc(ago(Date.parse(e.time), nowMs))}</td>
<td class="${bad ? "bad" : ""}">${esc(e.type)}</td><td>${esc(e.host)}</td><td>${esc(e.runner ?? "—")}</td>
<td>${esc(e.scope ? scopeKey(e.scope) : "")}</td><td class="data">${esc(data)}</td></tr>`;
}

/** An event that cannot be shown is left out rather than costing the page. */
function safely(row: () => string): string[] {
  try {
    return [row()];
  } catch {
    return [];
  }
}

function table(headers: string[], rows: string[], empty: string): string {
  if (rows.length === 0) return `<p class="muted">${esc(empty)}</p>`;
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead>
<tbody>${rows.join("\n")}</tbody></table>`;
}

function summary(input: DashboardInput, nowMs: number): string {
  const counts = new Map<FleetStatus, number>(FLEET_STATUSES.map((s) => [s, 0]));
  for (const r of input.runners) if (counts.has(fleetStatus(r))) counts.set(fleetStatus(r), (counts.get(fleetStatus(r)) ?? 0) + 1);
  const tiles = FLEET_STATUSES.map(
    (s) => `<div class="tile${counts.get(s) ? ` s-${s}` : ""}"><b>${counts.get(s)}</b><span>${esc(s)}</span></div>`,
  );
  const expiries = input.runners.map((r) => r.state.token_expires_at).filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  const expired = expiries.filter((x) => x <= nowMs / 1000).length;
  const soonest = expiries.length ? tokenLeft(Math.min(...expiries), nowMs) : "none";
  const stale = counts.get("stale") ?? 0;
  const alerts = input.alerts.length;
  return `<div class="tiles">
<div class="tile"><b>${input.runners.length}</b><span>runners</span></div>
${tiles.join("\n")}
<div class="tile${stale ? " s-stale" : ""}"><b>${stale}</b><span>stale agents</span></div>
<div class="tile${alerts ? " s-failing" : ""}"><b>${alerts}</b><span>firing alerts</span></div>
<div class="tile${expired ? " s-failing" : ""}"><b>${esc(soonest)}</b><span>soonest token (${expired} expired)</span></div>
</div>`;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2433;background:#f6f7f9}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:.3rem .5rem;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}
.muted{color:#7a8291}.bad{color:#b3261e;font-weight:600}
.err,.data{font-family:ui-monospace,monospace;font-size:12px;max-width:32rem;overflow-wrap:anywhere}
/* Tiles first: a status class below must win over the tile's white background. */
.tiles{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:1rem}
.tile{background:#fff;border:1px solid #e3e6ea;border-radius:.4rem;padding:.4rem .8rem;min-width:6rem}
.status,.sev{display:inline-block;padding:0 .45rem;border-radius:.6rem;color:#fff;background:#7a8291}
.s-ok{background:#1e7d32}.s-refreshing{background:#1565c0}.s-deferred_busy{background:#b26a00}
.s-failing,.s-unregistered{background:#b3261e}.s-held{background:#5f6b7a}.s-stale{background:#6a1b9a}
.sev-critical,.sev-error{background:#b3261e}.sev-warning{background:#b26a00}.sev-info{background:#1565c0}
.tile b{display:block;font-size:1.4rem}.tile.s-ok,.tile[class*=" s-"]{color:#fff}
.banner{background:#b3261e;color:#fff;padding:.5rem .8rem;border-radius:.4rem;margin-top:.8rem}
footer{margin-top:2rem;color:#7a8291;font-size:12px}`;

export function renderDashboard(input: DashboardInput, nowMs: number): string {
  const rank = (r: FleetRunner) => RANK[fleetStatus(r)] ?? -1;
  const runners = [...input.runners].sort(
    (a, b) => rank(a) - rank(b) || String(a.host).localeCompare(String(b.host)) || String(a.runner).localeCompare(String(b.runner)),
  );
  const events = [...input.events].reverse();
  const refresh = input.refreshSeconds ?? 10;
  const banner = input.health.ok ? "" : `<div class="banner">Collector unhealthy: ${esc(input.health.reason ?? "unknown reason")}</div>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
${refresh > 0 ? `<meta http-equiv="refresh" content="${esc(refresh)}">` : ""}
<title>runner-token-refresh fleet</title><style>${CSS}</style></head>
<body>
<h1>runner-token-refresh fleet</h1>
<div class="muted">as of ${esc(new Date(nowMs).toISOString())}</div>
${banner}
${summary(input, nowMs)}
<h2>Firing alerts</h2>
${table(["severity", "rule", "host", "runner", "summary", "since"], input.alerts.map((a) => alertRow(a, nowMs)), "No alerts firing.")}
<h2>Runners</h2>
${table(
  ["host", "runner", "status", "scope", "registered", "online", "busy", "token left", "failures", "last seen", "last error"],
  runners.map((r) => safeRunnerRow(r, nowMs)),
  "No runners have reported yet.",
)}
<h2>Recent events</h2>
${table(["when", "type", "host", "runner", "scope", "data"], events.flatMap((e) => safely(() => eventRow(e, nowMs))), "No events yet.")}
<footer>runner-token-refresh collector ${esc(input.version)} · JSON at /api/v1 · metrics at /metrics</footer>
</body></html>
`;
}
