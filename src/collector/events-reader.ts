/**
 * `GET /api/v1/events` reads the stream itself (SPEC 9), so every collector answers the same:
 * an ordered consumer over the last SCAN messages that match the filter, keeping the newest ones.
 *
 * A consumer is server state, so requests must not map one-to-one onto consumers: reads run one
 * at a time (at most one reading consumer per collector, deleted when done), a read's answer is
 * kept for CACHE_TTL_MS per filter, and identical requests in flight share one read. The HTTP
 * layer rate-limits the endpoint on top.
 */
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Envelope } from "../shared/types.ts";
import { eventFilter, type NatsNames } from "../nats/subjects.ts";
import { eventMatchesSubject, parseEnvelope } from "./validate.ts";
import type { EventQuery } from "./types.ts";

const SCAN = 5000;
const FETCH_EXPIRES_MS = 1000;
/** The server deletes a reading consumer left idle this long (a collector that died mid-read). */
const INACTIVE_MS = 30_000;
/** Each read keeps this many (the HTTP maximum), so any smaller `limit` is served from it. */
export const READ_LIMIT = 1000;
export const CACHE_TTL_MS = 2000;
/** Distinct filters remembered; the oldest is forgotten first. */
const CACHE_ENTRIES = 64;

/**
 * One bounded pass over the stream's tail with one ephemeral consumer, deleted afterwards (and
 * dropped by the server after INACTIVE_MS should this process die mid-read).
 */
export async function readEvents(nc: NatsConnection, names: NatsNames, query: EventQuery): Promise<Envelope[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(names.eventsStream);
  if (info.state.messages === 0) return [];
  const start = Math.max(info.state.first_seq, info.state.last_seq - SCAN + 1);
  const created = await jsm.consumers.add(names.eventsStream, {
    // A single subject (not an array): filter_subjects needs nats-server 2.10, Debian 12 ships 2.9.
    filter_subject: eventFilter(names.prefix, query),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: start,
    ack_policy: AckPolicy.None,
    mem_storage: true,
    inactive_threshold: nanos(INACTIVE_MS),
    description: "runner-token-refresh collector: one /api/v1/events read",
  });
  const out: Envelope[] = [];
  try {
    // Nothing matches this filter: answer now rather than after the fetch expires (reads queue).
    if (created.num_pending === 0) return out;
    const consumer = await jetstream(nc).consumers.get(names.eventsStream, created.name);
    const messages = await consumer.fetch({ max_messages: Math.min(SCAN, created.num_pending), expires: FETCH_EXPIRES_MS });
    for await (const msg of messages) {
      const event = parseEnvelope(msg.data);
      // An event that claims a host other than its subject's is not that host's (validate.ts).
      if (event && eventMatchesSubject(event, msg.subject)) {
        out.push(event);
        if (out.length > query.limit) out.shift();
      }
      // Nothing more to read up to now: answer instead of waiting for the fetch to expire.
      if (msg.info.pending === 0 || msg.seq >= info.state.last_seq) break;
    }
  } finally {
    await jsm.consumers.delete(names.eventsStream, created.name).catch(() => {});
  }
  return out;
}

interface Cached {
  at: number;
  events: Promise<Envelope[]>;
}

export class EventsReader {
  private readonly cache = new Map<string, Cached>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Stream reads started (for tests and logs: requests beyond this were answered from cache). */
  reads = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: NatsNames,
    private readonly options: { ttlMs?: number; now?: () => number } = {},
  ) {}

  async read(query: EventQuery): Promise<Envelope[]> {
    if (query.limit > READ_LIMIT) return this.serialised({ ...query });
    const now = (this.options.now ?? Date.now)();
    const key = `${query.type ?? ""}\u0000${query.host ?? ""}`;
    let hit = this.cache.get(key);
    if (!hit || now - hit.at > (this.options.ttlMs ?? CACHE_TTL_MS)) {
      const events = this.serialised({ ...query, limit: READ_LIMIT });
      hit = { at: now, events };
      this.cache.delete(key);
      this.cache.set(key, hit);
      if (this.cache.size > CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
      // A failed read is not remembered: the next request tries again.
      events.catch(() => {
        if (this.cache.get(key) === hit) this.cache.delete(key);
      });
    }
    return (await hit.events).slice(-query.limit);
  }

  /** One read at a time, so a burst of distinct filters never holds more than one consumer. */
  private serialised(query: EventQuery): Promise<Envelope[]> {
    const run = this.queue.then(() => {
      this.reads++;
      return readEvents(this.nc, this.names, query);
    });
    this.queue = run.catch(() => {});
    return run;
  }
}
