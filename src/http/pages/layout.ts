/**
 * What every collector page shares: escaping, durations, the status colours, the stylesheet and
 * the shell with its live-update script. Pages are rendered on the server from the fleet view; the
 * only script is the one below, which swaps in fragments pushed over Server-Sent Events (sse.ts),
 * so a page without scripts still shows everything, just not live.
 * Every value that came from an agent or a rule goes through `esc`.
 */
import { humanDuration } from "../../shared/event-text.ts";
import { STATUS_COLOURS } from "../../shared/status-look.ts";

export function esc(value: unknown): string {
  return String(value ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A coarse duration for reading at a glance: 45s, 52m, 3h 5m, 2d 4h. */
export const formatDuration = humanDuration;

/** "52m", "expired" or "none" (SPEC 11's health wording, so both tools read alike). */
export function tokenLeft(expiresAt: number | null, nowMs: number): string {
  if (expiresAt === null) return "none";
  const left = expiresAt - nowMs / 1000;
  return left <= 0 ? "expired" : formatDuration(left);
}

export function ago(ms: number, nowMs: number): string {
  return Number.isFinite(ms) ? `${formatDuration((nowMs - ms) / 1000)} ago` : "?";
}

export function yesNo(value: boolean | null): string {
  return value === null ? '<span class="muted">?</span>' : value ? "yes" : "no";
}

/** `/runners/{host}/{runner}` with both names URL-encoded (they are whatever a host sent). */
export function runnerHref(host: string, runner: string): string {
  return `/runners/${encodeURIComponent(host)}/${encodeURIComponent(runner)}`;
}

export function hostHref(host: string): string {
  return `/hosts/${encodeURIComponent(host)}`;
}

export function table(headers: string[], rows: string[], empty: string, cls = ""): string {
  if (rows.length === 0) return `<p class="muted">${esc(empty)}</p>`;
  return `<table${cls ? ` class="${cls}"` : ""}><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead>
<tbody>${rows.join("\n")}</tbody></table>`;
}

/** One row, or nothing when it cannot be rendered: one odd value must never cost the page. */
export function safely(row: () => string): string[] {
  try {
    return [row()];
  } catch {
    return [];
  }
}

const statusCss = Object.entries(STATUS_COLOURS)
  .map(([s, c]) => `.s-${s}{background:${c}}`)
  .join("");

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2433;background:#f6f7f9}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
a{color:#1554a0}nav a{margin-right:.8rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:.3rem .5rem;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}
.muted{color:#7a8291}.bad{color:#b3261e;font-weight:600}
.err,.data,pre{font-family:ui-monospace,monospace;font-size:12px;max-width:40rem;overflow-wrap:anywhere;white-space:pre-wrap}
details summary{cursor:pointer;color:#7a8291;font-size:12px}
/* Tiles first: a status class below must win over the tile's white background. */
.tiles{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:1rem}
.tile{background:#fff;border:1px solid #e3e6ea;border-radius:.4rem;padding:.4rem .8rem;min-width:6rem;color:inherit;text-decoration:none}
.status,.sev{display:inline-block;padding:0 .45rem;border-radius:.6rem;color:#fff;background:#7a8291}
${statusCss}
.sev-critical,.sev-error{background:#b3261e}.sev-warning{background:#b26a00}.sev-info{background:#1565c0}
.st-firing{background:#b3261e}.st-resolved{background:#1e7d32}
.tile b{display:block;font-size:1.4rem}.tile[class*=" s-"]{color:#fff}
.banner{background:#b3261e;color:#fff;padding:.5rem .8rem;border-radius:.4rem;margin-top:.8rem}
.banner.nats{background:#6a1b9a}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:.5rem 0;background:#fff;padding:.5rem;border:1px solid #e3e6ea;border-radius:.4rem}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#7a8291}
form.filters input,form.filters select{font:inherit;padding:.15rem .3rem}
.pager{margin:.5rem 0}.pager a,.pager span{margin-right:1rem}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.6rem}
.chart{background:#fff;border:1px solid #e3e6ea;border-radius:.4rem;padding:.4rem .6rem}
.chart h3{font-size:.9rem;margin:0 0 .2rem;font-weight:600}.chart svg{display:block;width:100%;height:auto}
.legend span{margin-right:.8rem;font-size:12px}.legend i{display:inline-block;width:.8rem;height:.25rem;margin-right:.25rem;vertical-align:middle}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;background:#fff;padding:.6rem;border:1px solid #e3e6ea;border-radius:.4rem}
dl.facts dt{color:#7a8291}dl.facts dd{margin:0}
footer{margin-top:2rem;color:#7a8291;font-size:12px}`;

/**
 * Swaps `#live` for each fragment the server pushes. EventSource reconnects by itself; while it
 * cannot, the page keeps what it shows and says so.
 */
const LIVE_SCRIPT = `(function(){
var el=document.getElementById("live");if(!el||!window.EventSource)return;
var src=new EventSource("/live?page="+encodeURIComponent(location.pathname+location.search));
var note=document.getElementById("live-note");
src.addEventListener("update",function(m){try{el.innerHTML=JSON.parse(m.data).html;if(note)note.textContent="live";}catch(e){}});
src.onerror=function(){if(note)note.textContent="live updates interrupted: reconnecting";};
})();`;

export interface Shell {
  title: string;
  /** The part that live updates replace. */
  live: string;
  /** Seconds between reloads when live updates are off (tests, no-script browsers): 0 = none. */
  refreshSeconds?: number;
  /** False renders no live-update script (a page rendered on its own, as in tests). */
  liveUpdates?: boolean;
  version: string;
}

export function shell(page: Shell): string {
  const refresh = page.refreshSeconds ?? 0;
  const live = page.liveUpdates ?? true;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
${refresh > 0 ? `<meta http-equiv="refresh" content="${esc(refresh)}">` : ""}
<title>${esc(page.title)}</title><style>${CSS}</style></head>
<body>
<nav><a href="/">fleet</a><span class="muted" id="live-note">${live ? "" : "static"}</span></nav>
<div id="live">${page.live}</div>
<footer>runner-token-refresh collector ${esc(page.version)} · JSON at /api/v1 · metrics at /metrics</footer>
${live ? `<script>${LIVE_SCRIPT}</script>` : ""}
</body></html>
`;
}

/** The banner for an unhealthy collector; "NATS unavailable" when NATS is what is missing. */
export function healthBanner(health: { ok: boolean; reason: string | null }): string {
  if (health.ok) return "";
  const reason = health.reason ?? "unknown reason";
  if (/NATS/i.test(reason)) {
    return `<div class="banner nats">NATS unavailable: showing the last state this collector saw, read-only (${esc(reason)})</div>`;
  }
  return `<div class="banner">Collector unhealthy: ${esc(reason)}</div>`;
}
