// Agent footprint, on each runtime side by side (tsx from source, the bundle under node as
// shipped, Deno from source), all in one window so they see the same machine:
// - steady RSS (median over the window) of the daemon with 1 and with 20 runners (default 60 s interval), against a bare
//   process on the same runtime that only connects to NATS and serves one hono route, and against
//   that bare process with the product's code loaded but not run (code vs running state);
// - CPU per pass: daemons at a short interval (1 s with 1 runner, 3 s with 20, so that the machine
//   stays far from saturated), CPU over the window / passes in it;
// - idle CPU: the default-interval daemons over the window (one regular pass falls in it).
// Runners are registered and healthy, each with a systemd unit (`service: systemd`) answered by a
// stand-in systemctl (bench/helpers/agents.ts) on the daemons' PATH, as the agent asks systemd on a
// real host (one `systemctl show` for all units; then, while each unit's main process runs, none). A profiled copy of the 1-runner daemon (the bundle with a source map,
// --cpu-prof) runs in the same window and tells where a pass's main-thread time goes; another copy
// runs under `strace -c` (when installed) and counts its system calls per pass.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import process from "node:process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { startFakeGitHub } from "../test/helpers/fake-github.ts";
import { HostFactory, type BenchHost } from "./helpers/agents.ts";
import { summariseProfile, type ProfileSummary } from "./helpers/cpu-profile.ts";
import { traceSyscalls } from "./helpers/strace.ts";
import { guard, median, MiB, procSample, sleep, spawnChild, type Child, type ProcSample } from "./helpers/proc.ts";
import { agentArgv, helperArgv, REPO_ROOT, RUNTIMES, type Builds, type RuntimeName } from "./helpers/runtimes.ts";

export interface RuntimeFootprint {
  runtime: RuntimeName;
  /** Median RSS over the window (sampled every 2 s), MiB: the steady size. */
  rss: { baseline: number; loaded: number; oneRunner: number; twentyRunners: number };
  /** Peak RSS over the window, MiB (garbage not yet collected shows here). */
  peakRss: { baseline: number; loaded: number; oneRunner: number; twentyRunners: number };
  /** CPU over the window as a share of one core. */
  idleCpu: { baseline: number; oneRunner: number; twentyRunners: number };
  /** The 1-runner idle daemon's CPU in the window, ms: in the 2-s slices where its pass ran, and in all the others. */
  idleSplit: { duringPass: number; betweenPasses: number };
  /** CPU per pass (all threads, and the main thread alone), ms, from the 1-s-interval daemons. */
  perPass: {
    oneRunner: number;
    oneRunnerMain: number;
    /** The same daemon with `service: none`: no status command to spawn. */
    oneRunnerNoService: number;
    twentyRunners: number;
    twentyRunnersMain: number;
    passesOne: number;
    passesTwenty: number;
  };
}

export interface FootprintResult {
  windowSeconds: number;
  settleSeconds: number;
  runtimes: RuntimeFootprint[];
  /** Main-thread profile of the 1-runner daemon at a 1 s interval (the bundle, mapped to src/), over the window. */
  profile: ProfileSummary | null;
  /** System calls per pass of the 1-runner daemon (bundle), by name, largest first; null without strace. */
  syscallsPerPass: { name: string; perPass: number }[] | null;
}

interface Watched {
  child: Child;
  first?: ProcSample;
  last?: ProcSample;
  peakRss: number;
  passes0: number;
  passes1: number;
  /** CPU (ms), RSS (bytes) and passes finished at each sample through the window. */
  series: { cpuMs: number; rssBytes: number; passes: number }[];
}

const PASS = /"msg":"pass finished"/;

