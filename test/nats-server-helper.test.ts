import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { startNatsServer } from "./helpers/nats-server.ts";

test("nats helper - starts a real server with JetStream, stops and restarts it on the same port", async () => {
  const server = await startNatsServer();
  try {
    const nc = await connect({ servers: server.url });
    const info = nc.info;
    assert.ok(info?.jetstream, "JetStream enabled");
    await nc.close();
    await server.stop();
    await assert.rejects(connect({ servers: server.url, reconnect: false, timeout: 500 }));
    await server.start();
    const again = await connect({ servers: server.url });
    await again.close();
  } finally {
    await server.close();
  }
});
