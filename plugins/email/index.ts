/**
 * Email through SMTP with nodemailer (SPEC 10). Subject `<prefix> FIRING <rule> <host>/<runner>`,
 * a text and an HTML body (HTML-escaped). Short timeouts: nodemailer's defaults wait minutes. The
 * host's AbortSignal is handed to nodemailer, which drops the connection when it fires.
 * Connection failures, timeouts and 4xx replies are retryable; 5xx replies (550 recipient refused,
 * 535 authentication failed) and configuration errors are not. The password never reaches a message,
 * nor the wire in clear: with `auth` and no implicit TLS, STARTTLS is required unless
 * `requireTLS: false` opts out.
 */
import { createTransport } from "nodemailer";
import { affectedRunners, AlertDeliveryError, alertTarget, definePlugin, headline, nameList, Options, PluginOptionsError, recoveredText, statusWord, targetWithRunners } from "../../src/alerts/sdk.ts";
import type { Notification, OptionsHelpers } from "../../src/alerts/sdk.ts";

export const DEFAULT_SUBJECT_PREFIX = "[runner-token-refresh]";
/** Upper bounds too: `timeouts` may only shorten them. */
export const DEFAULT_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 } as const;
type Timeouts = { -readonly [K in keyof typeof DEFAULT_TIMEOUTS]: number };

export interface EmailOptions {
  smtp: {
    host: string;
    port: number;
    secure: boolean;
    requireTLS: boolean;
    auth?: { user: string; pass: string };
    tls?: { ca?: string; rejectUnauthorized?: boolean };
  };
  from: string;
  to: string[];
  subjectPrefix: string;
  timeouts: Timeouts;
}

export default definePlugin<EmailOptions>({
  name: "email",
  async parseOptions(raw, helpers) {
    const o = new Options(raw);
    const s = o.object("smtp")!;
    const host = s.string("host");
    const secure = s.boolean("secure", false);
    const smtp: EmailOptions["smtp"] = { host, port: s.number("port", { default: secure ? 465 : 587, min: 1, max: 65535, integer: true }), secure, requireTLS: false };
    const a = s.object("auth", { optional: true });
    if (a) {
      smtp.auth = { user: a.string("user"), pass: await secret(a.raw("pass"), "smtp.auth.pass", helpers) };
      a.done();
    }
    // A password must not cross the wire in clear: with auth on a connection that does not start
    // with TLS, STARTTLS is required unless `requireTLS: false` says a plain session is meant.
    smtp.requireTLS = s.boolean("requireTLS", smtp.auth !== undefined && !secure);
    const t = s.object("tls", { optional: true });
    if (t) {
      smtp.tls = {};
      if (t.raw("ca") !== undefined) {
        const ca = await secret(t.raw("ca"), "smtp.tls.ca", helpers);
        if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new PluginOptionsError("smtp.tls.ca", 'expected PEM certificate text: to read a file, write ca: { file: "/path/to/ca.pem" }');
        smtp.tls.ca = ca;
      }
      if (t.raw("rejectUnauthorized") !== undefined) smtp.tls.rejectUnauthorized = t.boolean("rejectUnauthorized", true);
      t.done();
    }
    s.done();
    const from = address(o.string("from"), "from");
    const to = o.strings("to", { min: 1 }).map((x, i) => address(x, `to[${i}]`));
    const subjectPrefix = o.string("subjectPrefix", { default: DEFAULT_SUBJECT_PREFIX });
    const timeouts: Timeouts = { ...DEFAULT_TIMEOUTS };
    const tm = o.object("timeouts", { optional: true });
    if (tm) {
      for (const k of Object.keys(DEFAULT_TIMEOUTS) as (keyof Timeouts)[]) timeouts[k] = tm.number(k, { default: DEFAULT_TIMEOUTS[k], min: 1, max: DEFAULT_TIMEOUTS[k], integer: true });
      tm.done();
    }
    o.done();
    return { smtp, from, to, subjectPrefix, timeouts };
  },
  create(options, ctx) {
    const { smtp, timeouts } = options;
    const transport = createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      requireTLS: smtp.requireTLS,
      auth: smtp.auth,
      tls: smtp.tls,
      ...timeouts,
      dnsTimeout: timeouts.connectionTimeout,
      logger: false,
    });
    const where = `SMTP server ${smtp.host}:${smtp.port}`;
    const secrets = smtp.auth ? passwordForms(smtp.auth) : [];
    const tlsRequired = smtp.requireTLS && !smtp.secure;
    return {
      async send(n, signal) {
        try {
          const info = await transport.sendMail({ from: options.from, to: options.to, subject: emailSubject(n, options.subjectPrefix), text: emailText(n), html: emailHtml(n), signal });
          // Some recipients refused, others took it: a retry would repeat the mail to those, so warn.
          const rejected = (info.rejected ?? []).map(String);
          if (rejected.length) ctx.log.warn(`email: ${where} refused ${rejected.length} of ${options.to.length} recipients`, { rejected });
        } catch (err) {
          throw deliveryError(err, signal, where, secrets, tlsRequired);
        }
      },
      async close() {
        transport.close();
      },
    };
  },
});

