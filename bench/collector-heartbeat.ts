// Collector at fleet scale, at real rate: N simulated agents (50,000 by default, the figure of
// issue 18; `collector-heartbeat.ts [agents] [window seconds]` for another) multiplexed over a few
// NATS connections each put their state document to KV bucket RTR_STATE every 60 s, evenly
// spread, as their daemons do. The generator must stay cheap on a 2-core machine: a put is a core
// publish to the bucket's subject (no per-put ack to wait for, flushed once per tick), and what
// arrived is read from the stream's sequence at both ends of the window. The collector runs as shipped (the bundle under node, `collector` command)
// in its own process; its CPU is read from /proc over at least two minutes. Baseline, same window,
// same updates: a bare process that only watches the bucket and parses each value. Beside them, a
// profiled copy of the collector (the bundle with a source map, --cpu-prof) follows the same
// updates and tells where the collector's time goes; and one full evaluation of the rules over
// the fleet is timed in process (the periodic sweep for the time-based rules). GET /metrics on
// the collector is timed as a scraper sees it (the whole body read) while the fleet is put, at
// 100 agents (the baseline), 10,000 and the whole fleet, and again at the end with the
// heartbeats running.
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import { stateKey } from "../src/nats/subjects.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { stateDoc } from "./helpers/events.ts";
import { guard, median, procSample, sleep, spawnChild, MiB, type Child } from "./helpers/proc.ts";
import { REPO_ROOT, type Builds } from "./helpers/runtimes.ts";
import { collectorTimers, type CollectorTimers } from "./helpers/collector-timers.ts";
import { summariseProfile, type ProfileSummary } from "./helpers/cpu-profile.ts";
import { FleetState } from "../src/collector/fleet.ts";

/** GET /metrics on the collector, as a scraper sees it. */
export interface ScrapeFigure {
  /** Runners the collector held. */
  agents: number;
  /** Request sent to the whole body read, ms (median of `samples`). */
  ms: number;
  samples: number;
  /**
   * The collector's CPU per scrape, ms (user + system over the scrapes, less what it spent on the
   * heartbeats meanwhile at the window's rate): what a scrape costs it, whatever the client's speed.
   */
  cpuMs: number;
  bytes: number;
  /** The collector's RSS at its highest during the scrapes (sampled every 10 ms) less before them, MiB. */
  rssGrowthMiB: number;
}

const SCRAPES = 5;
/** Fleet sizes at which the scrape is timed while the fleet is put (those up to the fleet's size), then the whole fleet. */
const SCRAPE_STAGES = [100, 10_000];

export interface HeartbeatResult {
  agents: number;
  connections: number;
  periodSeconds: number;
  windowSeconds: number;
  /** Puts the stream stored during the window (its sequence moved by that much). */
  putsInWindow: number;
  /** Puts due at real rate over the window. */
  putsExpected: number;
  /** False when the generator fell more than 2 % behind real rate (the figure is then low). */
  generatorKeptUp: boolean;
  putErrors: number;
  /** CPU used over the window as a share of one core (0.05 = 5 %). */
  collectorCpuShare: number;
  watcherCpuShare: number;
  collectorRssMiB: number;
  /** What the collector's /metrics said after the window. */
  collectorRunners: number;
  collectorStale: number;
  /** GET /metrics with no other load, as the fleet grows: 100 agents (the baseline), 10,000, every agent. */
  scrapes: ScrapeFigure[];
  /** GET /metrics over the whole fleet after the window, the heartbeats still running. */
  scrapeUnderLoad: ScrapeFigure;
  /** One full FleetState.alerts over the fleet, ms (median of 10, in process). */
  fullEvaluationMs: number;
  timers: CollectorTimers;
  /** Main-thread profile of the profiled copy over the window. */
  profile: ProfileSummary | null;
}

async function fleetCounts(url: string): Promise<{ total: number; stale: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  let stale = 0;
  for (const m of text.matchAll(/^runner_token_fleet_runners\{status="([^"]+)"\} (\d+)/gm)) {
    total += Number(m[2]);
    if (m[1] === "stale") stale += Number(m[2]);
  }
  return { total, stale };
}

