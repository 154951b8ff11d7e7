/**
 * What the collector accepts from agents (SPEC 7 and 8). Any agent may write any key of RTR_STATE
 * and any subject its NATS permissions allow, so nothing it sends is trusted: a state document
 * must parse, match the schema and name the host and runner of its own key; an event must name
 * the host of its own subject (the subject is what NATS permissions bind to a host). The schemas
 * are strict on the types of what the rules and pages read, and keep unknown extra fields, so a
 * newer agent that adds a field still reports.
 */
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { encodeToken } from "../shared/scope.ts";
import { EVENT_TYPES, type Envelope, type RunnerStatus, type StateDocument } from "../shared/types.ts";
import { fastStateDocument, fastStateKey } from "./state-fast.ts";

// zod/mini (as the config schema, issue #18): the English messages that `detail` carries.
z.config(en());

/** A state document is about 600 bytes; anything near NATS' 1 MiB payload is not an agent's. */
export const MAX_STATE_DOCUMENT_BYTES = 64 * 1024;
/** Host names are at most 253 bytes, runner names 64 on GitHub: generous bounds, not unbounded. */
const MAX_NAME = 512;
/** Error texts are shown truncated anyway; a long one is cut here, not dropped. */
const MAX_ERROR = 4000;

/** One decoder each for every document and event (a decoder per message was garbage at fleet scale). */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder();

/** Why a state document was dropped (the `reason` label: a fixed set, never a value from outside). */
export const STATE_DROP_REASONS = ["not_json", "too_large", "unknown_version", "invalid", "key_mismatch"] as const;
export type StateDropReason = (typeof STATE_DROP_REASONS)[number];

/** Event counter labels beyond the event types: malformed, redelivered, forged host, unknown type. */
export const EVENT_COUNT_EXTRAS = ["_invalid", "_duplicate", "_host_mismatch", "_unknown"] as const;
const KNOWN_EVENT_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);

/** The `type` label for an event: its type when known, else `_unknown` (no unbounded label values). */
export function eventTypeLabel(type: string): string {
  return KNOWN_EVENT_TYPES.has(type) ? type : "_unknown";
}

const STATUSES = ["ok", "refreshing", "deferred_busy", "failing", "unregistered", "held"] as const satisfies readonly RunnerStatus[];
// A status added to RunnerStatus but not here would drop every document that carries it: tsc says so.
const everyStatus: RunnerStatus extends (typeof STATUSES)[number] ? true : never = true;
void everyStatus;

const name = z.string().check(z.minLength(1), z.maxLength(MAX_NAME));
const count = z.int().check(z.nonnegative());
// zod 4 numbers are finite already (the full build's .finite() was a no-op).
const epochSeconds = z.number().check(z.nonnegative());
const truncated = (max: number) => z.pipe(z.string(), z.transform((s: string) => (s.length > max ? `${s.slice(0, max - 1)}…` : s)));
const time = z.string().check(z.maxLength(64));

export const scopeSchema = z.union([z.object({ org: name }), z.object({ repo: name }), z.object({ enterprise: name })]);

/** SPEC 7's runner object plus host, time, v and interval. Fields older agents lack get defaults. */
export const stateDocumentSchema = z.looseObject({
  v: z.literal(1),
  host: name,
  name,
  time,
  interval: z.number().check(z.positive()),
  dir: z._default(truncated(MAX_NAME * 8), ""),
  scope: scopeSchema,
  ephemeral: z._default(z.boolean(), false),
  registered: z.boolean(),
  agent_id: z._default(z.nullable(z.int()), null),
  service_active: z._default(z.nullable(z.boolean()), null),
  online: z.nullable(z.boolean()),
  busy: z.nullable(z.boolean()),
  token_expires_at: z.nullable(epochSeconds),
  last_refresh_timestamp: z.nullable(epochSeconds),
  total_refreshes: count,
  failed_refreshes: count,
  consecutive_failures: count,
  registrations: z._default(count, 0),
  status: z.enum(STATUSES),
  last_error: z.nullable(truncated(MAX_ERROR)),
});

/** SPEC 14's pool report, as an agent puts it for its host under `<encoded host>.=` (issue 19). */
const poolReportSchema = z.looseObject({
  name,
  scope: scopeSchema,
  size: count,
  draining: z._default(z.boolean(), false),
  runners: z.looseObject({ idle: count, busy: count, starting: count }),
  jobs_total: z._default(count, 0),
  launch_failures_total: z._default(count, 0),
  consecutive_failures: z._default(count, 0),
  short_since: z._default(z.nullable(epochSeconds), null),
});

