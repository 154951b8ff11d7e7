/**
 * Feeds History from the events stream with an ordered consumer of this process's own: from the
 * start of the longest window (7 d) at start, then live. Not the shared durable consumer: that one
 * splits events between collectors, while every collector's charts must show the whole fleet. A
 * restarted feed resumes after the last sequence it saw, so nothing is counted twice.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Logger } from "../shared/logger.ts";
import { watchForStall } from "./stall-watch.ts";
import type { NatsNames } from "../nats/subjects.ts";
import type { History } from "./history.ts";
import { WINDOWS } from "./history.ts";
import { eventMatchesSubject, parseEnvelope } from "./validate.ts";

export async function feedHistory(nc: NatsConnection, names: NatsNames, history: History, signal: AbortSignal, onEvent?: () => void, log?: Logger): Promise<void> {
  const since = new Date(Date.now() - WINDOWS["7d"].bucketMs * WINDOWS["7d"].buckets).toISOString();
  const consumer = await jetstream(nc).consumers.get(
    names.eventsStream,
    {
      // Named after the durable, so an operator listing consumers sees whose it is.
      name_prefix: `${names.durable}-history`,
      ...(history.lastSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: history.lastSeq + 1 } : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: since }),
    },
  );
  const messages = await consumer.consume({ max_messages: 1000 });
  signal.addEventListener("abort", () => void messages.close(), { once: true });
  // The ordered consumer has one replica: when its node dies the feed goes silent (stall-watch.ts).
  const jsm = await jetstreamManager(nc);
  const stopWatchdog = watchForStall({
    tail: async () => {
      const { state } = await jsm.streams.info(names.eventsStream);
      return { lastSeq: state.last_seq, messages: state.messages };
    },
    delivered: () => history.lastSeq,
    onStall: ({ delivered, lastSeq }) => {
      log?.warn({ delivered, last_seq: lastSeq }, `the history feed delivered nothing since sequence ${delivered} while ${names.eventsStream} is at ${lastSeq} (its consumer's NATS node may be gone): consuming again`);
      void messages.close();
    },
    signal,
  });
  try {
    for await (const msg of messages) {
      const event = parseEnvelope(msg.data);
      // The same trust rule as the durable consumer: a forged host is nobody's history.
      if (event && eventMatchesSubject(event, msg.subject)) history.record(event, msg.seq);
      else history.lastSeq = Math.max(history.lastSeq, msg.seq);
      onEvent?.();
    }
  } finally {
    stopWatchdog();
  }
}
