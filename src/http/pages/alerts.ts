/** Alerts on a runner or host page: what fires now, and what fired and recovered (bounded history). */
import type { AlertTransition } from "../../collector/history.ts";
import type { CollectorAlert } from "../../collector/types.ts";
import { alertRow } from "./fleet.ts";
import { ago, esc, formatDuration, safely, table } from "./layout.ts";

function transitionRow(t: AlertTransition, nowMs: number): string {
  const what = t.state === "resolved" ? `recovered after ${formatDuration(t.firedSeconds ?? 0)}` : t.summary;
  return `<tr><td title="${esc(t.at)}">${esc(ago(Date.parse(t.at), nowMs))}</td><td><span class="sev st-${esc(t.state)}">${esc(t.state)}</span></td>
<td>${esc(t.rule)}</td><td>${esc(t.runner ?? "—")}</td><td>${esc(what)}</td></tr>`;
}

export function alertsSection(firing: CollectorAlert[], past: AlertTransition[], nowMs: number): string {
  return `<h2>Alerts firing</h2>
${table(["severity", "rule", "host", "runner", "summary", "since"], firing.flatMap((a) => safely(() => alertRow(a, nowMs))), "No alerts firing.")}
<h2>Alert history</h2>
${table(["when", "state", "rule", "runner", "what"], [...past].reverse().slice(0, 100).flatMap((t) => safely(() => transitionRow(t, nowMs))), "No alert fired or resolved since this collector started.")}`;
}