export const poolsDocumentSchema = z.looseObject({
  v: z.literal(1),
  host: name,
  time,
  pools: z.array(poolReportSchema).check(z.maxLength(100)),
});
export type PoolsDocument = z.infer<typeof poolsDocumentSchema>;

/** The host-level key: the runner token `=`, which no encoded runner name can be (SPEC 8). */
export function isHostKey(key: string): boolean {
  return key.endsWith(".=");
}

export type PoolsCheck = { ok: true; doc: PoolsDocument } | { ok: false; reason: StateDropReason; detail: string };

/** Parses a host's pools document under `<encoded host>.=`, checked against its key like a runner's. */
export function checkPoolsDocument(key: string, data: Uint8Array): PoolsCheck {
  if (data.length > MAX_STATE_DOCUMENT_BYTES) return { ok: false, reason: "too_large", detail: `${data.length} bytes (at most ${MAX_STATE_DOCUMENT_BYTES})` };
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(data));
  } catch {
    return { ok: false, reason: "not_json", detail: "not UTF-8 JSON" };
  }
  if ((value as { v?: unknown } | null)?.v !== 1) return { ok: false, reason: "unknown_version", detail: "this collector reads v=1" };
  const parsed = poolsDocumentSchema.safeParse(value);
  if (!parsed.success) return { ok: false, reason: "invalid", detail: issues(parsed.error) };
  if (`${encodeToken(parsed.data.host)}.=` !== key) return { ok: false, reason: "key_mismatch", detail: "the document's host is not that of its key" };
  return { ok: true, doc: parsed.data };
}

export type StateCheck = { ok: true; doc: StateDocument } | { ok: false; reason: StateDropReason; detail: string };

function issues(err: z.core.$ZodError): string {
  return err.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(document)"}: ${i.message}`).join("; ");
}

/** Parses a KV value and checks it against its key `<encoded host>.<encoded runner>`. */
export function checkStateDocument(key: string, data: Uint8Array): StateCheck {
  if (data.length > MAX_STATE_DOCUMENT_BYTES) return { ok: false, reason: "too_large", detail: `${data.length} bytes (at most ${MAX_STATE_DOCUMENT_BYTES})` };
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(data));
  } catch {
    return { ok: false, reason: "not_json", detail: "not UTF-8 JSON" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return { ok: false, reason: "invalid", detail: "not a JSON object" };
  const v = (value as { v?: unknown }).v;
  if (v !== 1) return { ok: false, reason: "unknown_version", detail: `v=${JSON.stringify(v ?? null).slice(0, 20)} (this collector reads v=1)` };
  // What an agent of this version writes is checked without the schema; anything else by it.
  let doc = fastStateDocument(value as Record<string, unknown>);
  if (!doc) {
    const parsed = stateDocumentSchema.safeParse(value);
    if (!parsed.success) return { ok: false, reason: "invalid", detail: issues(parsed.error) };
    doc = parsed.data as StateDocument;
  }
  if (fastStateKey(doc.host, doc.name) !== key) return { ok: false, reason: "key_mismatch", detail: "the document's host and runner are not those of its key" };
  return { ok: true, doc };
}

const envelopeSchema = z.looseObject({
  v: z.literal(1),
  id: z.string().check(z.minLength(1), z.maxLength(200)),
  seq: count,
  type: z.string().check(z.minLength(1), z.maxLength(200)),
  time,
  host: name,
  runner: z._default(z.nullable(name), null),
  scope: z._default(z.nullable(scopeSchema), null),
  agent: z.optional(z.looseObject({ version: z.string().check(z.maxLength(100)), runtime: z.string().check(z.maxLength(100)) })),
  data: z._default(z.record(z.string(), z.unknown()), {}),
});

/** Accepts only what an agent of this version sends (v 1, with the fields the pages show). */
export function parseEnvelope(data: Uint8Array): Envelope | null {
  let value: unknown;
  try {
    value = JSON.parse(lenientUtf8.decode(data));
  } catch {
    return null;
  }
  const parsed = envelopeSchema.safeParse(value);
  return parsed.success ? (parsed.data as Envelope) : null;
}

/** The host token of `<prefix>.events.<host>.<runner>.<type>`, or null when the subject is not one. */
export function subjectHostToken(subject: string): string | null {
  const parts = subject.split(".");
  return parts.length >= 5 && parts[1] === "events" ? parts[2] : null;
}

/** True when the event names the host its subject was published under. */
export function eventMatchesSubject(event: Envelope, subject: string): boolean {
  return subjectHostToken(subject) === encodeToken(event.host);
}
