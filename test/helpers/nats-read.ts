// Reads back what agents published: every event in the stream (by JetStream sequence) and the
// state bucket, straight from a real nats-server.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Envelope } from "../../src/shared/types.ts";
import { listKeys } from "../../src/nats/kv-keys.ts";

export interface StoredEvent {
  seq: number;
  subject: string;
  msgId: string | undefined;
  event: Envelope;
}

export async function withNats<T>(url: string, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: url, timeout: 5_000 });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

export async function streamEvents(url: string, stream = "RTR_EVENTS"): Promise<StoredEvent[]> {
  return withNats(url, async (nc) => {
    const jsm = await jetstreamManager(nc);
    let info;
    try {
      info = await jsm.streams.info(stream);
    } catch {
      return [];
    }
    const out: StoredEvent[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (!m) continue;
      out.push({ seq, subject: m.subject, msgId: m.header?.get("Nats-Msg-Id"), event: m.json<Envelope>() });
    }
    return out;
  });
}

export async function stateEntries(url: string, bucket = "RTR_STATE"): Promise<Map<string, Record<string, unknown>>> {
  return withNats(url, async (nc) => {
    const kv = await new Kvm(nc).open(bucket);
    const out = new Map<string, Record<string, unknown>>();
    for (const key of await listKeys(kv, undefined, 5_000)) {
      const e = await kv.get(key);
      if (e && e.operation === "PUT") out.set(key, e.json<Record<string, unknown>>());
    }
    return out;
  });
}
