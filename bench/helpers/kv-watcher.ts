// The heartbeat baseline: a bare process that watches KV bucket RTR_STATE (NATS_URL) and parses
// every value as JSON, nothing else: the least any collector must spend to follow the fleet.
// Prints {"msg":"ready"} once the watch is open; {"msg":"seen","count":N} on SIGUSR2.
import process from "node:process";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";

const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222" });
const kv = await new Kvm(nc).open(process.env.BUCKET ?? "RTR_STATE");
const watcher = await kv.watch();
let count = 0;
process.on("SIGUSR2", () => console.log(JSON.stringify({ msg: "seen", count })));
process.on("SIGTERM", () => {
  watcher.stop();
  void nc.close().then(() => process.exit(0));
});
console.log(JSON.stringify({ msg: "ready" }));
for await (const entry of watcher) {
  if (entry.operation === "PUT") {
    const doc = JSON.parse(entry.string()) as { v?: number };
    if (doc.v === 1) count++;
  }
}
