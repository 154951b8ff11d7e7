// Per-host NATS identity on a real nats-server loaded with the permissions the product generates
// (`runner-token-refresh nats-permissions`): the real agent and collector do all their work with
// them (the permissions are sufficient), and one host can neither act as another nor read what
// is meant for another (they are restrictive). The 3-host example config is loaded as shipped.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { REPO_ROOT, runInProcess, waitFor, type AgentRun } from "./helpers/agent.ts";
import { startFakeGitHub, type FakeGitHub } from "./helpers/fake-github.ts";
import { makeRunnerDir, type FakeRunnerDir } from "./helpers/runner-dir.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import { collectorConfig } from "./helpers/collector.ts";
import { accountConfig, connectAs, violations } from "./helpers/nats-auth.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";
import { agentPermissions, collectorPermissions, defaultPasswordVar, renderUser } from "../src/nats/permissions.ts";
import { connectionOptions } from "../src/nats/connect.ts";
import { Collector } from "../src/collector/collector.ts";
import { AlertHost } from "../src/alerts/host.ts";
import { KvAlertStore } from "../src/alerts/stores.ts";
import { openBucket } from "../src/nats/setup.ts";
import { createLogger } from "../src/shared/logger.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";

const HOST_A = "host-a.example.com";
const HOST_B = "host-b";
const A = "host-a=2Eexample=2Ecom";
const PW: Record<string, string> = { [HOST_A]: "pw-host-a-0123", [HOST_B]: "pw-host-b-4567", collector: "pw-collector-89" };

/** A root-owned runner dir is refused unless runAs: root says so (SPEC 15); tests run as root in CI. */
const RUN_AS = process.getuid?.() === 0 ? ", runAs: root" : "";

function serverConfig(): string {
  const a = renderUser({ user: HOST_A }, agentPermissions({ host: HOST_A, prefix: "rtr", tokenScopes: [{ org: "acme" }], jitScopes: [] }), []);
  const b = renderUser({ user: HOST_B }, agentPermissions({ host: HOST_B, prefix: "rtr", tokenScopes: [{ org: "beta" }], jitScopes: [] }), []);
  const c = renderUser({ user: "collector" }, collectorPermissions({ prefix: "rtr" }), []);
  return accountConfig([a, b, c], PW);
}

interface World {
  nats: NatsServer;
  github: FakeGitHub;
  collector: Collector;
  collectorLog(): string;
  runners: Map<string, FakeRunnerDir>;
  /** A fleet-mode `check` of host A or B with its own NATS user and no GitHub credentials. */
  check(host: string): Promise<AgentRun>;
  close(): Promise<void>;
}

/** nats-server with the generated users, a fake GitHub, and a collector (with an alert store) as user "collector". */
async function world(): Promise<World> {
  const nats = await startNatsServer({ config: serverConfig() });
  const github = await startFakeGitHub();
  const tmp = await mkdtemp(join(tmpdir(), "rtr-perm-"));
  let out = "";
  const log = createLogger({ level: "debug", write: (l) => void (out += l) });
  const config = collectorConfig(nats.url, { user: "collector", password: PW.collector, github: { apiUrl: github.url, token: github.pat }, fleetScopes: [{ org: "acme", hosts: ["host-a*"] }, { org: "beta", hosts: [HOST_B] }], pollInterval: 1 });
  const collector = new Collector({ runtime: createNodeRuntime(), config, log, alerts: async (nc, names) => AlertHost.create([], new KvAlertStore(await openBucket(nc, names.alertsBucket, true)), config, log) });
  collector.start();
  const runners = new Map<string, FakeRunnerDir>();
  for (const [host, org] of [[HOST_A, "acme"], [HOST_B, "beta"]]) {
    const runner = await makeRunnerDir({ github });
    runners.set(host, runner);
    await writeFile(
      join(tmp, `${host}.yaml`),
      `github: { apiUrl: "${github.url}" }
refresh: { threshold: 1, retryBackoff: 0.01, onlineTimeout: 1 }
state: { dir: ${join(tmp, `state-${host}`)} }
nats: { servers: [${nats.url}], name: ${host}, user: ${host}, password: ${PW[host]} }
fleet: { enabled: true, pollInterval: 1 }
runners:
  - { dir: ${runner.dir}, scope: { org: ${org} }, name: runner-${org}${RUN_AS} }
`,
    );
  }
  return {
    nats,
    github,
    collector,
    collectorLog: () => out,
    runners,
    check: (host) => runInProcess(["check", "--config", join(tmp, `${host}.yaml`), "--log-level", "debug"], {}),
    async close() {
      await collector.close();
      for (const r of runners.values()) await r.cleanup();
      await rm(tmp, { recursive: true, force: true });
      await github.close();
      await nats.close();
    },
  };
}