/** `busyShare`: the collector's CPU share apart from the scrapes (the heartbeats), subtracted. */
async function timeScrapes(url: string, pid: number, agents: number, busyShare = 0): Promise<ScrapeFigure> {
  const start = procSample(pid);
  const before = start.rssBytes;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, procSample(pid).rssBytes)), 10);
  const times: number[] = [];
  let bytes = 0;
  try {
    for (let i = 0; i < SCRAPES; i++) {
      const t0 = performance.now();
      const res = await fetch(`${url}/metrics`);
      if (!res.ok || !res.body) throw new Error(`GET /metrics answered ${res.status}`);
      // Read as a scraper parses it, chunk by chunk: gathering 40 MiB would be the client's cost, not the collector's.
      bytes = 0;
      for await (const chunk of res.body) bytes += chunk.byteLength;
      times.push(performance.now() - t0);
    }
  } finally {
    clearInterval(sampler);
  }
  const end = procSample(pid);
  peak = Math.max(peak, end.rssBytes);
  const cpuMs = Math.max(0, end.cpuMs - start.cpuMs - busyShare * (end.at - start.at)) / times.length;
  return { agents, ms: median(times), samples: times.length, cpuMs, bytes, rssGrowthMiB: (peak - before) / MiB };
}

/** What one evaluation of the rules costs when it covers the whole fleet (FleetState.alerts). */
function fullEvaluationMs(runners: number): number {
  const fleet = new FleetState({ afterConsecutiveFailures: 3 });
  const now = Date.now();
  for (let i = 0; i < runners; i++) {
    const host = `sim-${String((i * 7919) % runners).padStart(5, "0")}.example.com`;
    fleet.putState(stateKey(host, "runner-1"), stateDoc(host, "runner-1", i % 500 === 0 ? 3 : 0), now);
  }
  const times: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t0 = performance.now();
    fleet.alerts(now);
    times.push(performance.now() - t0);
  }
  return median(times.slice(2));
}

