/**
 * `runner-token-refresh demo`: the whole product on one machine, with no GitHub and no config. A
 * simulated GitHub whose tokens live two minutes, a sandbox runner, a local nats-server when one
 * is installed, an agent, a collector with its dashboard, and an alert sink that prints what a
 * human would be paged with. Within two minutes a newcomer sees a registration, token refreshes, a
 * GitHub outage turning into a failure streak and an alert, its resolve, and a registration
 * deleted at GitHub being repaired. Ctrl-C stops everything it started.
 */
import { join } from "node:path";
import { Hono } from "hono";
import type { HttpServer, Runtime } from "../runtime/types.ts";
import { createLogger } from "../shared/logger.ts";
import { sleep } from "../shared/backoff.ts";
import type { Envelope, Publisher, StateDocument } from "../shared/types.ts";
import { loadConfig } from "../config/load.ts";
import { buildAgentContext } from "../agent/build.ts";
import { FanoutPublisher } from "../agent/events.ts";
import { runDaemon } from "../agent/daemon.ts";
import { NatsPublisher } from "../nats/publisher.ts";
import { loadPlugins, type PluginRegistry } from "../alerts/load.ts";
import { AlertHost } from "../alerts/host.ts";
import { FileAlertStore, KvAlertStore } from "../alerts/stores.ts";
import { openBucket } from "../nats/setup.ts";
import { Collector } from "../collector/collector.ts";
import { createCollectorApp } from "../http/collector-app.ts";
import { VERSION } from "../shared/version.ts";
import { createSimGitHub } from "./sim-github.ts";
import { eventSentence } from "../shared/event-text.ts";
import { createPoolTemplate, createSandboxRunner } from "./sandbox.ts";
import { demoPoolUser } from "./pool.ts";
import { startNats, type DemoNats } from "./nats.ts";

/** When things happen, in seconds from the start (tests run a faster timeline). */
export interface DemoTimeline {
  tokenTtl: number;
  threshold: number;
  interval: number;
  outageFrom: number;
  outageTo: number;
  deleteRunnerAt: number;
  statusInterval: number;
  /** Stop by itself after this long (0: run until Ctrl-C). */
  stopAfter: number;
}

export const DEFAULT_TIMELINE: DemoTimeline = { tokenTtl: 120, threshold: 100, interval: 5, outageFrom: 35, outageTo: 60, deleteRunnerAt: 75, statusInterval: 15, stopAfter: 0 };

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

/** The dashboard's sentences (src/shared/event-text.ts), so the terminal and the pages read alike. */
function describe(e: Envelope): string {
  return eventSentence(e) ?? `${e.runner ?? ""} ${JSON.stringify(e.data).slice(0, 100)}`;
}

/** Prints one line per event: the live log a newcomer watches. */
class ConsolePublisher implements Publisher {
  constructor(private readonly print: (line: string) => void) {}
  async publishEvent(e: Envelope): Promise<void> {
    this.print(`${clock()}  ${e.type.padEnd(26)} ${describe(e)}`);
  }
  async putState(_doc: StateDocument): Promise<void> {}
  async close(): Promise<void> {}
}

async function serveOn(runtime: Runtime, app: Hono, port = 0): Promise<HttpServer> {
  try {
    return await runtime.serve(app.fetch, { hostname: "127.0.0.1", port });
  } catch (err) {
    if (port === 0) throw err;
    return runtime.serve(app.fetch, { hostname: "127.0.0.1", port: 0 });
  }
}

