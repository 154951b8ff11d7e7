/**
 * The central collector (SPEC 9): connects to NATS (forever, with backoff), creates the stream,
 * the state bucket and the shared durable consumer when missing, then runs the event consumer and
 * the state watch, restarting either after an error. Rules are evaluated every few seconds;
 * alert transitions are logged here (delivery is the alert engine's job).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { sleep } from "../shared/backoff.ts";
import { errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { Envelope } from "../shared/types.ts";
import type { AgentConfig } from "../config/types.ts";
import type { Runtime } from "../runtime/types.ts";
import { connectNats, describeNatsError } from "../nats/connect.ts";
import { ensureEventsStream, openBucket } from "../nats/setup.ts";
import { natsNames, type NatsNames } from "../nats/subjects.ts";
import { FleetState } from "./fleet.ts";
import { consumeEvents, ensureDurableConsumer, watchState } from "./ingest.ts";
import { EventsReader } from "./events-reader.ts";
import type { CollectorAlert, CollectorView, EventQuery, FleetRunner, HostPools } from "./types.ts";
import { History } from "./history.ts";
import { feedHistory } from "./history-feed.ts";
import { Lease, leaseTtlFor } from "./lease.ts";
import { GitHubClient } from "../github/client.ts";
import { AgentTelemetry, type GitHubAppTelemetry } from "../agent/telemetry.ts";
import { VERSION } from "../shared/version.ts";
import { FleetPoller } from "../fleet/poller.ts";
import { JitBroker } from "../fleet/jit-broker.ts";
import { TokenBroker, brokerTransportProblem } from "../fleet/broker.ts";
import type { AlertHost } from "../alerts/host.ts";

const EVALUATE_EVERY_MS = 2000;
const STATE_EVALUATE_DELAY_MS = 25;

export interface CollectorOptions {
  runtime: Runtime;
  config: AgentConfig;
  log: Logger;
  now?: () => number;
  /** Builds the alert host once NATS is up (its state lives in KV bucket RTR_ALERTS). */
  alerts?: (nc: NatsConnection, names: NatsNames) => Promise<AlertHost>;
  /** How long a leader's lease lives without renewal (failover time). */
  leaseTtlMs?: number;
}

export class Collector implements CollectorView {
  readonly names: NatsNames;
  readonly fleet: FleetState;
  private nc: NatsConnection | null = null;
  private ready = false;
  private problem: string | null = "connecting to NATS";
  /** The fleet poller's GitHub observer (per-App metrics), once fleet mode started. */
  private githubTelemetry: AgentTelemetry | null = null;
  private readonly stop = new AbortController();
  private current: CollectorAlert[] = [];
  private readonly tasks: Promise<unknown>[] = [];
  private readonly now: () => number;
  private lease: Lease | null = null;
  private evaluateTimer: ReturnType<typeof setTimeout> | null = null;
  private evaluating: Promise<unknown> = Promise.resolve();
  private alertHost: AlertHost | null = null;
  /** Reads /api/v1/events from the stream: one read at a time, answers cached briefly. */
  private reader: EventsReader | null = null;
  /** Fleet mode's token broker (answering only while leader). */
  broker: TokenBroker | null = null;
  /** True while this process holds the RTR_LEADER lease: only the leader sends alerts. */
  leader = false;
  /** Charts, registration history and alert transitions for the pages (bounded, in memory). */
  private readonly hist: History;
  private changeCount = 0;

  constructor(private readonly options: CollectorOptions) {
    const nats = options.config.nats;
    if (!nats) throw new Error("the collector needs nats");
    this.names = natsNames(nats.prefix);
    this.now = options.now ?? Date.now;
    this.fleet = new FleetState({ staleAfter: options.config.collector.staleAfter, afterConsecutiveFailures: options.config.alerts.afterConsecutiveFailures });
    this.hist = new History(this.now);
  }

  private changed(): void {
    this.changeCount++;
  }

  start(): void {
    this.tasks.push(this.run(), this.evaluateLoop());
  }

