// GitHub Apps in the fake: the JWT routes (installation lookup, token exchange) and, for Apps a test
// adds with `addApp`, an installation of their own with its own budget, and revocation. An App
// never added answers as before: installation 4242, charged to the fake's shared `rateLimit`.
import type { Context, Hono } from "hono";
import type { FakeEnv, FakeState } from "./fake-github-routes.ts";
import { errorBody, INSTALLATION_ID, randomAlnum } from "./fake-github-routes.ts";

export interface FakeApp {
  appId: number;
  installationId: number;
  /** The installation's primary budget: its tokens' calls count here; at 0 they get GitHub's 403. */
  rateLimit: { limit: number; remaining: number; reset: number };
  /** App deleted or key revoked: its JWT and its installation tokens answer 401. */
  revoked: boolean;
  /** Installation suspended: the token exchange answers 403. */
  suspended: boolean;
}

export interface AddAppOptions {
  installationId?: number;
  limit?: number;
  remaining?: number;
  /** Epoch seconds; default an hour from now. */
  reset?: number;
}

export function newFakeApp(s: FakeState, appId: number, opts: AddAppOptions = {}): FakeApp {
  const limit = opts.limit ?? 5000;
  const app: FakeApp = {
    appId,
    installationId: opts.installationId ?? 5000 + appId,
    rateLimit: { limit, remaining: opts.remaining ?? limit, reset: opts.reset ?? Math.floor(s.nowMs() / 1000) + 3600 },
    revoked: false,
    suspended: false,
  };
  s.apps.set(appId, app);
  return app;
}

function bearer(authorization: string | null | undefined): string | null {
  return /^(?:token|bearer)\s+(\S+)$/i.exec(authorization ?? "")?.[1] ?? null;
}

/** The added App whose installation token `authorization` carries, if any. */
export function appOfToken(s: FakeState, authorization: string | null): FakeApp | null {
  const token = bearer(authorization);
  const installation = token ? s.tokenInstallation.get(token) : undefined;
  if (installation === undefined) return null;
  return [...s.apps.values()].find((a) => a.installationId === installation) ?? null;
}

/** Where a request is charged: its App's installation budget, else the shared one (PAT, JWT calls). */
export function budgetFor(s: FakeState, authorization: string | null): { rateLimit: FakeApp["rateLimit"]; who: string } {
  const app = appOfToken(s, authorization);
  return app ? { rateLimit: app.rateLimit, who: `installation ID ${app.installationId}` } : { rateLimit: s.rateLimit, who: "user ID 1" };
}

export function registerAppRoutes(app: Hono<FakeEnv>, s: FakeState): void {
  /** The JWT's App, or the error answer GitHub gives (a bad JWT, or a revoked App: 401). */
  const appAuth = (c: Context<FakeEnv>, op: string): { appId: number; added: FakeApp | undefined } | Response => {
    const jwt = checkJwt(c.req.header("authorization"), s.nowMs() / 1000);
    if ("error" in jwt) return s.json(op, 401, errorBody(jwt.error, 401));
    const added = s.apps.get(jwt.appId);
    if (added?.revoked) return s.json(op, 401, errorBody("Integration not found", 401));
    return { appId: jwt.appId, added };
  };
  const installation = (c: Context<FakeEnv>, login: string, targetType: string) => {
    const auth = appAuth(c, `GET ${c.req.path}`);
    if (auth instanceof Response) return auth;
    return s.json(`GET ${c.req.path}`, 200, {
      id: auth.added?.installationId ?? INSTALLATION_ID,
      account: { login, type: targetType },
      app_id: auth.appId,
      target_type: targetType,
      permissions: { organization_self_hosted_runners: "write", administration: "write" },
      repository_selection: "all",
    });
  };
  app.get("/orgs/:org/installation", (c) => installation(c, c.req.param("org"), "Organization"));
  app.get("/repos/:owner/:repo/installation", (c) => installation(c, c.req.param("owner"), "User"));

  app.post("/app/installations/:id/access_tokens", (c) => {
    const op = `POST /app/installations/{installation_id}/access_tokens`;
    const auth = appAuth(c, op);
    if (auth instanceof Response) return auth;
    const expected = auth.added?.installationId ?? INSTALLATION_ID;
    if (c.req.param("id") !== String(expected)) return s.json(op, 404, errorBody("Not Found", 404));
    if (auth.added?.suspended) return s.json(op, 403, errorBody("This installation has been suspended", 403));
    const token = `ghs_${randomAlnum(36)}`;
    const expiresAtMs = s.nowMs() + 3600_000;
    s.installationTokens.set(token, expiresAtMs);
    s.tokenInstallation.set(token, expected);
    return s.json(op, 201, {
      token,
      expires_at: new Date(Math.floor(expiresAtMs / 1000) * 1000).toISOString().replace(".000Z", "Z"),
      permissions: { organization_self_hosted_runners: "write", administration: "write" },
      repository_selection: "all",
    });
  });
}

/**
 * Accepts any three-part token; when the payload decodes, enforces GitHub's claim rules with the
 * exact messages @octokit/auth-app keys its clock-skew retry on.
 */
function checkJwt(header: string | undefined, nowSec: number): { appId: number } | { error: string } {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  const parts = m ? m[1].split(".") : [];
  if (parts.length !== 3) return { error: "A JSON web token could not be decoded" };
  let claims: { iat?: unknown; exp?: unknown; iss?: unknown } = {};
  try {
    claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  } catch {
    // not a decodable payload: the brief only asks for the shape
  }
  const { iat, exp } = claims;
  if (typeof iat === "number" && iat > nowSec + 5) {
    return { error: "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued" };
  }
  if (typeof exp === "number" && exp <= nowSec) {
    return { error: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires" };
  }
  if (typeof exp === "number" && exp > nowSec + 600 + 5) {
    return { error: "'Expiration time' claim ('exp') is too far in the future" };
  }
  const appId = Number(claims.iss);
  return { appId: Number.isInteger(appId) && appId > 0 ? appId : 1 };
}
