/**
 * PagerDuty Events API v2 (SPEC 10): one event per alert key (`groups: false`), `dedup_key` = the
 * alert key. Firing → `trigger`, resolved → `resolve`. 202 is success; 400 is permanent (PagerDuty's
 * `message` and `errors` are quoted); 408, 429 (Retry-After), 5xx and network errors are retryable.
 * The routing key is a secret: no message names it.
 */
import { affectedRunners, AlertDeliveryError, definePlugin, headline, Options, PluginOptionsError, retryAfterSeconds, scopeName } from "../../src/alerts/sdk.ts";
import type { Notification, OptionsHelpers, Severity } from "../../src/alerts/sdk.ts";

export const DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue";
export const SEVERITIES = ["critical", "error", "warning", "info"] as const;
/** PagerDuty's limits: dedup_key 255, summary 1024 characters, 512 KB a request. */
export const LIMITS = { dedupKeyBytes: 255, summary: 1024, bodyBytes: 512 * 1024 } as const;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export interface PagerDutyOptions {
  routingKey: string;
  url: string;
  /** Overrides the notification's severity for every event. */
  severity?: Severity;
  /** `payload.component`; when not set, the runner, or the scope (`org:acme`) for a scope alert. */
  component?: string;
  /** `payload.group`; the alert's scope (`org/acme`) when not set. */
  group?: string;
  /** `payload.class`; the rule when not set. */
  class?: string;
}

export default definePlugin<PagerDutyOptions>({
  name: "pagerduty",
  groups: false,
  async parseOptions(raw, helpers) {
    const o = new Options(raw);
    const routingKey = await secretOption(o, "routingKey", helpers);
    const url = o.url("url", { default: DEFAULT_URL });
    const u = new URL(url);
    if (u.protocol !== "https:" && !LOOPBACK.has(u.hostname)) throw new PluginOptionsError("url", "must be an https URL (http only for localhost/127.0.0.1)");
    const options: PagerDutyOptions = { routingKey, url };
    if (o.raw("severity") !== undefined) options.severity = o.oneOf("severity", SEVERITIES, "error");
    for (const key of ["component", "group", "class"] as const) {
      const v = o.string(key, { optional: true });
      if (v !== undefined) options[key] = v;
    }
    o.done();
    return options;
  },
  create(options, ctx) {
    if (options.routingKey.length !== 32) {
      ctx.log.warn(`pagerduty: routingKey is ${options.routingKey.length} characters; an Events API v2 integration key has 32: check it is not an API token or a service id`);
    }
    return {
      async send(n, signal) {
        const event = await pagerDutyEvent(n, options);
        let res: Response;
        let text: string;
        try {
          res = await ctx.fetch(options.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(event), signal, redirect: "manual" });
          text = await res.text();
        } catch (err) {
          if (signal.aborted) throw new AlertDeliveryError("PagerDuty did not answer before the deadline (aborted)", { retryable: true, cause: err });
          const e = err as { name?: string; code?: string; cause?: { code?: string } };
          throw new AlertDeliveryError(`PagerDuty request failed (${e.cause?.code ?? e.code ?? e.name ?? "error"})`, { retryable: true, cause: err });
        }
        if (res.status === 202) return;
        const said = `PagerDuty answered ${res.status || res.type}${describe(text, options.routingKey)}`;
        if (res.status === 429) throw new AlertDeliveryError(`${said} (rate limited)`, { retryable: true, retryAfterSeconds: retryAfterSeconds(res) });
        if (res.status === 408 || res.status >= 500) throw new AlertDeliveryError(said, { retryable: true, retryAfterSeconds: retryAfterSeconds(res) });
        const hint = res.status === 400 ? "the event was refused: check routingKey and options" : "expected 202: check url";
        throw new AlertDeliveryError(`${said}: ${hint}`, { retryable: false });
      },
    };
  },
});