  private async run(): Promise<void> {
    const { runtime, config, log } = this.options;
    let nc: NatsConnection;
    try {
      nc = await connectNats(runtime, config.nats!, "collector");
    } catch (err) {
      this.problem = describeNatsError(err, config.nats!);
      log.error(this.problem);
      return;
    }
    if (this.stop.signal.aborted) return void (await nc.close());
    this.nc = nc;
    this.reader = new EventsReader(nc, this.names);
    (async () => {
      for await (const s of nc.status()) {
        this.changed();
        if (s.type === "disconnect") {
          this.problem = "NATS connection lost: reconnecting";
          log.warn(this.problem);
        } else if (s.type === "reconnect") {
          this.problem = this.ready ? null : this.problem;
          log.info("reconnected to NATS");
        }
      }
    })().catch(() => {});
    for (let attempt = 1; !this.stop.signal.aborted; attempt++) {
      try {
        await ensureEventsStream(nc, this.names, log, config.nats!.replicas);
        const kv = await openBucket(nc, this.names.stateBucket, true, { replicas: config.nats!.replicas, log });
        await ensureDurableConsumer(nc, this.names);
        if (!this.lease) {
          // Failover within two poll intervals in fleet mode (SPEC 9); 15 s otherwise; on a
          // cluster never shorter than an election can last (SPEC 16).
          const chosen = leaseTtlFor(config);
          if (chosen.floored && this.options.leaseTtlMs === undefined) log.info({ lease_ttl_ms: chosen.ttlMs }, chosen.floored);
          const ttl = this.options.leaseTtlMs ?? chosen.ttlMs;
          this.lease = new Lease(nc, this.names.leaderBucket, `${config.host}/${crypto.randomUUID().slice(0, 8)}`, ttl, config.nats!.replicas, log);
          this.tasks.push(this.leaseLoop(this.lease));
        }
        if (this.options.alerts && !this.alertHost) this.alertHost = await this.options.alerts(nc, this.names);
        if (config.fleet.scopes?.length || config.fleet.pools?.length) this.tasks.push(this.fleetLoop(nc));
        this.ready = true;
        this.problem = null;
        log.info({ stream: this.names.eventsStream, consumer: this.names.durable }, "collector consuming events and watching state");
        await Promise.all([
          this.loop("event consumer", () => consumeEvents(nc, this.names, this.fleet, log, this.stop.signal, () => this.changed())),
          this.loop("state watch", () => watchState(kv, this.fleet, log, this.stop.signal, () => (this.changed(), this.scheduleEvaluate()))),
          this.loop("history feed", () => feedHistory(nc, this.names, this.hist, this.stop.signal, () => this.changed(), log)),
        ]);
        return;
      } catch (err) {
        this.problem = `NATS setup failed: ${errorMessage(err)}`;
        log.error({ attempt }, this.problem);
        await sleep(Math.min(30_000, 500 * 2 ** attempt), this.stop.signal).catch(() => {});
      }
    }
  }

