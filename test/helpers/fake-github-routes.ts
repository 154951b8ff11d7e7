// Route handlers of the fake GitHub. The shared middleware (call log, injection, auth, rate-limit
// headers) lives in fake-github.ts; these only decide what GitHub would answer.
import type { Context, Hono } from "hono";
import type { HttpBindings } from "@hono/node-server";
import type { FakeGitHub, FakeRoute, FakeRunner, FakeScope } from "./fake-github.ts";
import { classifyHygieneRoute, registerHygieneRoutes } from "./fake-github-hygiene.ts";
import { registerAppRoutes } from "./fake-github-apps.ts";

export type FakeEnv = { Bindings: HttpBindings };
type Ctx = Context<FakeEnv>;

export const DOCS = "https://docs.github.com/rest";
export const INSTALLATION_ID = 4242;
export const RUNNER_VERSION = "2.330.0";

export interface IssuedToken {
  kind: "registration" | "remove";
  scope: FakeScope;
  expiresAtMs: number;
}

/** The parts of the fake the handlers need beyond its public surface. */
export interface FakeState extends FakeGitHub {
  nowMs(): number; // GitHub's clock: real time shifted by clockOffsetSeconds
  json(op: string, status: number, body?: unknown): Response; // validates, then builds
  issued: Map<string, IssuedToken>;
  installationTokens: Map<string, number>; // token -> expiry (ms, GitHub's clock)
  mintedRemoveTokens: string[];
  formatExpiry(ms: number): string;
  labelId(name: string): number;
  groupId(name: string): number;
}

export function errorBody(message: string, status: number, documentationUrl = DOCS) {
  return { message, documentation_url: documentationUrl, status: String(status) };
}

export function sameScope(a: FakeScope, b: FakeScope): boolean {
  return a.toLowerCase() === b.toLowerCase(); // GitHub logins are case-insensitive
}

const RUNNERS_PATH =
  /^\/(?:orgs\/[^/]+|repos\/[^/]+\/[^/]+|enterprises\/[^/]+)\/actions\/runners(?:\/([^/]+))?\/?$/;

export function classifyRoute(method: string, path: string): FakeRoute | null {
  const hygiene = classifyHygieneRoute(method, path);
  if (hygiene) return hygiene;
  const m = RUNNERS_PATH.exec(path.split("?")[0]);
  if (!m) return null;
  const tail = m[1];
  if (tail === undefined) return method === "GET" ? "list" : null;
  if (method === "POST" && tail === "registration-token") return "token";
  if (method === "POST" && tail === "remove-token") return "remove-token";
  if (method === "POST" && tail === "generate-jitconfig") return "jit";
  if (/^\d+$/.test(tail)) return method === "GET" ? "status" : method === "DELETE" ? "delete" : null;
  return null;
}

/** Routes that authenticate with the App's JWT instead of a token. */
export function isAppJwtRoute(method: string, path: string): boolean {
  const p = path.split("?")[0];
  if (method === "GET" && /^\/(?:orgs\/[^/]+|repos\/[^/]+\/[^/]+)\/installation$/.test(p)) return true;
  return method === "POST" && /^\/app\/installations\/[^/]+\/access_tokens$/.test(p);
}

/** The `--url` a runner is configured with, mapped to the scope that issued its token. */
export function scopeFromRunnerUrl(url: string): FakeScope | null {
  let parts: string[];
  try {
    parts = new URL(url).pathname.split("/").filter(Boolean);
  } catch {
    return null;
  }
  if (parts.length === 2 && parts[0].toLowerCase() === "enterprises") return `enterprise:${parts[1]}`;
  if (parts.length === 1) return `org:${parts[0]}`;
  if (parts.length === 2) return `repo:${parts[0]}/${parts[1]}`;
  return null;
}

/** `omitGroupId`: answer as older API versions do, without `runner_group_id`. */
export function runnerJson(r: FakeRunner, omitGroupId = false) {
  const body = fullRunnerJson(r);
  if (!omitGroupId) return body;
  const { runner_group_id: _omitted, ...older } = body;
  return older;
}

function fullRunnerJson(r: FakeRunner) {
  return {
    id: r.id,
    name: r.name,
    os: r.os,
    status: r.status,
    busy: r.busy,
    ephemeral: r.ephemeral,
    labels: r.labels.map((l) => ({ ...l })),
    runner_group_id: r.runner_group_id,
    version: RUNNER_VERSION,
  };
}