async function settled(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "ok",
    (err: Error) => err.message,
  );
}

test("nats permissions - with only the generated permissions the real agents register through the broker, read fleet status and report, and the collector does all its work", async () => {
  const w = await world();
  try {
    await waitFor(() => w.collector.broker?.answering === true, "the leader's broker answers", 20_000);
    for (const host of [HOST_A, HOST_B]) {
      const run = await w.check(host);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /"source":"broker"/, `${host} got its token from the broker`);
    }
    assert.equal(w.github.runners.size, 2, "both runners registered at GitHub");
    assert.ok(w.github.calls.every((c) => c.auth?.includes(w.github.pat)), "every GitHub call came from the collector");
    // After a poll that lists the new runners, a pass reads the runner's status and the poll
    // marker from RTR_GITHUB (direct gets by key); the first pass already looked the name up (keys()).
    const lists = w.github.count({ route: "list" });
    await waitFor(() => w.github.count({ route: "list" }) >= lists + 2, "a poll after the registrations", 20_000);
    const later = await w.check(HOST_A);
    assert.equal(later.code, 0, later.stdout + later.stderr);
    assert.doesNotMatch(later.stdout, /fleet status unavailable|Permissions Violation/, later.stdout);

    await waitFor(() => w.collector.runners().length === 2, "the collector's fleet view has both hosts' runners", 10_000);
    const events = await w.collector.events({ limit: 50 });
    assert.deepEqual([...new Set(events.filter((e) => e.type === "runner.registered").map((e) => e.host))].sort(), [HOST_A, HOST_B].sort());
    assert.ok(w.collector.leader, "the collector holds the lease");
    assert.deepEqual(violations(w.nats.log()), [], "no permission violation by the agents or the collector");
  } finally {
    await w.close();
  }
});

