// GitHub calls per runner-hour: 100 hosts (one runner each) against a fake GitHub that logs every
// call, with every interval and TTL shrunk by the same factor (60: an hour lasts a minute), once
// standalone (each agent with its own credentials) and once in fleet mode (a collector with
// fleet.scopes polls and brokers tokens; agents with fleet.enabled and no credentials).
// The hosts are real daemons run through the CLI, 50 per process (bench/helpers/host-pool.ts).
// Rates are steady-state: from the intervals between a host's successive calls of one kind (so the
// start-up mint and status call, and where the run happens to stop, do not skew them); the counts
// over the whole run are reported beside them.
import process from "node:process";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { startFakeGitHub, type FakeCall } from "../test/helpers/fake-github.ts";
import { classifyRoute } from "../test/helpers/fake-github-routes.ts";
import { collectorConfig, startCollector } from "../test/helpers/collector.ts";
import { waitFor } from "../test/helpers/agent.ts";
import { HostFactory, type BenchHost } from "./helpers/agents.ts";
import { guard, sleep, spawnChild, type Child } from "./helpers/proc.ts";
import { REPO_ROOT } from "./helpers/runtimes.ts";

export interface ModeCalls {
  hosts: number;
  simulatedHours: number;
  /** Passes the hosts ran / passes their interval asks for (1.0: on time). */
  passesOnTime: number;
  /** Steady-state calls per runner-hour (from intervals between successive calls). */
  perRunnerHour: { token: number; status: number; list: number; total: number; counted?: number };
  /** Steady-state calls per scope-hour, fleet mode (the collector's calls). */
  perScopeHour: { token: number; list: number; listNotModified: number } | null;
  /** Every call of the run, start-up included, by route. */
  counts: Record<string, number>;
  /** Fleet mode: when the broker minted, simulated minutes after it started answering. */
  mintTimes?: number[];
}

export interface GitHubCallsResult {
  factor: number;
  standalone: ModeCalls;
  fleet: ModeCalls;
}

const HOUR = 3600;

/** Mean interval between successive calls of each group, in real seconds, averaged over groups. */
function meanInterval(calls: FakeCall[], groupOf: (c: FakeCall) => string): number | null {
  const groups = new Map<string, number[]>();
  for (const c of calls) {
    const g = groupOf(c);
    groups.set(g, [...(groups.get(g) ?? []), c.time]);
  }
  const intervals: number[] = [];
  for (const times of groups.values()) for (let i = 1; i < times.length; i++) intervals.push((times[i] - times[i - 1]) / 1000);
  return intervals.length ? intervals.reduce((a, b) => a + b, 0) / intervals.length : null;
}

function startPools(hosts: BenchHost[], env: Record<string, string>, perPool = 50): Child[] {
  const pools: Child[] = [];
  for (let i = 0; i < hosts.length; i += perPool) {
    const configs = hosts.slice(i, i + perPool).map((h) => h.configPath);
    pools.push(spawnChild([process.execPath, "--import", "tsx", `${REPO_ROOT}/bench/helpers/host-pool.ts`, ...configs], { env: { POOL_ENV: JSON.stringify(env) }, cwd: REPO_ROOT }));
  }
  return pools;
}

async function stopPools(pools: Child[]): Promise<number[]> {
  const passes: number[] = [];
  for (const p of pools) p.kill("SIGTERM");
  for (const p of pools) {
    const line = await p.waitForLine(/"pool stopped"/, 30_000);
    passes.push(...(JSON.parse(line) as { passes: number[] }).passes);
    await p.stop();
  }
  return passes;
}

function counts(calls: FakeCall[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of calls) {
    const route = `${classifyRoute(c.method, c.path) ?? "other"}${c.status === 304 ? " (304)" : ""}`;
    out[route] = (out[route] ?? 0) + 1;
  }
  return out;
}