const SCOPES = [
  { prefix: "/orgs/:org", template: "/orgs/{org}", scope: (c: Ctx) => `org:${c.req.param("org")}` },
  {
    prefix: "/repos/:owner/:repo",
    template: "/repos/{owner}/{repo}",
    scope: (c: Ctx) => `repo:${c.req.param("owner")}/${c.req.param("repo")}`,
  },
  {
    prefix: "/enterprises/:enterprise",
    template: "/enterprises/{enterprise}",
    scope: (c: Ctx) => `enterprise:${c.req.param("enterprise")}`,
  },
];

export function registerRoutes(app: Hono<FakeEnv>, s: FakeState): void {
  for (const sc of SCOPES) {
    const base = `${sc.template}/actions/runners`;
    const findRunner = (c: Ctx) => {
      const id = Number(c.req.param("runner_id"));
      const r = Number.isInteger(id) ? s.runners.get(id) : undefined;
      return r && sameScope(r.scope, sc.scope(c)) ? r : undefined;
    };

    for (const kind of ["registration", "remove"] as const) {
      const op = `POST ${base}/${kind}-token`;
      app.post(`${sc.prefix}/actions/runners/${kind}-token`, (c) => {
        const token = randomAlnum(29, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
        const expiresAtMs = s.nowMs() + s.tokenTtlSeconds * 1000;
        s.issued.set(token, { kind, scope: sc.scope(c), expiresAtMs });
        (kind === "registration" ? s.mintedTokens : s.mintedRemoveTokens).push(token);
        return s.json(op, 201, { token, expires_at: s.formatExpiry(expiresAtMs) });
      });
    }

    app.get(`${sc.prefix}/actions/runners`, (c) => {
      const op = `GET ${base}`;
      const name = c.req.query("name");
      const perPage = Math.min(100, Math.max(1, Number(c.req.query("per_page")) || 30));
      const page = Math.max(1, Math.trunc(Number(c.req.query("page"))) || 1);
      const scope = sc.scope(c);
      const all = [...s.runners.values()]
        .filter((r) => sameScope(r.scope, scope) && (name === undefined || r.name === name))
        .sort((a, b) => a.id - b.id);
      const runners = all.slice((page - 1) * perPage, page * perPage).map((r) => runnerJson(r, s.omitRunnerGroupId));
      // A weak ETag over what this page says, as GitHub sends; a matching If-None-Match gets 304.
      const etag = `W/"${weakHash(JSON.stringify([all.length, runners]))}"`;
      if (c.req.header("if-none-match") === etag) return new Response(null, { status: 304, headers: { etag } });
      const res = s.json(op, 200, { total_count: all.length, runners });
      res.headers.set("etag", etag);
      const link = linkHeader(c.req.url, page, perPage, Math.max(1, Math.ceil(all.length / perPage)));
      if (link) res.headers.set("link", link);
      return res;
    });

    app.get(`${sc.prefix}/actions/runners/:runner_id`, (c) => {
      const op = `GET ${base}/{runner_id}`;
      const r = findRunner(c);
      if (!r) return s.json(op, 404, errorBody("Not Found", 404));
      const body = runnerJson(r, s.omitRunnerGroupId);
      // As GitHub does: a weak ETag over the answer; a matching If-None-Match gets a bodiless 304.
      const etag = `W/"${weakHash(JSON.stringify(body))}"`;
      if (c.req.header("if-none-match") === etag) return new Response(null, { status: 304, headers: { etag } });
      const res = s.json(op, 200, body);
      res.headers.set("etag", etag);
      return res;
    });

    app.delete(`${sc.prefix}/actions/runners/:runner_id`, (c) => {
      const op = `DELETE ${base}/{runner_id}`;
      const r = findRunner(c);
      if (!r) return s.json(op, 404, errorBody("Not Found", 404));
      if (r.busy) {
        const msg = `Bad request - Runner "${r.name}" is still running a job"`;
        return s.json(op, 422, errorBody(msg, 422, `${DOCS}/actions/self-hosted-runners`));
      }
      s.runners.delete(r.id);
      return s.json(op, 204);
    });
  }

  registerHygieneRoutes(app, s);
  registerAppRoutes(app, s);
  registerControlRoutes(app, s);
  app.notFound((c) => s.json(`${c.req.method} ${c.req.path}`, 404, errorBody("Not Found", 404)));
}

/** Stand-ins for what the runner itself does against GitHub's internal (non-REST) endpoints. */
function registerControlRoutes(app: Hono<FakeEnv>, s: FakeState): void {
  const plain = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  const usableToken = (token: unknown, scope: FakeScope, kinds: IssuedToken["kind"][]) => {
    const t = typeof token === "string" ? s.issued.get(token) : undefined;
    return !!t && kinds.includes(t.kind) && t.expiresAtMs > s.nowMs() && sameScope(t.scope, scope);
  };

  app.post("/_fake/runner-registration", async (c) => {
    const b = (await c.req.json().catch(() => null)) as Record<string, unknown> | null;
    if (!b || typeof b.name !== "string" || typeof b.url !== "string") {
      return plain(400, { message: "name and url are required" });
    }
    const scope = scopeFromRunnerUrl(b.url);
    // An expired, unknown or foreign token is a bare 404 at configure time (actions/runner#1882).
    if (!scope || !usableToken(b.token, scope, ["registration"])) return plain(404, { message: "Not Found" });
    const existing = [...s.runners.values()].find((r) => r.name === b.name && sameScope(r.scope, scope));
    if (existing && b.replace !== true) return plain(409, { message: "A runner exists with the same name" });
    if (existing) s.runners.delete(existing.id);
    const custom = Array.isArray(b.labels) ? b.labels.filter((l): l is string => typeof l === "string") : [];
    const defaults = b.noDefaultLabels === true ? [] : ["self-hosted", "Linux", "X64"];
    const labels = [
      ...defaults.map((name) => ({ id: s.labelId(name), name, type: "read-only" as const })),
      ...[...new Set(custom)].map((name) => ({ id: s.labelId(name), name, type: "custom" as const })),
    ];
    const group = typeof b.group === "string" && b.group !== "" ? b.group : "Default";
    const runner = s.addRunner({
      name: b.name,
      scope,
      labels,
      ephemeral: b.ephemeral === true,
      runner_group_id: s.groupId(group),
    });
    return plain(200, { id: runner.id, name: runner.name, poolId: 1, poolName: "Default", replaced: !!existing });
  });

  // `config.sh remove --token`: a remove token, or in practice a registration token.
  app.post("/_fake/runner-removal", async (c) => {
    const b = (await c.req.json().catch(() => null)) as Record<string, unknown> | null;
    const scope = b && typeof b.url === "string" ? scopeFromRunnerUrl(b.url) : null;
    if (!b || !scope || !usableToken(b.token, scope, ["remove", "registration"])) {
      return plain(404, { message: "Not Found" });
    }
    const r = s.runners.get(Number(b.agentId));
    if (!r || !sameScope(r.scope, scope)) return plain(200, { deleted: false });
    if (r.busy) return plain(422, { message: `Bad request - Runner "${r.name}" is still running a job"` });
    s.runners.delete(r.id);
    return plain(200, { deleted: true });
  });

  app.post("/_fake/runners/:id/status", async (c) => {
    const b = (await c.req.json().catch(() => null)) as { status?: unknown; busy?: unknown } | null;
    const r = s.runners.get(Number(c.req.param("id")));
    if (!r) return plain(404, { message: "Not Found" });
    if (b?.status !== "online" && b?.status !== "offline") return plain(400, { message: "bad status" });
    s.setStatus(r.id, b.status, typeof b.busy === "boolean" ? b.busy : undefined);
    return plain(200, runnerJson(r));
  });
}

function weakHash(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
}

function linkHeader(requestUrl: string, page: number, perPage: number, lastPage: number): string | null {
  if (lastPage <= 1) return null;
  const at = (p: number) => {
    const u = new URL(requestUrl);
    u.searchParams.set("per_page", String(perPage));
    u.searchParams.set("page", String(p));
    return `<${u.toString()}>`;
  };
  const links: string[] = [];
  if (page > 1) links.push(`${at(page - 1)}; rel="prev"`);
  if (page < lastPage) links.push(`${at(page + 1)}; rel="next"`, `${at(lastPage)}; rel="last"`);
  if (page > 1) links.push(`${at(1)}; rel="first"`);
  return links.join(", ");
}

export function randomAlnum(length: number, alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"): string {
  let out = "";
  for (const byte of crypto.getRandomValues(new Uint8Array(length))) out += alphabet[byte % alphabet.length];
  return out;
}
