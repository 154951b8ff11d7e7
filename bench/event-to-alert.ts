// Event to alert: from an agent publishing its third consecutive failure (the failure event, then
// its state document, as a pass does) to the collector's webhook plugin's notification arriving at a
// receiver on loopback. groupWait 0; the per-minute cap is raised so that no sample is capped.
// Samples are spaced by random 300-700 ms, so they land at every phase of the collector's timers.
// Each latency is split where the collector's own methods see it (wrapped on the instance only):
//   publish → state delivered by the KV watch (FleetState.putState)
//   → the first evaluation that sees the alert has run (Collector.evaluate resolved)
//   → notification received.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createLogger } from "../src/shared/logger.ts";
import { Collector } from "../src/collector/collector.ts";
import { AlertHost } from "../src/alerts/host.ts";
import { KvAlertStore } from "../src/alerts/stores.ts";
import { loadPlugins } from "../src/alerts/load.ts";
import { BUILTIN_PLUGINS } from "../src/builtin-plugins.ts";
import { openBucket } from "../src/nats/setup.ts";
import { NatsPublisher } from "../src/nats/publisher.ts";
import { stateKey } from "../src/nats/subjects.ts";
import type { Envelope } from "../src/shared/types.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { collectorConfig } from "../test/helpers/collector.ts";
import { startWebhookReceiver, type Received } from "../test/helpers/receivers.ts";
import { waitFor } from "../test/helpers/agent.ts";
import { stateDoc } from "./helpers/events.ts";
import { guard, percentile, sleep } from "./helpers/proc.ts";
import { collectorTimers, type CollectorTimers } from "./helpers/collector-timers.ts";

export interface LatencySeries {
  samples: number;
  p50: number;
  p99: number;
  max: number;
  /** Median and p99 of each leg, ms. */
  legs: { delivery: [number, number]; evaluation: [number, number]; notify: [number, number] };
}

export interface EventToAlertResult extends LatencySeries {
  /** The collector's timings as its source declares them (null when a constant is not there). */
  timers: CollectorTimers;
}

interface Sample {
  key: string;
  alertKey: string;
  published: number;
  delivered?: number;
  evaluated?: number;
  received?: number;
}

function series(samples: Sample[]): LatencySeries {
  const done = samples.filter((s) => s.received !== undefined && s.delivered !== undefined && s.evaluated !== undefined);
  if (done.length !== samples.length) throw new Error(`${samples.length - done.length} of ${samples.length} alerts never arrived`);
  const total = done.map((s) => s.received! - s.published);
  const leg = (f: (s: Sample) => number): [number, number] => [percentile(done.map(f), 50), percentile(done.map(f), 99)];
  return {
    samples: done.length,
    p50: percentile(total, 50),
    p99: percentile(total, 99),
    max: Math.max(...total),
    legs: {
      delivery: leg((s) => s.delivered! - s.published),
      evaluation: leg((s) => s.evaluated! - s.delivered!),
      notify: leg((s) => s.received! - s.evaluated!),
    },
  };
}

export async function benchEventToAlert(n = 50): Promise<EventToAlertResult> {
  const nats = guard(await startNatsServer());
  const receiver = guard(await startWebhookReceiver());
  const runtime = createNodeRuntime();
  const log = createLogger({ level: "info", write: () => {} });
  const config = collectorConfig(nats.url);
  config.alerts = { ...config.alerts, afterConsecutiveFailures: 3, groupWait: 0, maxPerMinute: 10_000, plugins: [["webhook", { url: receiver.url }]] };
  const plugins = await loadPlugins(runtime, config, BUILTIN_PLUGINS);
  const collector = new Collector({ runtime, config, log, alerts: async (nc, names) => AlertHost.create(plugins, new KvAlertStore(await openBucket(nc, names.alertsBucket, true)), config, log) });
  const dir = await mkdtemp(join(tmpdir(), "rtr-bench-alert-"));
  const publisher = new NatsPublisher({ runtime, config: { servers: [nats.url], prefix: "rtr", name: "agents" }, stateDir: dir, log, mode: "daemon" });
  const samples: Sample[] = Array.from({ length: n }, (_, i) => {
    const host = `ci-${String(i).padStart(3, "0")}.example.com`;
    return { key: stateKey(host, "runner-1"), alertKey: `consecutive_failures/${host}/runner-1`, published: 0 };
  });
  const byKey = new Map(samples.map((s) => [s.key, s]));
  const byAlert = new Map(samples.map((s) => [s.alertKey, s]));

  // Where the collector sees each sample: its own methods, wrapped on this instance only.
  const putState = collector.fleet.putState.bind(collector.fleet);
  const evaluate = collector.evaluate.bind(collector);
  collector.fleet.putState = (key, doc, updatedAt) => {
    putState(key, doc, updatedAt);
    const s = byKey.get(key);
    if (s && doc.consecutive_failures >= 3 && s.delivered === undefined) s.delivered = performance.now();
  };
  collector.evaluate = async () => {
    const alerts = await evaluate();
    // The rules ran and the alert engine queued the notification (evaluations are serialised).
    const at = performance.now();
    for (const a of alerts) {
      const s = byAlert.get(a.key);
      if (s && s.evaluated === undefined) s.evaluated = at;
    }
    return alerts;
  };
  const push = receiver.received.push.bind(receiver.received);
  receiver.received.push = (...items: Received[]) => {
    const at = performance.now();
    for (const item of items) {
      const s = byAlert.get(item.body?.key);
      if (s && item.body?.status === "firing" && s.received === undefined) s.received = at;
    }
    return push(...items);
  };

  collector.start();
  try {
    await waitFor(() => collector.health().ok && collector.leader && publisher.connected, "collector leading and publisher connected", 30_000);
    const host = (s: Sample) => s.alertKey.split("/")[1];
    // Failures one and two, long before: only the third is timed.
    for (const f of [1, 2]) for (const s of samples) await publisher.putState(stateDoc(host(s), "runner-1", f));
    await sleep(2500);
    let seq = 10;
    for (const s of samples) {
      await sleep(300 + Math.random() * 400);
      const event: Envelope = {
        v: 1,
        id: crypto.randomUUID(),
        seq: seq++,
        type: "token.refresh_failed",
        time: new Date().toISOString(),
        host: host(s),
        runner: null,
        scope: { org: "acme" },
        agent: { version: "bench", runtime: "node" },
        data: { error: "GitHub answered 502 Bad Gateway after 3 attempts", attempt: 3, consecutive_failures: 3 },
      };
      s.published = performance.now();
      await publisher.publishEvent(event);
      await publisher.putState(stateDoc(host(s), "runner-1", 3));
    }
    await waitFor(() => samples.every((s) => s.received !== undefined), "every notification", 15_000).catch(() => {});
    return { ...series(samples), timers: collectorTimers() };
  } finally {
    await publisher.close();
    await collector.close();
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
    await nats.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchEventToAlert(Number(process.argv[2] ?? 50)), null, 2));
}
