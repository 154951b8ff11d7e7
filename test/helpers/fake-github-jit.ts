// The fake GitHub's just-in-time runners (SPEC 14): `generate-jitconfig` with GitHub's contract
// (201 {runner, encoded_jit_config}; 422 without runner_group_id or labels; 409 on a taken name),
// checked against the OpenAPI excerpt, plus the internal endpoints the run.sh stand-in uses to go
// online, take a job and deregister, and the controls a test uses to hand out jobs or remove an
// unused runner the way GitHub does after a few minutes.
import type { Hono } from "hono";
import type { FakeEnv, FakeState } from "./fake-github-routes.ts";
import { errorBody, runnerJson, sameScope } from "./fake-github-routes.ts";
import type { FakeGitHub } from "./fake-github.ts";

export interface JitControl {
  /** Runner ids made through generate-jitconfig, in order. */
  created: number[];
  /** Hands the runner a job that lasts `seconds` (the stand-in runs bin/Runner.Worker that long). */
  assignJob(runnerId: number, seconds: number): void;
  /** Jobs finished (the runner deregistered after its job). */
  finished: number[];
  /** Every encoded_jit_config handed out (secrets: the no-leak checks search for them). */
  configs: string[];
}

const controls = new WeakMap<object, JitControl & { jobs: Map<number, number> }>();

/** The JIT controls of a fake GitHub. */
export function jit(github: FakeGitHub): JitControl {
  const c = controls.get(github);
  if (!c) throw new Error("this fake GitHub has no JIT routes");
  return c;
}

const SCOPES = [
  { path: "/orgs/:org", template: "/orgs/{org}", scope: (p: (k: string) => string) => `org:${p("org")}` },
  { path: "/repos/:owner/:repo", template: "/repos/{owner}/{repo}", scope: (p: (k: string) => string) => `repo:${p("owner")}/${p("repo")}` },
  { path: "/enterprises/:enterprise", template: "/enterprises/{enterprise}", scope: (p: (k: string) => string) => `enterprise:${p("enterprise")}` },
];

export function registerJitRoutes(app: Hono<FakeEnv>, s: FakeState, url: () => string): void {
  const control = { created: [] as number[], finished: [] as number[], configs: [] as string[], jobs: new Map<number, number>(), assignJob: (id: number, seconds: number) => void control.jobs.set(id, seconds) };
  controls.set(s, control);
  for (const sc of SCOPES) {
    const op = `POST ${sc.template}/actions/runners/generate-jitconfig`;
    app.post(`${sc.path}/actions/runners/generate-jitconfig`, async (c) => {
      const scope = sc.scope((k) => c.req.param(k) as string);
      const b = (await c.req.json().catch(() => null)) as { name?: unknown; runner_group_id?: unknown; labels?: unknown; work_folder?: unknown } | null;
      const invalid = (message: string) => s.json(op, 422, errorBody(`Invalid request.\n\n${message}`, 422));
      if (!b || typeof b.name !== "string" || !b.name) return invalid('"name" wasn\'t supplied.');
      if (typeof b.runner_group_id !== "number") return invalid('"runner_group_id" wasn\'t supplied.');
      if (!Array.isArray(b.labels) || b.labels.length < 1 || b.labels.length > 100 || b.labels.some((l) => typeof l !== "string")) {
        return invalid('"labels" wasn\'t supplied, or has fewer than 1 or more than 100 items.');
      }
      if (!s.runnerGroups().some((g) => g.id === b.runner_group_id)) return s.json(op, 404, errorBody("Not Found", 404));
      const name = b.name;
      if ([...s.runners.values()].some((r) => r.name === name && sameScope(r.scope, scope))) {
        return s.json(op, 409, errorBody(`Already exists - A runner with the name ${name} already exists.`, 409));
      }
      const defaults = ["self-hosted", "Linux", "X64"].map((n) => ({ id: s.labelId(n), name: n, type: "read-only" as const }));
      const labels = [...defaults, ...[...new Set(b.labels as string[])].map((n) => ({ id: s.labelId(n), name: n, type: "custom" as const }))];
      const runner = s.addRunner({ name, scope, labels, ephemeral: true, status: "offline", runner_group_id: b.runner_group_id });
      control.created.push(runner.id);
      // As the real one: base64 of a JSON map of file name → base64 file content.
      const files = {
        ".runner": { agentId: runner.id, agentName: name, poolId: b.runner_group_id, serverUrl: url(), gitHubUrl: url(), workFolder: typeof b.work_folder === "string" ? b.work_folder : "_work", ephemeral: true },
        ".credentials": { scheme: "OAuthAccessToken", data: { token: `jit-${crypto.randomUUID()}` } },
        ".credentials_rsaparams": { d: "ZmFrZQ==", exponent: "AQAB", modulus: "ZmFrZQ==" },
      };
      const map = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(JSON.stringify(v)).toString("base64")]));
      const encoded = Buffer.from(JSON.stringify(map)).toString("base64");
      control.configs.push(encoded);
      return s.json(op, 201, { runner: runnerJson(runner), encoded_jit_config: encoded });
    });
  }

  const plain = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  // The run.sh stand-in's view of its runner: whether GitHub still has it, and a job if one waits.
  app.get("/_fake/jit/:id", (c) => {
    const id = Number(c.req.param("id"));
    const r = s.runners.get(id);
    if (!r) return plain(200, { exists: false, job: null });
    const seconds = control.jobs.get(id);
    if (seconds !== undefined) {
      control.jobs.delete(id);
      s.setStatus(id, "online", true);
      return plain(200, { exists: true, job: { seconds } });
    }
    return plain(200, { exists: true, job: null });
  });
  app.post("/_fake/jit/:id/online", (c) => {
    const id = Number(c.req.param("id"));
    if (!s.runners.get(id)) return plain(404, { message: "Not Found" });
    s.setStatus(id, "online", false);
    return plain(200, runnerJson(s.runners.get(id)!));
  });
  // An ephemeral runner deregisters itself after its job.
  app.post("/_fake/jit/:id/done", (c) => {
    const id = Number(c.req.param("id"));
    s.runners.delete(id);
    control.finished.push(id);
    return plain(200, { deleted: true });
  });
}
