/**
 * The demo's simulated GitHub: just enough of the REST API for runners (registration tokens that
 * live `tokenTtl` seconds, runner status by id and by name) plus the two calls the sandbox
 * runner's scripts make. Token mints fail with 500 while `failing()` says so: that is the demo's
 * injected outage.
 */
import { Hono } from "hono";

interface SimRunner {
  id: number;
  name: string;
  status: "online" | "offline";
  busy: boolean;
  labels: string[];
  /** A JIT runner (a pool's): takes the simulated jobs. */
  jit?: boolean;
  /** Seconds of the job handed to it, until the runner picks it up. */
  job?: number;
}

export interface SimGitHub {
  app: Hono;
  runners: Map<number, SimRunner>;
  mints: number;
  /** Hands one idle pool runner a job of `seconds` (the demo calls it on a timer). */
  dispatchJob(seconds: number): string | null;
}

function randomToken(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(29));
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join("");
}

function runnerJson(r: SimRunner) {
  return { id: r.id, name: r.name, os: "linux", status: r.status, busy: r.busy, ephemeral: false, labels: r.labels.map((name, i) => ({ id: i + 1, name, type: i < 3 ? "read-only" : "custom" })) };
}

export function createSimGitHub(options: { tokenTtl: number; failing: () => boolean }): SimGitHub {
  const runners = new Map<number, SimRunner>();
  const tokens = new Map<string, number>();
  let nextId = 1;
  const sim: SimGitHub = {
    app: new Hono(),
    runners,
    mints: 0,
    dispatchJob(seconds) {
      const idle = [...runners.values()].find((r) => r.jit && r.status === "online" && !r.busy && r.job === undefined);
      if (!idle) return null;
      idle.job = seconds;
      return idle.name;
    },
  };
  const app = sim.app;
  const headers = { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4990", "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600), "x-ratelimit-used": "10", "x-ratelimit-resource": "core" };
  app.use("*", async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
    c.res.headers.set("date", new Date().toUTCString());
  });

  app.post("/orgs/:org/actions/runners/registration-token", (c) => {
    if (options.failing()) return c.json({ message: "Server Error (simulated outage)" }, 500);
    const token = randomToken();
    const expires = Date.now() + options.tokenTtl * 1000;
    tokens.set(token, expires);
    sim.mints++;
    return c.json({ token, expires_at: new Date(expires).toISOString() }, 201);
  });
  app.get("/orgs/:org/actions/runners", (c) => {
    const name = c.req.query("name");
    const list = [...runners.values()].filter((r) => !name || r.name === name);
    return c.json({ total_count: list.length, runners: list.map(runnerJson) });
  });
  app.get("/orgs/:org/actions/runners/:id", (c) => {
    const r = runners.get(Number(c.req.param("id")));
    return r ? c.json(runnerJson(r)) : c.json({ message: "Not Found" }, 404);
  });

  // Pools: just-in-time runners, handed a simulated job now and then (SPEC 14).
  app.post("/orgs/:org/actions/runners/generate-jitconfig", async (c) => {
    const body = (await c.req.json()) as { name?: string; labels?: string[] };
    if (!body.name || !body.labels?.length) return c.json({ message: "Invalid request." }, 422);
    if ([...runners.values()].some((r) => r.name === body.name)) return c.json({ message: "Already exists" }, 409);
    const runner: SimRunner = { id: nextId++, name: body.name, status: "offline", busy: false, labels: ["self-hosted", "Linux", "X64", ...body.labels], jit: true };
    runners.set(runner.id, runner);
    // As the real one: base64 of a JSON map of file name → base64 content (all ASCII here).
    const file = (v: unknown) => btoa(JSON.stringify(v));
    const serverUrl = new URL(c.req.url).origin;
    const config = file({ ".runner": file({ agentId: runner.id, agentName: runner.name, serverUrl, ephemeral: true }), ".credentials": file({ scheme: "OAuthAccessToken" }) });
    return c.json({ runner: runnerJson(runner), encoded_jit_config: config }, 201);
  });
  app.delete("/orgs/:org/actions/runners/:id", (c) => {
    const r = runners.get(Number(c.req.param("id")));
    if (!r) return c.json({ message: "Not Found" }, 404);
    if (r.busy) return c.json({ message: "Runner is still running a job" }, 422);
    runners.delete(r.id);
    return c.body(null, 204);
  });
  app.get("/_sim/jit/:id", (c) => {
    const r = runners.get(Number(c.req.param("id")));
    if (!r) return c.json({ exists: false });
    if (r.job === undefined) return c.json({ exists: true, job: null });
    const seconds = r.job;
    r.job = undefined;
    r.busy = true;
    return c.json({ exists: true, job: { seconds } });
  });
  app.post("/_sim/jit/:id/online", (c) => {
    const r = runners.get(Number(c.req.param("id")));
    if (r) r.status = "online";
    return c.json({ ok: Boolean(r) });
  });
  app.post("/_sim/jit/:id/done", (c) => {
    runners.delete(Number(c.req.param("id")));
    return c.json({ ok: true });
  });

  // What the sandbox runner's config.sh and svc.sh call.
  app.post("/_sim/register", async (c) => {
    const body = (await c.req.json()) as { token?: string; name?: string; labels?: string[] };
    const expires = body.token ? tokens.get(body.token) : undefined;
    if (!expires || expires < Date.now()) return c.json({ message: "Not Found" }, 404);
    for (const [id, r] of runners) if (r.name === body.name) runners.delete(id);
    const runner: SimRunner = { id: nextId++, name: body.name ?? "runner", status: "offline", busy: false, labels: ["self-hosted", "Linux", "X64", ...(body.labels ?? [])] };
    runners.set(runner.id, runner);
    return c.json({ id: runner.id, name: runner.name });
  });
  app.post("/_sim/runners/:id/status", async (c) => {
    const r = runners.get(Number(c.req.param("id")));
    if (!r) return c.json({ message: "Not Found" }, 404);
    r.status = ((await c.req.json()) as { status: "online" | "offline" }).status;
    return c.json({ ok: true });
  });
  return sim;
}
