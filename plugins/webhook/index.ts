/**
 * Generic webhook (SPEC 10): POSTs the notification as JSON (`{"version":"1", ...notification}`),
 * signed with `X-Signature-256: sha256=<hex HMAC-SHA256 of the exact body bytes>` when `secret` is
 * set. 2xx is success; 408, 429 (Retry-After), 5xx and network errors are retryable; other answers
 * are not. The URL, the HMAC secret and header values are secrets: no message names them.
 */
import { AlertDeliveryError, definePlugin, Options, PluginOptionsError, retryAfterSeconds } from "../../src/alerts/sdk.ts";
import type { Notification, OptionsHelpers } from "../../src/alerts/sdk.ts";

export const PAYLOAD_VERSION = "1";
export const SIGNATURE_HEADER = "X-Signature-256";
/** Headers the plugin sets itself (or the runtime does); `headers` may not override them. */
const RESERVED = new Set(["content-type", "content-length", "host", "transfer-encoding", "connection", SIGNATURE_HEADER.toLowerCase()]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export interface WebhookOptions {
  url: string;
  /** HMAC-SHA256 key for X-Signature-256. */
  secret?: string;
  /** Extra request headers (Authorization…); values may be secrets. */
  headers: Record<string, string>;
}

export default definePlugin<WebhookOptions>({
  name: "webhook",
  async parseOptions(raw, helpers) {
    const o = new Options(raw);
    const url = (await secretOption(o.raw("url"), "url", helpers))!;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new PluginOptionsError("url", "is not a URL: expected http(s)://host/path");
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") throw new PluginOptionsError("url", "must be an http or https URL");
    const secret = await secretOption(o.raw("secret"), "secret", helpers, true);
    const headers: Record<string, string> = {};
    const h = o.raw("headers");
    if (h !== undefined) {
      if (typeof h !== "object" || h === null || Array.isArray(h)) throw new PluginOptionsError("headers", "expected an object of header name → value");
      for (const [name, value] of Object.entries(h)) {
        const path = `headers.${name}`;
        if (!TOKEN.test(name)) throw new PluginOptionsError(path, "is not a valid header name");
        if (RESERVED.has(name.toLowerCase())) throw new PluginOptionsError(path, "is set by the plugin: remove it");
        const v = (await secretOption(value, path, helpers))!;
        if (/[\r\n\0]/.test(v)) throw new PluginOptionsError(path, "contains a line break");
        headers[name] = v;
      }
    }
    o.done();
    return secret === undefined ? { url, headers } : { url, secret, headers };
  },
  async create(options, ctx) {
    const key = options.secret === undefined ? undefined : await hmacKey(options.secret);
    const secrets = [options.url, options.secret, ...Object.values(options.headers)].filter((s): s is string => !!s && s.length >= 4);
    return {
      async send(n, signal) {
        const body = webhookBody(n);
        const headers: Record<string, string> = { ...options.headers, "content-type": "application/json" };
        if (key) headers[SIGNATURE_HEADER] = `sha256=${await sign(key, body)}`;
        let res: Response;
        let text: string;
        try {
          res = await ctx.fetch(options.url, { method: "POST", headers, body, signal, redirect: "manual" });
          text = await res.text();
        } catch (err) {
          if (signal.aborted) throw new AlertDeliveryError("webhook did not answer before the deadline (aborted)", { retryable: true, cause: err });
          const e = err as { name?: string; code?: string; cause?: { code?: string } };
          throw new AlertDeliveryError(`webhook request failed (${e.cause?.code ?? e.code ?? e.name ?? "error"})`, { retryable: true, cause: err });
        }
        if (res.status >= 200 && res.status < 300) return;
        const said = `webhook answered ${res.status || res.type}${snippet(text, secrets)}`;
        if (res.status === 429) throw new AlertDeliveryError(`${said} (rate limited)`, { retryable: true, retryAfterSeconds: retryAfterSeconds(res) });
        if (res.status === 408 || res.status >= 500) throw new AlertDeliveryError(said, { retryable: true, retryAfterSeconds: retryAfterSeconds(res) });
        const hint = res.status >= 300 && res.status < 400 || res.status === 0 ? "redirects are not followed: point url at the final address" : "check url, headers and secret";
        throw new AlertDeliveryError(`${said}: ${hint}`, { retryable: false });
      },
    };
  },
});

/** The exact bytes sent (and signed): the notification as JSON, with a payload version first. */
export function webhookBody(n: Notification): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(JSON.stringify({ version: PAYLOAD_VERSION, ...n }));
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

async function sign(key: CryptoKey, body: Uint8Array<ArrayBuffer>): Promise<string> {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function secretOption(v: unknown, path: string, helpers: OptionsHelpers, optional = false): Promise<string | undefined> {
  if (v === undefined && optional) return undefined;
  const isRef = typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && (typeof (v as { env?: unknown }).env === "string" || typeof (v as { file?: unknown }).file === "string");
  if (!((typeof v === "string" && v.length > 0) || isRef)) {
    throw new PluginOptionsError(path, `${v === undefined ? "required" : "wrong type"}: give a string, { env: NAME } or { file: PATH }`);
  }
  const value = (await helpers.secret(v, path)).trim();
  if (!value) throw new PluginOptionsError(path, "is empty");
  return value;
}

/** The start of a response body, with every secret scrubbed should the receiver echo one. */
function snippet(text: string, secrets: string[]): string {
  let s = text;
  for (const secret of secrets) s = s.split(secret).join("<redacted>");
  s = s.trim().replace(/\s+/g, " ");
  if (s.length > 200) s = `${s.slice(0, 200)}…`;
  return s ? ` ${s}` : "";
}

