/** History charts (1 h / 24 h / 7 d) from the collector's in-memory rollups: the fleet's, a host's, a runner's. */
import type { History, Window } from "../../collector/history.ts";
import { WINDOW_NAMES } from "../../collector/history.ts";
import type { LocalSeries } from "../../collector/history-local.ts";
import { lineChart } from "./chart.ts";
import { esc } from "./layout.ts";

export function parseWindow(raw: string | null | undefined): Window {
  return (WINDOW_NAMES as string[]).includes(raw ?? "") ? (raw as Window) : "1h";
}

/** Links to the other windows that keep the rest of the query string. */
function windowLinks(window: Window, query: URLSearchParams): string {
  return WINDOW_NAMES.map((w) => {
    if (w === window) return `<b>${esc(w)}</b>`;
    const q = new URLSearchParams(query);
    q.set("window", w);
    q.delete("cursor");
    return `<a href="?${esc(q.toString())}">${esc(w)}</a>`;
  }).join(" · ");
}

/** The fleet's charts. */
export function historySection(history: History | undefined, window: Window, query: URLSearchParams): string {
  if (!history) return "";
  const links = windowLinks(window, query);
  const p = (s: Parameters<History["points"]>[0]) => history.points(s, window);
  const charts = [
    lineChart("Tokens refreshed", [{ label: "refreshed", colour: "#1e7d32", points: p("refreshed") }]),
    lineChart("Refresh failures", [{ label: "failed", colour: "#b3261e", points: p("refresh_failed") }]),
    lineChart("Registrations", [
      { label: "registered", colour: "#1565c0", points: p("registered") },
      { label: "re-registered", colour: "#b26a00", points: p("reregistered") },
    ]),
    lineChart("Alerts firing", [{ label: "firing", colour: "#b3261e", points: p("alerts_firing"), gauge: true }]),
    lineChart("Pool jobs", [{ label: "jobs", colour: "#1e7d32", points: p("pool_jobs") }]),
    lineChart("Pool runners", [
      { label: "idle", colour: "#1565c0", points: p("pool_idle"), gauge: true },
      { label: "busy", colour: "#b26a00", points: p("pool_busy"), gauge: true },
    ]),
  ];
  return `<h2>History <span class="muted" style="font-weight:normal">${links}</span></h2><div class="charts">${charts.join("\n")}</div>`;
}

/**
 * A host's or a runner's charts: what its events counted (token refreshes are per scope, so they
 * show on the host; a runner's page has what names the runner). `points` is null when the
 * collector keeps nothing for it (no event within 7 d, or past the cap of charted keys).
 */
export function localHistorySection(points: (series: LocalSeries, window: Window) => { t: number; v: number }[] | null, window: Window, query: URLSearchParams, whose: string): string {
  const links = windowLinks(window, query);
  const p = (s: LocalSeries) => points(s, window);
  const all = { refreshed: p("refreshed"), refresh_failed: p("refresh_failed"), registered: p("registered"), reregistered: p("reregistered"), pool_jobs: p("pool_jobs") };
  const head = `<h2>History <span class="muted" style="font-weight:normal">${links}</span></h2>`;
  if (Object.values(all).every((s) => s === null)) return `${head}<p class="muted">No events from ${esc(whose)} counted in the last 7 days.</p>`;
  const z = (s: { t: number; v: number }[] | null) => s ?? [];
  const charts = [
    lineChart("Tokens refreshed", [{ label: "refreshed", colour: "#1e7d32", points: z(all.refreshed) }]),
    lineChart("Refresh failures", [{ label: "failed", colour: "#b3261e", points: z(all.refresh_failed) }]),
    lineChart("Registrations", [
      { label: "registered", colour: "#1565c0", points: z(all.registered) },
      { label: "re-registered", colour: "#b26a00", points: z(all.reregistered) },
    ]),
  ];
  if (z(all.pool_jobs).some((pt) => pt.v > 0)) charts.push(lineChart("Pool jobs", [{ label: "jobs", colour: "#1e7d32", points: z(all.pool_jobs) }]));
  return `${head}<div class="charts">${charts.join("\n")}</div>`;
}
