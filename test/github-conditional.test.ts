// Issue 18, GitHub budget: the status call (GET {scope}/actions/runners/{id}) and the `?name=`
// list are conditional on the ETag of the last answer; a 304 does not count against GitHub's
// primary rate limit, and /metrics counts counted and 304 requests apart.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { GitHubClient } from "../src/github/client.ts";
import { AgentTelemetry } from "../src/agent/telemetry.ts";
import { createLogger } from "../src/shared/logger.ts";
import { createAgentApp } from "../src/http/agent-app.ts";
import { startFakeGitHub, type FakeGitHub } from "./helpers/fake-github.ts";
import { makeWorld, runInProcess } from "./helpers/agent.ts";

const log = createLogger({ level: "silent" } as never);

function client(github: FakeGitHub, telemetry: AgentTelemetry): GitHubClient {
  return new GitHubClient({
    apiUrl: github.url,
    auth: { kind: "token", token: github.pat },
    requestTimeout: 10,
    retry: { maxRetries: 1, retryBackoff: 0.01, maxRetryWait: 1 },
    observer: telemetry,
    userAgent: "rtr-test",
  });
}

test("fake github - answers the runner by id with an ETag, and 304 without a body or a rate-limit charge when it matches", async () => {
  const github = await startFakeGitHub();
  try {
    const r = github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
    const get = (etag?: string) => fetch(`${github.url}/orgs/acme/actions/runners/${r.id}`, { headers: { authorization: `token ${github.pat}`, ...(etag ? { "if-none-match": etag } : {}) } });
    const first = await get();
    assert.equal(first.status, 200);
    const etag = first.headers.get("etag");
    assert.match(etag ?? "", /^W\/"[0-9a-f]+"$/);
    await first.json();
    const remaining = github.rateLimit.remaining;
    const again = await get(etag!);
    assert.equal(again.status, 304);
    assert.equal(await again.text(), "");
    assert.equal(again.headers.get("etag"), etag);
    assert.equal(github.rateLimit.remaining, remaining, "a 304 is not charged");
    assert.equal(again.headers.get("x-ratelimit-remaining"), String(remaining));
    github.setStatus(r.id, "offline");
    const changed = await get(etag!);
    assert.equal(changed.status, 200, "a changed runner is answered in full");
    assert.notEqual(changed.headers.get("etag"), etag);
    assert.equal(((await changed.json()) as { status: string }).status, "offline");
    assert.equal(github.rateLimit.remaining, remaining - 1);
    assert.deepEqual(github.schemaErrors, []);
  } finally {
    await github.close();
  }
});

test("github budget - a status read answered 304 shows in /metrics as not counted against the rate limit", async () => {
  const github = await startFakeGitHub();
  const telemetry = new AgentTelemetry(log);
  const app = createAgentApp({ scopes: ["org:acme"], runners: ["runner-1"], interval: 60, telemetry, alerts: null, outboxPending: async () => 0, outboxDropped: async () => 0 });
  try {
    const r = github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
    const gh = client(github, telemetry);
    const signal = new AbortController().signal;
    const first = await gh.getRunnerConditional({ org: "acme" }, r.id, signal);
    assert.ok(!first.notModified && first.runner?.status === "online" && first.etag);
    const second = await gh.getRunnerConditional({ org: "acme" }, r.id, signal, first.etag);
    assert.deepEqual(second, { notModified: true });
    const text = await (await app.app.request("/metrics")).text();
    assert.match(text, /^rtr_github_requests_total\{counted="true"\} 1$/m);
    assert.match(text, /^rtr_github_requests_total\{counted="false"\} 1$/m);
    assert.match(text, /^runner_token_github_requests_total\{endpoint="runner",status="304"\} 1$/m);
    assert.match(text, /^runner_token_github_requests_total\{endpoint="runner",status="200"\} 1$/m);
    app.close();
  } finally {
    await github.close();
  }
});

test("github budget - the name lookup is conditional too: an unchanged list costs nothing and gives the same runners", async () => {
  const github = await startFakeGitHub();
  try {
    github.addRunner({ name: "runner-1", scope: "org:acme", status: "online" });
    const gh = client(github, new AgentTelemetry(log));
    const signal = new AbortController().signal;
    const first = await gh.findRunnersByName({ org: "acme" }, "runner-1", signal);
    const remaining = github.rateLimit.remaining;
    const second = await gh.findRunnersByName({ org: "acme" }, "runner-1", signal);
    assert.deepEqual(second, first);
    assert.equal(github.calls.at(-1)?.status, 304);
    assert.equal(github.rateLimit.remaining, remaining);
  } finally {
    await github.close();
  }
});

test("check - a status check of an unchanged runner is a free 304 and keeps what GitHub said; a change is seen at once", async () => {
  const w = await makeWorld();
  try {
    const path = await w.config(`
github: { statusInterval: 0 }
refresh: { retryBackoff: 0.01 }
runners:
  - { dir: ${w.runner.dir}, scope: { org: acme }, name: runner-1, service: none }
`);
    const args = ["check", "--config", path];
    assert.equal((await runInProcess(args, w.env)).code, 0, "registers");
    const id = JSON.parse((await readFile(join(w.runner.dir, ".runner"), "utf8")).replace(/^\uFEFF/, "")).agentId as number;
    w.github.setStatus(id, "online");
    assert.equal((await runInProcess(args, w.env)).code, 0);
    const statusCalls = () => w.github.calls.filter((c) => c.method === "GET" && c.path.startsWith(`/orgs/acme/actions/runners/${id}`));
    assert.equal(statusCalls().at(-1)?.status, 200, "the first status read after registering is a full one");
    const remaining = w.github.rateLimit.remaining;
    const run = await runInProcess(args, w.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(statusCalls().at(-1)?.status, 304, "the runner did not change: 304");
    assert.equal(w.github.rateLimit.remaining, remaining, "no request of that pass counted against the rate limit");
    let m = await w.metrics();
    assert.equal(m.runners[0].online, true, "a 304 keeps the last answer");
    assert.equal(m.runners[0].status, "ok");
    w.github.setStatus(id, "offline");
    assert.equal((await runInProcess(args, w.env)).code, 0);
    assert.equal(statusCalls().at(-1)?.status, 200);
    m = await w.metrics();
    assert.equal(m.runners[0].online, false, "the change is read in full");
    assert.deepEqual(w.github.schemaErrors, []);
  } finally {
    await w.close();
  }
});
