/**
 * Slack incoming webhook (SPEC 10): one POST of JSON `text` (the notification fallback, always) and
 * `blocks`. Success is HTTP 200 with body `ok`. 429 (Retry-After), 408, 5xx and network errors are
 * retryable; 400 invalid_payload, 403, 404, 410 (no_service, channel_is_archived) and other 4xx are
 * configuration errors. The webhook URL is a secret: no message names it.
 */
import { affectedRunners, AlertDeliveryError, alertTarget, definePlugin, headline, nameList, Options, PluginOptionsError, recoveredText, statusWord, retryAfterSeconds, targetWithRunners } from "../../src/alerts/sdk.ts";
import type { Notification, OptionsHelpers } from "../../src/alerts/sdk.ts";

export interface SlackOptions {
  webhookUrl: string;
  channel?: string;
  username?: string;
  iconEmoji?: string;
}

/** Slack's limits: section text 3000, field 2000, header 150 characters; 50 blocks a message. */
export const LIMITS = { sectionText: 3000, fieldText: 2000, headerText: 150, blocks: 50, fallbackText: 3000 } as const;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

type Block = Record<string, unknown>;

export default definePlugin<SlackOptions>({
  name: "slack",
  async parseOptions(raw, helpers) {
    const o = new Options(raw);
    const webhookUrl = await secretOption(o, "webhookUrl", helpers);
    checkUrl(webhookUrl, "webhookUrl");
    const options: SlackOptions = {
      webhookUrl,
      channel: o.string("channel", { optional: true }),
      username: o.string("username", { optional: true }),
      iconEmoji: o.string("iconEmoji", { optional: true }),
    };
    if (options.iconEmoji && !/^:[\w+-]+:$/.test(options.iconEmoji)) throw new PluginOptionsError("iconEmoji", 'expected an emoji code such as ":rotating_light:"');
    o.done();
    return options;
  },
  create(options, ctx) {
    return {
      async send(n, signal) {
        const body = JSON.stringify(slackMessage(n, options));
        let res: Response;
        try {
          res = await ctx.fetch(options.webhookUrl, { method: "POST", headers: { "content-type": "application/json" }, body, signal, redirect: "manual" });
        } catch (err) {
          throw networkError(err, signal);
        }
        let text: string;
        try {
          text = (await res.text()).trim();
        } catch (err) {
          throw networkError(err, signal);
        }
        if (res.status === 200 && text === "ok") return;
        const said = `Slack webhook answered ${res.status || res.type}${text ? ` ${snippet(text, options.webhookUrl)}` : ""}`;
        if (res.status === 429) throw new AlertDeliveryError(`${said} (rate limited)`, { retryable: true, retryAfterSeconds: retryAfterSeconds(res) });
        if (res.status === 408 || res.status >= 500) throw new AlertDeliveryError(said, { retryable: true });
        throw new AlertDeliveryError(`${said}: check the webhook (it may be revoked or its channel archived)`, { retryable: false });
      },
    };
  },
});

/** The whole request body: `text` + `blocks`, plus the legacy-webhook overrides when configured. */
export function slackMessage(n: Notification, options: Omit<SlackOptions, "webhookUrl"> = {}): Record<string, unknown> {
  const msg: Record<string, unknown> = { text: clip(escape(headline(n)), LIMITS.fallbackText), blocks: slackBlocks(n) };
  if (options.channel) msg.channel = options.channel;
  if (options.username) msg.username = options.username;
  if (options.iconEmoji) msg.icon_emoji = options.iconEmoji;
  return msg;
}

