/** The demo's own nats-server (JetStream, loopback, a random port, a store in the demo dir). */
import type { Runtime } from "../runtime/types.ts";
import { sleep } from "../shared/backoff.ts";

export interface DemoNats {
  url: string;
  stop(): Promise<void>;
}

async function findNatsServer(runtime: Runtime): Promise<string | null> {
  const dirs = [...(runtime.env.PATH ?? "").split(":").filter(Boolean), "/usr/sbin", "/usr/local/sbin"];
  for (const d of dirs) {
    const stat = await runtime.files.stat(`${d}/nats-server`);
    if (stat?.isFile && stat.mode & 0o111) return `${d}/nats-server`;
  }
  return null;
}

export async function startNats(runtime: Runtime, storeDir: string): Promise<DemoNats> {
  const binary = await findNatsServer(runtime);
  if (!binary) throw new Error("nats-server not found on PATH or in /usr/sbin");
  await runtime.files.mkdir(storeDir, 0o700);
  const child = runtime.startProcess(binary, ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", storeDir]);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(child.output());
    if (m && child.output().includes("Server is ready")) return { url: `nats://127.0.0.1:${m[1]}`, stop: () => child.stop() };
    const exited = await Promise.race([child.exited.then(() => true), sleep(50).then(() => false)]);
    if (exited) throw new Error(`nats-server exited: ${child.output().trim().split("\n").pop()}`);
    if (Date.now() > deadline) {
      await child.stop();
      throw new Error("nats-server did not start within 15s");
    }
  }
}