export async function runDemo(runtime: Runtime, signal: AbortSignal, options: { timeline?: DemoTimeline; print?: (line: string) => void; dashboardPort?: number; plugins: PluginRegistry }): Promise<number> {
  const t = options.timeline ?? DEFAULT_TIMELINE;
  const print = options.print ?? ((line: string) => runtime.writeStdout(`${line}\n`));
  const started = Date.now();
  const elapsed = () => (Date.now() - started) / 1000;
  const tmpRoot = runtime.env.TMPDIR || "/tmp";
  const dir = join(tmpRoot, `rtr-demo-${crypto.randomUUID().slice(0, 8)}`);
  await runtime.files.mkdir(dir, 0o700);
  const cleanups: (() => Promise<unknown>)[] = [() => runtime.files.remove(dir)];
  const stop = new AbortController();
  signal.addEventListener("abort", () => stop.abort(), { once: true });
  try {
    const sim = createSimGitHub({ tokenTtl: t.tokenTtl, failing: () => elapsed() >= t.outageFrom && elapsed() < t.outageTo });
    const github = await serveOn(runtime, sim.app);
    cleanups.unshift(() => github.close());
    const githubUrl = `http://127.0.0.1:${github.port}`;

    const sink = new Hono();
    sink.post("/", async (c) => {
      const n = (await c.req.json()) as { status: string; rule: string; host: string; runner: string | null; summary: string; recovered?: string };
      // A resolve says what recovered and after how long (the alert host's words).
      const what = n.status === "resolved" && n.recovered ? `${n.recovered} (was: ${n.summary.slice(0, 80)})` : n.summary.slice(0, 110);
      print(`${clock()}  ALERT ${n.status.toUpperCase().padEnd(20)} ${n.rule} on ${n.host}${n.runner ? `/${n.runner}` : ""}: ${what}`);
      return c.body(null, 204);
    });
    const sinkServer = await serveOn(runtime, sink);
    cleanups.unshift(() => sinkServer.close());
    const sinkUrl = `http://127.0.0.1:${sinkServer.port}/`;

    const runnerDir = join(dir, "runner");
    await createSandboxRunner(runtime, runnerDir, githubUrl);
    let nats: DemoNats | null = null;
    try {
      nats = await startNats(runtime, join(dir, "nats"));
      cleanups.unshift(() => nats!.stop());
    } catch (err) {
      print(`nats-server not available (${(err as Error).message}): the agent runs alone, without the collector and dashboard (apt-get install nats-server for the full demo)`);
    }

    const alertsYaml = `alerts: { afterConsecutiveFailures: 3, repeatInterval: 1h, plugins: [[webhook, { url: "${sinkUrl}" }]] }`;
    const natsYaml = nats ? `nats: { servers: ["${nats.url}"], name: demo-host }` : "";
    const demoUser = (await runtime.userName(runtime.uid())) ?? String(runtime.uid());
    const pool = await demoPoolUser(runtime);
    let poolYaml = "";
    if ("user" in pool) {
      // The pool's jobs run as another user, who must reach its slot (not the state dir).
      await runtime.files.chmod(dir, 0o755);
      await createPoolTemplate(runtime, join(dir, "pool-template"));
      poolYaml = `pools:\n  - { name: demo, scope: { org: demo-org }, size: 2, labels: [demo-pool], template: "${join(dir, "pool-template")}", runAs: ${pool.user} }`;
    }
    const agentFile = join(dir, "agent.yaml");
    await runtime.files.writeAtomic(
      agentFile,
      [
        `github: { apiUrl: "${githubUrl}", statusInterval: ${t.statusInterval} }`,
        `refresh: { threshold: ${t.threshold}, interval: ${t.interval}, maxRetries: 1, retryBackoff: 1, onlineTimeout: 10, lockTimeout: 5 }`,
        `state: { dir: "${join(dir, "state")}" }`,
        `log: { level: info, file: "${join(dir, "agent.log")}" }`,
        natsYaml,
        // With a collector, it pages centrally; alone, the agent pages itself.
        nats ? "" : alertsYaml,
        `runners:`,
        // The simulated runner runs as whoever runs the demo, so runAs says so explicitly; a real
        // host gives its runners a user of their own (SPEC 15, docs/security.md).
        `  - { dir: "${runnerDir}", scope: { org: demo-org }, name: demo-runner-1, service: svc.sh, labels: [demo], runAs: "${demoUser}" }`,
        poolYaml,
      ].join("\n"),
    );
    const demoEnv: Record<string, string | undefined> = { ...runtime.env, GITHUB_TOKEN: "demo-token-for-the-simulated-github" };
    for (const k of ["RUNNER_ORG", "RUNNER_REPO", "RUNNER_ENTERPRISE", "RUNNER_NAME", "RUNNER_DIR", "RUNNER_URL", "STATE_DIR", "METRICS_FILE", "LOG_FILE", "NATS_URL", "GITHUB_API_URL", "GITHUB_APP_ID"]) delete demoEnv[k];
    const demoRuntime: Runtime = { ...runtime, env: demoEnv, cwd: dir };
    const agentConfig = await loadConfig(demoRuntime, { config: agentFile }, { needRunners: true, needCredentials: true });
    const fileLog = createLogger({ level: "info", write: () => {}, file: join(dir, "agent.log") });

    print(`runner-token-refresh ${VERSION} demo: simulated GitHub ${githubUrl} (tokens live ${t.tokenTtl}s), sandbox runner ${runnerDir}`);
    print(`  what happens: register the runner, refresh tokens ${t.threshold}s before expiry; GitHub fails token calls from ${t.outageFrom}s to ${t.outageTo}s`);
    print(`  (an alert after 3 failures in a row, resolved when it recovers); at ${t.deleteRunnerAt}s the runner's registration is deleted at GitHub and repaired.`);
    print("user" in pool ? `  and a pool of two ephemeral JIT runners (as ${pool.user}): each takes one simulated job, every ~20 s, and is replaced at once.` : `  (no pool of ephemeral runners: ${pool.skip})`);
    print(`  logs: ${join(dir, "agent.log")}   Ctrl-C stops everything.`);

    let collector: Collector | null = null;
    if (nats) {
      const collectorFile = join(dir, "collector.yaml");
      await runtime.files.writeAtomic(collectorFile, [`nats: { servers: ["${nats.url}"], name: demo-collector }`, `collector: { staleAfter: ${3 * t.interval + 10} }`, alertsYaml].join("\n"));
      const collectorConfig = await loadConfig(demoRuntime, { config: collectorFile }, { needRunners: false, needCredentials: false });
      const plugins = await loadPlugins(demoRuntime, collectorConfig, options.plugins);
      const c = new Collector({
        runtime: demoRuntime,
        config: collectorConfig,
        log: fileLog,
        leaseTtlMs: 6000,
        alerts: async (nc, names) => AlertHost.create(plugins, new KvAlertStore(await openBucket(nc, names.alertsBucket, true)), collectorConfig, fileLog, { policy: { backoffSeconds: 0.5 } }),
      });
      collector = c;
      const dashboard = await serveOn(runtime, createCollectorApp(c, { version: VERSION }), options.dashboardPort ?? 9470);
      cleanups.unshift(async () => {
        await dashboard.close();
        await c.close();
      });
      c.start();
      print(`  dashboard: http://127.0.0.1:${dashboard.port}/   API: http://127.0.0.1:${dashboard.port}/api/v1/runners`);
    }
    print("");

    const agentPlugins = nats ? [] : await loadPlugins(demoRuntime, agentConfig, options.plugins);
    const alerts = agentPlugins.length ? await AlertHost.create(agentPlugins, new FileAlertStore(runtime, agentConfig.state.dir), agentConfig, fileLog, { policy: { backoffSeconds: 0.5 } }) : null;
    const publishers: Publisher[] = [new ConsolePublisher(print)];
    if (agentConfig.nats) publishers.push(new NatsPublisher({ runtime: demoRuntime, config: agentConfig.nats, stateDir: agentConfig.state.dir, log: fileLog, mode: "daemon" }));
    const ctx = buildAgentContext(demoRuntime, agentConfig, fileLog, "daemon", { publisher: new FanoutPublisher(publishers), alerts });
    const daemon = runDaemon(ctx, stop.signal);

    let deleted = false;
    let nextJobAt = 10;
    const announce = { outage: false, recovered: false };
    while (!stop.signal.aborted) {
      if (!announce.outage && elapsed() >= t.outageFrom) {
        announce.outage = true;
        print(`${clock()}  --- simulated GitHub outage: token calls answer 500 until ${t.outageTo}s`);
      }
      if (!announce.recovered && elapsed() >= t.outageTo) {
        announce.recovered = true;
        print(`${clock()}  --- simulated GitHub recovered`);
      }
      if (!deleted && elapsed() >= t.deleteRunnerAt) {
        deleted = true;
        for (const id of sim.runners.keys()) sim.runners.delete(id);
        print(`${clock()}  --- the runner's registration was deleted at GitHub (as after 14 days offline); watch the agent repair it`);
      }
      // A simulated job for the pool every ~10 s: each of its two runners ends one every ~20 s.
      if ("user" in pool && elapsed() >= nextJobAt) {
        nextJobAt = elapsed() + 10;
        sim.dispatchJob(6);
      }
      if (t.stopAfter && elapsed() >= t.stopAfter) stop.abort();
      await sleep(250, stop.signal).catch(() => {});
    }
    await daemon;
    await alerts?.idle();
    await alerts?.close();
    void collector;
    print(`${clock()}  demo stopped: everything it started is stopped and ${dir} removed`);
    return 0;
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  }
}
