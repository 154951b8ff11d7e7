// Connection options against real nats-servers configured for each kind of auth and TLS.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { makeWorld, runInProcess, type World } from "./helpers/agent.ts";
import { freePort, startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { streamEvents } from "./helpers/nats-read.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";
import { connect } from "@nats-io/transport-node";

async function checkWith(w: World, nats: string): Promise<Awaited<ReturnType<typeof runInProcess>>> {
  const path = await w.config(`
refresh: { retryBackoff: 0.01 }
nats: ${nats}
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1 }
`);
  const { RUNNER_NAME: _n, RUNNER_DIR: _d, RUNNER_ORG: _o, ...env } = w.env;
  return runInProcess(["check", "--config", path], env);
}

test("nats options - user/password: right credentials publish; a wrong password names the option and token work goes on", async () => {
  const nats = await startNatsServer({ config: 'authorization { user: rtr, password: "pw-correct-horse" }' });
  const w = await makeWorld();
  try {
    const bad = await checkWith(w, `{ servers: [${nats.url}], user: rtr, password: "pw-wrong-battery" }`);
    assert.equal(bad.code, 0, "the runner is registered although NATS refused us");
    assert.match(bad.stdout, /refused the credentials.*nats\.user\/nats\.password/);
    assert.equal((await w.metrics()).runners[0].registered, true);
    const good = await checkWith(w, `{ servers: [${nats.url}], user: rtr, password: "pw-correct-horse" }`);
    assert.equal(good.code, 0);
    const nc = await connect({ servers: nats.url, user: "rtr", pass: "pw-correct-horse" });
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const info = await (await jetstreamManager(nc)).streams.info("RTR_EVENTS");
    await nc.close();
    assert.equal(info.state.messages, 2, "the refused run's events came out of the outbox with the next run");
    assertNoSecrets(["pw-correct-horse", "pw-wrong-battery"], [{ label: "bad stdout", text: bad.stdout + bad.stderr }, { label: "good stdout", text: good.stdout + good.stderr }]);
  } finally {
    await w.close();
    await nats.close();
  }
});

test("nats options - token auth, and several servers where the first is down", async () => {
  const nats = await startNatsServer({ config: 'authorization { token: "tok-s3cret-value" }' });
  const w = await makeWorld();
  try {
    const dead = `nats://127.0.0.1:${await freePort()}`;
    const run = await checkWith(w, `{ servers: [${dead}, ${nats.url}], token: "tok-s3cret-value" }`);
    assert.equal(run.code, 0, run.stdout);
    assert.doesNotMatch(run.stdout, /outbox/);
    const nc = await connect({ servers: nats.url, token: "tok-s3cret-value" });
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const info = await (await jetstreamManager(nc)).streams.info("RTR_EVENTS");
    assert.equal(info.state.messages, 2, "token.refreshed and runner.registered stored");
    await nc.close();
    assertNoSecrets(["tok-s3cret-value"], [{ label: "stdout", text: run.stdout + run.stderr }]);
  } finally {
    await w.close();
    await nats.close();
  }
});

test("nats options - an nkey seed file (nats.credsFile) authenticates, and is never logged", async () => {
  const user = createUser();
  const seed = new TextDecoder().decode(user.getSeed());
  const nats = await startNatsServer({ config: `authorization { users: [ { nkey: ${user.getPublicKey()} } ] }` });
  const w = await makeWorld();
  try {
    const seedFile = join(w.tmp, "agent.nk");
    await writeFile(seedFile, `${seed}\n`, { mode: 0o600 });
    const run = await checkWith(w, `{ servers: [${nats.url}], credsFile: ${seedFile} }`);
    assert.equal(run.code, 0, run.stdout);
    assert.match(run.stdout, /connected to NATS/);
    assertNoSecrets([seed], await w.outputs([run]));
  } finally {
    await w.close();
    await nats.close();
  }
});

test("nats options - TLS with a CA and a client certificate (mutual TLS)", async () => {
  const w = await makeWorld();
  const dir = w.tmp;
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=rtr-test-ca");
  await writeFile(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  for (const name of ["server", "client"]) {
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name === "server" ? "localhost" : "rtr-agent"}`);
    ssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "1", "-extfile", "san.ext");
  }
  const nats = await startNatsServer({ config: `tls { cert_file: "${dir}/server.pem", key_file: "${dir}/server.key", ca_file: "${dir}/ca.pem", verify: true }` });
  try {
    const run = await checkWith(w, `{ servers: [tls://127.0.0.1:${nats.port}], tls: { ca: ${dir}/ca.pem, cert: ${dir}/client.pem, key: ${dir}/client.key } }`);
    assert.equal(run.code, 0, run.stdout);
    assert.match(run.stdout, /connected to NATS/);
    const noCert = await checkWith(w, `{ servers: [tls://127.0.0.1:${nats.port}], tls: { ca: ${dir}/ca.pem } }`);
    assert.equal(noCert.code, 0, "token work goes on without NATS");
    assert.match(noCert.stdout, /NATS/);
    assert.doesNotMatch(noCert.stdout, /connected to NATS/);
  } finally {
    await w.close();
    await nats.close();
  }
});

test("nats options - a collector with a wrong password reports the option in /healthz's reason", async () => {
  const nats = await startNatsServer({ config: 'authorization { user: rtr, password: "pw-correct-horse" }' });
  const c = startCollector(collectorConfig(nats.url, { user: "rtr", password: "nope-wrong-pw" }));
  try {
    const { waitFor } = await import("./helpers/agent.ts");
    await waitFor(() => /nats\.user\/nats\.password/.test(c.collector.health().reason ?? ""), "health names the option");
    assert.equal(c.collector.health().ok, false);
  } finally {
    await c.close();
    await nats.close();
  }
});

test("nats options - an existing events stream with other subjects is a clear error, never silently changed", async () => {
  const nats = await startNatsServer();
  const w = await makeWorld();
  try {
    const nc = await connect({ servers: nats.url });
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "RTR_EVENTS", subjects: ["legacy.>"] });
    const run = await checkWith(w, `{ servers: [${nats.url}] }`);
    assert.equal(run.code, 0, "token work goes on");
    assert.match(run.stdout, /stream RTR_EVENTS exists with subjects \[legacy\.>\], which do not include rtr\.events\.>/);
    const info = await jsm.streams.info("RTR_EVENTS");
    assert.deepEqual(info.config.subjects, ["legacy.>"], "the stream was not changed");
    await nc.close();
    assert.equal((await streamEvents(nats.url)).length, 0);
  } finally {
    await w.close();
    await nats.close();
  }
});