export async function benchGitHubCalls(options: { hosts?: number; factor?: number; simulatedHours?: number } = {}): Promise<GitHubCallsResult> {
  const n = options.hosts ?? 100;
  const factor = options.factor ?? 60;
  const simulatedHours = options.simulatedHours ?? 1.25;
  const runSeconds = (simulatedHours * HOUR) / factor;
  // Every duration of the product, shrunk by `factor`.
  const refresh = { interval: 60 / factor, threshold: 300 / factor, retryBackoff: 30 / factor };
  const tokenTtlSeconds = HOUR / factor;
  const expectedPasses = (hosts: number) => hosts * (runSeconds / refresh.interval);

  const standalone = async (): Promise<ModeCalls> => {
    const github = guard(await startFakeGitHub({ tokenTtlSeconds }));
    const factory = guard(await new HostFactory().init());
    try {
      // One org per host, so each call names the host that made it.
      const hosts: BenchHost[] = [];
      for (let i = 0; i < n; i++) hosts.push(await factory.host(`host-${i}`, { github, runners: 1, org: `acme-${i}`, refresh, githubOptions: { statusInterval: 1800 / factor }, service: "none" }));
      const started = Date.now();
      const pools = startPools(hosts, { GITHUB_TOKEN: github.pat });
      await sleep(runSeconds * 1000);
      const passes = await stopPools(pools);
      const ran = (Date.now() - started) / 1000;
      const calls = github.calls.filter((c) => c.time <= started + runSeconds * 1000);
      const simHours = (s: number | null) => (s === null ? NaN : (s * factor) / HOUR);
      const token = 1 / simHours(meanInterval(calls.filter((c) => classifyRoute(c.method, c.path) === "token"), (c) => c.path));
      const statusCalls = calls.filter((c) => classifyRoute(c.method, c.path) === "status");
      const status = 1 / simHours(meanInterval(statusCalls, (c) => c.path));
      // A 304 to a conditional request does not count against GitHub's primary rate limit. Steady
      // state, like the rates: each host's first status call (at start, with no ETag yet) is left out.
      const seen = new Set<string>();
      const later = statusCalls.filter((c) => seen.has(c.path) || !seen.add(c.path));
      const counted = token + (later.length ? status * (later.filter((c) => c.status !== 304).length / later.length) : 0);
      return {
        hosts: n,
        simulatedHours: (ran * factor) / HOUR,
        passesOnTime: passes.reduce((a, b) => a + b, 0) / expectedPasses(n),
        perRunnerHour: { token, status, list: 0, total: token + status, counted },
        perScopeHour: null,
        counts: counts(calls),
      };
    } finally {
      await factory.close();
      await github.close();
    }
  };

  const fleet = async (): Promise<ModeCalls> => {
    const nats = guard(await startNatsServer());
    const github = guard(await startFakeGitHub({ tokenTtlSeconds }));
    const factory = guard(await new HostFactory().init());
    const collector = startCollector(collectorConfig(nats.url, { github: { apiUrl: github.url, token: github.pat }, fleetScopes: [{ org: "acme" }], pollInterval: 60 / factor, threshold: refresh.threshold }));
    guard(collector);
    try {
      const hosts: BenchHost[] = [];
      for (let i = 0; i < n; i++) {
        hosts.push(await factory.host(`host-${i}`, { github, natsUrl: nats.url, runners: 1, org: "acme", refresh, extra: `fleet: { enabled: true, pollInterval: ${60 / factor} }`, service: "none" }));
      }
      const fleetComplete = Date.now();
      await waitFor(() => collector.collector.broker?.answering === true, "the fleet broker answering", 30_000);
      // Steady state, like the rates: the window opens once the collector has listed the whole
      // fleet (its first listing after the last host was set up: a 200, the list having changed),
      // so what it counts is the hour-to-hour cost, not the one-off first read of the scope.
      await waitFor(() => github.calls.some((c) => classifyRoute(c.method, c.path) === "list" && c.time >= fleetComplete && c.status === 200), "the collector's first listing of the whole fleet", 30_000);
      const started = Date.now();
      // No GITHUB_TOKEN: every GitHub call below is the collector's.
      const pools = startPools(hosts, {});
      await sleep(runSeconds * 1000);
      const passes = await stopPools(pools);
      const ran = (Date.now() - started) / 1000;
      const calls = github.calls.filter((c) => c.time >= started && c.time <= started + runSeconds * 1000);
      const hours = (ran * factor) / HOUR;
      const tokenCalls = calls.filter((c) => classifyRoute(c.method, c.path) === "token");
      // The broker minted once before the window (when it started answering): count from it.
      const allTokens = github.calls.filter((c) => classifyRoute(c.method, c.path) === "token" && c.time <= started + runSeconds * 1000);
      const interval = meanInterval(allTokens, () => "scope");
      const mintTimes = allTokens.map((c) => ((c.time - allTokens[0].time) / 1000) * (factor / 60));
      const token = interval === null ? tokenCalls.length / hours : 1 / ((interval * factor) / HOUR);
      const lists = calls.filter((c) => classifyRoute(c.method, c.path) === "list");
      const status = calls.filter((c) => classifyRoute(c.method, c.path) === "status").length / hours;
      return {
        hosts: n,
        simulatedHours: hours,
        passesOnTime: passes.reduce((a, b) => a + b, 0) / expectedPasses(n),
        perRunnerHour: { token: token / n, status: status / n, list: lists.length / hours / n, total: (token + status + lists.length / hours) / n },
        perScopeHour: { token, list: lists.length / hours, listNotModified: lists.filter((c) => c.status === 304).length / hours },
        counts: counts(calls),
        mintTimes,
      };
    } finally {
      await collector.close();
      await factory.close();
      await github.close();
      await nats.close();
    }
  };

  return { factor, standalone: await standalone(), fleet: await fleet() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchGitHubCalls({ hosts: Number(process.argv[2] ?? 100), simulatedHours: Number(process.argv[3] ?? 1.25) }), null, 2));
}
