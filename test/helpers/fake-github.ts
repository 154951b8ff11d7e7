// A real HTTP server that answers like GitHub's REST API for self-hosted runners, so the product's
// client is exercised over a socket (timeouts, headers, pagination) and not through mocks.
import { Hono } from "hono";
import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadResponseValidator } from "./fake-github-schema.ts";
import { registerJitRoutes } from "./fake-github-jit.ts";
import {
  classifyRoute,
  DOCS,
  errorBody,
  isAppJwtRoute,
  randomAlnum,
  registerRoutes,
} from "./fake-github-routes.ts";
import type { FakeEnv, FakeState, IssuedToken } from "./fake-github-routes.ts";
import { appOfToken, budgetFor, newFakeApp, type AddAppOptions, type FakeApp } from "./fake-github-apps.ts";

export type { FakeApp } from "./fake-github-apps.ts";

export type FakeScope = string; // "org:NAME" | "repo:OWNER/NAME" | "enterprise:SLUG"
export interface FakeRunner {
  id: number;
  name: string;
  os: string;
  status: "online" | "offline";
  busy: boolean;
  ephemeral: boolean;
  labels: { id: number; name: string; type: "read-only" | "custom" }[];
  scope: FakeScope;
  runner_group_id: number;
}
export interface FakeCall { method: string; path: string; status: number; time: number; auth: string | null }
export interface FakeRequest { method: string; path: string; query: URLSearchParams; route: FakeRoute | null }
export interface FakeResponse { status: number; headers?: Record<string, string>; body?: unknown; delayMs?: number }
export type FakeRoute = "token" | "remove-token" | "status" | "list" | "delete" | "labels" | "groups" | "group-runners" | "group-move" | "release" | "any" | "jit";
/** actions/runner's latest release as `GET /repos/actions/runner/releases/latest` answers it (hygiene). */
export interface FakeRelease { tag_name: string; published_at: string }
export interface FakeGitHub {
  url: string;
  calls: FakeCall[];
  count(filter?: { method?: string; route?: FakeRoute }): number;
  runners: Map<number, FakeRunner>;
  mintedTokens: string[];
  /** Remove tokens, kept apart so tests can tell which kind the product asked for. */
  mintedRemoveTokens: string[];
  /** Installation tokens ("ghs_…") handed to the App flow, for secret-leak checks. */
  installationTokens: Map<string, number>;
  tokenTtlSeconds: number;
  pat: string;
  clockOffsetSeconds: number;
  patExpiry: string | null;
  /** Primary rate limit; set `remaining` to 0 to make every call answer 403 like GitHub does. */
  rateLimit: { limit: number; remaining: number; reset: number };
  /**
   * A GitHub App with its own installation (id `5000 + appId` unless given) and budget: calls with
   * its installation tokens are charged to `app.rateLimit`, not the shared one; `app.revoked`
   * makes its JWT and tokens answer 401, `app.suspended` its token exchange 403.
   */
  addApp(appId: number, options?: AddAppOptions): FakeApp;
  apps: Map<number, FakeApp>;
  /** Installation token → the installation it was minted for (which App carried a call). */
  tokenInstallation: Map<string, number>;
  inject(route: FakeRoute, ...responses: FakeResponse[]): void;
  /**
   * Runs `hook` when a request of `route` arrives, before it is answered (and before any injected
   * fault, and before it is charged to a rate-limit budget): a test changes GitHub between two requests, e.g. removes a runner between page 1 and
   * page 2 of a listing. Returns a function that removes the hook.
   */
  onRequest(route: FakeRoute, hook: (request: FakeRequest) => void | Promise<void>): () => void;
  addRunner(r: Partial<FakeRunner> & { name: string; scope: FakeScope }): FakeRunner;
  deleteRunner(id: number): void;
  setStatus(id: number, status: "online" | "offline", busy?: boolean): void;
  /** Runner groups by id (org scope; "Default" is 1). Add one with `groupId(name)`. */
  runnerGroups(): { id: number; name: string }[];
  groupId(name: string): number;
  /** actions/runner's latest release; null answers 404. */
  latestRelease: FakeRelease | null;
  /** Answer runners without `runner_group_id`, as older API versions do. */
  omitRunnerGroupId: boolean;
  schemaErrors: string[];
  close(): Promise<void>;
}

/**
 * 200 answers to the runner list that GitHub never sends, for `inject("list", ...)` (injected
 * answers skip the schema check): no `runners` array at all, or fewer runners than `total_count`
 * says the (only) page holds.
 */
export function malformedListPage(kind: "no-runners" | "short", totalCount: number, runners: unknown[] = []): FakeResponse {
  return { status: 200, body: kind === "no-runners" ? { total_count: totalCount } : { total_count: totalCount, runners } };
}