/** The Events API v2 body for one notification. */
export async function pagerDutyEvent(n: Notification, options: PagerDutyOptions): Promise<Record<string, unknown>> {
  const dedup_key = await dedupKey(n.test ? `test/${n.key}` : n.key);
  if (n.status === "resolved") return { routing_key: options.routingKey, event_action: "resolve", dedup_key };
  const payload: Record<string, unknown> = {
    summary: truncate(headline(n), LIMITS.summary),
    source: n.host,
    severity: options.severity ?? (SEVERITIES.includes(n.severity) ? n.severity : "error"),
    timestamp: n.startsAt,
  };
  const component = options.component ?? n.runner ?? scopeName(n.scope) ?? undefined;
  const group = options.group ?? scopeLabel(n);
  if (component) payload.component = component;
  if (group) payload.group = group;
  payload.class = options.class ?? n.rule;
  const fixed: Record<string, unknown> = { rule: n.rule, key: n.key, scope: n.scope };
  // A scope alert's runners stay in custom_details even when oversized details are cut.
  if (!n.runner && affectedRunners(n).length) fixed.runners = affectedRunners(n);
  if (n.reminder) fixed.reminder = true;
  if (n.test) fixed.test = true;
  payload.custom_details = { ...fixed, ...withoutKeys(n.details ?? {}, fixed) };
  const event = { routing_key: options.routingKey, event_action: "trigger", dedup_key, payload };
  // Stay under 512 KB: replace the details by an excerpt of their JSON, halving it until it fits.
  let budget = byteLength(JSON.stringify(n.details ?? {}));
  while (budget > 0 && byteLength(JSON.stringify(event)) > LIMITS.bodyBytes) {
    budget = Math.floor(budget / 2);
    const excerpt = JSON.stringify(n.details ?? {}).slice(0, budget);
    payload.custom_details = { ...fixed, truncated: "details exceeded PagerDuty's 512 KB limit", details_excerpt: excerpt };
  }
  return event;
}

/**
 * The alert key, or when it is over 255 bytes a stable shortening: a prefix of it, `~`, and the
 * sha256 hex of the whole key (Web Crypto, so it runs on Node and Deno alike).
 */
export async function dedupKey(key: string): Promise<string> {
  const bytes = new TextEncoder().encode(key);
  if (bytes.length <= LIMITS.dedupKeyBytes) return key;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hash = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  let prefix = "";
  let used = 0;
  for (const ch of key) {
    const size = byteLength(ch);
    if (used + size > LIMITS.dedupKeyBytes - hash.length - 1) break;
    prefix += ch;
    used += size;
  }
  return `${prefix}~${hash}`;
}

/** At most `max` characters, ending in "…" when cut (never inside a surrogate pair). */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  return s.slice(0, max - 1).replace(/[\uD800-\uDBFF]$/, "") + "…";
}

function scopeLabel(n: Notification): string | undefined {
  const s = n.scope;
  if (!s) return undefined;
  if (s.repo) return `repo/${s.repo}`;
  if (s.org) return `org/${s.org}`;
  return s.enterprise ? `enterprise/${s.enterprise}` : undefined;
}

function withoutKeys(details: Record<string, unknown>, taken: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(details).filter(([k]) => !(k in taken)));
}

function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** PagerDuty's own words (`message`, `errors`), or the start of a body that is not its JSON. */
function describe(text: string, routingKey: string): string {
  let said = text.trim();
  try {
    const body = JSON.parse(text) as { status?: unknown; message?: unknown; errors?: unknown };
    const errors = Array.isArray(body.errors) ? body.errors.map(String).join("; ") : "";
    said = [body.status, body.message].filter((x) => typeof x === "string" && x).join(": ") + (errors ? ` (${errors})` : "");
  } catch {
    // not JSON: quote it as it is
  }
  said = said.split(routingKey).join("<routingKey>").replace(/\s+/g, " ");
  if (said.length > 300) said = `${said.slice(0, 300)}…`;
  return said ? ` ${said}` : "";
}

async function secretOption(o: Options, key: string, helpers: OptionsHelpers): Promise<string> {
  const v = o.raw(key);
  const isRef = typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && (typeof (v as { env?: unknown }).env === "string" || typeof (v as { file?: unknown }).file === "string");
  if (!((typeof v === "string" && v.length > 0) || isRef)) {
    throw new PluginOptionsError(key, `${v === undefined ? "required" : "wrong type"}: give the Events API v2 integration key as a string, { env: NAME } or { file: PATH }`);
  }
  const value = (await helpers.secret(v, key)).trim();
  if (!value) throw new PluginOptionsError(key, "is empty: give the 32-character Events API v2 integration key");
  return value;
}

