// /metrics: requests/s and latency with autocannon against the agent daemon's GET /metrics (the
// bundle under node, as shipped, one runner, after its first pass), against a raw node:http server
// in its own process serving the same bytes with the same headers (content-type, content-length,
// ETag; both add node's Date and keep-alive headers). autocannon runs in a process of its own.
// Each target gets a warm-up; then several rounds, each measuring both targets back to back (the
// order alternating between rounds) at 10 connections (autocannon's default: throughput) and at 1
// (a Prometheus scraper's view). On a shared machine a neighbour's burst hits one round, not one
// target: the judged figure is the median of the per-round ratios (the best round is shown too).
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { startFakeGitHub } from "../test/helpers/fake-github.ts";
import { HostFactory } from "./helpers/agents.ts";
import { summariseProfile, type ProfileSummary } from "./helpers/cpu-profile.ts";
import { guard, procSample, spawnChild, type Child } from "./helpers/proc.ts";
import { agentArgv, REPO_ROOT, type Builds } from "./helpers/runtimes.ts";

export interface CannonRun {
  connections: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  /** The server process's CPU time (all threads, /proc) per request answered, µs: steadier than requests/s on a busy machine. */
  cpuUsPerRequest: number;
}

export interface MetricsRound {
  connections: number;
  agent: CannonRun;
  raw: CannonRun;
  /** agent requests/s ÷ raw requests/s in this round. */
  ratio: number;
}

export interface MetricsEndpointResult {
  bytes: number;
  /** Seconds of each measured run (one target, one connection count, one round). */
  seconds: number;
  rounds: number;
  /** The headers both targets send (besides node's Date, Connection and Keep-Alive). */
  headers: Record<string, string>;
  /** Per connection count (10, then 1): the median round's requests/s and p99 of each target. */
  agent: CannonRun[];
  raw: CannonRun[];
  /** Per connection count (10, then 1): the median and the best per-round ratio. */
  ratio: { connections: number; median: number; best: number }[];
  perRound: MetricsRound[];
  /** Main-thread profile of a copy of the agent (bundle with source map) under the 10-connection load. */
  profile: ProfileSummary | null;
}

const AUTOCANNON = join(REPO_ROOT, "node_modules/autocannon/autocannon.js");

