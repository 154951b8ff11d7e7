// Three real nats-server processes on loopback forming a JetStream cluster (SPEC 16): each its own
// server_name, client port, cluster port and store dir. Tests SIGKILL a node and restart it (same
// ports, same store) to prove that publishing and consuming survive a leader election.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { StorageType, jetstreamManager } from "@nats-io/jetstream";
import { freePort, natsServerBinary } from "./nats-server.ts";

export interface ClusterNode {
  name: string;
  url: string;
  port: number;
  clusterPort: number;
  running(): boolean;
  log(): string;
}

export interface NatsCluster {
  nodes: ClusterNode[];
  /** Every node's client URL, for nats.servers. */
  urls: string[];
  /** SIGKILL node i (no clean shutdown, as a crash or power cut). */
  kill(i: number): Promise<void>;
  /** Starts node i again with its ports and store; waits until it accepts clients. */
  start(i: number): Promise<void>;
  /** Waits until JetStream answers through a running node (the meta group has a leader and knows every running peer). */
  waitForJetStream(timeoutMs?: number): Promise<void>;
  /** The server_name of the stream's leader, or null while it has none. */
  streamLeader(stream: string): Promise<string | null>;
  /** Polls until the stream has a leader (bounded); its server_name. */
  waitForStreamLeader(stream: string, timeoutMs?: number): Promise<string>;
  /** Index of the node named `name`. */
  indexOf(name: string): number;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withAnyNode<T>(urls: string[], fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: urls, reconnect: false, timeout: 1000 });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = await mkdtemp(join(tmpdir(), "rtr-nats-cluster-"));
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), cluster: await freePort() })));
  const children: (ChildProcess | null)[] = Array(size).fill(null);
  const logs: string[] = Array(size).fill("");
  const confs: string[] = [];
  for (let i = 0; i < size; i++) {
    const store = join(dir, `n${i + 1}`, "store");
    await mkdir(store, { recursive: true });
    const routes = ports.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p.cluster}`);
    const conf = join(dir, `n${i + 1}`, "nats.conf");
    await writeFile(
      conf,
      [
        `server_name: n${i + 1}`,
        `listen: 127.0.0.1:${ports[i].client}`,
        `cluster { name: rtr-test, listen: 127.0.0.1:${ports[i].cluster}, routes: [${routes.join(", ")}] }`,
        `jetstream { store_dir: "${store}", max_memory_store: 64MB, max_file_store: 1GB }`,
      ].join("\n"),
    );
    confs.push(conf);
  }
  const urls = ports.map((p) => `nats://127.0.0.1:${p.client}`);
  const nodes: ClusterNode[] = ports.map((p, i) => ({
    name: `n${i + 1}`,
    url: urls[i],
    port: p.client,
    clusterPort: p.cluster,
    running: () => children[i] !== null && children[i]!.exitCode === null,
    log: () => logs[i],
  }));

  async function start(i: number): Promise<void> {
    if (nodes[i].running()) return;
    logs[i] = "";
    const child = spawn(natsServerBinary(), ["-c", confs[i]], { stdio: ["ignore", "pipe", "pipe"] });
    children[i] = child;
    child.stdout?.on("data", (d) => (logs[i] += d));
    child.stderr?.on("data", (d) => (logs[i] += d));
    const deadline = Date.now() + 15_000;
    while (!logs[i].includes("Server is ready")) {
      if (child.exitCode !== null) throw new Error(`nats-server n${i + 1} exited ${child.exitCode}: ${logs[i].slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`nats-server n${i + 1} did not start: ${logs[i].slice(-2000)}`);
      await sleep(25);
    }
  }

  async function kill(i: number): Promise<void> {
    const c = children[i];
    children[i] = null;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    c.kill("SIGKILL");
    await gone;
  }

  const running = () => urls.filter((_, i) => nodes[i].running());

  const cluster: NatsCluster = {
    nodes,
    urls,
    kill,
    start,
    async waitForJetStream(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const ok = await withAnyNode(running(), async (nc) => {
          // $JS.API.INFO answers only once the meta group has a leader.
          const jsm = await jetstreamManager(nc, { timeout: 1000 });
          await jsm.getAccountInfo();
          // The meta leader may not know every peer yet ("no suitable peers for placement"):
          // wait until a stream with one replica per running node can be placed.
          const replicas = nodes.filter((n) => n.running()).length;
          await jsm.streams.add({ name: "RTR_TEST_PLACEMENT", subjects: ["rtr-test.placement"], num_replicas: replicas, storage: StorageType.Memory });
          await jsm.streams.delete("RTR_TEST_PLACEMENT");
          return true;
        }).catch(() => false);
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`JetStream cluster has no meta leader after ${timeoutMs} ms:\n${logs.map((l) => l.slice(-600)).join("\n---\n")}`);
        await sleep(200);
      }
    },
    async streamLeader(stream) {
      return withAnyNode(running(), async (nc) => {
        const info = await (await jetstreamManager(nc, { timeout: 2000 })).streams.info(stream);
        return info.cluster?.leader ?? null;
      }).catch(() => null);
    },
    async waitForStreamLeader(stream, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const leader = await cluster.streamLeader(stream);
        if (leader) return leader;
        if (Date.now() > deadline) throw new Error(`stream ${stream} has no leader after ${timeoutMs} ms`);
        await sleep(200);
      }
    },
    indexOf(name) {
      const i = nodes.findIndex((n) => n.name === name);
      if (i < 0) throw new Error(`no node ${name}`);
      return i;
    },
    async close() {
      for (let i = 0; i < size; i++) await kill(i);
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((_, i) => start(i)));
    await cluster.waitForJetStream();
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}
