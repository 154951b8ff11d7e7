// /metrics: requests/s and latency with autocannon against the agent daemon's GET /metrics (the
// bundle under node, as shipped, one runner, after its first pass), against a raw node:http server
// in its own process serving the same bytes with the same content type. autocannon runs in a
// process of its own; each target gets a warm-up, then a measured run at 10 connections
// (autocannon's default: throughput) and one at 1 connection (a Prometheus scraper's view).
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { startFakeGitHub } from "../test/helpers/fake-github.ts";
import { HostFactory } from "./helpers/agents.ts";
import { summariseProfile, type ProfileSummary } from "./helpers/cpu-profile.ts";
import { guard, spawnChild, type Child } from "./helpers/proc.ts";
import { agentArgv, REPO_ROOT, type Builds } from "./helpers/runtimes.ts";

export interface CannonRun {
  connections: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

export interface MetricsEndpointResult {
  bytes: number;
  seconds: number;
  agent: CannonRun[];
  raw: CannonRun[];
  /** Main-thread profile of a copy of the agent (bundle with source map) under the 10-connection load. */
  profile: ProfileSummary | null;
}

const AUTOCANNON = join(REPO_ROOT, "node_modules/autocannon/autocannon.js");

/** The raw baseline: node:http, no framework, the body read once from a file. */
const RAW_SERVER = `
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
const body = readFileSync(process.env.BODY_FILE);
const type = process.env.CONTENT_TYPE;
const server = createServer((req, res) => {
  if (req.url === "/metrics") { res.writeHead(200, { "content-type": type, "content-length": body.length }); res.end(body); }
  else { res.writeHead(404); res.end(); }
});
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ msg: "ready", port: server.address().port })));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

async function cannon(url: string, connections: number, seconds: number): Promise<CannonRun> {
  const run = spawnChild([process.execPath, AUTOCANNON, "-j", "-c", String(connections), "-d", String(seconds), url], { cwd: REPO_ROOT });
  const code = await run.exited;
  const line = run
    .output()
    .split("\n")
    .find((l) => l.startsWith("{") && l.includes('"latency"'));
  if (code !== 0 || !line) throw new Error(`autocannon failed (${code}): ${run.output().slice(-500)}`);
  const r = JSON.parse(line) as { requests: { average: number }; latency: { p50: number; p99: number }; errors: number; non2xx: number; timeouts: number };
  return { connections, requestsPerSecond: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx + r.timeouts };
}

async function measure(url: string, seconds: number): Promise<CannonRun[]> {
  await cannon(url, 10, 2); // warm-up: JIT, connection pools
  return [await cannon(url, 10, seconds), await cannon(url, 1, seconds)];
}

export async function benchMetricsEndpoint(builds: Builds, seconds = 8): Promise<MetricsEndpointResult> {
  const nats = guard(await startNatsServer());
  const github = guard(await startFakeGitHub());
  const hosts = guard(await new HostFactory().init());
  const tmp = await mkdtemp(join(tmpdir(), "rtr-bench-metrics-"));
  let agent: Child | null = null;
  let raw: Child | null = null;
  try {
    const host = await hosts.host("metrics", { github, natsUrl: nats.url, runners: 1 });
    agent = spawnChild([...agentArgv("bundle", builds), "daemon", "--config", host.configPath], { env: { GITHUB_TOKEN: github.pat }, cwd: REPO_ROOT });
    const listening = await agent.waitForLine(/agent listening on/, 30_000);
    const agentUrl = `${/http:\/\/[^ "]+/.exec(listening)![0]}/metrics`;
    await agent.waitForLine(/"msg":"pass finished"/, 30_000);
    const res = await fetch(agentUrl);
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || body.length < 100) throw new Error(`agent /metrics answered ${res.status} with ${body.length} bytes`);
    await writeFile(join(tmp, "metrics.txt"), body);
    raw = spawnChild([process.execPath, "--input-type=module", "-e", RAW_SERVER], { env: { BODY_FILE: join(tmp, "metrics.txt"), CONTENT_TYPE: res.headers.get("content-type") ?? "text/plain" }, cwd: tmp });
    const rawUrl = `http://127.0.0.1:${(JSON.parse(await raw.waitForLine(/"ready"/, 10_000)) as { port: number }).port}/metrics`;
    const rawRuns = await measure(rawUrl, seconds);
    const agentRuns = await measure(agentUrl, seconds);
    await agent.stop();

    // Where a scrape's time goes: the same daemon, profiled, under the same load.
    const profDir = join(tmp, "prof");
    const started = performance.now();
    agent = spawnChild([process.execPath, "--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "500", builds.agentMapped, "daemon", "--config", host.configPath], { env: { GITHUB_TOKEN: github.pat }, cwd: REPO_ROOT });
    const profiledUrl = `${/http:\/\/[^ "]+/.exec(await agent.waitForLine(/agent listening on/, 30_000))![0]}/metrics`;
    await agent.waitForLine(/"msg":"pass finished"/, 30_000);
    await cannon(profiledUrl, 10, 2);
    const loadStart = performance.now();
    await cannon(profiledUrl, 10, 4);
    const loadEnd = performance.now();
    await agent.stop();
    const file = (await readdir(profDir).catch(() => [] as string[])).find((f) => f.endsWith(".cpuprofile"));
    const profile = file ? summariseProfile(join(profDir, file), { fromMs: loadStart - started, toMs: loadEnd - started, sourceMap: { bundle: builds.agentMapped, map: `${builds.agentMapped}.map` } }) : null;
    return { bytes: body.length, seconds, agent: agentRuns, raw: rawRuns, profile };
  } finally {
    await raw?.stop();
    await agent?.stop();
    await hosts.close();
    await github.close();
    await nats.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { buildBundles } = await import("./helpers/runtimes.ts");
  const builds = await buildBundles();
  try {
    console.log(JSON.stringify(await benchMetricsEndpoint(builds), null, 2));
  } finally {
    await builds.close();
  }
}
