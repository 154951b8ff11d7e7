/**
 * The collector's two feeds: the durable JetStream consumer on the events stream (explicit acks,
 * shared by every collector process, so each event is handled once) and a KV watch of the state
 * bucket (which replays every current value first, so the fleet view is rebuilt at start).
 */
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Logger } from "../shared/logger.ts";
import type { NatsNames } from "../nats/subjects.ts";
import { parseEnvelope, parseStateDocument, type FleetState } from "./fleet.ts";

export async function ensureDurableConsumer(nc: NatsConnection, names: NatsNames): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.consumers.info(names.eventsStream, names.durable);
  } catch {
    await jsm.consumers
      .add(names.eventsStream, {
        durable_name: names.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(30_000),
        max_ack_pending: 10_000,
        description: "runner-token-refresh collectors (shared)",
      })
      .catch((err) => {
        // Another collector created it at the same moment.
        if (!/already exists|already in use/i.test(String(err))) throw err;
      });
  }
}

/** Consumes until `signal` fires. Malformed messages are logged, acked and counted, never fatal. */
export async function consumeEvents(nc: NatsConnection, names: NatsNames, fleet: FleetState, log: Logger, signal: AbortSignal, onEvent?: () => void): Promise<void> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(names.eventsStream, names.durable);
  const messages = await consumer.consume({ max_messages: 1000 });
  signal.addEventListener("abort", () => void messages.close(), { once: true });
  for await (const msg of messages) {
    const event = parseEnvelope(msg.data);
    if (!event) {
      fleet.count("_invalid");
      log.warn({ subject: msg.subject, seq: msg.seq }, "ignored a malformed or unknown-version message on the events stream");
      msg.ack();
      continue;
    }
    // Handled, then acked without waiting for the server's confirmation (a confirmed ack per
    // message would halve ingest). A redelivery after a lost ack is dropped by id in recordEvent;
    // a graceful stop drains the connection so every ack leaves before exit.
    fleet.recordEvent(event);
    msg.ack();
    onEvent?.();
  }
}

/** Watches the state bucket until `signal` fires; deletes and purges remove the runner. */
export async function watchState(kv: KV, fleet: FleetState, log: Logger, signal: AbortSignal, onUpdate?: () => void): Promise<void> {
  const watcher = await kv.watch();
  signal.addEventListener("abort", () => watcher.stop(), { once: true });
  for await (const entry of watcher) {
    if (entry.operation !== "PUT") {
      fleet.deleteState(entry.key);
    } else {
      const doc = parseStateDocument(entry.string());
      if (doc) fleet.putState(entry.key, doc, entry.created.getTime());
      else log.warn({ key: entry.key }, "ignored a malformed state document");
    }
    onUpdate?.();
  }
}
