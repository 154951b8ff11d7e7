/** The fleet's history charts (1 h / 24 h / 7 d) from the collector's in-memory rollups. */
import type { History, Window } from "../../collector/history.ts";
import { WINDOW_NAMES } from "../../collector/history.ts";
import { lineChart } from "./chart.ts";
import { esc } from "./layout.ts";

export function parseWindow(raw: string | null | undefined): Window {
  return (WINDOW_NAMES as string[]).includes(raw ?? "") ? (raw as Window) : "1h";
}

/** The charts, with links to the other windows that keep the rest of the query string. */
export function historySection(history: History | undefined, window: Window, query: URLSearchParams): string {
  if (!history) return "";
  const links = WINDOW_NAMES.map((w) => {
    if (w === window) return `<b>${esc(w)}</b>`;
    const q = new URLSearchParams(query);
    q.set("window", w);
    q.delete("cursor");
    return `<a href="?${esc(q.toString())}">${esc(w)}</a>`;
  }).join(" · ");
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