const where = alertTarget;
/** A scope alert's runners (a runner alert names its own runner already). */
const scopeRunners = (n: Notification) => (n.runner ? [] : affectedRunners(n));

/**
 * `<prefix> FIRING refresh_failures ci-01/runner-1`: state, rule, host and runner; for a scope
 * alert `ci-01/org:acme (runner-1, runner-2)`.
 */
export function emailSubject(n: Notification, prefix = DEFAULT_SUBJECT_PREFIX): string {
  const state = `${statusWord(n)}${n.reminder ? " (reminder)" : ""}`;
  let what: string;
  if (n.more) what = `${n.more} more alerts`;
  else if (n.group?.length) what = `${n.rule} ${n.group.length} alerts: ${n.group.map(where).join(", ")}`;
  else what = `${n.rule} ${where(n)}${scopeRunners(n).length ? ` (${nameList(scopeRunners(n))})` : ""}`;
  const subject = `${prefix} ${state} ${what}`.replace(/[\r\n]+/g, " ");
  return subject.length > 200 ? `${subject.slice(0, 199)}…` : subject;
}

function facts(n: Notification): [string, string][] {
  const s = n.scope;
  const scope = s ? [s.enterprise && `enterprise ${s.enterprise}`, s.org && `org ${s.org}`, s.repo && `repo ${s.repo}`].filter(Boolean).join(", ") : "";
  const runners = scopeRunners(n);
  const runnerRow: [string, string] = runners.length ? ["Runners", runners.join(", ")] : ["Runner", n.runner ?? "—"];
  const rows: [string, string][] = [["Rule", n.rule], ["Host", n.host], runnerRow, ["Scope", scope || "—"], ["Severity", n.severity], ["Started", n.startsAt]];
  const recovered = recoveredText(n);
  if (recovered) rows.push(["Recovered", recovered.replace(/^recovered /, "")]);
  if (n.endsAt) rows.push(["Ended", n.endsAt]);
  rows.push(["Key", n.key]);
  return rows;
}

const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

export function emailText(n: Notification): string {
  const lines = [headline(n), ""];
  for (const [k, v] of facts(n)) lines.push(`${`${k}:`.padEnd(10)}${v}`);
  const details = Object.entries(n.details ?? {});
  if (details.length) lines.push("", "Details:", ...details.map(([k, v]) => `  ${k}: ${show(v)}`));
  if (n.group?.length) lines.push("", `Alerts in this group (${n.group.length}):`, ...n.group.map((g) => `  - ${targetWithRunners(g)}: ${g.summary}`));
  lines.push("", "-- ", `runner-token-refresh${n.test ? " (test notification: not a real alert)" : ""}`);
  return lines.join("\n") + "\n";
}