  /** Keeps one feed running; an iterator that ends or throws is restarted after a pause. */
  private async loop(name: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 1; !this.stop.signal.aborted; attempt++) {
      try {
        await fn();
        attempt = 0;
      } catch (err) {
        if (this.stop.signal.aborted) return;
        this.options.log.warn({ attempt }, `${name} stopped (${errorMessage(err)}): restarting`);
      }
      await sleep(Math.min(10_000, 250 * 2 ** Math.max(0, attempt)), this.stop.signal).catch(() => {});
    }
  }

  /** Fleet mode: while leader, poll GitHub every pollInterval and broker registration tokens. */
  private async fleetLoop(nc: NatsConnection): Promise<void> {
    const { config, log } = this.options;
    if (!config.github.auth) {
      this.problem = "fleet.scopes is set but the collector has no GitHub credentials: set GITHUB_TOKEN or github.auth";
      log.error(this.problem);
      return;
    }
    const transport = brokerTransportProblem(config.nats!, config.fleet.allowInsecure);
    const github = new GitHubClient({
      apiUrl: config.github.apiUrl,
      auth: config.github.auth,
      requestTimeout: config.github.requestTimeout,
      retry: { maxRetries: config.refresh.maxRetries, retryBackoff: config.refresh.retryBackoff, maxRetryWait: config.refresh.maxRetryWait },
      observer: (this.githubTelemetry = new AgentTelemetry(log)),
      userAgent: `runner-token-refresh-collector/${VERSION}`,
      now: this.now,
    });
    const scopes = config.fleet.scopes ?? [];
    const poller = new FleetPoller({ github, kv: await openBucket(nc, this.names.githubBucket, true, { replicas: config.nats!.replicas, log }), scopes, log, now: this.now });
    const broker = transport ? null : (this.broker = new TokenBroker({ nc, prefix: this.names.prefix, github, scopes, threshold: config.refresh.threshold, log, now: this.now, collector: { host: config.host, runtime: this.options.runtime.name } }));
    const jitBroker = transport || !config.fleet.pools?.length ? null : new JitBroker({ nc, prefix: this.names.prefix, github, pools: config.fleet.pools, log, now: this.now, collector: { host: config.host, runtime: this.options.runtime.name } });
    if (transport) log.error(transport);
    let lastPoll = 0;
    let wasLeader = false;
    while (!this.stop.signal.aborted) {
      if (this.leader && !wasLeader) poller.reset();
      wasLeader = this.leader;
      // Checked often, so a new leader answers token requests at once; polled every pollInterval.
      if (this.leader) {
        broker?.start();
        jitBroker?.start();
        if (this.now() - lastPoll >= config.fleet.pollInterval * 1000) {
          lastPoll = this.now();
          await poller.pollOnce(this.stop.signal);
          await broker?.renew(this.stop.signal);
        }
      } else {
        broker?.stop();
        jitBroker?.stop();
      }
      await sleep(Math.min(250, config.fleet.pollInterval * 1000), this.stop.signal).catch(() => {});
    }
    broker?.stop();
    jitBroker?.stop();
  }

  /**
   * Takes or renews the lease three times per TTL (the bucket's, once opened), so a dead leader
   * is replaced within one TTL.
   */
  private async leaseLoop(lease: Lease): Promise<void> {
    while (!this.stop.signal.aborted) {
      const was = this.leader;
      const leads = await lease.tick().catch(() => false);
      // A new leader starts from the alert state in KV, not from what it loaded at start.
      if (leads && !was) await this.alertHost?.engine.start().catch((err) => this.options.log.error(`cannot load alert state: ${errorMessage(err)}`));
      this.leader = leads;
      if (this.leader !== was) this.options.log.info({ lease: lease.id }, this.leader ? "this collector is now the leader (evaluates rules, sends alerts, polls GitHub)" : "another collector is the leader");
      await sleep(lease.ttl / 3, this.stop.signal).catch(() => {});
    }
  }

  private async evaluateLoop(): Promise<void> {
    while (!this.stop.signal.aborted) {
      await this.evaluate();
      await sleep(EVALUATE_EVERY_MS, this.stop.signal).catch(() => {});
    }
  }

  /**
   * A state change is evaluated within STATE_EVALUATE_DELAY_MS (batched), so an agent's third
   * failure pages in well under a second instead of waiting for the next periodic evaluation.
   * Such an evaluation looks only at the runners that changed; the periodic one at every runner
   * (silence and expiry come with time alone).
   */
  private scheduleEvaluate(): void {
    if (this.evaluateTimer || this.stop.signal.aborted) return;
    this.evaluateTimer = setTimeout(() => {
      this.evaluateTimer = null;
      void this.evaluate(false);
    }, STATE_EVALUATE_DELAY_MS);
  }

  /**
   * Runs the rules once, over every runner unless `everyRunner` is false (serialised: the alert
   * engine must never see two evaluations at once).
   */
  evaluate(everyRunner = true): Promise<CollectorAlert[]> {
    const run = this.evaluating.then(() => this.evaluateNow(everyRunner));
    this.evaluating = run.catch(() => {});
    return run;
  }

  private async evaluateNow(everyRunner: boolean): Promise<CollectorAlert[]> {
    const next = everyRunner ? this.fleet.alerts(this.now()) : this.fleet.changedAlerts(this.now());
    // The same list as last time: nothing fired or resolved. The alert engine still hears the
    // periodic evaluation (its reminders and owed resolves go by time).
    const same = next === this.current;
    if (!same) this.transitions(next);
    this.current = next;
    this.hist.sample("alerts_firing", next.length);
    this.samplePools();
    if (this.alertHost && this.leader && (!same || everyRunner)) {
      try {
        await this.alertHost.evaluate(next.map((a) => ({ key: a.key, rule: a.rule, host: a.host, runner: a.runner, scope: a.scope, severity: a.severity, summary: a.summary, details: a.details, state: "firing" as const })));
      } catch (err) {
        this.options.log.error(`alert engine failed: ${errorMessage(err)}`);
      }
    }
    return next;
  }

  /** Logs and records what fired and resolved between the current list and `next`. */
  private transitions(next: CollectorAlert[]): void {
    const before = new Set(this.current.map((a) => a.key));
    const after = new Set(next.map((a) => a.key));
    const at = new Date(this.now()).toISOString();
    for (const a of next) {
      if (before.has(a.key)) continue;
      this.options.log.warn({ alert: a.key, severity: a.severity }, `alert: ${a.summary}`);
      this.hist.alertChanged({ key: a.key, rule: a.rule, host: a.host, runner: a.runner, state: "firing", at, summary: a.summary });
    }
    for (const a of this.current) {
      if (after.has(a.key)) continue;
      this.options.log.info({ alert: a.key }, `alert resolved: ${a.key}`);
      const firedSeconds = Math.max(0, Math.round((this.now() - Date.parse(a.startsAt)) / 1000));
      this.hist.alertChanged({ key: a.key, rule: a.rule, host: a.host, runner: a.runner, state: "resolved", at, summary: a.summary, firedSeconds });
    }
    if (next.length !== this.current.length || next.some((a) => !before.has(a.key))) this.changed();
  }

  /** Pool runners idle and busy across the fleet, kept as the chart's per-bucket maximum. */
  private samplePools(): void {
    let idle = 0;
    let busy = 0;
    for (const p of this.fleet.pools()) for (const pool of p.doc.pools) (idle += pool.runners.idle), (busy += pool.runners.busy);
    this.hist.sample("pool_idle", idle);
    this.hist.sample("pool_busy", busy);
  }

  runners(): FleetRunner[] {
    return this.fleet.runners(this.now());
  }
  pools(): HostPools[] {
    return this.fleet.pools();
  }
  history(): History {
    return this.hist;
  }
  changes(): number {
    return this.changeCount;
  }
  runner(host: string, runner: string): FleetRunner | undefined {
    return this.fleet.runner(host, runner, this.now());
  }
  async events(query: EventQuery): Promise<Envelope[]> {
    if (!this.nc || !this.ready || !this.reader) {
      return this.fleet.recentEvents(Number.MAX_SAFE_INTEGER).filter((e) => (!query.type || e.type === query.type) && (!query.host || e.host === query.host)).slice(-query.limit);
    }
    return this.reader.read(query);
  }
  recentEvents(limit: number): Envelope[] {
    return this.fleet.recentEvents(limit);
  }
  alerts(): CollectorAlert[] {
    return this.current;
  }
  eventCounts(): ReadonlyMap<string, number> {
    return this.fleet.eventCounts();
  }
  documentsDropped(): ReadonlyMap<string, number> {
    return this.fleet.documentsDropped();
  }
  githubApps(): GitHubAppTelemetry | null {
    return this.githubTelemetry?.apps ?? null;
  }
  brokerRefusals(): ReadonlyMap<string, number> {
    return this.broker?.refusalCounts ?? new Map();
  }
  alertDeliveries(): { plugin: string; outcome: string; count: number }[] {
    return this.alertHost?.deliveries() ?? [];
  }

  health(): { ok: boolean; reason: string | null } {
    const connected = this.nc !== null && !this.nc.isClosed() && this.problem === null;
    if (!connected) return { ok: false, reason: this.problem ?? "NATS unreachable" };
    // Pages that cannot arrive are an outage of their own.
    const broken = this.alertHost?.misconfigured() ?? [];
    if (broken.length) return { ok: false, reason: broken.map((b) => `alert plugin ${b.plugin} misconfigured: ${b.error}`).join("; ") };
    return { ok: true, reason: null };
  }

  async close(): Promise<void> {
    this.stop.abort();
    if (this.evaluateTimer) clearTimeout(this.evaluateTimer);
    // Every step bounded: a stop must end even when NATS or a consumer never answers.
    const within = (p: Promise<unknown> | undefined, ms: number) => Promise.race([Promise.resolve(p).catch(() => {}), sleep(ms)]);
    await within(this.alertHost?.idle(), 10_000);
    await within(this.alertHost?.close(), 5000);
    await within(this.lease?.release(), 5000);
    const nc = this.nc;
    this.nc = null;
    // drain() flushes pending acks before closing, so a graceful stop loses none; then close.
    if (nc && !nc.isClosed()) {
      await within(nc.drain(), 5000);
      if (!nc.isClosed()) await within(nc.close(), 2000);
    }
    // A first connection still being attempted (NATS down since start) never settles: don't wait.
    await Promise.race([Promise.allSettled(this.tasks), sleep(2000)]);
  }
}