export async function benchCollectorHeartbeat(builds: Builds, options: { agents?: number; connections?: number; windowSeconds?: number } = {}): Promise<HeartbeatResult> {
  const agents = options.agents ?? 50_000;
  const connections = options.connections ?? 4;
  const windowSeconds = options.windowSeconds ?? 120;
  const period = 60;
  const nats = guard(await startNatsServer());
  const tmp = await mkdtemp(join(tmpdir(), "rtr-bench-heartbeat-"));
  const ncs: NatsConnection[] = [];
  let collector: Child | null = null;
  let profiled: Child | null = null;
  let watcher: Child | null = null;
  try {
    const config = join(tmp, "collector.yaml");
    await writeFile(config, `nats: { servers: [${nats.url}] }\nstate: { dir: ${join(tmp, "state")} }\nlog: { level: info }\n`);
    collector = spawnChild([process.execPath, builds.agent, "collector", "--config", config, "--listen", "127.0.0.1:0"], { cwd: tmp });
    const listening = await collector.waitForLine(/collector listening on/, 30_000);
    const url = /http:\/\/[^/ ]+/.exec(listening)![0];
    await collector.waitForLine(/collector consuming events and watching state/, 30_000);
    const profDir = join(tmp, "prof");
    const profiledStart = performance.now();
    profiled = spawnChild([process.execPath, "--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "1000", builds.agentMapped, "collector", "--config", config, "--listen", "127.0.0.1:0"], { cwd: tmp });
    const profiledUrl = /http:\/\/[^/ ]+/.exec(await profiled.waitForLine(/collector listening on/, 30_000))![0];
    await profiled.waitForLine(/collector consuming events and watching state/, 30_000);
    watcher = spawnChild([process.execPath, builds.kvWatcher], { env: { NATS_URL: nats.url }, cwd: REPO_ROOT });
    await watcher.waitForLine(/"ready"/, 30_000);

    for (let i = 0; i < connections; i++) ncs.push(await connect({ servers: nats.url, name: `simulated agents ${i}` }));
    // The bucket exists (the collector made it); opening it once checks that.
    await new Kvm(ncs[0]).open("RTR_STATE");
    const jsm = await jetstreamManager(ncs[0]);
    const storedSeq = async () => (await jsm.streams.info("KV_RTR_STATE")).state.last_seq;
    const host = (i: number) => `sim-${String(i).padStart(5, "0")}.example.com`;
    const subjects = Array.from({ length: agents }, (_, i) => `$KV.RTR_STATE.${stateKey(host(i), "runner-1")}`);
    const encoder = new TextEncoder();
    let putErrors = 0;
    // A core publish to the bucket's subject is a KV put without the per-put request (inbox,
    // timer, ack) that would make the generator, not the collector, the cost on 2 cores.
    const put = (i: number) => {
      try {
        ncs[i % connections].publish(subjects[i], encoder.encode(JSON.stringify(stateDoc(host(i), "runner-1"))));
      } catch {
        putErrors++;
      }
    };
    const flush = () => Promise.all(ncs.map((nc) => nc.flush())).then(() => {}, () => void putErrors++);
    // Every agent once, quickly, so the collector holds the whole fleet before the window opens;
    // the scrape is timed on the way, at each stage the fleet reaches.
    const seq0 = await storedSeq();
    const deadline = Date.now() + 150_000;
    const scrapes: ScrapeFigure[] = [];
    let putSoFar = 0;
    for (const stage of [...SCRAPE_STAGES.filter((n) => n < agents), agents]) {
      for (; putSoFar < stage; putSoFar += 1000) {
        for (let k = putSoFar; k < Math.min(stage, putSoFar + 1000); k++) put(k);
        await flush();
      }
      putSoFar = stage;
      for (; (await storedSeq()) - seq0 < stage; await sleep(100)) {
        if (Date.now() > deadline) throw new Error(`the stream did not store ${stage} first puts in time`);
      }
      // Both collectors hold the stage's agents: the profiled copy's catching up would weigh on the scrape.
      while ((await fleetCounts(url)).total < stage || (await fleetCounts(profiledUrl)).total < stage) {
        if (Date.now() > deadline) throw new Error(`the collectors did not see ${stage} agents in time`);
        await sleep(500);
      }
      scrapes.push(await timeScrapes(url, collector.pid, stage));
    }

    // Real rate: agent i beats at i/agents of each period, so puts arrive evenly, a few
    // milliseconds apart (not in bursts, which would let the collector batch more than it can).
    let sent = 0;
    const started = performance.now();
    let stop = false;
    const beating = (async () => {
      while (!stop) {
        const due = Math.floor(((performance.now() - started) / (period * 1000)) * agents);
        for (; sent < due; sent++) put(sent % agents);
        await flush();
        await sleep(5);
      }
    })();
    await sleep(5000);
    const c0 = procSample(collector.pid);
    const w0 = procSample(watcher.pid);
    const q0 = await storedSeq();
    await sleep(windowSeconds * 1000);
    const c1 = procSample(collector.pid);
    const w1 = procSample(watcher.pid);
    const q1 = await storedSeq();
    const windowEnd = performance.now();
    // The profiled copy has done its part; the scrape is timed with the heartbeats still coming.
    await profiled.stop();
    const scrapeUnderLoad = await timeScrapes(url, collector.pid, agents, (c1.cpuMs - c0.cpuMs) / (c1.at - c0.at));
    stop = true;
    await beating;
    const file = (await readdir(profDir).catch(() => [] as string[])).find((f) => f.endsWith(".cpuprofile"));
    const profile = file
      ? summariseProfile(join(profDir, file), { fromMs: c0.at - profiledStart, toMs: windowEnd - profiledStart, sourceMap: { bundle: builds.agentMapped, map: `${builds.agentMapped}.map` } })
      : null;
    const seconds = (c1.at - c0.at) / 1000;
    const counts = await fleetCounts(url);
    return {
      agents,
      connections,
      periodSeconds: period,
      windowSeconds: seconds,
      putsInWindow: q1 - q0,
      putsExpected: (agents / period) * seconds,
      generatorKeptUp: q1 - q0 >= 0.98 * (agents / period) * seconds,
      putErrors,
      collectorCpuShare: (c1.cpuMs - c0.cpuMs) / 1000 / seconds,
      watcherCpuShare: (w1.cpuMs - w0.cpuMs) / 1000 / ((w1.at - w0.at) / 1000),
      collectorRssMiB: c1.rssBytes / MiB,
      collectorRunners: counts.total,
      collectorStale: counts.stale,
      scrapes,
      scrapeUnderLoad,
      fullEvaluationMs: fullEvaluationMs(agents),
      timers: collectorTimers(),
      profile,
    };
  } finally {
    for (const nc of ncs) await nc.close().catch(() => {});
    await collector?.stop();
    await profiled?.stop();
    await watcher?.stop();
    await nats.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { buildBundles } = await import("./helpers/runtimes.ts");
  const builds = await buildBundles();
  try {
    const [agents, windowSeconds] = [process.argv[2], process.argv[3]].map((a) => (a === undefined ? undefined : Number(a)));
    console.log(JSON.stringify(await benchCollectorHeartbeat(builds, { agents, windowSeconds }), null, 2));
  } finally {
    await builds.close();
  }
}
