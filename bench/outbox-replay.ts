// Outage recovery: 10,000 events queued in the outbox while NATS is down; time from NATS being
// back to an empty outbox, against publishing the same events awaited one by one (same run).
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createLogger } from "../src/shared/logger.ts";
import { ensureEventsStream } from "../src/nats/setup.ts";
import { natsNames } from "../src/nats/subjects.ts";
import { NatsPublisher } from "../src/nats/publisher.ts";
import { Outbox } from "../src/nats/outbox.ts";
import { parseOutboxFile } from "../src/nats/outbox-lines.ts";
import type { Envelope } from "../src/shared/types.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";

export interface ReplayResult {
  events: number;
  replaySeconds: number;
  replayRate: number;
  baselineRate: number;
  stored: number;
  duplicates: number;
}

function makeEvents(n: number, host: string): Envelope[] {
  return Array.from({ length: n }, (_, i) => ({
    v: 1 as const,
    id: crypto.randomUUID(),
    seq: i + 1,
    type: "token.refreshed" as const,
    time: new Date().toISOString(),
    host,
    runner: null,
    scope: { org: "acme" },
    agent: { version: "bench", runtime: "node" },
    data: { expires_at: new Date(Date.now() + 3600_000).toISOString() },
  }));
}

/** Events in the outbox's files (sealed ones and the current one), parsed as the Outbox parses them. */
async function eventsOnDisk(outboxDir: string): Promise<number> {
  const names = await readdir(outboxDir).catch(() => [] as string[]);
  let n = 0;
  for (const name of names.filter((f) => f.endsWith(".jsonl"))) n += parseOutboxFile(await readFile(join(outboxDir, name), "utf8")).events.length;
  return n;
}

/** `on`: an existing server or cluster (streams made with `replicas`); else a single server of its own. */
export async function benchOutboxReplay(n = 10_000, on?: { url: string; replicas: number }): Promise<ReplayResult> {
  const nats = on ? { url: on.url, close: async () => {} } : await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), "rtr-bench-outbox-"));
  const runtime = createNodeRuntime();
  try {
    // Baseline: awaited one by one, to a stream of its own on the same server.
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "BASE", subjects: ["base.>"], num_replicas: on?.replicas ?? 1 });
    if (on) await ensureEventsStream(nc, natsNames("rtr"), createLogger({ level: "silent", write: () => {} }), on.replicas);
    const js = jetstream(nc);
    const base = makeEvents(n, "baseline");
    const b0 = performance.now();
    for (const e of base) await js.publish(`base.${e.seq}`, new TextEncoder().encode(JSON.stringify(e)), { msgID: e.id });
    const baselineRate = n / ((performance.now() - b0) / 1000);

    // Queue n events in the outbox (as during an outage), then let a publisher replay them.
    const outbox = new Outbox(runtime, join(dir, "outbox"));
    const events = makeEvents(n, "bench-host");
    for (let i = 0; i < n; i += 1000) await outbox.append(events.slice(i, i + 1000));
    const queued = await eventsOnDisk(join(dir, "outbox"));
    if (queued !== n) throw new Error(`${queued} events queued in the outbox's files, not ${n}`);
    const log = createLogger({ level: "silent", write: () => {} });
    const t0 = performance.now();
    const publisher = new NatsPublisher({ runtime, config: { servers: [nats.url], prefix: "rtr", name: "bench-host", replicas: on?.replicas ?? 1 }, stateDir: dir, log, mode: "check" });
    await publisher.ready();
    await publisher.close();
    const replaySeconds = (performance.now() - t0) / 1000;
    // "Empty" is read from the files themselves, not through an Outbox or the publisher: their
    // depth is cached (the agent's /metrics reuses it for a second), and a stale count once made
    // this benchmark fail after a complete replay. A fresh Outbox must agree with the files.
    const remaining = await eventsOnDisk(join(dir, "outbox"));
    if (remaining !== 0) throw new Error(`outbox not empty after replay: ${remaining} events still in ${join(dir, "outbox")}`);
    const fresh = await new Outbox(runtime, join(dir, "outbox")).pending();
    if (fresh !== remaining) throw new Error(`a fresh Outbox reads ${fresh} events, the files hold ${remaining}`);
    const info = await jsm.streams.info("RTR_EVENTS");
    const stored = info.state.messages;
    const seen = new Set<string>();
    let duplicates = 0;
    const sub = await js.consumers.get("RTR_EVENTS");
    const msgs = await sub.fetch({ max_messages: n, expires: 5000 });
    for await (const m of msgs) {
      const id = m.json<Envelope>().id;
      if (seen.has(id)) duplicates++;
      seen.add(id);
      if (seen.size + duplicates >= stored) break;
    }
    await nc.close();
    return { events: n, replaySeconds, replayRate: n / replaySeconds, baselineRate, stored, duplicates };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await nats.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchOutboxReplay();
  console.log(JSON.stringify(r, null, 2));
}
