/**
 * The NATS publisher (SPEC 8): events to JetStream with `Nats-Msg-Id` = event id, state to KV on
 * every pass. Events go through the outbox whenever NATS is down, a publish is not acknowledged,
 * or older events still wait there, so order is kept and nothing is lost. Every call is serialised
 * on one queue. NATS trouble never throws into the agent's pass.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { Envelope, PoolsStateDocument, Publisher, StateDocument } from "../shared/types.ts";
import type { NatsConfig } from "../config/types.ts";
import type { Runtime } from "../runtime/types.ts";
import { connectNats, describeNatsError, type ConnectMode } from "./connect.ts";
import { Outbox } from "./outbox.ts";
import { ensureEventsStream, openBucket, NatsSetupError } from "./setup.ts";
import { eventSubject, natsNames, stateKey, type NatsNames } from "./subjects.ts";
import { stripUserinfo } from "../shared/url-credentials.ts";
import { encodeToken } from "../shared/scope.ts";
import { describePublishError, retryThroughElection } from "./retry.ts";

const PUBLISH_TIMEOUT_MS = 5000;
const encoder = new TextEncoder();

/** How long a `check` retries stream and bucket set-up through an election before it publishes anyway. */
const CHECK_SETUP_RETRY_MS = 2000;

export interface NatsPublisherOptions {
  runtime: Runtime;
  config: NatsConfig;
  stateDir: string;
  log: Logger;
  mode: ConnectMode;
  outboxLimit?: number;
  /** How long a publish is retried through a leader election before the outbox takes it (ms). */
  electionRetryMs?: number;
}

