// Collector ingest: events/s the collector handles end to end (consume from the durable consumer,
// decode, update the fleet view, ack), against a bare durable pull consumer with explicit acks that
// only parses JSON, on the same stream, same server, same run. Rounds alternate (bare, collector,
// bare, collector…) and each figure is the best round, so a slow first read of the stream's files
// is not charged to one side.
import { connect, nanos } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createLogger } from "../src/shared/logger.ts";
import { Collector } from "../src/collector/collector.ts";
import { ensureEventsStream } from "../src/nats/setup.ts";
import { eventSubject, natsNames } from "../src/nats/subjects.ts";
import type { Envelope } from "../src/shared/types.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { collectorConfig } from "../test/helpers/collector.ts";
import { makeEnvelopes } from "./helpers/events.ts";
import { guard } from "./helpers/proc.ts";

export interface IngestResult {
  events: number;
  bytesPerEvent: number;
  /** Best round, events/s. */
  collectorRate: number;
  bareRate: number;
  rounds: { collector: number[]; bare: number[] };
}

const names = natsNames("rtr");
const silent = createLogger({ level: "info", write: () => {} });

/** Rate over first → last message: connection and consumer set-up are not counted on either side. */
function rate(n: number, first: number, last: number): number {
  return (n - 1) / ((last - first) / 1000);
}

async function bareRound(url: string, n: number, durable: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add(names.eventsStream, { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: nanos(30_000), max_ack_pending: 10_000 });
    const consumer = await jetstream(nc).consumers.get(names.eventsStream, durable);
    const messages = await consumer.consume({ max_messages: 1000 });
    const decoder = new TextDecoder();
    let count = 0;
    let first = 0;
    let last = 0;
    for await (const m of messages) {
      const e = JSON.parse(decoder.decode(m.data)) as Envelope;
      if (e.v !== 1) throw new Error("bad envelope");
      m.ack();
      if (++count === 1) first = performance.now();
      if (count === n) {
        last = performance.now();
        break;
      }
    }
    await messages.close();
    await nc.flush();
    return rate(n, first, last);
  } finally {
    await nc.drain();
  }
}

async function collectorRound(url: string, n: number): Promise<number> {
  // A fresh durable each round: the collector creates it (deliver all) when it is missing.
  const admin = await connect({ servers: url });
  const jsm = await jetstreamManager(admin);
  await jsm.consumers.delete(names.eventsStream, names.durable).catch(() => {});
  await admin.close();
  const collector = new Collector({ runtime: createNodeRuntime(), config: collectorConfig(url), log: silent });
  // Timestamps around the collector's own handling: one extra call per event, nothing else.
  const record = collector.fleet.recordEvent.bind(collector.fleet);
  let count = 0;
  let first = 0;
  let last = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  collector.fleet.recordEvent = (e) => {
    const fresh = record(e);
    if (++count === 1) first = performance.now();
    if (count === n) {
      last = performance.now();
      done();
    }
    return fresh;
  };
  collector.start();
  try {
    await finished;
    const counts = [...collector.eventCounts().entries()];
    const handled = counts.filter(([t]) => !t.startsWith("_")).reduce((s, [, c]) => s + c, 0);
    if (handled !== n) throw new Error(`collector handled ${handled} of ${n} events: ${JSON.stringify(counts)}`);
    return rate(n, first, last);
  } finally {
    await collector.close();
  }
}

/** `on`: an existing server or cluster (its stream made with `replicas`); else a single server of its own. */
export async function benchCollectorIngest(n = 50_000, rounds = 2, on?: { url: string; replicas: number }): Promise<IngestResult> {
  const nats = on ? { url: on.url, close: async () => {} } : guard(await startNatsServer());
  try {
    const nc = await connect({ servers: nats.url });
    await ensureEventsStream(nc, names, silent, on?.replicas ?? 1);
    const js = jetstream(nc);
    const events = makeEnvelopes(n);
    const encoder = new TextEncoder();
    let bytes = 0;
    for (let i = 0; i < n; i += 1000) {
      await Promise.all(
        events.slice(i, i + 1000).map((e) => {
          const data = encoder.encode(JSON.stringify(e));
          bytes += data.length;
          return js.publish(eventSubject("rtr", e), data, { msgID: e.id });
        }),
      );
    }
    await nc.close();
    const result: IngestResult = { events: n, bytesPerEvent: Math.round(bytes / n), collectorRate: 0, bareRate: 0, rounds: { collector: [], bare: [] } };
    for (let r = 0; r < rounds; r++) {
      result.rounds.bare.push(await bareRound(nats.url, n, `bench-bare-${r}`));
      result.rounds.collector.push(await collectorRound(nats.url, n));
    }
    result.bareRate = Math.max(...result.rounds.bare);
    result.collectorRate = Math.max(...result.rounds.collector);
    return result;
  } finally {
    await nats.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchCollectorIngest(), null, 2));
}