/** The raw baseline: node:http, no framework, the body read once from a file, the agent's headers. */
const RAW_SERVER = `
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
const body = readFileSync(process.env.BODY_FILE);
const headers = JSON.parse(process.env.HEADERS);
const server = createServer((req, res) => {
  if (req.url === "/metrics") { res.writeHead(200, headers); res.end(body); }
  else { res.writeHead(404); res.end(); }
});
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ msg: "ready", port: server.address().port })));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

async function cannon(url: string, connections: number, seconds: number, serverPid?: number): Promise<CannonRun> {
  const cpu0 = serverPid ? procSample(serverPid).cpuMs : 0;
  const run = spawnChild([process.execPath, AUTOCANNON, "-j", "-c", String(connections), "-d", String(seconds), url], { cwd: REPO_ROOT });
  const code = await run.exited;
  const line = run
    .output()
    .split("\n")
    .find((l) => l.startsWith("{") && l.includes('"latency"'));
  if (code !== 0 || !line) throw new Error(`autocannon failed (${code}): ${run.output().slice(-500)}`);
  const cpuMs = serverPid ? procSample(serverPid).cpuMs - cpu0 : 0;
  const r = JSON.parse(line) as { requests: { average: number; total: number }; latency: { p50: number; p99: number }; errors: number; non2xx: number; timeouts: number };
  const cpuUsPerRequest = r.requests.total > 0 ? (cpuMs * 1000) / r.requests.total : 0;
  return { connections, requestsPerSecond: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx + r.timeouts, cpuUsPerRequest };
}

/** Headers that describe the body (what the raw server must send alike), lower-case. */
const CONTENT_HEADERS = ["content-type", "content-length", "etag", "cache-control"];

function contentHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of CONTENT_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) out[name] = value;
  }
  return out;
}

const byRate = (a: CannonRun, b: CannonRun) => a.requestsPerSecond - b.requestsPerSecond;

/** The median round by requests/s (an odd count; the lower middle one otherwise), with the median p99. */
function medianRun(runs: CannonRun[]): CannonRun {
  const sorted = [...runs].sort(byRate);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)];
  return { ...mid, p99: medianOf(runs.map((r) => r.p99)), cpuUsPerRequest: medianOf(runs.map((r) => r.cpuUsPerRequest)), errors: runs.reduce((n, r) => n + r.errors, 0) };
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const m = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(m)] : (sorted[m - 1] + sorted[m]) / 2;
}

/** Warm-up of both, then `rounds` rounds of both targets back to back, order alternating. */
interface Target {
  url: string;
  pid: number;
}

async function measure(targets: { agent: Target; raw: Target }, seconds: number, rounds: number): Promise<MetricsRound[]> {
  await cannon(targets.raw.url, 10, 2); // warm-up: JIT, connection pools
  await cannon(targets.agent.url, 10, 2);
  const out: MetricsRound[] = [];
  const run = (t: Target, connections: number) => cannon(t.url, connections, seconds, t.pid);
  for (let round = 0; round < rounds; round++) {
    for (const connections of [10, 1]) {
      const rawFirst = round % 2 === 0;
      const first = await run(rawFirst ? targets.raw : targets.agent, connections);
      const second = await run(rawFirst ? targets.agent : targets.raw, connections);
      const [raw, agent] = rawFirst ? [first, second] : [second, first];
      out.push({ connections, agent, raw, ratio: agent.requestsPerSecond / raw.requestsPerSecond });
    }
  }
  return out;
}

function summarise(perRound: MetricsRound[]): Pick<MetricsEndpointResult, "agent" | "raw" | "ratio"> {
  const at = (c: number) => perRound.filter((r) => r.connections === c);
  return {
    agent: [10, 1].map((c) => medianRun(at(c).map((r) => r.agent))),
    raw: [10, 1].map((c) => medianRun(at(c).map((r) => r.raw))),
    ratio: [10, 1].map((c) => ({ connections: c, median: medianOf(at(c).map((r) => r.ratio)), best: Math.max(...at(c).map((r) => r.ratio)) })),
  };
}

/** `seconds`: measured time per target and connection count, split into rounds of 2 s (at least 4). */
export async function benchMetricsEndpoint(builds: Builds, seconds = 8): Promise<MetricsEndpointResult> {
  const roundSeconds = 2;
  const rounds = Math.max(4, Math.round(seconds / roundSeconds));
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
    const headers = contentHeaders(res);
    await writeFile(join(tmp, "metrics.txt"), body);
    raw = spawnChild([process.execPath, "--input-type=module", "-e", RAW_SERVER], { env: { BODY_FILE: join(tmp, "metrics.txt"), HEADERS: JSON.stringify(headers) }, cwd: tmp });
    const rawUrl = `http://127.0.0.1:${(JSON.parse(await raw.waitForLine(/"ready"/, 10_000)) as { port: number }).port}/metrics`;
    // Same bytes, same headers: checked, not assumed.
    const rawRes = await fetch(rawUrl);
    const rawBody = Buffer.from(await rawRes.arrayBuffer());
    if (!rawBody.equals(body) || JSON.stringify(contentHeaders(rawRes)) !== JSON.stringify(headers)) throw new Error(`the raw server does not answer like the agent: ${JSON.stringify(contentHeaders(rawRes))} vs ${JSON.stringify(headers)}`);
    const perRound = await measure({ agent: { url: agentUrl, pid: agent.pid }, raw: { url: rawUrl, pid: raw.pid } }, roundSeconds, rounds);
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
    return { bytes: body.length, seconds: roundSeconds, rounds, headers, ...summarise(perRound), perRound, profile };
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
