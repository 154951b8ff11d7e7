// Start-up: wall time from spawning `check` to its exit, having minted a fresh token (a new state
// dir each time, so no cached token) for a registered runner, with NATS configured, on each
// runtime. Baseline: the bare process on the same runtime (connect to NATS, serve one hono route,
// pino), spawn to "ready". One untimed run of each first fills tsx's and Deno's compile caches;
// figures are medians of the timed runs. Standalone: `npx tsx bench/startup.ts [runs]`.
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { startFakeGitHub } from "../test/helpers/fake-github.ts";
import { HostFactory } from "./helpers/agents.ts";
import { guard, median, spawnChild } from "./helpers/proc.ts";
import { agentArgv, helperArgv, REPO_ROOT, RUNTIMES, type Builds, type RuntimeName } from "./helpers/runtimes.ts";

export interface StartupRuntime {
  runtime: RuntimeName;
  /** Median wall time, ms, spawn → `check` exited 0 with a freshly minted token. */
  checkMs: number;
  /** Median wall time, ms, spawn → the bare process is ready. */
  baselineMs: number;
  runs: { check: number[]; baseline: number[] };
}

export async function benchStartup(builds: Builds, runs = 3): Promise<StartupRuntime[]> {
  const nats = guard(await startNatsServer());
  const github = guard(await startFakeGitHub());
  const hosts = guard(await new HostFactory().init());
  try {
    const env = { GITHUB_TOKEN: github.pat, NATS_URL: nats.url };
    const out: StartupRuntime[] = [];
    let n = 0;
    for (const rt of RUNTIMES) {
      const check: number[] = [];
      const baseline: number[] = [];
      for (let i = 0; i <= runs; i++) {
        const host = await hosts.host(`start-${n++}`, { github, natsUrl: nats.url, runners: 1 });
        const minted = github.count({ route: "token" });
        const t0 = performance.now();
        const run = spawnChild([...agentArgv(rt, builds), "check", "--config", host.configPath], { env, cwd: REPO_ROOT });
        const code = await run.exited;
        const ms = performance.now() - t0;
        if (code !== 0) throw new Error(`check on ${rt} exited ${code}: ${run.output().slice(-800)}`);
        if (github.count({ route: "token" }) !== minted + 1) throw new Error(`check on ${rt} did not mint exactly one fresh token`);
        const b0 = performance.now();
        const bare = spawnChild(helperArgv(rt, builds, "baseline"), { env, cwd: REPO_ROOT });
        await bare.waitForLine(/"msg":"ready"/, 30_000);
        const bareMs = performance.now() - b0;
        await bare.stop();
        if (i === 0) continue; // warm-up: compile caches
        check.push(ms);
        baseline.push(bareMs);
      }
      out.push({ runtime: rt, checkMs: median(check), baselineMs: median(baseline), runs: { check, baseline } });
    }
    return out;
  } finally {
    await hosts.close();
    await github.close();
    await nats.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { buildBundles } = await import("./helpers/runtimes.ts");
  const builds = await buildBundles();
  try {
    console.log(JSON.stringify(await benchStartup(builds, Number(process.argv[2] ?? 3)), null, 2));
  } finally {
    await builds.close();
  }
}
