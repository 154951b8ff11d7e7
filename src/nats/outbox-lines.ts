/**
 * The outbox's file format (SPEC 8), one JSON object a line, in append order:
 * - an event envelope;
 * - a repeat: `{"repeat_of": id, "seq", "time", "data"}`, one more occurrence of an identical
 *   failure (same type, host, runner, scope and error) folded into the event `id` above it in the
 *   same file, so a long outage stores one event with a count, not thousands of copies. `data`
 *   holds only what changed (attempt, consecutive_failures).
 * Reading folds each repeat into its event: `data` becomes the latest occurrence's, plus
 * `coalesced: { count, last_seq, last_time }`. The event keeps its first `id`, `seq` and `time`,
 * so its place in the per-runner order and its Nats-Msg-Id (the replay dedupe) never change.
 * A line torn by a crash mid-append (the last one) is skipped: it was never acknowledged.
 */
import type { Envelope, EventType } from "../shared/types.ts";

/** Failure events: coalesced when identical, and dropped last when the outbox is full. */
export const FAILURE_TYPES: ReadonlySet<EventType> = new Set(["token.refresh_failed", "runner.registration_failed", "runner.name_conflict"]);
/** Fields that differ between otherwise identical failures: not part of "identical". */
const VOLATILE_FIELDS = new Set(["attempt", "consecutive_failures"]);

export interface Repeat {
  repeat_of: string;
  seq: number;
  time: string;
  data: Record<string, unknown>;
}

export interface Coalesced {
  count: number;
  last_seq: number;
  last_time: string;
}

/** The last event appended for one stream (host, runner, scope) in the current file. */
export interface Tail {
  id: string;
  /** Its coalescing key; null when it is not a failure (nothing folds into it). */
  key: string | null;
  data: Record<string, unknown>;
}

/** Events of one host/runner/scope keep their order; a repeat may only fold into its stream's last. */
export function streamOf(e: Envelope): string {
  return JSON.stringify([e.host, e.runner, e.scope]);
}

export function coalesceKey(e: Envelope): string | null {
  if (!FAILURE_TYPES.has(e.type)) return null;
  const stable = Object.entries(e.data ?? {}).filter(([k]) => !VOLATILE_FIELDS.has(k) && k !== "coalesced");
  return JSON.stringify([e.type, e.host, e.runner, e.scope, stable]);
}

/**
 * A repeat line for `e`, folded into the event `tail.id`: only the data that differs from the
 * latest occurrence is kept. Updates `tail` to `e`'s data, as reading the line back would.
 */
export function repeatLine(tail: Tail, e: Envelope): string {
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e.data ?? {})) if (JSON.stringify(tail.data[k]) !== JSON.stringify(v)) data[k] = v;
  tail.data = { ...tail.data, ...data };
  const repeat: Repeat = { repeat_of: tail.id, seq: e.seq, time: e.time, data };
  return JSON.stringify(repeat);
}

export interface ParsedFile {
  /** Events in order, repeats folded in. */
  events: Envelope[];
  /** Lines that parsed (events and repeats): what the file costs on disk. */
  lines: number;
  /** Each stream's last event (for coalescing the next append). */
  tails: Map<string, Tail>;
  /** False when the file ends in a torn line: the next append starts on a new line. */
  cleanEnd: boolean;
}

export function parseOutboxFile(text: string): ParsedFile {
  const events: Envelope[] = [];
  const byId = new Map<string, Envelope>();
  const tails = new Map<string, Tail>();
  let lines = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    let value: Envelope | Repeat;
    try {
      value = JSON.parse(line) as Envelope | Repeat;
    } catch {
      // A line torn by a crash mid-append was never acknowledged to its caller: skip it.
      continue;
    }
    if (!value || typeof value !== "object") continue;
    lines++;
    if ("repeat_of" in value) {
      const base = byId.get(value.repeat_of);
      if (!base) continue;
      fold(base, value);
      const tail = tails.get(streamOf(base));
      if (tail?.id === base.id) tail.data = { ...tail.data, ...value.data };
      continue;
    }
    if (typeof value.id !== "string") continue;
    events.push(value);
    byId.set(value.id, value);
    const { coalesced: _, ...data } = value.data ?? {};
    tails.set(streamOf(value), { id: value.id, key: coalesceKey(value), data });
  }
  return { events, lines, tails, cleanEnd: text === "" || text.endsWith("\n") };
}

function fold(base: Envelope, repeat: Repeat): void {
  const before = (base.data.coalesced as Coalesced | undefined)?.count ?? 1;
  const { coalesced: _, ...data } = base.data;
  base.data = { ...data, ...repeat.data, coalesced: { count: before + 1, last_seq: repeat.seq, last_time: repeat.time } satisfies Coalesced };
}

export function serialize(events: Envelope[]): string {
  return events.length ? `${events.map((e) => JSON.stringify(e)).join("\n")}\n` : "";
}

/**
 * Which events (indexes, oldest first) go when `excess` must: the oldest `token.refreshed` first
 * (the next one says the same), then other routine events, then, only if still over the cap, the
 * oldest failures: the cap holds whatever an outage produces.
 */
export function pickDrops(events: Envelope[], excess: number): Set<number> {
  const drop = new Set<number>();
  const passes = [(e: Envelope) => e.type === "token.refreshed", (e: Envelope) => !FAILURE_TYPES.has(e.type), () => true];
  for (const pass of passes) {
    for (let i = 0; i < events.length && drop.size < excess; i++) if (!drop.has(i) && pass(events[i])) drop.add(i);
  }
  return drop;
}
