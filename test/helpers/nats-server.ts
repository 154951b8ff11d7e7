// A real nats-server for tests: JetStream on, a temp store dir, a free port on 127.0.0.1. Tests
// stop and restart it (same port, same store) to prove the outage behaviour.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function natsServerBinary(): string {
  for (const p of ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]) if (existsSync(p)) return p;
  return "nats-server";
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function jetStreamReady(port: number): Promise<boolean> {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  try {
    const nc = await connect({ servers: `nats://127.0.0.1:${port}`, reconnect: false, timeout: 1000 });
    try {
      await (await jetstreamManager(nc, { timeout: 1000 })).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
  /** What the server printed since it last started (permission violations show here). */
  log(): string;
}

/** `config` is extra nats-server configuration (accounts, authorization, tls) appended to the file. */
export async function startNatsServer(options: { config?: string } = {}): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "rtr-nats-"));
  const storeDir = join(dir, "store");
  const port = await freePort();
  const confPath = join(dir, "nats.conf");
  await writeFile(
    confPath,
    [`listen: 127.0.0.1:${port}`, `jetstream { store_dir: "${storeDir}", max_memory_store: 64MB, max_file_store: 4GB }`, options.config ?? ""].join("\n"),
  );
  let child: ChildProcess | null = null;
  // Servers that demand TLS or credentials cannot be probed anonymously; their tests do not restart them.
  const probeJetStream = !/\btls\s*\{|authorization|accounts/.test(options.config ?? "");
  let log = "";

  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async start() {
      log = "";
      child = spawn(natsServerBinary(), ["-c", confPath], { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout?.on("data", (d) => (log += d));
      child.stderr?.on("data", (d) => (log += d));
      const exited = new Promise<never>((_, reject) => child!.once("exit", (code) => reject(new Error(`nats-server exited ${code}: ${log.slice(-2000)}`))));
      const deadline = Date.now() + 15_000;
      while (!(log.includes("Server is ready") && (await portOpen(port)))) {
        if (Date.now() > deadline) throw new Error(`nats-server did not start: ${log.slice(-2000)}`);
        await Promise.race([new Promise((r) => setTimeout(r, 25)), exited]);
      }
      exited.catch(() => {});
      // After a restart JetStream recovers its store a moment after the port opens: wait for it,
      // so a test's "NATS is back" means what an operator would mean.
      while (probeJetStream && !(await jetStreamReady(port))) {
        if (Date.now() > deadline) throw new Error(`nats-server JetStream not ready: ${log.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      child = null;
      const gone = new Promise<void>((resolve) => c.once("exit", () => resolve()));
      c.kill("SIGKILL");
      await gone;
    },
    async restart() {
      await server.stop();
      await server.start();
    },
    async close() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
    log: () => log,
  };
  await server.start();
  return server;
}
