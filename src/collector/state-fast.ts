/**
 * The common case of validate.ts's state document check, without zod: at 50,000 agents the
 * collector checks ~800 documents a second, and a schema walk per put was a fair share of its
 * CPU. This accepts only documents the schema certainly accepts, shaped as an agent of this
 * version writes them, and builds exactly what the schema would return; anything else (a missing
 * or defaulted field, a text to truncate, an odd scope, any doubt) answers null, and the schema
 * decides, with its own error. So nothing the schema rejects gets in, and the messages stay its.
 */
import type { RunnerStatus, StateDocument } from "../shared/types.ts";
import { encodeToken } from "../shared/scope.ts";

/** Must stay within validate.ts's bounds (MAX_NAME, MAX_ERROR, the dir truncation, time). */
const MAX_NAME = 512;
const MAX_DIR = MAX_NAME * 8;
const MAX_ERROR = 4000;
const MAX_TIME = 64;
const STATUSES: ReadonlySet<string> = new Set<RunnerStatus>(["ok", "refreshing", "deferred_busy", "failing", "unregistered", "held"]);
const SCOPE_KINDS: ReadonlySet<string> = new Set(["org", "repo", "enterprise"]);

const isName = (v: unknown): v is string => typeof v === "string" && v.length >= 1 && v.length <= MAX_NAME;
const isCount = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isEpoch = (v: unknown) => v === null || (typeof v === "number" && Number.isFinite(v) && v >= 0);
const isFlag = (v: unknown) => v === null || typeof v === "boolean";
const isText = (v: unknown, max: number) => typeof v === "string" && v.length <= max;

function isScope(v: unknown): boolean {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  let n = 0;
  for (const k in v) {
    // Exactly one known kind and nothing else: the schema would strip extras, so leave those to it.
    if (++n > 1 || !SCOPE_KINDS.has(k) || !Object.hasOwn(v, k)) return false;
    if (!isName((v as Record<string, unknown>)[k])) return false;
  }
  return n === 1;
}

/** The checked document, or null when the schema must decide. `d` is a parsed JSON object with v = 1. */
export function fastStateDocument(d: Record<string, unknown>): StateDocument | null {
  const ok =
    isName(d.host) &&
    isName(d.name) &&
    isText(d.time, MAX_TIME) &&
    typeof d.interval === "number" && Number.isFinite(d.interval) && d.interval > 0 &&
    isText(d.dir, MAX_DIR) &&
    isScope(d.scope) &&
    typeof d.ephemeral === "boolean" &&
    typeof d.registered === "boolean" &&
    (d.agent_id === null || (typeof d.agent_id === "number" && Number.isSafeInteger(d.agent_id))) &&
    isFlag(d.service_active) &&
    isFlag(d.online) &&
    isFlag(d.busy) &&
    isEpoch(d.token_expires_at) &&
    isEpoch(d.last_refresh_timestamp) &&
    isCount(d.total_refreshes) &&
    isCount(d.failed_refreshes) &&
    isCount(d.consecutive_failures) &&
    isCount(d.registrations) &&
    typeof d.status === "string" && STATUSES.has(d.status) &&
    (d.last_error === null || isText(d.last_error, MAX_ERROR));
  // Every field present and valid, none to default or truncate: the schema would return the same.
  return ok ? (d as unknown as StateDocument) : null;
}

/** encodeToken's table for the bytes that stay as they are; others are `=XX`. */
const PLAIN = /^[A-Za-z0-9_-]$/;
const ASCII_TOKENS = Array.from({ length: 128 }, (_, c) => (PLAIN.test(String.fromCharCode(c)) ? String.fromCharCode(c) : `=${c.toString(16).toUpperCase().padStart(2, "0")}`));

/** encodeToken for ASCII names without a TextEncoder and a regex per byte; others go to it. */
function token(name: string): string {
  let out = "";
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128) return encodeToken(name);
    out += ASCII_TOKENS[c];
  }
  return out;
}

/** stateKey(host, runner), the same string (see nats/subjects.ts). */
export function fastStateKey(host: string, runner: string): string {
  return `${token(host)}.${token(runner)}`;
}