export interface StartFakeGitHubOptions {
  pat?: string;
  tokenTtlSeconds?: number;
  /** UTC offset of `expires_at` ("-08:00" like GitHub's example, "+00:00", or "Z"). */
  expiresOffset?: string;
}

export async function startFakeGitHub(opts: StartFakeGitHubOptions = {}): Promise<FakeGitHub> {
  const offset = opts.expiresOffset ?? "-08:00";
  const om = /^(?:Z|([+-])(\d\d):(\d\d))$/.exec(offset);
  if (!om) throw new Error(`expiresOffset must be "Z" or "+HH:MM"/"-HH:MM", got ${JSON.stringify(offset)}`);
  const offsetMinutes = om[1] ? (om[1] === "-" ? -1 : 1) * (Number(om[2]) * 60 + Number(om[3])) : 0;
  const validate = loadResponseValidator();
  const injected = new Map<FakeRoute, FakeResponse[]>();
  const hooks: { route: FakeRoute; hook: (request: FakeRequest) => void | Promise<void> }[] = [];
  const sleepers = new Set<() => void>();
  const labelIds = new Map<string, number>();
  const groupIds = new Map<string, number>([["default", 1]]);
  const groupNames = new Map<string, string>();
  let nextRunnerId = 1;

  const s: FakeState = {
    url: "",
    calls: [],
    runners: new Map(),
    mintedTokens: [],
    mintedRemoveTokens: [],
    installationTokens: new Map(),
    tokenInstallation: new Map(),
    apps: new Map(),
    addApp: (appId, options) => newFakeApp(s, appId, options),
    issued: new Map<string, IssuedToken>(),
    tokenTtlSeconds: opts.tokenTtlSeconds ?? 3600,
    pat: opts.pat ?? `ghp_${randomAlnum(36)}`,
    clockOffsetSeconds: 0,
    patExpiry: null,
    rateLimit: { limit: 5000, remaining: 5000, reset: Math.floor(Date.now() / 1000) + 3600 },
    schemaErrors: [],
    nowMs: () => Date.now() + s.clockOffsetSeconds * 1000,
    json(op, status, body) {
      const problem = validate(op, status, body);
      if (problem) s.schemaErrors.push(problem);
      if (body === undefined) return new Response(null, { status });
      return new Response(JSON.stringify(body), {
        status,
        headers: { "content-type": "application/json; charset=utf-8" },
      });
    },
    formatExpiry(ms) {
      const shifted = new Date(ms + offsetMinutes * 60_000).toISOString(); // ends in ".sssZ"
      return offset === "Z" ? shifted : shifted.slice(0, -1) + offset;
    },
    labelId(name) {
      const key = name.toLowerCase();
      if (!labelIds.has(key)) labelIds.set(key, labelIds.size + 1);
      return labelIds.get(key) as number;
    },
    groupId(name) {
      const key = name.toLowerCase();
      if (!groupNames.has(key)) groupNames.set(key, name);
      if (!groupIds.has(key)) groupIds.set(key, groupIds.size + 1);
      return groupIds.get(key) as number;
    },
    count(filter = {}) {
      return s.calls.filter((c) => {
        if (filter.method && c.method !== filter.method.toUpperCase()) return false;
        if (!filter.route || filter.route === "any") return true;
        return classifyRoute(c.method, c.path) === filter.route;
      }).length;
    },
    inject(route, ...responses) {
      injected.set(route, [...(injected.get(route) ?? []), ...responses]);
      // Deno's fetch silently retries a request whose pooled connection dies before answering,
      // which would swallow a network-error fault; so no connection is reused while one is queued.
      if (responses.some((r) => r.status === 0)) server.closeIdleConnections();
    },
    onRequest(route, hook) {
      const entry = { route, hook };
      hooks.push(entry);
      return () => void hooks.splice(hooks.indexOf(entry), 1);
    },
    addRunner(r) {
      const defaults = ["self-hosted", "Linux", "X64"].map((name) => ({
        id: s.labelId(name),
        name,
        type: "read-only" as const,
      }));
      const runner: FakeRunner = {
        os: "linux",
        status: "offline",
        busy: false,
        ephemeral: false,
        labels: defaults,
        runner_group_id: 1,
        ...r,
        id: nextRunnerId++,
      };
      s.runners.set(runner.id, runner);
      return runner;
    },
    deleteRunner(id) {
      s.runners.delete(id);
    },
    runnerGroups() {
      return [...groupIds.entries()].map(([key, id]) => ({ id, name: key === "default" ? "Default" : groupNames.get(key) ?? key }));
    },
    latestRelease: null,
    omitRunnerGroupId: false,
    setStatus(id, status, busy) {
      const r = s.runners.get(id);
      if (!r) throw new Error(`fake github: no runner with id ${id}`);
      r.status = status;
      if (busy !== undefined) r.busy = busy;
      if (status === "offline") r.busy = false; // an offline runner cannot be running a job
    },
    close: async () => {
      for (const wake of [...sleepers]) wake();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });

  const decorate = (res: Response, requestId: string, rl: FakeApp["rateLimit"]): Response => {
    const put = (k: string, v: string) => {
      if (!res.headers.has(k)) res.headers.set(k, v);
    };
    put("x-ratelimit-limit", String(rl.limit));
    put("x-ratelimit-remaining", String(rl.remaining));
    put("x-ratelimit-reset", String(rl.reset));
    put("x-ratelimit-used", String(Math.max(0, rl.limit - rl.remaining)));
    put("x-ratelimit-resource", "core");
    put("date", new Date(s.nowMs()).toUTCString());
    put("x-github-request-id", requestId);
    put("x-github-api-version-selected", "2022-11-28");
    if (s.patExpiry) put("github-authentication-token-expiration", s.patExpiry);
    if ([...injected.values()].some((q) => q.some((r) => r.status === 0))) res.headers.set("connection", "close");
    return res;
  };

  const authorized = (header: string | null): boolean => {
    const m = /^(token|bearer)\s+(\S+)$/i.exec(header ?? "");
    if (!m) return false;
    if (m[2] === s.pat) return true;
    if (appOfToken(s, header)?.revoked) return false;
    const exp = s.installationTokens.get(m[2]);
    return exp !== undefined && exp > s.nowMs();
  };

  const app = new Hono<FakeEnv>();
  app.use("*", async (c, next) => {
    const url = new URL(c.req.url);
    if (url.pathname.startsWith("/_fake/")) return next();
    const method = c.req.method.toUpperCase();
    const call: FakeCall = {
      method,
      path: url.pathname + url.search,
      status: 0,
      time: Date.now(),
      auth: c.req.header("authorization") ?? null,
    };
    s.calls.push(call);
    const requestId = randomAlnum(8, "0123456789ABCDEF") + ":" + randomAlnum(8, "0123456789ABCDEF");
    const route = classifyRoute(method, url.pathname);
    for (const h of [...hooks]) {
      if (h.route === "any" || h.route === route) await h.hook({ method, path: url.pathname, query: url.searchParams, route });
    }
    // After the hooks, so a hook can spend a budget before the request it sees is charged.
    // Charged to the installation of the App whose token it carries, else to the shared budget.
    const budget = budgetFor(s, call.auth);
    const exhausted = budget.rateLimit.remaining <= 0;
    if (!exhausted) budget.rateLimit.remaining--;
    const queued = (route && injected.get(route)?.length ? injected.get(route) : injected.get("any")) ?? [];
    const fault = queued.shift();
    if (fault) {
      if (fault.delayMs) await sleep(fault.delayMs);
      if (fault.status === 0) {
        c.env.incoming.socket.destroy(); // the client sees a reset connection, not an HTTP answer
        return new Response(null, { status: 204 });
      }
      const isText = typeof fault.body === "string";
      const body = fault.body === undefined ? null : isText ? (fault.body as string) : JSON.stringify(fault.body);
      const headers = new Headers(fault.headers);
      if (body !== null && !headers.has("content-type")) {
        headers.set("content-type", isText ? "text/plain; charset=utf-8" : "application/json; charset=utf-8");
      }
      call.status = fault.status;
      return decorate(new Response(body, { status: fault.status, headers }), requestId, budget.rateLimit);
    }

    let res: Response;
    if (exhausted) {
      res = s.json(`${method} ${url.pathname}`, 403, errorBody(
        `API rate limit exceeded for ${budget.who}. If you reach out to GitHub Support for help, please include the request ID ${requestId}.`,
        403,
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
      ));
    } else if (!isAppJwtRoute(method, url.pathname) && !authorized(call.auth)) {
      res = s.json(`${method} ${url.pathname}`, 401, errorBody("Bad credentials", 401, DOCS));
    } else {
      await next();
      res = c.res;
    }
    call.status = res.status;
    // GitHub does not count a 304 to a conditional request against the primary rate limit.
    if (res.status === 304 && !exhausted) budget.rateLimit.remaining++;
    return decorate(res, requestId, budget.rateLimit);
  });
  app.onError((err) => {
    s.schemaErrors.push(`fake github handler threw: ${err instanceof Error ? err.stack : String(err)}`);
    return new Response(JSON.stringify(errorBody("Server Error", 500)), { status: 500 });
  });
  registerJitRoutes(app, s, () => s.url);
  registerRoutes(app, s);

  let server!: Server;
  await new Promise<void>((resolve, reject) => {
    server = serve(
      { fetch: app.fetch, hostname: "127.0.0.1", port: 0, overrideGlobalObjects: false },
      () => resolve(),
    ) as Server;
    server.once("error", reject);
  });
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return s;
}