export async function benchAgentFootprint(builds: Builds, options: { windowSeconds?: number; settleSeconds?: number } = {}): Promise<FootprintResult> {
  const windowSeconds = options.windowSeconds ?? 60;
  // V8 keeps compiling and collecting for about half a minute after the first pass (seen on this
  // machine: ~250 ms of CPU between 5 and 35 s after start); idle is what comes after.
  const settleSeconds = options.settleSeconds ?? 40;
  const nats = guard(await startNatsServer());
  const github = guard(await startFakeGitHub());
  const hosts = guard(await new HostFactory().init());
  const profDir = await mkdtemp(join(tmpdir(), "rtr-bench-prof-"));
  const watched = new Map<string, Watched>();
  const get = (rt: RuntimeName, name: string) => watched.get(`${rt}/${name}`)!;
  try {
    const env = { GITHUB_TOKEN: github.pat, NATS_URL: nats.url, PATH: `${hosts.binDir}:${process.env.PATH ?? ""}` };
    const daemon = async (rt: RuntimeName, name: string, runners: number, interval: number, service: "systemd" | "none" = "systemd"): Promise<void> => {
      const host: BenchHost = await hosts.host(`${rt}-${name}`, { github, natsUrl: nats.url, runners, refresh: interval === 60 ? undefined : { interval }, service });
      const argv = agentArgv(rt, builds);
      watched.set(`${rt}/${name}`, { child: spawnChild([...argv, "daemon", "--config", host.configPath], { env, cwd: REPO_ROOT }), peakRss: 0, passes0: 0, passes1: 0, series: [] });
    };
    for (const rt of RUNTIMES) {
      watched.set(`${rt}/baseline`, { child: spawnChild(helperArgv(rt, builds, "baseline"), { env, cwd: REPO_ROOT }), peakRss: 0, passes0: 0, passes1: 0, series: [] });
      watched.set(`${rt}/loaded`, { child: spawnChild(helperArgv(rt, builds, "loaded"), { env, cwd: REPO_ROOT }), peakRss: 0, passes0: 0, passes1: 0, series: [] });
      await daemon(rt, "idle1", 1, 60);
      await daemon(rt, "idle20", 20, 60);
      await daemon(rt, "fast1", 1, 1);
      await daemon(rt, "fast1-noservice", 1, 1, "none");
      await daemon(rt, "fast20", 20, 3);
    }
    const profiledStart = performance.now();
    {
      const host = await hosts.host("profiled", { github, natsUrl: nats.url, runners: 1, refresh: { interval: 1 }, service: "systemd" });
      const argv = [process.execPath, "--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "1000", builds.agentMapped, "daemon", "--config", host.configPath];
      watched.set("profiled", { child: spawnChild(argv, { env, cwd: REPO_ROOT }), peakRss: 0, passes0: 0, passes1: 0, series: [] });
    }
    await daemon("bundle", "traced", 1, 1);
    for (const [name, w] of watched) await w.child.waitForLine(/baseline|loaded/.test(name) ? /"msg":"ready"/ : PASS, 90_000, `${name} ready`);
    await sleep(settleSeconds * 1000);

    const traced = get("bundle", "traced");
    const tracer = traceSyscalls(traced.child.pid, join(profDir, "strace.txt"));
    await sleep(500);
    const windowStart = performance.now();
    for (const w of watched.values()) {
      w.first = procSample(w.child.pid);
      w.passes0 = w.child.count(PASS);
    }
    const end = windowStart + windowSeconds * 1000;
    const sample = (w: Watched) => {
      const now = procSample(w.child.pid);
      w.peakRss = Math.max(w.peakRss, now.rssBytes);
      w.series.push({ cpuMs: now.cpuMs, rssBytes: now.rssBytes, passes: w.child.count(PASS) });
      return now;
    };
    while (performance.now() < end) {
      for (const w of watched.values()) sample(w);
      await sleep(Math.min(2000, Math.max(0, end - performance.now())));
    }
    for (const w of watched.values()) {
      w.last = sample(w);
      w.passes1 = w.child.count(PASS);
    }
    const windowEnd = performance.now();
    const syscalls = tracer ? await tracer.stop() : null;
    const tracedPasses = traced.child.count(PASS) - traced.passes0;
    const syscallsPerPass = syscalls
      ? Object.entries(syscalls)
          .map(([name, calls]) => ({ name, perPass: calls / Math.max(1, tracedPasses) }))
          .sort((a, b) => b.perPass - a.perPass)
      : null;
    const split = (w: Watched) => {
      let duringPass = 0;
      let betweenPasses = 0;
      for (let i = 1; i < w.series.length; i++) {
        const d = w.series[i].cpuMs - w.series[i - 1].cpuMs;
        if (w.series[i].passes > w.series[i - 1].passes) duringPass += d;
        else betweenPasses += d;
      }
      return { duringPass, betweenPasses };
    };
    const steadyRss = (w: Watched) => median(w.series.map((x) => x.rssBytes)) / MiB;
    const share = (w: Watched) => (w.last!.cpuMs - w.first!.cpuMs) / (w.last!.at - w.first!.at);
    const perPass = (w: Watched, main = false) => {
      const cpu = main ? w.last!.mainThreadCpuMs - w.first!.mainThreadCpuMs : w.last!.cpuMs - w.first!.cpuMs;
      return cpu / Math.max(1, w.passes1 - w.passes0);
    };
    const runtimes = RUNTIMES.map((rt) => ({
      runtime: rt,
      rss: { baseline: steadyRss(get(rt, "baseline")), loaded: steadyRss(get(rt, "loaded")), oneRunner: steadyRss(get(rt, "idle1")), twentyRunners: steadyRss(get(rt, "idle20")) },
      peakRss: { baseline: get(rt, "baseline").peakRss / MiB, loaded: get(rt, "loaded").peakRss / MiB, oneRunner: get(rt, "idle1").peakRss / MiB, twentyRunners: get(rt, "idle20").peakRss / MiB },
      idleCpu: { baseline: share(get(rt, "baseline")), oneRunner: share(get(rt, "idle1")), twentyRunners: share(get(rt, "idle20")) },
      idleSplit: split(get(rt, "idle1")),
      perPass: {
        oneRunner: perPass(get(rt, "fast1")),
        oneRunnerMain: perPass(get(rt, "fast1"), true),
        oneRunnerNoService: perPass(get(rt, "fast1-noservice")),
        twentyRunners: perPass(get(rt, "fast20")),
        twentyRunnersMain: perPass(get(rt, "fast20"), true),
        passesOne: get(rt, "fast1").passes1 - get(rt, "fast1").passes0,
        passesTwenty: get(rt, "fast20").passes1 - get(rt, "fast20").passes0,
      },
    }));
    await Promise.all([...watched.values()].map((w) => w.child.stop(10_000)));
    const profiles = (await readdir(profDir)).filter((f) => f.endsWith(".cpuprofile"));
    const profile = profiles.length ? summariseProfile(join(profDir, profiles[0]), { fromMs: windowStart - profiledStart, toMs: windowEnd - profiledStart, top: 12, sourceMap: { bundle: builds.agentMapped, map: `${builds.agentMapped}.map` } }) : null;
    return { windowSeconds, settleSeconds, runtimes, profile, syscallsPerPass };
  } finally {
    await Promise.all([...watched.values()].map((w) => w.child.stop(2000)));
    await hosts.close();
    await github.close();
    await nats.close();
    await rm(profDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { buildBundles } = await import("./helpers/runtimes.ts");
  const builds = await buildBundles();
  try {
    console.log(JSON.stringify(await benchAgentFootprint(builds, { windowSeconds: Number(process.argv[2] ?? 60) }), null, 2));
  } finally {
    await builds.close();
  }
}
