/**
 * `GET /api/v1/events` reads the stream itself (SPEC 9), so every collector answers the same:
 * an ordered consumer over the last SCAN messages that match the filter, keeping the newest `limit`.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Envelope } from "../shared/types.ts";
import { eventFilter, type NatsNames } from "../nats/subjects.ts";
import { parseEnvelope } from "./fleet.ts";
import type { EventQuery } from "./types.ts";

const SCAN = 5000;
const FETCH_EXPIRES_MS = 1000;

export async function readEvents(nc: NatsConnection, names: NatsNames, query: EventQuery): Promise<Envelope[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(names.eventsStream);
  if (info.state.messages === 0) return [];
  const start = Math.max(info.state.first_seq, info.state.last_seq - SCAN + 1);
  const consumer = await jetstream(nc).consumers.get(names.eventsStream, {
    // A single subject (not an array): filter_subjects needs nats-server 2.10, Debian 12 ships 2.9.
    filter_subjects: eventFilter(names.prefix, query),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: start,
  });
  const out: Envelope[] = [];
  const messages = await consumer.fetch({ max_messages: SCAN, expires: FETCH_EXPIRES_MS });
  for await (const msg of messages) {
    const event = parseEnvelope(msg.data);
    if (event) {
      out.push(event);
      if (out.length > query.limit) out.shift();
    }
    // Nothing more to read up to now: answer instead of waiting for the fetch to expire.
    if (msg.info.pending === 0 || msg.seq >= info.state.last_seq) break;
  }
  await consumer.delete().catch(() => {});
  return out;
}
