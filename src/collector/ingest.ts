/**
 * The collector's two feeds: the durable JetStream consumer on the events stream (explicit acks,
 * shared by every collector process, so each event is handled once) and a KV watch of the state
 * bucket (which replays every current value first, so the fleet view is rebuilt at start).
 */
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { watchForStall, type StreamTail } from "./stall-watch.ts";
import type { Logger } from "../shared/logger.ts";
import type { NatsNames } from "../nats/subjects.ts";
import type { FleetState } from "./fleet.ts";
import { checkPoolsDocument, checkStateDocument, eventMatchesSubject, isHostKey, parseEnvelope, subjectHostToken } from "./validate.ts";

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
  // Pulls expire every 5 s (server heartbeats every 2.5 s): on a cluster (SPEC 16) a pull held by a
  // consumer leader that died is noticed and re-issued to the new leader within seconds, not 30 s.
  const messages = await consumer.consume({ max_messages: 1000, expires: 5000 });
  signal.addEventListener("abort", () => void messages.close(), { once: true });
  for await (const msg of messages) {
    const event = parseEnvelope(msg.data);
    if (!event) {
      fleet.count("_invalid");
      log.warn({ subject: msg.subject, seq: msg.seq }, "ignored a malformed or unknown-version message on the events stream");
      msg.ack();
      continue;
    }
    // Whoever may publish under a host's subject is that host (NATS permissions bind the subject):
    // an envelope that claims another host is a forgery or a bug, never that host's news.
    if (!eventMatchesSubject(event, msg.subject)) {
      if (fleet.dropForgedEvent(subjectHostToken(msg.subject) ?? "")) {
        log.warn({ subject: msg.subject, seq: msg.seq }, "dropped an event whose host is not the one in its subject (logged once per subject host; counted as _host_mismatch)");
      }
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

/**
 * Watches the state bucket until `signal` fires; deletes and purges remove the runner. A document
 * that fails its checks (validate.ts) is dropped and counted, and logged once per key.
 */
export async function watchState(kv: KV, fleet: FleetState, log: Logger, signal: AbortSignal, onUpdate?: () => void): Promise<void> {
  const watcher = await kv.watch();
  signal.addEventListener("abort", () => watcher.stop(), { once: true });
  // The watch's consumer has one replica: when its node dies the watch goes silent (stall-watch.ts).
  let delivered = 0;
  const stopWatchdog = watchForStall({
    tail: async () => tailOf((await kv.status()).streamInfo.state),
    delivered: () => delivered,
    onStall: ({ delivered, lastSeq }) => {
      log.warn({ delivered, last_seq: lastSeq }, `the state watch delivered nothing since revision ${delivered} while the bucket is at ${lastSeq} (its consumer's NATS node may be gone): watching again`);
      watcher.stop();
    },
    signal,
  });
  try {
    await applyStateWatch(watcher, fleet, log, (revision) => (delivered = revision), onUpdate);
  } finally {
    stopWatchdog();
  }
}

function tailOf(state: { last_seq: number; messages: number }): StreamTail {
  return { lastSeq: state.last_seq, messages: state.messages };
}

async function applyStateWatch(watcher: AsyncIterable<KvWatchEntry>, fleet: FleetState, log: Logger, seen: (revision: number) => void, onUpdate?: () => void): Promise<void> {
  for await (const entry of watcher) {
    seen(entry.revision);
    if (entry.operation !== "PUT") {
      if (isHostKey(entry.key)) fleet.deletePools(entry.key);
      else fleet.deleteState(entry.key);
    } else if (isHostKey(entry.key)) {
      // A host's pools (issue 19): checked like a runner's document, against its own schema.
      const checked = checkPoolsDocument(entry.key, entry.value);
      if (checked.ok) fleet.putPools(entry.key, checked.doc, entry.created.getTime());
      else if (fleet.dropState(entry.key, checked.reason)) {
        log.warn({ key: entry.key, reason: checked.reason }, `dropped the pools document under key ${entry.key.slice(0, 200)} (${checked.reason}: ${checked.detail}); logged once per key`);
      }
    } else {
      const checked = checkStateDocument(entry.key, entry.value);
      if (checked.ok) fleet.putState(entry.key, checked.doc, entry.created.getTime());
      else if (fleet.dropState(entry.key, checked.reason)) {
        log.warn({ key: entry.key, reason: checked.reason }, `dropped the state document under key ${entry.key.slice(0, 200)} (${checked.reason}: ${checked.detail}); logged once per key, counted in runner_token_collector_documents_dropped_total`);
      }
    }
    onUpdate?.();
  }
}
