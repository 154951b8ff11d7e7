/**
 * Charts as inline SVG drawn on the server: no library, no script, no asset to serve, and they
 * arrive with every live update like the rest of the page. A chart is a few hundred bytes per
 * series (one polyline), which beats shipping a charting library for six small time series.
 */
import { esc } from "./layout.ts";

export interface ChartSeries {
  label: string;
  colour: string;
  points: { t: number; v: number }[];
  /** A level sampled per bucket (legend: its peak) rather than a count (legend: the sum). */
  gauge?: boolean;
}

const W = 320;
const H = 90;
const PAD = { left: 30, right: 6, top: 6, bottom: 16 };

function clock(t: number, spanMs: number): string {
  const iso = new Date(t).toISOString();
  return spanMs > 2 * 86_400_000 ? iso.slice(5, 10) : iso.slice(11, 16);
}

/** One small line chart; `data-total` on the svg is the sum of every point (tests read it). */
export function lineChart(title: string, series: ChartSeries[]): string {
  const all = series.flatMap((s) => s.points);
  const max = Math.max(1, ...all.map((p) => p.v));
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(...all.map((p) => p.t));
  const span = Math.max(1, t1 - t0);
  const x = (t: number) => PAD.left + ((t - t0) / span) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const total = all.reduce((a, p) => a + p.v, 0);
  const lines = series
    .map((s) => `<polyline fill="none" stroke="${esc(s.colour)}" stroke-width="1.5" points="${s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ")}"><title>${esc(s.label)}</title></polyline>`)
    .join("");
  const axis = `<line x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" stroke="#c5cad3"/>
<text x="${PAD.left - 3}" y="${PAD.top + 8}" text-anchor="end" font-size="9" fill="#7a8291">${max}</text>
<text x="${PAD.left - 3}" y="${H - PAD.bottom}" text-anchor="end" font-size="9" fill="#7a8291">0</text>
<text x="${PAD.left}" y="${H - 3}" font-size="9" fill="#7a8291">${esc(clock(t0, span))}</text>
<text x="${W - PAD.right}" y="${H - 3}" text-anchor="end" font-size="9" fill="#7a8291">${esc(clock(t1, span))}</text>`;
  const legend = series.map((s) => `<span><i style="background:${esc(s.colour)}"></i>${esc(s.label)}: ${s.gauge ? `peak ${Math.max(0, ...s.points.map((p) => p.v))}` : s.points.reduce((a, p) => a + p.v, 0)}</span>`).join("");
  return `<div class="chart"><h3>${esc(title)}</h3><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}" data-total="${total}">${axis}${lines}</svg><div class="legend">${legend}</div></div>`;
}
