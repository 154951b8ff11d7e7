// Real local receivers for alert deliveries: Slack, PagerDuty and generic webhooks as small hono
// servers keeping each channel's wire contract, and a real SMTP server (smtp-server) in-process.
import { Hono } from "hono";
import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface Received {
  path: string;
  headers: Record<string, string>;
  raw: string;
  body: any;
}

export interface HttpReceiver {
  url: string;
  received: Received[];
  /** Queue of statuses to answer instead of the channel's success (then back to success). */
  failNext(...responses: { status: number; body?: string; headers?: Record<string, string> }[]): void;
  close(): Promise<void>;
}

async function startReceiver(success: { status: number; body: string }, path: string): Promise<HttpReceiver> {
  const received: Received[] = [];
  const queue: { status: number; body?: string; headers?: Record<string, string> }[] = [];
  const app = new Hono();
  app.post("*", async (c) => {
    const raw = await c.req.text();
    let body: unknown = null;
    try {
      body = JSON.parse(raw);
    } catch {
      body = null;
    }
    const failure = queue.shift();
    if (failure) return c.body(failure.body ?? "", failure.status as 400, failure.headers);
    received.push({ path: c.req.path, headers: Object.fromEntries(c.req.raw.headers), raw, body });
    return c.body(success.body, success.status as 200);
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    received,
    failNext: (...r) => void queue.push(...r),
    close: () => new Promise<void>((r) => { (server as unknown as { closeAllConnections(): void }).closeAllConnections(); server.close(() => r()); }),
  };
}

export const startSlackReceiver = () => startReceiver({ status: 200, body: "ok" }, "/services/T000/B000/XXXXSECRETSLACK");
export const startPagerDutyReceiver = () => startReceiver({ status: 202, body: JSON.stringify({ status: "success", message: "Event processed" }) }, "/v2/enqueue");
export const startWebhookReceiver = () => startReceiver({ status: 200, body: "" }, "/hooks/rtr");

export interface SmtpMessage {
  from: string;
  to: string[];
  raw: string;
  subject: string;
}

export interface SmtpReceiver {
  port: number;
  messages: SmtpMessage[];
  close(): Promise<void>;
}

export async function startSmtpReceiver(options: { user?: string; pass?: string } = {}): Promise<SmtpReceiver> {
  const messages: SmtpMessage[] = [];
  const server = new SMTPServer({
    secure: false,
    // Plain SMTP on loopback: the plugin's own tests cover STARTTLS.
    hideSTARTTLS: true,
    disabledCommands: options.user ? [] : ["AUTH"],
    authOptional: !options.user,
    allowInsecureAuth: true,
    onAuth(auth, _session, cb) {
      if (auth.username === options.user && auth.password === options.pass) cb(null, { user: auth.username });
      else cb(new Error("Invalid username or password"));
    },
    onData(stream, session, cb) {
      let raw = "";
      stream.setEncoding("utf8");
      stream.on("data", (d: string) => (raw += d));
      stream.on("end", () => {
        const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(raw)?.[1]?.replace(/\r?\n[ \t]/g, " ") ?? "";
        messages.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "", to: session.envelope.rcptTo.map((r) => r.address), raw, subject });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, messages, close: () => new Promise<void>((r) => server.close(() => r())) };
}