export function emailHtml(n: Notification): string {
  const e = escapeHtml;
  const color = n.status === "firing" ? "#b42318" : "#067647";
  const rows = facts(n).map(([k, v]) => `<tr><th align="left">${e(k)}</th><td>${e(v)}</td></tr>`);
  const details = Object.entries(n.details ?? {});
  const parts = [
    `<h2 style="color:${color}">${e(headline(n))}</h2>`,
    `<table cellpadding="4">${rows.join("")}</table>`,
    details.length ? `<h3>Details</h3><table cellpadding="4">${details.map(([k, v]) => `<tr><th align="left">${e(k)}</th><td><code>${e(show(v))}</code></td></tr>`).join("")}</table>` : "",
    n.group?.length ? `<h3>Alerts in this group (${n.group.length})</h3><ul>${n.group.map((g) => `<li>${e(targetWithRunners(g))}: ${e(g.summary)}</li>`).join("")}</ul>` : "",
    `<p style="color:#667085">runner-token-refresh${n.test ? " (test notification: not a real alert)" : ""}</p>`,
  ];
  return `<!doctype html><html><body>${parts.filter(Boolean).join("\n")}</body></html>\n`;
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** Error codes that say the configuration is wrong, not that the server is away. */
const PERMANENT_CODES = new Set(["EAUTH", "ENOAUTH", "ECONFIG", "EENVELOPE", "EREQUIRETLS", "EOAUTH2", "EMAXRECIPIENTS"]);
const TLS_TRUST = /CERT|SELF_SIGNED|UNABLE_TO_|ALTNAME|HOSTNAME/;

function deliveryError(err: unknown, signal: AbortSignal, where: string, secrets: string[], tlsRequired: boolean): AlertDeliveryError {
  const e = (err ?? {}) as { code?: string; originalCode?: string; responseCode?: number; response?: string; command?: string; message?: string; cause?: { code?: string } };
  const scrub = (s: string) => secrets.reduce((acc, x) => acc.split(x).join("<redacted>"), s).replace(/\s+/g, " ").slice(0, 300);
  if (signal.aborted || e.code === "EABORT") return new AlertDeliveryError(`${where} did not finish before the deadline (aborted)`, { retryable: true, cause: err });
  // The server refused STARTTLS (or has none): nodemailer stopped before AUTH, so say why and how to choose.
  if (tlsRequired && e.command === "STARTTLS" && !TLS_TRUST.test(`${e.originalCode ?? e.cause?.code ?? ""} ${e.message ?? ""}`.toUpperCase())) {
    const said = scrub(e.response ?? e.message ?? "");
    return new AlertDeliveryError(
      `${where} does not offer STARTTLS (${said}), so neither the password nor the mail was sent: smtp.requireTLS is on (the default with smtp.auth unless smtp.secure); use smtp.secure: true (port 465) or a server with STARTTLS, or set smtp.requireTLS: false to send the password in clear`,
      { retryable: false, cause: err },
    );
  }
  if (typeof e.responseCode === "number") {
    const code = e.responseCode;
    // RFC 5321: 4yz is transient, 5yz permanent, except 503 (bad sequence: a new session may work).
    const retryable = code < 500 || code === 503;
    const said = scrub(e.response ?? e.message ?? String(code));
    const cmd = e.command ? ` to ${e.command.split(" ")[0]}` : "";
    const hint = code === 530 || code === 535 || e.code === "EAUTH" ? ": check smtp.auth" : code >= 550 && code < 560 ? ": check from and to" : "";
    return new AlertDeliveryError(`${where} answered${cmd}: ${said}${hint}`, { retryable, cause: err });
  }
  const code = e.originalCode ?? e.cause?.code ?? e.code ?? "error";
  const detail = scrub(e.message ?? "");
  if (TLS_TRUST.test(code) || (e.code === "ETLS" && TLS_TRUST.test(detail.toUpperCase()))) {
    return new AlertDeliveryError(`${where}: TLS certificate not trusted (${code}): set smtp.tls.ca, or smtp.tls.rejectUnauthorized: false for a test server`, { retryable: false, cause: err });
  }
  const retryable = !PERMANENT_CODES.has(e.code ?? "");
  return new AlertDeliveryError(`${where}: ${retryable ? "delivery failed" : "refused"} (${e.code ?? code}${e.originalCode ? `/${e.originalCode}` : ""}): ${detail}`, { retryable, cause: err });
}

/** The password and the forms an SMTP session carries it in (AUTH PLAIN / LOGIN base64). */
function passwordForms(auth: { user: string; pass: string }): string[] {
  const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
  return [auth.pass, b64(auth.pass), b64(`\u0000${auth.user}\u0000${auth.pass}`)].filter((s) => s.length >= 4);
}

async function secret(v: unknown, path: string, helpers: OptionsHelpers): Promise<string> {
  const isRef = typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && (typeof (v as { env?: unknown }).env === "string" || typeof (v as { file?: unknown }).file === "string");
  if (!((typeof v === "string" && v.length > 0) || isRef)) throw new PluginOptionsError(path, `${v === undefined ? "required" : "wrong type"}: give a string, { env: NAME } or { file: PATH }`);
  const value = await helpers.secret(v, path);
  if (!value.trim()) throw new PluginOptionsError(path, "is empty");
  return value;
}

function address(value: string, path: string): string {
  if (!/^[^\s@<>]+@[^\s@<>]+$/.test(value) && !/^[^<>]*<[^\s@<>]+@[^\s@<>]+>$/.test(value)) throw new PluginOptionsError(path, 'expected an email address such as "ci-alerts@example.com" or "CI <ci@example.com>"');
  return value;
}
