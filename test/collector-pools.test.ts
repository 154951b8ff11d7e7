// Pools reach the collector (issue 19): an agent's NatsPublisher puts `{v, host, time, pools}`
// under RTR_STATE key `<encoded host>.=`; the collector validates it with its own schema (and
// against its key, like a runner's document) and shows it on the host page and in the API.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { waitFor } from "./helpers/agent.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createLogger } from "../src/shared/logger.ts";
import { NatsPublisher } from "../src/nats/publisher.ts";
import { createCollectorApp } from "../src/http/collector-app.ts";
import type { PoolReport } from "../src/pool/report.ts";

const pool = (over: Partial<PoolReport> = {}): PoolReport => ({
  name: "build", scope: { org: "acme" }, size: 4, draining: false, runners: { idle: 1, busy: 3, starting: 0 }, jobs_total: 17, launch_failures_total: 0,
  idle_expired_total: 0, ghosts_replaced_total: 0, consecutive_failures: 0, short_since: null, slots: [], ...over,
});

test("collector pools - an agent's pools report shows on the host page and in /api/v1/hosts; a forged one is dropped", async () => {
  const nats = await startNatsServer();
  const c = startCollector(collectorConfig(nats.url));
  const dir = await mkdtemp(join(tmpdir(), "rtr-pools-"));
  const log = createLogger({ level: "silent", write: () => {} });
  const publisher = new NatsPublisher({ runtime: createNodeRuntime(), config: { servers: [nats.url], prefix: "rtr", name: "ci.01" }, stateDir: dir, log, mode: "daemon" });
  try {
    await waitFor(() => c.collector.health().ok, "collector ready");
    await publisher.putPools({ v: 1, host: "ci.01", time: new Date().toISOString(), pools: [pool()] });
    await waitFor(() => c.collector.pools().length === 1, "pools in the collector");
    const app = createCollectorApp(c.collector, { version: "t" });
    const api = (await (await app.request("/api/v1/hosts/ci.01")).json()) as { pools: PoolReport[] };
    assert.deepEqual(api.pools.map((p) => [p.name, p.size, p.runners.idle, p.runners.busy]), [["build", 4, 1, 3]]);
    const html = await (await app.request("/hosts/ci.01")).text();
    assert.match(html, /<td>build<\/td><td>org:acme<\/td><td>4<\/td><td>1<\/td><td>3<\/td>/);
    await c.collector.evaluate();
    assert.ok(c.collector.history().points("pool_busy", "1h").some((p) => p.v === 3), "busy runners charted");

    // Another host's name under ci.01's key: dropped, counted, the real report stays.
    const nc = await connect({ servers: nats.url });
    const kv = await new Kvm(nc).open("RTR_STATE");
    await kv.put("ci=2E01.=", JSON.stringify({ v: 1, host: "evil", time: new Date().toISOString(), pools: [pool({ name: "evil" })] }));
    await kv.put("ci=2E02.=", JSON.stringify({ v: 1, host: "ci.02", time: "x", pools: [{ name: 5 }] }));
    await waitFor(() => (c.collector.documentsDropped().get("key_mismatch") ?? 0) >= 1 && (c.collector.documentsDropped().get("invalid") ?? 0) >= 1, "both dropped");
    assert.deepEqual(c.collector.pools().map((p) => p.doc.pools[0].name), ["build"]);
    await nc.close();
  } finally {
    await publisher.close();
    await c.close();
    await nats.close();
    await rm(dir, { recursive: true, force: true });
  }
});
