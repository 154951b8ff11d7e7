// The token broker knows who asks (docs/fleet.md, "Who may ask"): the reply inbox names the host,
// which must be the host the request names and one listed for the scope; refusals get an {error},
// a broker.refused event and a log line, never a token. A failed mint is answered from memory
// during its backoff. And an agent in fleet mode refuses plain NATS to a non-loopback server.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { runInProcess, waitFor } from "./helpers/agent.ts";
import { startFakeGitHub, type FakeGitHub } from "./helpers/fake-github.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector, type TestCollector } from "./helpers/collector.ts";
import { streamEvents } from "./helpers/nats-read.ts";
import { assertNoSecrets } from "./helpers/no-secrets.ts";
import { MINT_BACKOFF_INITIAL_MS, MINT_BACKOFF_MAX_MS, MintBackoffError, TokenBroker } from "../src/fleet/broker.ts";
import { hostMatches } from "../src/fleet/authz.ts";
import { agentTransportProblem } from "../src/fleet/transport.ts";
import { hostOfInbox, inboxPrefixFor } from "../src/nats/subjects.ts";
import { createLogger } from "../src/shared/logger.ts";
import { createCollectorRegistry } from "../src/http/collector-metrics.ts";
import type { GitHubClient } from "../src/github/client.ts";

interface Setup {
  nats: NatsServer;
  github: FakeGitHub;
  c: TestCollector;
  /** A client whose replies arrive under `inboxPrefix` (what a host's NATS user is allowed). */
  client(inboxPrefix?: string): Promise<NatsConnection>;
  ask(nc: NatsConnection, scope: string, host: string): Promise<{ token?: string; expires_at?: string; error?: string }>;
  close(): Promise<void>;
}

async function setup(options: { pat?: string } = {}): Promise<Setup> {
  const nats = await startNatsServer();
  const github = await startFakeGitHub();
  github.addRunner({ name: "r-1", scope: "org:acme" });
  const c = startCollector(
    collectorConfig(nats.url, { github: { apiUrl: github.url, token: options.pat ?? github.pat }, fleetScopes: [{ org: "acme", hosts: ["ci-*"] }, { org: "beta", hosts: ["build-01"] }], pollInterval: 1 }),
  );
  const clients: NatsConnection[] = [];
  await waitFor(() => c.collector.broker?.answering === true, "the leader's broker answers", 20_000);
  return {
    nats,
    github,
    c,
    async client(inboxPrefix) {
      const nc = await connect({ servers: nats.url, inboxPrefix });
      clients.push(nc);
      return nc;
    },
    async ask(nc, scope, host) {
      const msg = await nc.request(`rtr.token.${scope}`, JSON.stringify({ v: 1, host, runner: null }), { timeout: 10_000 });
      return msg.json();
    },
    async close() {
      for (const nc of clients) await nc.close();
      await c.close();
      await github.close();
      await nats.close();
    },
  };
}

async function refusedEvents(url: string): Promise<{ subject: string; event: Record<string, any> }[]> {
  return (await streamEvents(url)).filter((s) => s.event.type === ("broker.refused" as string)).map((s) => ({ subject: s.subject, event: s.event as unknown as Record<string, any> }));
}

