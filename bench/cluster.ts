// NATS cluster (SPEC 16): collector ingest on a three-node R3 cluster beside a bare consumer on the
// same cluster; events/s one agent host pushes through the outbox replay on R3 (beside awaited
// one-by-one publishing to an R3 stream); and how long a stream has no leader after its leader is
// SIGKILLed (p50/p99 over 5 kills), each kill followed by a restart and a wait for the node.
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNatsCluster } from "../test/helpers/nats-cluster.ts";
import { benchCollectorIngest, type IngestResult } from "./collector-ingest.ts";
import { benchOutboxReplay, type ReplayResult } from "./outbox-replay.ts";
import type { Part } from "./report.ts";

export interface ClusterResult {
  ingest: IngestResult;
  replay: ReplayResult;
  /** Milliseconds from SIGKILL of the stream leader to a new leader answering, per kill. */
  gapsMs: number[];
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

async function leaderGaps(kills: number): Promise<number[]> {
  const cluster = await startNatsCluster(3);
  try {
    await cluster.waitForJetStream(30_000);
    const nc = await connect({ servers: cluster.urls });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "GAP", subjects: ["gap.>"], num_replicas: 3 });
    await nc.close();
    const gaps: number[] = [];
    for (let k = 0; k < kills; k++) {
      const leader = await cluster.waitForStreamLeader("GAP", 30_000);
      const i = cluster.indexOf(leader);
      const t0 = performance.now();
      await cluster.kill(i);
      for (;;) {
        const now = await cluster.streamLeader("GAP").catch(() => null);
        if (now && now !== leader) break;
        if (performance.now() - t0 > 30_000) throw new Error("no new stream leader within 30 s");
        await new Promise((r) => setTimeout(r, 50));
      }
      gaps.push(performance.now() - t0);
      await cluster.start(i);
      await cluster.waitForJetStream(30_000);
    }
    return gaps;
  } finally {
    await cluster.close();
  }
}

export async function benchCluster(): Promise<ClusterResult> {
  const cluster = await startNatsCluster(3);
  let ingest: IngestResult;
  let replay: ReplayResult;
  try {
    await cluster.waitForJetStream(30_000);
    ingest = await benchCollectorIngest(20_000, 2, { url: cluster.urls[0], replicas: 3 });
  } finally {
    await cluster.close();
  }
  const second = await startNatsCluster(3);
  try {
    await second.waitForJetStream(30_000);
    replay = await benchOutboxReplay(5_000, { url: second.urls[0], replicas: 3 });
  } finally {
    await second.close();
  }
  return { ingest, replay, gapsMs: await leaderGaps(5) };
}

export function clusterPart(r: ClusterResult): Part {
  const share = r.ingest.collectorRate / r.ingest.bareRate;
  const int = (n: number) => Math.round(n).toLocaleString("en-US");
  return {
    rows: [
      { area: "10", figure: `collector ingest on a three-node R3 cluster, events/s (${int(r.ingest.events)} events)`, value: int(r.ingest.collectorRate), baseline: `bare consumer, same cluster: ${int(r.ingest.bareRate)}`, ratio: `${(share * 100).toFixed(0)} %`, target: "≥ 70 % of the bare consumer", met: share >= 0.7 },
      { area: "10", figure: `outbox replay on R3, ${int(r.replay.events)} queued events → outbox empty`, value: `${int(r.replay.replayRate)} events/s`, baseline: `awaited one-by-one to R3: ${int(r.replay.baselineRate)}`, ratio: `${(r.replay.replayRate / r.replay.baselineRate).toFixed(2)}×`, target: "none lost, no duplicates", met: r.replay.stored === r.replay.events && r.replay.duplicates === 0 },
      { area: "10", figure: "time without a stream leader after a SIGKILL of its leader, p50 / p99 (5 kills)", value: `${(pct(r.gapsMs, 50) / 1000).toFixed(1)} s / ${(pct(r.gapsMs, 99) / 1000).toFixed(1)} s`, baseline: "—", ratio: "—", target: "within the 4–9 s election time (SPEC 16)", met: pct(r.gapsMs, 99) <= 9000 },
    ],
    section: [
      "## 10. NATS cluster (three nodes on loopback, R3)",
      "",
      `Collector ingest ${int(r.ingest.collectorRate)} events/s against a bare durable consumer's ${int(r.ingest.bareRate)} on the same cluster (${(share * 100).toFixed(0)} %).`,
      `Outbox replay on R3: ${int(r.replay.replayRate)} events/s (${r.replay.replaySeconds.toFixed(2)} s for ${int(r.replay.events)}; stored ${int(r.replay.stored)}, duplicates ${r.replay.duplicates}), against ${int(r.replay.baselineRate)} events/s awaited one by one.`,
      `Leader gaps after SIGKILL: ${r.gapsMs.map((g) => `${(g / 1000).toFixed(1)} s`).join(", ")}.`,
      "",
    ],
  };
}