export function slackBlocks(n: Notification): Block[] {
  const where = alertTarget;
  const title = n.more ? `${n.more} more alerts` : n.group?.length ? `${n.group.length} × ${n.rule}` : `${n.rule} on ${where(n)}`;
  // A scope alert names the runners it affects where a runner alert names its runner.
  const scopeRunners = n.runner ? [] : affectedRunners(n);
  const blocks: Block[] = [
    { type: "header", text: { type: "plain_text", text: clip(`${statusWord(n)}${n.reminder ? " (reminder)" : ""}: ${title}`, LIMITS.headerText), emoji: false } },
  ];
  const fields: [string, string][] = [
    ["Rule", n.rule],
    ["Host", n.host],
    scopeRunners.length ? ["Runners", nameList(scopeRunners, 50)] : ["Runner", n.runner ?? "—"],
    ["Scope", scopeText(n)],
    ["Severity", n.severity],
    ["Started", n.startsAt],
  ];
  const recovered = recoveredText(n);
  if (recovered) fields.push(["Recovered", recovered.replace(/^recovered /, "")]);
  if (n.endsAt) fields.push(["Ended", n.endsAt]);
  blocks.push({
    type: "section",
    text: { type: "mrkdwn", text: clip(escape(n.more ? `${n.more} more alerts arrived over the per-minute limit and were not sent one by one.` : n.summary), LIMITS.sectionText) },
    fields: fields.map(([k, v]) => ({ type: "mrkdwn", text: clip(`*${k}*\n${escape(v)}`, LIMITS.fieldText) })),
  });
  const details = Object.entries(n.details ?? {});
  if (details.length > 0) {
    const lines = details.map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n");
    blocks.push({ type: "section", text: { type: "mrkdwn", text: "```" + clip(escape(lines), LIMITS.sectionText - 6) + "```" } });
  }
  const footer = `key ${n.key}${n.test ? " · test notification, not a real alert" : ""}`;
  const members = (n.group ?? []).map((g) => `• ${escape(targetWithRunners(g))}: ${escape(g.summary)}`);
  // One section per ~3000 characters of members, within 50 blocks: room is kept for two context lines.
  const maxSections = LIMITS.blocks - blocks.length - 2;
  let shown = 0;
  for (let sections = 0; shown < members.length && sections < maxSections; sections++) {
    let text = "";
    while (shown < members.length && text.length + members[shown].length + 1 <= LIMITS.sectionText) text += (text ? "\n" : "") + members[shown++];
    if (!text) text = clip(members[shown++], LIMITS.sectionText); // one member longer than a section
    blocks.push({ type: "section", text: { type: "mrkdwn", text } });
  }
  if (shown < members.length) blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: `…and ${members.length - shown} more not shown` }] });
  blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: clip(escape(footer), LIMITS.fieldText) }] });
  return blocks;
}

function scopeText(n: Notification): string {
  const s = n.scope;
  if (!s) return "—";
  return [s.enterprise && `enterprise ${s.enterprise}`, s.org && `org ${s.org}`, s.repo && `repo ${s.repo}`].filter(Boolean).join(", ") || "—";
}

/** Slack mrkdwn needs &, < and > escaped (or it reads them as links and mentions). */
function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  return s.slice(0, max - 1).replace(/&[a-z]*$/, "").replace(/[\uD800-\uDBFF]$/, "") + "…";
}

async function secretOption(o: Options, key: string, helpers: OptionsHelpers): Promise<string> {
  const v = o.raw(key);
  const ok = (typeof v === "string" && v.length > 0) || (isRecord(v) && Object.keys(v).length === 1 && (typeof v.env === "string" || typeof v.file === "string"));
  if (!ok) throw new PluginOptionsError(key, `${v === undefined ? "required" : "wrong type"}: give the URL as a string, { env: NAME } or { file: PATH }`);
  const value = (await helpers.secret(v, key)).trim();
  if (!value) throw new PluginOptionsError(key, "is empty");
  return value;
}

function checkUrl(value: string, path: string): void {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new PluginOptionsError(path, "is not a URL: expected https://hooks.slack.com/services/…");
  }
  if (u.protocol === "https:" || (u.protocol === "http:" && LOOPBACK.has(u.hostname))) return;
  throw new PluginOptionsError(path, "must be an https URL (http only for localhost/127.0.0.1)");
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The start of a response body, with the webhook URL scrubbed should a receiver echo it. */
function snippet(text: string, secret: string): string {
  const s = text.split(secret).join("<webhookUrl>").replace(/\s+/g, " ");
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function networkError(err: unknown, signal: AbortSignal): AlertDeliveryError {
  if (signal.aborted) return new AlertDeliveryError("Slack webhook did not answer before the deadline (aborted)", { retryable: true, cause: err });
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  const code = e.cause?.code ?? e.code ?? e.name ?? "error";
  return new AlertDeliveryError(`Slack webhook request failed (${code})`, { retryable: true, cause: err });
}
