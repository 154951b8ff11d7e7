/**
 * Events for people: one sentence per known type (src/shared/event-text.ts, the demo says the
 * same), the JSON behind a disclosure; a type this version does not know is shown raw.
 */
import { eventSentence, isTroubleEvent } from "../../shared/event-text.ts";
import { scopeKey } from "../../shared/scope.ts";
import type { Envelope } from "../../shared/types.ts";
import { ago, esc, hostHref, runnerHref, safely, table, truncate } from "./layout.ts";

/** The disclosure shows the event as it came, within reason. */
const JSON_CHARS = 4000;

function eventRow(e: Envelope, nowMs: number): string {
  const sentence = eventSentence(e);
  const json = truncate(JSON.stringify(e, null, 1), JSON_CHARS);
  const what = sentence === null ? `<span class="data">${esc(truncate(JSON.stringify(e.data ?? {}), 300))}</span>` : esc(sentence);
  const who = e.runner === null ? `<a href="${esc(hostHref(e.host))}">${esc(e.host)}</a>` : `<a href="${esc(runnerHref(e.host, e.runner))}">${esc(e.runner)}</a> <span class="muted">on ${esc(e.host)}</span>`;
  return `<tr class="event"><td title="${esc(e.time)}">${esc(ago(Date.parse(e.time), nowMs))}</td>
<td class="${isTroubleEvent(e.type) ? "bad" : ""}">${esc(e.type)}</td><td>${who}</td>
<td><span class="sentence">${what}</span>${e.scope ? ` <span class="muted">${esc(scopeKey(e.scope))}</span>` : ""}<details><summary>JSON</summary><pre>${esc(json)}</pre></details></td></tr>`;
}

/** Newest first; `events` come newest last, as the view returns them. */
export function eventsTable(events: Envelope[], nowMs: number, empty = "No events yet."): string {
  const rows = [...events].reverse().flatMap((e) => safely(() => eventRow(e, nowMs)));
  return table(["when", "type", "where", "what happened"], rows, empty, "events");
}
