// Routes of the fake GitHub that runner hygiene uses: a runner's custom labels, org runner groups
// and actions/runner's latest release. Answers are validated against the OpenAPI excerpt like
// every other route (fake-github-schema.ts).
import type { Context, Hono } from "hono";
import type { FakeRoute } from "./fake-github.ts";
import { DOCS, errorBody, runnerJson, sameScope, type FakeEnv, type FakeState } from "./fake-github-routes.ts";

type Ctx = Context<FakeEnv>;

const LABELS_PATH = /^\/(?:orgs\/[^/]+|repos\/[^/]+\/[^/]+|enterprises\/[^/]+)\/actions\/runners\/\d+\/labels(?:\/[^/]+)?\/?$/;
const GROUPS_PATH = /^\/orgs\/[^/]+\/actions\/runner-groups(?:\/(\d+)\/runners(?:\/(\d+))?)?\/?$/;
const RELEASE_PATH = /^\/repos\/actions\/runner\/releases\/latest\/?$/;

export function classifyHygieneRoute(method: string, path: string): FakeRoute | null {
  const p = path.split("?")[0];
  if (LABELS_PATH.test(p)) return "labels";
  const g = GROUPS_PATH.exec(p);
  if (g) return g[2] !== undefined ? (method === "PUT" ? "group-move" : null) : g[1] !== undefined ? "group-runners" : "groups";
  if (method === "GET" && RELEASE_PATH.test(p)) return "release";
  return null;
}

const SCOPES = [
  { prefix: "/orgs/:org", template: "/orgs/{org}", scope: (c: Ctx) => `org:${c.req.param("org")}` },
  { prefix: "/repos/:owner/:repo", template: "/repos/{owner}/{repo}", scope: (c: Ctx) => `repo:${c.req.param("owner")}/${c.req.param("repo")}` },
  { prefix: "/enterprises/:enterprise", template: "/enterprises/{enterprise}", scope: (c: Ctx) => `enterprise:${c.req.param("enterprise")}` },
];

export function registerHygieneRoutes(app: Hono<FakeEnv>, s: FakeState): void {
  for (const sc of SCOPES) {
    const op = (method: string) => `${method} ${sc.template}/actions/runners/{runner_id}/labels`;
    const find = (c: Ctx) => {
      const r = s.runners.get(Number(c.req.param("runner_id")));
      return r && sameScope(r.scope, sc.scope(c)) ? r : undefined;
    };
    const labelsBody = (r: NonNullable<ReturnType<typeof find>>) => ({ total_count: r.labels.length, labels: r.labels.map((l) => ({ ...l })) });
    app.get(`${sc.prefix}/actions/runners/:runner_id/labels`, (c) => {
      const r = find(c);
      return r ? s.json(op("GET"), 200, labelsBody(r)) : s.json(op("GET"), 404, errorBody("Not Found", 404));
    });
    // PUT replaces every custom label; read-only labels (set by config.sh) stay.
    app.put(`${sc.prefix}/actions/runners/:runner_id/labels`, async (c) => {
      const r = find(c);
      if (!r) return s.json(op("PUT"), 404, errorBody("Not Found", 404));
      const body = (await c.req.json().catch(() => null)) as { labels?: unknown } | null;
      const labels = body?.labels;
      if (!Array.isArray(labels) || labels.length > 100 || labels.some((l) => typeof l !== "string" || l === "")) {
        return s.json(op("PUT"), 422, { message: "Validation Failed", documentation_url: `${DOCS}/actions/self-hosted-runners` });
      }
      const readOnly = r.labels.filter((l) => l.type === "read-only");
      const taken = new Set(readOnly.map((l) => l.name.toLowerCase()));
      const custom = [...new Map((labels as string[]).filter((n) => !taken.has(n.toLowerCase())).map((n) => [n.toLowerCase(), n])).values()];
      r.labels = [...readOnly, ...custom.map((name) => ({ id: s.labelId(name), name, type: "custom" as const }))];
      return s.json(op("PUT"), 200, labelsBody(r));
    });
  }

  app.get("/orgs/:org/actions/runner-groups", (c) => {
    const org = c.req.param("org");
    const groups = s.runnerGroups().map((g) => ({
      id: g.id,
      name: g.name,
      visibility: "all",
      default: g.id === 1,
      runners_url: `${s.url}/orgs/${org}/actions/runner_groups/${g.id}/runners`,
      inherited: false,
      allows_public_repositories: false,
    }));
    return s.json("GET /orgs/{org}/actions/runner-groups", 200, { total_count: groups.length, runner_groups: groups });
  });

  app.get("/orgs/:org/actions/runner-groups/:gid/runners", (c) => {
    const op = "GET /orgs/{org}/actions/runner-groups/{runner_group_id}/runners";
    const gid = Number(c.req.param("gid"));
    if (!s.runnerGroups().some((g) => g.id === gid)) return s.json(op, 404, errorBody("Not Found", 404));
    const scope = `org:${c.req.param("org")}`;
    const runners = [...s.runners.values()].filter((r) => sameScope(r.scope, scope) && r.runner_group_id === gid).map((r) => runnerJson(r, s.omitRunnerGroupId));
    return s.json(op, 200, { total_count: runners.length, runners });
  });

  app.put("/orgs/:org/actions/runner-groups/:gid/runners/:rid", (c) => {
    const op = "PUT /orgs/{org}/actions/runner-groups/{runner_group_id}/runners/{runner_id}";
    const gid = Number(c.req.param("gid"));
    const r = s.runners.get(Number(c.req.param("rid")));
    if (!s.runnerGroups().some((g) => g.id === gid) || !r || !sameScope(r.scope, `org:${c.req.param("org")}`)) return s.json(op, 404, errorBody("Not Found", 404));
    r.runner_group_id = gid;
    return s.json(op, 204);
  });

  app.get("/repos/actions/runner/releases/latest", (c) => {
    const op = "GET /repos/{owner}/{repo}/releases/latest";
    const rel = s.latestRelease;
    if (!rel) return s.json(op, 404, errorBody("Not Found", 404));
    // A strong ETag over the release: an unchanged release answers 304 to If-None-Match.
    const etag = `"${rel.tag_name}-${Date.parse(rel.published_at)}"`;
    if (c.req.header("if-none-match") === etag) return new Response(null, { status: 304, headers: { etag } });
    const res = s.json(op, 200, releaseBody(s.url, rel.tag_name, rel.published_at));
    res.headers.set("etag", etag);
    return res;
  });
}