test("broker - answers a listed host at its own inbox, refuses a scope not listed for it or not brokered, with an {error}, a broker.refused event and a log line", async () => {
  const s = await setup();
  try {
    const ci01 = await s.client(inboxPrefixFor("ci-01"));
    const granted = await s.ask(ci01, "org=3Aacme", "ci-01");
    assert.ok(granted.token, `ci-01 may ask for org:acme: ${JSON.stringify(granted.error)}`);

    const notListed = await s.ask(ci01, "org=3Abeta", "ci-01");
    assert.equal(notListed.token, undefined);
    assert.match(notListed.error ?? "", /host ci-01 is not in fleet\.scopes\[org:beta\]\.hosts/);
    const notBrokered = await s.ask(ci01, "org=3Agamma", "ci-01");
    assert.equal(notBrokered.token, undefined);
    assert.match(notBrokered.error ?? "", /scope org:gamma is not in this collector's fleet\.scopes/);

    await waitFor(async () => (await refusedEvents(s.nats.url)).length === 2, "two broker.refused events", 10_000);
    const events = await refusedEvents(s.nats.url);
    assert.deepEqual(events.map((e) => e.subject), ["rtr.events.ci-01.=.broker.refused", "rtr.events.ci-01.=.broker.refused"]);
    assert.deepEqual(events.map((e) => [e.event.host, e.event.data.reason, e.event.data.scope]), [["ci-01", "host_not_allowed", "org:beta"], ["ci-01", "scope_not_brokered", "org:gamma"]]);
    assert.deepEqual(events[0].event.scope, { org: "beta" });
    assert.equal(s.c.collector.broker?.answered.refused, 2);
    assert.equal(s.c.collector.broker?.refusalCounts.get("host_not_allowed"), 1);
    assert.match(s.c.logs(), /token broker refused a request from ci-01 for org:beta: host ci-01 is not in fleet\.scopes/);
    await waitFor(() => (s.c.collector.eventCounts().get("broker.refused") ?? 0) === 2, "the collector counts them", 10_000);
    const metrics = await createCollectorRegistry(s.c.collector).metrics();
    assert.match(metrics, /runner_token_broker_refusals_total\{reason="host_not_allowed"\} 1/);
    assert.match(metrics, /runner_token_broker_refusals_total\{reason="scope_not_brokered"\} 1/);
    assert.match(metrics, /runner_token_broker_refusals_total\{reason="host_mismatch"\} 0/);
    assertNoSecrets(s.github.mintedTokens, [{ label: "collector log", text: s.c.logs() }, ...events.map((e, i) => ({ label: `event ${i}`, text: JSON.stringify(e.event) }))]);
  } finally {
    await s.close();
  }
});

test("broker - refuses a request whose reply inbox is not the named host's: another host's name, the shared _INBOX, a non-canonical encoding", async () => {
  const s = await setup();
  try {
    // ci-02 is allowed org:acme, but this client's replies arrive in ci-01's inbox.
    const ci01 = await s.client(inboxPrefixFor("ci-01"));
    const claimed = await s.ask(ci01, "org=3Aacme", "ci-02");
    assert.equal(claimed.token, undefined);
    assert.match(claimed.error ?? "", /names host ci-02 but its reply inbox belongs to host ci-01/);

    const shared = await s.client();
    const fromShared = await s.ask(shared, "org=3Aacme", "ci-01");
    assert.equal(fromShared.token, undefined);
    assert.match(fromShared.error ?? "", /reply subject is not a host inbox/);

    // `ci=2D01` decodes to ci-01, but it is not ci-01's inbox: no permission grants it to ci-01.
    const forged = await s.client("_INBOX_ci=2D01");
    const fromForged = await s.ask(forged, "org=3Aacme", "ci-01");
    assert.equal(fromForged.token, undefined);
    assert.match(fromForged.error ?? "", /not a host inbox/);

    // Two no_inbox refusals of ci-01 for org:acme within a minute: counted twice, reported once.
    await waitFor(async () => (await refusedEvents(s.nats.url)).length === 2, "two broker.refused events", 10_000);
    const events = await refusedEvents(s.nats.url);
    assert.equal(s.c.collector.broker?.refusalCounts.get("no_inbox"), 2);
    const mismatch = events.find((e) => e.event.data.reason === "host_mismatch")!;
    assert.equal(mismatch.event.host, "ci-01", "filed under the host the inbox proves, not the one claimed");
    assert.equal(mismatch.event.data.requested_host, "ci-02");
    assert.equal(events.filter((e) => e.event.data.reason === "no_inbox").length, 1);
    assert.equal(s.c.collector.broker?.answered.token, 0, "no token was handed out");
    assertNoSecrets(s.github.mintedTokens, [{ label: "collector log", text: s.c.logs() }, ...events.map((e, i) => ({ label: `event ${i}`, text: JSON.stringify(e.event) }))]);
  } finally {
    await s.close();
  }
});

test("broker - 50 requests during a GitHub 401 make one mint call, each answered with the error", async () => {
  const s = await setup({ pat: `ghp_${"x".repeat(36)}` });
  try {
    const nc = await s.client(inboxPrefixFor("ci-01"));
    // The leader's renewal may have made the first (failed) call already: it counts.
    const acmeMints = () => s.github.calls.filter((c) => c.method === "POST" && c.path.startsWith("/orgs/acme/actions/runners/registration-token")).length;
    for (let i = 0; i < 50; i++) {
      const answer = await s.ask(nc, "org=3Aacme", "ci-01");
      assert.equal(answer.token, undefined);
      assert.match(answer.error ?? "", /401|credentials/i, answer.error);
    }
    assert.equal(acmeMints(), 1, "one mint call for the whole storm");
    assert.match(s.c.logs(), /answering this error without asking GitHub for 30 s/);
  } finally {
    await s.close();
  }
});

test("broker - a failed mint backs off from 30 s doubling to 5 min; a success resets it", async () => {
  let now = 0;
  let failing = true;
  let calls = 0;
  const github = {
    async mintRegistrationToken() {
      calls++;
      if (failing) throw new Error("GitHub answered 401 Bad credentials");
      return { token: "minted-token-value", expiresAt: new Date(now + 3_600_000) };
    },
  } as unknown as GitHubClient;
  const broker = new TokenBroker({ nc: {} as NatsConnection, prefix: "rtr", github, scopes: [{ org: "acme", hosts: ["*"] }], threshold: 300, log: createLogger({ level: "silent", write: () => {} }), now: () => now });
  const scope = { org: "acme" };
  const attempt = (): Promise<string | Error> => broker.tokenFor(scope).then(() => "token", (err: Error) => err);

  // Each failure is answered from memory until its backoff passes; then GitHub is asked once more.
  assert.match(String(await attempt()), /401/);
  assert.equal(calls, 1);
  for (const seconds of [30, 60, 120, 240, 300, 300]) {
    const before: number = calls;
    now += seconds * 1000 - 1;
    const err = await attempt();
    assert.ok(err instanceof MintBackoffError, String(err));
    assert.match(err.message, /401 Bad credentials \(the broker asks GitHub again in 1 s\)/);
    assert.equal(calls, before, `no mint ${seconds * 1000 - 1} ms into a ${seconds} s backoff`);
    now += 1;
    assert.match(String(await attempt()), /401/);
    assert.equal(calls, before + 1, `one mint once the ${seconds} s backoff passed`);
  }
  assert.equal(MINT_BACKOFF_INITIAL_MS, 30_000);
  assert.equal(MINT_BACKOFF_MAX_MS, 300_000);

  now += MINT_BACKOFF_MAX_MS;
  failing = false;
  assert.equal(await attempt(), "token");
  // The token expires; the next failure starts again at 30 s.
  now += 3_600_000;
  failing = true;
  const before: number = calls;
  assert.match(String(await attempt()), /401/);
  now += MINT_BACKOFF_INITIAL_MS - 1;
  assert.ok((await attempt()) instanceof MintBackoffError);
  now += 1;
  await attempt();
  assert.equal(calls, before + 2, "after a success the backoff starts again at 30 s");
});

test("broker - host patterns and inbox identities", () => {
  assert.ok(hostMatches("ci-*", "ci-01.example.com"));
  assert.ok(hostMatches("*", "anything"));
  assert.ok(hostMatches("build-0?", "build-01"));
  assert.ok(!hostMatches("build-0?", "build-010"));
  assert.ok(!hostMatches("ci-01", "ci-01.example.com"), "a name without wildcards is exact");
  assert.ok(!hostMatches("ci.example.com", "ciXexample.com"), "dots are literal");
  assert.equal(hostOfInbox(`${inboxPrefixFor("ci.example.com")}.abc.1`), "ci.example.com");
  assert.equal(hostOfInbox("_INBOX.abc"), null);
  assert.equal(hostOfInbox("_INBOX_ci=2D01.abc"), null);
  assert.equal(hostOfInbox(undefined), null);
});

test("fleet agent - plain nats:// to a non-loopback server exits 78 with one line naming nats.servers and the fix, before connecting", async () => {
  const tmp = await mkdtemp(join(tmpdir(), "rtr-fleet-tls-"));
  try {
    const path = join(tmp, "agent.yaml");
    // `.invalid` never resolves, and the check runs before any connection is tried.
    await writeFile(
      path,
      `state: { dir: ${join(tmp, "state")} }
nats: { servers: [nats://nats.example.invalid:4222], name: ci-01 }
fleet: { enabled: true }
runners:
  - { dir: ${join(tmp, "runner")}, scope: { org: acme }, name: runner-1 }
`,
    );
    for (const command of ["check", "daemon"]) {
      const run = await runInProcess([command, "--config", path], {});
      assert.equal(run.code, 78, run.stdout + run.stderr);
      assert.equal(run.stderr.trim().split("\n").length, 1);
      assert.match(run.stderr, /nats\.servers: fleet mode receives registration tokens over NATS, and nats:\/\/nats\.example\.invalid:4222 is neither TLS nor loopback: use tls:\/\/ URLs or nats\.tls, a loopback server, or set fleet\.allowInsecure: true/);
      assert.doesNotMatch(run.stdout, /connected to NATS|unreachable/);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const base = { prefix: "rtr", name: "ci-01" };
  assert.equal(agentTransportProblem({ ...base, servers: ["nats://127.0.0.1:4222", "nats://localhost:4222", "nats://[::1]:4222", "127.0.0.2:4222"] }, false), null);
  assert.equal(agentTransportProblem({ ...base, servers: ["tls://nats.example.com:4222"] }, false), null);
  assert.equal(agentTransportProblem({ ...base, servers: ["nats://nats.example.com:4222"], tls: { ca: "/ca.pem" } }, false), null);
  assert.equal(agentTransportProblem({ ...base, servers: ["nats://nats.example.com:4222"] }, true), null);
  assert.match(agentTransportProblem({ ...base, servers: ["nats://127.0.0.1:4222", "nats://10.0.0.5:4222"] }, false) ?? "", /nats:\/\/10\.0\.0\.5:4222 is neither TLS nor loopback/);
});

test("collector - fleet.scopes must list the hosts that may ask: a missing or empty list is a config error (exit 78) naming the key and the fix", async () => {
  const tmp = await mkdtemp(join(tmpdir(), "rtr-fleet-hosts-"));
  try {
    const path = join(tmp, "collector.yaml");
    for (const [scopes, pattern] of [
      ["[{ org: acme }]", /collector\.yaml: fleet\.scopes\[0\]\.hosts: missing: list the hosts .* or hosts: \["\*"\] for every host/],
      ["[{ org: acme, hosts: [] }]", /fleet\.scopes\[0\]\.hosts: expected at least one host pattern/],
      ["[{ org: acme, hosts: [ci-*] }, { org: beta, host: [ci-*] }]", /fleet\.scopes\[1\]: expected one of org, repo, enterprise .*a fleet scope is \{ org \| repo \| enterprise: NAME, hosts: \[PATTERN, \.\.\.\] \}/],
    ] as [string, RegExp][]) {
      await writeFile(path, `nats: { servers: [nats://127.0.0.1:4222] }\nfleet: { scopes: ${scopes} }\n`);
      const run = await runInProcess(["collector", "--config", path], {});
      assert.equal(run.code, 78, run.stderr);
      assert.match(run.stderr, pattern);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