export class NatsPublisher implements Publisher {
  readonly names: NatsNames;
  readonly outbox: Outbox;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private kv: KV | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private outboxHasEvents = true;
  private closed = false;
  private readonly connecting: Promise<void>;
  private lastError: string | null = null;
  private readonly pendingStates = new Map<string, StateDocument | PoolsStateDocument>();
  /** Between a disconnect and the reconnect: no election retries, the outbox takes events at once. */
  private disconnected = false;
  /** Counts disconnects: a publish that spanned one is not retried (the outbox and the reconnect replay take it, as in an outage). */
  private disconnects = 0;
  private redrainTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: NatsPublisherOptions) {
    this.names = natsNames(options.config.prefix);
    this.outbox = new Outbox(options.runtime, `${options.stateDir}/outbox`, options.outboxLimit);
    this.connecting = this.connect();
  }

  get connected(): boolean {
    return this.js !== null && this.nc !== null && !this.nc.isClosed();
  }

  /** The live connection (fleet mode shares it), after the first attempt settled; null when down. */
  async connection(): Promise<NatsConnection | null> {
    if (this.options.mode === "check") await this.connecting;
    return this.connected ? this.nc : null;
  }

  /** Resolves once the first connection attempt settled (a `check` waits for it, bounded). */
  ready(): Promise<void> {
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const { log, config, runtime, mode } = this.options;
    let nc: NatsConnection;
    try {
      nc = await connectNats(runtime, config, mode);
    } catch (err) {
      this.lastError = describeNatsError(err, config);
      log.warn(`${this.lastError}: events wait in the outbox`);
      return;
    }
    if (this.closed) {
      await nc.close();
      return;
    }
    this.nc = nc;
    // A cluster that just formed (or lost a node) answers stream and bucket set-up with timeouts
    // or no responders until its leaders are elected: retried like a publish, or an R3 stream
    // would be taken for a publish-only account and never created. `check` keeps it short.
    const setUp = <T>(fn: () => Promise<T>) =>
      retryThroughElection(fn, { budgetMs: mode === "check" ? CHECK_SETUP_RETRY_MS : undefined, shouldRetry: () => !this.closed });
    try {
      await setUp(() => ensureEventsStream(nc, this.names, log, config.replicas)).catch((err) => {
        if (err instanceof NatsSetupError) throw err;
        // Publish-only permissions: the collector creates the stream; just publish.
        log.debug(`cannot check or create stream ${this.names.eventsStream}: ${errorMessage(err)}`);
      });
      this.kv = await setUp(() => openBucket(nc, this.names.stateBucket, true, { replicas: config.replicas, log })).catch((err) => {
        log.debug(`cannot create bucket ${this.names.stateBucket} (${errorMessage(err)}): opening it`);
        return openBucket(nc, this.names.stateBucket, false).catch(() => null);
      });
    } catch (err) {
      this.lastError = errorMessage(err);
      log.error(this.lastError);
      await nc.close();
      this.nc = null;
      return;
    }
    this.js = jetstream(nc);
    log.info({ servers: config.servers.map(stripUserinfo) }, "connected to NATS");
    this.watchStatus(nc);
    this.enqueue(() => this.drain());
    this.enqueue(() => this.flushStates());
  }

  private watchStatus(nc: NatsConnection): void {
    (async () => {
      for await (const s of nc.status()) {
        if (s.type === "reconnect") {
          this.disconnected = false;
          this.options.log.info("reconnected to NATS: replaying the outbox");
          // Reconnected to a node without quorum (a cluster losing two of three): what could not
          // be sent now is tried again every few seconds; no further reconnect would come.
          this.enqueue(async () => {
            await this.drain();
            if (this.outboxHasEvents && this.connected && !this.disconnected) this.scheduleRedrain();
          });
          this.enqueue(() => this.flushStates());
        } else if (s.type === "disconnect") {
          this.disconnected = true;
          this.disconnects++;
          this.options.log.warn("lost the NATS connection: events wait in the outbox");
        }
      }
    })().catch(() => {});
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  private async publishOne(event: Envelope): Promise<void> {
    await this.js!.publish(eventSubject(this.names.prefix, event), encoder.encode(JSON.stringify(event)), { msgID: event.id, timeout: PUBLISH_TIMEOUT_MS });
  }

  /** Retries through a leader election (SPEC 16), same msgID each time, while the connection is up. */
  private electionRetry<T>(fn: () => Promise<T>): Promise<T> {
    if (this.disconnected) return fn();
    const epoch = this.disconnects;
    return retryThroughElection(fn, { budgetMs: this.options.electionRetryMs, shouldRetry: () => this.connected && !this.disconnected && this.disconnects === epoch && !this.closed });
  }

  /** Events left in the outbox while still connected (no reconnect will replay them): try again soon. */
  private scheduleRedrain(): void {
    if (this.redrainTimer || this.closed) return;
    this.redrainTimer = setTimeout(() => {
      this.redrainTimer = null;
      this.enqueue(async () => {
        await this.drain();
        if (this.outboxHasEvents && this.connected && !this.disconnected) this.scheduleRedrain();
      });
    }, 5000);
  }

  /** Pipelined in order on one connection: the server stores them in the order sent. */
  private sendBatch = async (events: Envelope[]): Promise<number> => {
    if (!this.connected) return 0;
    const results = await Promise.allSettled(events.map((e) => this.publishOne(e)));
    const firstFailure = results.findIndex((r) => r.status === "rejected");
    return firstFailure === -1 ? events.length : firstFailure;
  };

  private async drain(): Promise<void> {
    if (!this.connected) return;
    const { sent, remaining } = await this.outbox.drain(this.sendBatch);
    this.outboxHasEvents = remaining > 0;
    if (sent > 0) this.options.log.info({ sent, remaining }, "outbox replayed to NATS");
  }

  publishEvent(event: Envelope): Promise<void> {
    return this.enqueue(async () => {
      // A one-shot check waits for its (short, bounded) connection attempt rather than race it:
      // an event that beat the connection would go to disk only to be replayed a moment later.
      if (this.options.mode === "check") await this.connecting;
      // Older events first: replay what the outbox holds (nothing, most often; the flag starts
      // true until a first drain has looked) before this one may go straight to NATS.
      if (this.connected && this.outboxHasEvents) await this.drain();
      if (this.connected && !this.outboxHasEvents) {
        try {
          await this.electionRetry(() => this.publishOne(event));
          return;
        } catch (err) {
          this.options.log.warn({ event: event.type }, `NATS did not acknowledge ${event.type} (${describePublishError(err)}): kept in the outbox`);
        }
      }
      await this.outbox.append([event]);
      this.outboxHasEvents = true;
      if (this.connected) await this.drain();
      if (this.outboxHasEvents && this.connected && !this.disconnected) this.scheduleRedrain();
    });
  }

  putState(doc: StateDocument): Promise<void> {
    // The state is a heartbeat: only the latest per runner matters, so it waits in memory (not
    // the outbox) until NATS is there, and is put again with the next pass anyway.
    this.pendingStates.set(stateKey(doc.host, doc.name), doc);
    return this.enqueue(() => this.flushStates());
  }

  /** The host's pools under `<host>.=` (the host-level token of SPEC 8), latest only like state. */
  putPools(doc: PoolsStateDocument): Promise<void> {
    this.pendingStates.set(`${encodeToken(doc.host)}.=`, doc);
    return this.enqueue(() => this.flushStates());
  }

  /**
   * Every pending state put at once (the puts in flight together: one round trip for all runners,
   * not one per runner), each acknowledged and retried through an election (SPEC 16): a state
   * left unstored stays pending for the next flush instead of being lost silently.
   */
  private async flushStates(): Promise<void> {
    if (!this.kv || !this.connected || this.pendingStates.size === 0) return;
    const batch = [...this.pendingStates];
    const results = await Promise.allSettled(batch.map(([key, doc]) => this.electionRetry(() => this.kv!.put(key, JSON.stringify(doc)))));
    results.forEach((r, i) => {
      const [key, doc] = batch[i];
      if (r.status === "fulfilled") {
        if (this.pendingStates.get(key) === doc) this.pendingStates.delete(key);
      } else this.options.log.debug(`state put failed: ${describePublishError(r.reason)}`);
    });
  }

  async pending(): Promise<number> {
    return this.outbox.pending();
  }

  /** Last connection problem, for /healthz and status. */
  get error(): string | null {
    return this.connected ? null : this.lastError;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // A one-shot check waits for its (short, bounded) connection attempt so its events leave now;
    // the daemon never waits: with waitOnFirstConnect that attempt lasts until NATS answers.
    if (this.options.mode === "check") await this.connecting;
    await this.enqueue(async () => {
      if (this.connected && this.outboxHasEvents) await this.drain();
    });
    this.closed = true;
    if (this.redrainTimer) clearTimeout(this.redrainTimer);
    this.redrainTimer = null;
    const nc = this.nc;
    this.nc = null;
    this.js = null;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}