function releaseBody(base: string, tag: string, publishedAt: string) {
  const api = `${base}/repos/actions/runner`;
  return {
    url: `${api}/releases/1`,
    html_url: `https://github.com/actions/runner/releases/tag/${tag}`,
    assets_url: `${api}/releases/1/assets`,
    upload_url: `https://uploads.github.com/repos/actions/runner/releases/1/assets{?name,label}`,
    tarball_url: `${api}/tarball/${tag}`,
    zipball_url: `${api}/zipball/${tag}`,
    id: 1,
    node_id: "RE_kwDOA",
    tag_name: tag,
    target_commitish: "main",
    name: tag,
    body: null,
    draft: false,
    prerelease: false,
    created_at: publishedAt,
    published_at: publishedAt,
    author: {
      login: "github-actions[bot]",
      id: 41898282,
      node_id: "MDM6Qm90NDE4OTgyODI=",
      avatar_url: "https://avatars.githubusercontent.com/in/15368?v=4",
      gravatar_id: "",
      url: `${base}/users/github-actions%5Bbot%5D`,
      html_url: "https://github.com/apps/github-actions",
      followers_url: `${base}/users/github-actions%5Bbot%5D/followers`,
      following_url: `${base}/users/github-actions%5Bbot%5D/following{/other_user}`,
      gists_url: `${base}/users/github-actions%5Bbot%5D/gists{/gist_id}`,
      starred_url: `${base}/users/github-actions%5Bbot%5D/starred{/owner}{/repo}`,
      subscriptions_url: `${base}/users/github-actions%5Bbot%5D/subscriptions`,
      organizations_url: `${base}/users/github-actions%5Bbot%5D/orgs`,
      repos_url: `${base}/users/github-actions%5Bbot%5D/repos`,
      events_url: `${base}/users/github-actions%5Bbot%5D/events{/privacy}`,
      received_events_url: `${base}/users/github-actions%5Bbot%5D/received_events`,
      type: "Bot",
      site_admin: false,
    },
    assets: [],
  };
}
