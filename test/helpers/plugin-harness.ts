// What the alert plugins' tests share: a real HTTP receiver that records requests and answers as
// told (or hangs), a secret resolver like the host's, a plugin context, a port nothing listens on,
// a sample notification, and one assertion for delivery errors that also checks for leaked secrets.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import { serve } from "@hono/node-server";
import { assertNoSecrets } from "./no-secrets.ts";
import type { Notification, OptionsHelpers, PluginContext, PluginDefinition, PluginInstance } from "../../src/alerts/sdk.ts";

export interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  bytes: Uint8Array;
}

/** `hang: true` never answers (until the receiver closes); `delayMs` answers late. */
export interface Reply {
  status: number;
  body?: string | object;
  headers?: Record<string, string>;
  hang?: boolean;
  delayMs?: number;
}

export interface Receiver {
  url: string;
  requests: Recorded[];
  /** Queues replies, used in order; when none is queued the receiver answers `fallback`. */
  reply(...replies: Reply[]): void;
  close(): Promise<void>;
}

export async function startReceiver(fallback: Reply = { status: 200, body: "ok" }): Promise<Receiver> {
  const queue: Reply[] = [];
  const requests: Recorded[] = [];
  const wakers = new Set<() => void>();
  const wait = (ms: number | null) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        if (timer) clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      };
      const timer = ms === null ? undefined : setTimeout(wake, ms);
      wakers.add(wake);
    });

  const app = new Hono();
  app.all("*", async (c) => {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((v, k) => (headers[k] = v));
    requests.push({ method: c.req.method, path: new URL(c.req.url).pathname, headers, body: new TextDecoder().decode(bytes), bytes });
    const r = queue.shift() ?? fallback;
    if (r.hang) {
      await wait(null);
      return c.body(null, 503);
    }
    if (r.delayMs) await wait(r.delayMs);
    const body = r.body === undefined ? "" : typeof r.body === "string" ? r.body : JSON.stringify(r.body);
    const type = typeof r.body === "object" ? "application/json" : "text/plain";
    const empty = r.status === 204 || r.status === 304 || (r.status >= 300 && r.status < 400 && !body);
    return new Response(empty ? null : body, { status: r.status, headers: { "content-type": type, ...r.headers } });
  });

  let server!: Server;
  await new Promise<void>((resolve, reject) => {
    server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0, overrideGlobalObjects: false }, () => resolve()) as Server;
    server.once("error", reject);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    reply: (...replies) => queue.push(...replies),
    close: async () => {
      for (const wake of [...wakers]) wake();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP port on 127.0.0.1 that nothing listens on (connections are refused). */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/**
 * Resolves secrets like the host does (a string, `{ env }` or `{ file }`) and remembers every value,
 * so a test can check that none of them leaks.
 */
export function secretHelpers(env: Record<string, string> = {}): OptionsHelpers & { resolved: string[] } {
  const resolved: string[] = [];
  return {
    resolved,
    async secret(value, path) {
      let v: string;
      if (typeof value === "string") v = value;
      else if (value && typeof value === "object" && "env" in value) v = env[String((value as { env: unknown }).env)] ?? "";
      else if (value && typeof value === "object" && "file" in value) v = (await readFile(String((value as { file: unknown }).file), "utf8")).replace(/\r?\n$/, "");
      else throw new Error(`${path}: expected a secret`);
      if (!v) throw new Error(`${path}: empty secret`);
      resolved.push(v);
      return v;
    },
  };
}

export interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

export function pluginContext(): PluginContext & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields });
  return { lines, log: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") }, fetch: globalThis.fetch };
}

/** parseOptions then create, as the host does; returns the instance and what the secrets resolved to. */
export async function instantiate<O>(plugin: PluginDefinition<O>, raw: unknown, env: Record<string, string> = {}) {
  const helpers = secretHelpers(env);
  const options = await plugin.parseOptions(raw, helpers);
  const ctx = pluginContext();
  const instance: PluginInstance = await plugin.create(options, ctx);
  return { instance, options, ctx, secrets: helpers.resolved };
}

export function sampleNotification(over: Partial<Notification> = {}): Notification {
  return {
    status: "firing",
    rule: "refresh_failures",
    key: "refresh_failures/ci-01/runner-1",
    host: "ci-01",
    runner: "runner-1",
    scope: { org: "acme" },
    severity: "error",
    summary: "3 token refreshes failed in a row",
    startsAt: "2025-01-02T03:04:05.000Z",
    details: { failures: 3, lastError: "GitHub answered 401 <Bad credentials> & gave up" },
    ...over,
  };
}

export interface ExpectedFailure {
  retryable: boolean;
  retryAfterSeconds?: number;
  message?: RegExp;
}

/** Awaits a rejection that must be an AlertDeliveryError of the expected kind, free of `secrets`. */
export async function expectDeliveryError(promise: Promise<unknown>, expected: ExpectedFailure, secrets: string[]): Promise<Error & { retryable: boolean; retryAfterSeconds?: number }> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  const err = caught as Error & { retryable: boolean; retryAfterSeconds?: number };
  assert.equal(err.name, "AlertDeliveryError", `expected an AlertDeliveryError, got ${err.name}: ${err.message}`);
  assert.equal(err.retryable, expected.retryable, `retryable for: ${err.message}`);
  assert.equal(err.retryAfterSeconds, expected.retryAfterSeconds, `retryAfterSeconds for: ${err.message}`);
  if (expected.message) assert.match(err.message, expected.message);
  assertNoSecrets(secrets, [{ label: "error message", text: err.message }, { label: "error stack", text: String(err.stack) }]);
  return err;
}

/** Awaits parseOptions' rejection: a PluginOptionsError naming `path`. */
export async function expectOptionsError(run: () => unknown, path: string, message?: RegExp, secrets: string[] = []): Promise<void> {
  await assert.rejects(async () => await run(), (err: Error & { path?: string }) => {
    assert.equal(err.name, "PluginOptionsError", `expected a PluginOptionsError, got ${err.name}: ${err.message}`);
    assert.equal(err.path, path);
    if (message) assert.match(err.message, message);
    assertNoSecrets(secrets, [{ label: "options error", text: err.message }]);
    return true;
  });
}
