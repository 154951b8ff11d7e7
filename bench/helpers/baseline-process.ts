// The footprint and start-up baseline: a bare process on the agent's stack that only connects to
// NATS (NATS_URL), serves one hono route and logs with pino: what any daemon on these libraries
// costs before it does any work. Runs from source (tsx, Deno) and bundled (node, like the product).
// Prints one JSON line with "msg":"ready" once both the connection and the listener are up.
import process from "node:process";
import { connect } from "@nats-io/transport-node";
import { Hono } from "hono";
import { serve } from "@hono/node-server";
import pino from "pino";

const log = pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222", waitOnFirstConnect: true, maxReconnectAttempts: -1 });
const app = new Hono();
app.get("/healthz", (c) => c.json({ status: "ok" }));
const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => log.info({ port: info.port }, "ready"));

const stop = () => {
  server.close();
  void nc.close().then(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