test("nats permissions - host A's credentials cannot ask for host B's scope, write its state, publish its events, read its replies or pose as the broker", async () => {
  const w = await world();
  let nc: NatsConnection | null = null;
  let defaultInbox: NatsConnection | null = null;
  try {
    await waitFor(() => w.collector.broker?.answering === true, "the leader's broker answers", 20_000);
    nc = await connectAs(w.nats.url, HOST_A, PW[HOST_A], `_INBOX_${A}`);
    const body = (host: string) => JSON.stringify({ v: 1, host, runner: null });
    // Control: the same connection gets its own scope's token, so the refusals below are about B.
    const own = (await nc.request("rtr.token.org=3Aacme", body(HOST_A), { timeout: 5000 })).json<{ token?: string }>();
    assert.ok(own.token, "host A gets its own scope's token");

    assert.match(await settled(nc.request("rtr.token.org=3Abeta", body(HOST_B), { timeout: 5000 })), /Permissions Violation for Publish to "rtr\.token\.org=3Abeta"/);
    const js = jetstream(nc);
    assert.match(await settled(js.publish(`rtr.events.${HOST_B}.=.agent.started`, "{}", { timeout: 5000 })), /Permissions Violation for Publish/);
    assert.equal(await settled(js.publish(`rtr.events.${A}.=.agent.started`, "{}", { timeout: 5000 })), "ok", "its own events subject works");
    const state = await new Kvm(nc).open("RTR_STATE");
    assert.match(await settled(state.put(`${HOST_B}.runner-beta`, "{}")), /Permissions Violation for Publish to "\$KV\.RTR_STATE\.host-b\.runner-beta"/);
    assert.equal(await settled(state.put(`${A}.runner-acme`, "{}")), "ok", "its own state key works");
    const github = await new Kvm(nc).open("RTR_GITHUB", { allow_direct: true });
    assert.match(await settled(github.get("org=3Abeta._poll")), /Permissions Violation for Publish/, "B's scope in RTR_GITHUB is not A's to read");

    // Reading B's replies: the subscription is refused, and B's own token request still gets
    // its answer while A listens.
    const received: string[] = [];
    const spy = nc.subscribe(`_INBOX_${HOST_B}.>`, { callback: (e, m) => void (!e && received.push(m.subject)) });
    const broker = nc.subscribe("rtr.token.*", { callback: (e, m) => void (!e && received.push(m.subject)) });
    assert.match(await settled(spy.closed.then((e) => (e ? Promise.reject(e) : undefined))), /Permissions Violation for Subscription to "_INBOX_host-b\.>"/);
    assert.match(await settled(broker.closed.then((e) => (e ? Promise.reject(e) : undefined))), /Permissions Violation for Subscription to "rtr\.token\.\*"/);
    const b = await w.check(HOST_B);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    assert.match(b.stdout, /"source":"broker"/);
    assert.deepEqual(received, [], "host A saw none of B's traffic");

    // The old shared `_INBOX.>` is not granted: an agent without its own inbox prefix gets nothing.
    defaultInbox = await connectAs(w.nats.url, HOST_A, PW[HOST_A]);
    assert.match(await settled(defaultInbox.request("rtr.token.org=3Aacme", body(HOST_A), { timeout: 5000 })), /Permissions Violation for Subscription to "_INBOX\./);
    assertNoSecrets(w.github.mintedTokens, [{ label: "server log", text: w.nats.log() }, { label: "collector log", text: w.collectorLog() }]);
  } finally {
    await nc?.close();
    await defaultInbox?.close();
    await w.close();
  }
});

test("nats permissions - an agent connects with the inbox prefix _INBOX_<encoded host> unless nats.inboxPrefix says otherwise; the collector keeps _INBOX", async () => {
  const runtime = createNodeRuntime();
  const base = { servers: ["nats://127.0.0.1:4222"], prefix: "rtr", name: "ci.example.com" };
  assert.equal((await connectionOptions(runtime, base, "daemon")).inboxPrefix, "_INBOX_ci=2Eexample=2Ecom");
  assert.equal((await connectionOptions(runtime, base, "check")).inboxPrefix, "_INBOX_ci=2Eexample=2Ecom");
  assert.equal((await connectionOptions(runtime, base, "collector")).inboxPrefix, undefined);
  assert.equal((await connectionOptions(runtime, { ...base, inboxPrefix: "_INBOX" }, "daemon")).inboxPrefix, "_INBOX");
  assert.equal((await connectionOptions(runtime, { ...base, inboxPrefix: "_INBOX_collector" }, "collector")).inboxPrefix, "_INBOX_collector");
});

// ---------------------------------------------------------------------------------------------
// The command

async function command(args: string[], cwd?: string): Promise<AgentRun> {
  return runInProcess(["nats-permissions", ...args], {}, { cwd });
}

test("nats-permissions - from a host's config: its nats.name, user, prefix and inbox, and with fleet.enabled its runners' scopes", async () => {
  const tmp = await mkdtemp(join(tmpdir(), "rtr-permcmd-"));
  try {
    const path = join(tmp, "agent.yaml");
    await writeFile(
      path,
      `nats: { servers: [tls://nats.example.com:4222], name: ci.01, user: agent-ci01, password: { file: /nonexistent/secret }, prefix: ci }
fleet: { enabled: true }
runners:
  - { dir: /opt/r1, scope: { org: acme } }
  - { dir: /opt/r2, scope: { org: acme } }
  - { dir: /opt/r3, scope: { repo: acme/widgets } }
`,
    );
    const run = await command(["--config", path]);
    assert.equal(run.code, 0, run.stderr);
    const out = run.stdout;
    assert.match(out, /user: "agent-ci01"/);
    assert.match(out, /password: \$RTR_AGENT_CI01_PASSWORD/, "a variable, never a secret (the password file is not even read)");
    for (const s of ['"ci.events.ci=2E01.>"', '"$KV.CI_STATE.ci=2E01.>"', '"ci.token.org=3Aacme"', '"ci.token.repo=3Aacme=2Fwidgets"', '"$JS.API.DIRECT.GET.KV_CI_GITHUB.$KV.CI_GITHUB.org=3Aacme.>"', '"_INBOX_ci=2E01.>"']) {
      assert.ok(out.includes(s), `${s} in\n${out}`);
    }
    assert.equal(out.split('"ci.token.org=3Aacme"').length, 2, "each scope once");
    assert.doesNotMatch(out, /"ci\.events\.>"|"_INBOX\.>"|"\$JS\.API\.>"/, "nothing wider than the host's own");

    await writeFile(path, `nats: { servers: [nats://127.0.0.1:4222], name: ci-02 }\nrunners:\n  - { dir: /opt/r1, scope: { org: acme } }\n`);
    const standalone = await command(["--config", path, "--password-env", "CI02_PW"]);
    assert.equal(standalone.code, 0, standalone.stderr);
    assert.match(standalone.stdout, /user: "ci-02"\n {2}password: \$CI02_PW/);
    assert.doesNotMatch(standalone.stdout, /token|RTR_GITHUB/, "no fleet mode: no token or RTR_GITHUB subjects");
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test("nats-permissions - from flags (repeatable scopes), as an nkey user, and the collector's entry", async () => {
  const nkey = `U${"A".repeat(55)}`;
  const run = await command(["--host", "build-01", "--org", "acme", "--org", "beta", "--enterprise", "big", "--nkey", nkey]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`nkey: "${nkey}"`));
  assert.doesNotMatch(run.stdout, /^\s*(user|password):/m);
  for (const s of ["rtr.token.org=3Aacme", "rtr.token.org=3Abeta", "rtr.token.enterprise=3Abig", "_INBOX_build-01.>"]) assert.ok(run.stdout.includes(`"${s}"`), s);

  const collector = await command(["--collector"], "/");
  assert.equal(collector.code, 0, collector.stderr);
  assert.match(collector.stdout, /user: "collector"/);
  assert.match(collector.stdout, /allow_responses: true/, "answers token requests at the asker's inbox");
  for (const s of ["rtr.token.*", "_INBOX.>", "$JS.API.STREAM.CREATE.RTR_EVENTS", "$KV.RTR_GITHUB.>", "rtr.events.>"]) assert.ok(collector.stdout.includes(`"${s}"`), s);
  assert.doesNotMatch(collector.stdout, /STREAM\.DELETE|STREAM\.PURGE|"\$JS\.API\.>"/, "it creates and reads, it never deletes");
});

test("nats-permissions - usage errors exit 64, a bad config file 78, each with one line naming the fix", async () => {
  for (const [args, pattern] of [
    [["--bogus"], /Unknown option '--bogus'/],
    [["--host", "h", "--org", "not valid"], /--org: expected an org name/],
    [["--collector", "--org", "acme"], /--collector describes the collector/],
    [["--host", "h", "--nkey", `U${"A".repeat(55)}`, "--password-env", "X"], /not both/],
    [["--host", "h", "--password-env", "1-bad"], /--password-env: expected a variable name/],
    [["--host", "h", "--prefix", "RTR"], /--prefix: expected lower-case/],
    [["--host", "h", "extra"], /Unexpected argument|unexpected/i],
  ] as [string[], RegExp][]) {
    const run = await command(args, "/");
    assert.equal(run.code, 64, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, pattern);
    assert.equal(run.stderr.trim().split("\n").length, 1);
  }
  const none = await command([], "/");
  assert.equal(none.code, 64, none.stderr);
  assert.match(none.stderr, /pass --config PATH .* or --host NAME/);

  const tmp = await mkdtemp(join(tmpdir(), "rtr-permcmd-"));
  try {
    const missing = await command(["--config", join(tmp, "nope.yaml")]);
    assert.equal(missing.code, 78);
    assert.match(missing.stderr, /config file not found/);
    const bad = join(tmp, "bad.yaml");
    await writeFile(bad, "nats: { servers: [x], inboxPrefix: _INBOX.> }\n");
    const invalid = await command(["--config", bad]);
    assert.equal(invalid.code, 78);
    assert.match(invalid.stderr, /nats\.inboxPrefix: expected subject tokens without wildcards/);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const help = await command(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Exit codes: 0 ok, 64 usage, 78 configuration error/);
});

// ---------------------------------------------------------------------------------------------
// The shipped example

const EXAMPLE = join(REPO_ROOT, "config/nats/nats-server-3-hosts.conf");
const EXAMPLE_HOSTS: [string, string[]][] = [
  ["ci-01.example.com", ["--org", "acme"]],
  ["ci-02.example.com", ["--org", "acme", "--repo", "acme/widgets"]],
  ["build-01.example.com", ["--org", "acme-build"]],
];

/** The entry without comments and indentation, to find it inside the example. */
function entryLines(text: string): string {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .join("\n");
}

test("nats-permissions - the 3-host example holds exactly what the command prints, and a real nats-server runs it", async () => {
  const text = await readFile(EXAMPLE, "utf8");
  const body = entryLines(text);
  for (const [host, scopes] of EXAMPLE_HOSTS) {
    const run = await command(["--host", host, ...scopes]);
    assert.ok(body.includes(entryLines(run.stdout)), `the example's entry for ${host} is what nats-permissions prints`);
  }
  assert.ok(body.includes(entryLines((await command(["--collector"], "/")).stdout)), "the collector's entry too");

  // Its own port and store dir, no TLS files: everything else as shipped.
  const stripped = text.replace(/^(listen|tls|jetstream)\b.*$/gm, "");
  assert.equal(stripped.match(/^(listen|tls|jetstream)\b/gm), null);
  const passwords = Object.fromEntries([...EXAMPLE_HOSTS.map(([h]) => h), "collector"].map((u) => [u, `pw-${u}-example`]));
  const vars = Object.entries(passwords).map(([u, pw]) => `${defaultPasswordVar(u)}: "${pw}"`).join("\n");
  const nats = await startNatsServer({ config: `${vars}\n${stripped}` });
  const conns: NatsConnection[] = [];
  try {
    const collector = await connectAs(nats.url, "collector", passwords.collector);
    conns.push(collector);
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const { ensureEventsStream } = await import("../src/nats/setup.ts");
    const { natsNames } = await import("../src/nats/subjects.ts");
    await ensureEventsStream(collector, natsNames("rtr"), createLogger({ level: "silent", write: () => {} }));
    assert.equal((await (await jetstreamManager(collector)).streams.info("RTR_EVENTS")).config.name, "RTR_EVENTS", "the collector creates the stream");
    for (const [host] of EXAMPLE_HOSTS) {
      const nc = await connectAs(nats.url, host, passwords[host], `_INBOX_${host.replace(/\./g, "=2E")}`);
      conns.push(nc);
      const own = host.replace(/\./g, "=2E");
      assert.equal(await settled(jetstream(nc).publish(`rtr.events.${own}.=.agent.started`, "{}", { timeout: 5000 })), "ok", `${host} publishes its own event`);
      assert.match(await settled(jetstream(nc).publish("rtr.events.someone-else.=.agent.started", "{}", { timeout: 5000 })), /Permissions Violation/, `${host} cannot publish another host's`);
    }
    assert.equal((await (await jetstreamManager(collector)).streams.info("RTR_EVENTS")).state.messages, 3);
  } finally {
    for (const nc of conns) await nc.close();
    await nats.close();
  }
});
