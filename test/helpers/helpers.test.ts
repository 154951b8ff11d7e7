import { test } from "./test.ts";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeGitHub } from "./fake-github.ts";
import type { FakeGitHub } from "./fake-github.ts";
import { makeRunnerDir } from "./runner-dir.ts";
import type { FakeRunnerDir } from "./runner-dir.ts";
import { assertNoSecrets, collectFiles } from "./no-secrets.ts";

type Ctx = { after(fn: () => unknown): void };

async function fake(t: Ctx, opts?: Parameters<typeof startFakeGitHub>[0]): Promise<FakeGitHub> {
  const gh = await startFakeGitHub(opts);
  t.after(() => gh.close());
  return gh;
}

async function runnerDir(t: Ctx, gh: FakeGitHub, serviceFile = false): Promise<FakeRunnerDir> {
  const rd = await makeRunnerDir({ github: gh, serviceFile });
  t.after(() => rd.cleanup());
  return rd;
}

function api(gh: FakeGitHub, method: string, path: string, auth: string | null = `token ${gh.pat}`) {
  return fetch(gh.url + path, { method, headers: auth ? { authorization: auth } : {} });
}

async function mint(gh: FakeGitHub, scopePath: string): Promise<string> {
  const res = await api(gh, "POST", `${scopePath}/actions/runners/registration-token`);
  assert.equal(res.status, 201);
  return ((await res.json()) as { token: string }).token;
}

function run(file: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const configure = (rd: FakeRunnerDir, url: string, token: string, extra: string[] = []) =>
  run(join(rd.dir, "config.sh"), ["--unattended", "--url", url, "--name", "r1", ...extra], {
    ACTIONS_RUNNER_INPUT_TOKEN: token,
  });

test("fake github - answers every route in the shapes of GitHub's OpenAPI description", async (t) => {
  const gh = await fake(t);
  for (const scope of ["/orgs/acme", "/repos/acme/app", "/enterprises/big"]) {
    const token = await api(gh, "POST", `${scope}/actions/runners/registration-token`);
    const body = (await token.json()) as { token: string; expires_at: string };
    assert.match(body.token, /^[A-Z0-9]{29}$/);
    assert.match(body.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-08:00$/);
    assert.equal((await api(gh, "POST", `${scope}/actions/runners/remove-token`)).status, 201);
    const s = scope.startsWith("/orgs") ? "org:acme" : scope.startsWith("/repos") ? "repo:acme/app" : "enterprise:big";
    const idle = gh.addRunner({ name: "idle", scope: s });
    const busy = gh.addRunner({ name: "busy", scope: s, status: "online", busy: true });
    assert.equal((await api(gh, "GET", `${scope}/actions/runners?name=idle`)).status, 200);
    assert.equal((await api(gh, "GET", `${scope}/actions/runners/${idle.id}`)).status, 200);
    assert.equal((await api(gh, "DELETE", `${scope}/actions/runners/${busy.id}`)).status, 422);
    assert.equal((await api(gh, "DELETE", `${scope}/actions/runners/${idle.id}`)).status, 204);
    assert.equal((await api(gh, "GET", `${scope}/actions/runners/${idle.id}`)).status, 404);
  }
  assert.equal(gh.mintedTokens.length, 3);
  assert.equal(gh.count({ route: "delete" }), 6);
  assert.equal(gh.count({ method: "get", route: "status" }), 6);
  assert.deepEqual(gh.schemaErrors, []);
});

test("fake github - records a response body that breaks the schema", async (t) => {
  const gh = await fake(t);
  const bad = gh.addRunner({ name: "bad", scope: "org:acme" });
  bad.labels = [{ id: 1, name: "x", type: "bogus" as "custom" }];
  assert.equal((await api(gh, "GET", `/orgs/acme/actions/runners/${bad.id}`)).status, 200);
  assert.equal(gh.schemaErrors.length, 1);
  assert.match(gh.schemaErrors[0], /GET \/orgs\/\{org\}\/actions\/runners\/\{runner_id\} 200: .*allowed values/);
});

test("fake github - rejects a request without credentials", async (t) => {
  const gh = await fake(t);
  for (const auth of [null, "token ghp_wrong", `Basic ${gh.pat}`]) {
    const res = await api(gh, "POST", "/orgs/acme/actions/runners/registration-token", auth);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { message: string }).message, "Bad credentials");
  }
  assert.equal((await api(gh, "GET", "/orgs/acme/actions/runners", `Bearer ${gh.pat}`)).status, 200);
  assert.deepEqual(gh.calls.map((c) => c.status), [401, 401, 401, 200]);
  assert.equal(gh.mintedTokens.length, 0);
  assert.deepEqual(gh.schemaErrors, []);
});

test("fake github - serves injected faults in order, then behaves normally", async (t) => {
  const gh = await fake(t);
  gh.inject("token", { status: 500, body: { message: "Server Error" } }, { status: 403, headers: { "retry-after": "7" } });
  gh.inject("any", { status: 0 });
  const first = await api(gh, "POST", "/orgs/acme/actions/runners/registration-token");
  assert.equal(first.status, 500);
  const second = await api(gh, "POST", "/orgs/acme/actions/runners/registration-token");
  assert.equal(second.status, 403);
  assert.equal(second.headers.get("retry-after"), "7");
  assert.ok(second.headers.get("x-ratelimit-remaining"), "injected answers still carry rate-limit headers");
  await assert.rejects(api(gh, "GET", "/orgs/acme/actions/runners"), TypeError); // socket destroyed
  assert.equal((await api(gh, "POST", "/orgs/acme/actions/runners/registration-token")).status, 201);
  gh.inject("list", { status: 200, body: {}, delayMs: 5_000 });
  await assert.rejects(
    fetch(`${gh.url}/orgs/acme/actions/runners`, { headers: { authorization: `token ${gh.pat}` }, signal: AbortSignal.timeout(100) }),
  );
  assert.deepEqual(gh.calls.map((c) => c.status).slice(0, 4), [500, 403, 0, 201]);
  assert.equal(gh.count({ route: "token" }), 3);
  assert.deepEqual(gh.schemaErrors, []);
});

test("fake github - paginates the runner list with a Link header", async (t) => {
  const gh = await fake(t);
  for (let i = 0; i < 5; i++) gh.addRunner({ name: `r${i}`, scope: "org:acme" });
  gh.addRunner({ name: "elsewhere", scope: "repo:acme/app" });
  const p1 = await api(gh, "GET", "/orgs/acme/actions/runners?per_page=2");
  const body = (await p1.json()) as { total_count: number; runners: { name: string }[] };
  assert.equal(body.total_count, 5);
  assert.deepEqual(body.runners.map((r) => r.name), ["r0", "r1"]);
  const link = p1.headers.get("link") ?? "";
  assert.match(link, /<http:\/\/127\.0\.0\.1:\d+\/orgs\/acme\/actions\/runners\?per_page=2&page=2>; rel="next"/);
  assert.match(link, /page=3>; rel="last"/);
  const p3 = await api(gh, "GET", "/orgs/acme/actions/runners?per_page=2&page=3");
  assert.equal(((await p3.json()) as { runners: unknown[] }).runners.length, 1);
  assert.doesNotMatch(p3.headers.get("link") ?? "", /rel="next"/);
  const byName = await api(gh, "GET", "/orgs/acme/actions/runners?name=r3");
  assert.equal(((await byName.json()) as { total_count: number }).total_count, 1);
  assert.equal(byName.headers.get("link"), null);
  assert.deepEqual(gh.schemaErrors, []);
});

test("fake github - sends GitHub's headers, shifted clock and configured expiry offset", async (t) => {
  const gh = await fake(t, { expiresOffset: "+00:00", tokenTtlSeconds: 60 });
  gh.clockOffsetSeconds = 3600;
  gh.patExpiry = "2026-12-01 10:00:00 UTC";
  const res = await api(gh, "POST", "/repos/acme/app/actions/runners/registration-token");
  const { expires_at } = (await res.json()) as { expires_at: string };
  assert.match(expires_at, /\+00:00$/);
  const serverNow = Date.parse(res.headers.get("date") ?? "");
  assert.ok(Math.abs(serverNow - (Date.now() + 3600_000)) < 5_000);
  assert.ok(Math.abs(Date.parse(expires_at) - serverNow - 60_000) < 5_000);
  assert.equal(res.headers.get("github-authentication-token-expiration"), "2026-12-01 10:00:00 UTC");
  assert.equal(res.headers.get("x-ratelimit-remaining"), "4999");
  assert.equal(res.headers.get("x-ratelimit-used"), "1");
  const next = await api(gh, "GET", "/repos/acme/app/actions/runners");
  assert.equal(next.headers.get("x-ratelimit-remaining"), "4998");
  gh.rateLimit.remaining = 0;
  const limited = await api(gh, "GET", "/repos/acme/app/actions/runners");
  assert.equal(limited.status, 403);
  assert.equal(limited.headers.get("x-ratelimit-remaining"), "0");
});

test("fake github - authenticates a GitHub App and accepts its installation token", async (t) => {
  const gh = await fake(t);
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const jwt = `${b64({ alg: "RS256" })}.${b64({ iat: now - 60, exp: now + 540, iss: 77 })}.sig`;
  assert.equal((await api(gh, "GET", "/orgs/acme/installation", `Bearer ${gh.pat}`)).status, 401);
  const inst = await api(gh, "GET", "/orgs/acme/installation", `Bearer ${jwt}`);
  const installation = (await inst.json()) as { id: number; app_id: number; account: { login: string } };
  assert.deepEqual([installation.id, installation.app_id, installation.account.login], [4242, 77, "acme"]);
  const tooLong = `${b64({ alg: "RS256" })}.${b64({ iat: now, exp: now + 3600, iss: 77 })}.sig`;
  assert.equal((await api(gh, "POST", "/app/installations/4242/access_tokens", `Bearer ${tooLong}`)).status, 401);
  const tok = await api(gh, "POST", "/app/installations/4242/access_tokens", `Bearer ${jwt}`);
  assert.equal(tok.status, 201);
  const { token } = (await tok.json()) as { token: string };
  assert.match(token, /^ghs_/);
  assert.equal((await api(gh, "POST", "/orgs/acme/actions/runners/registration-token", `Bearer ${token}`)).status, 201);
  assert.deepEqual(gh.schemaErrors, []);
});

test("runner dir - config.sh registers and writes .runner with a BOM", async (t) => {
  const gh = await fake(t);
  const rd = await runnerDir(t, gh);
  const token = await mint(gh, "/orgs/acme");
  const r = await configure(rd, "https://github.com/acme", token, ["--replace", "--labels", "gpu,big", "--ephemeral"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /√ Runner successfully added/);
  assert.match(r.stdout, /√ Settings Saved\./);
  const raw = readFileSync(join(rd.dir, ".runner"), "utf8");
  assert.equal(raw.charCodeAt(0), 0xfeff);
  const settings = JSON.parse(raw.slice(1));
  const runner = gh.runners.get(settings.agentId);
  assert.ok(runner);
  assert.equal(runner.name, "r1");
  assert.equal(runner.scope, "org:acme");
  assert.equal(runner.ephemeral, true);
  assert.equal(settings.ephemeral, true);
  assert.deepEqual(runner.labels.map((l) => `${l.name}:${l.type}`), ["self-hosted:read-only", "Linux:read-only", "X64:read-only", "gpu:custom", "big:custom"]);
  assert.equal(statSync(join(rd.dir, ".credentials_rsaparams")).mode & 0o777, 0o600);
  assert.deepEqual(rd.invocations("config.sh").map((i) => i.tokenFromEnv), [true]);
  assert.ok(!rd.argvLog()[0].includes(token));
  assertNoSecrets([token], [{ label: "stdout", text: r.stdout + r.stderr }, ...(await collectFiles(rd.dir))]);
});

test("runner dir - config.sh refuses while .runner exists and on a name clash without --replace", async (t) => {
  const gh = await fake(t);
  const rd = await runnerDir(t, gh);
  const token = await mint(gh, "/orgs/acme");
  rd.writeRunnerFiles({ agentId: 5, name: "r1", url: "https://github.com/acme" });
  const refused = await configure(rd, "https://github.com/acme", token);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /already configured/);
  assert.equal(gh.runners.size, 0);

  const old = gh.addRunner({ name: "r1", scope: "org:acme" });
  await rm(join(rd.dir, ".runner"));
  const clash = await configure(rd, "https://github.com/acme", token);
  assert.equal(clash.code, 1);
  assert.match(clash.stderr, /A runner exists with the same name/);
  const replaced = await configure(rd, "https://github.com/acme", token, ["--replace"]);
  assert.equal(replaced.code, 0, replaced.stderr);
  assert.match(replaced.stdout, /Successfully replaced the runner/);
  assert.equal(gh.runners.has(old.id), false);
  assert.equal([...gh.runners.values()].filter((r) => r.name === "r1").length, 1);
});

test("runner dir - a stale or foreign-scope token fails with NotFound", async (t) => {
  const gh = await fake(t, { tokenTtlSeconds: 3600 });
  const rd = await runnerDir(t, gh);
  const foreign = await mint(gh, "/repos/acme/app");
  const r1 = await configure(rd, "https://github.com/acme", foreign);
  assert.equal(r1.code, 1);
  assert.match(r1.stderr, /Http response code: NotFound from 'POST https:\/\/api\.github\.com\/actions\/runner-registration'/);
  const stale = await mint(gh, "/orgs/acme");
  gh.clockOffsetSeconds = 3601; // an hour later on GitHub's clock
  const r2 = await configure(rd, "https://github.com/acme", stale);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /NotFound/);
  assert.equal(existsSync(join(rd.dir, ".runner")), false);
  assertNoSecrets([foreign, stale], [{ label: "output", text: r1.stdout + r1.stderr + r2.stdout + r2.stderr }]);
});

test("runner dir - config modes imitate hangs and failures", async (t) => {
  const gh = await fake(t);
  const rd = await runnerDir(t, gh);
  const token = await mint(gh, "/orgs/acme");
  rd.setConfigMode("exists");
  assert.match((await configure(rd, "https://github.com/acme", token)).stderr, /A runner exists with the same name/);
  rd.setConfigMode("fail");
  assert.match((await configure(rd, "https://github.com/acme", token)).stderr, /NotFound/);
  rd.setConfigMode("no-runner-file");
  assert.equal((await configure(rd, "https://github.com/acme", token)).code, 0);
  assert.equal(existsSync(join(rd.dir, ".runner")), false);
  rd.setConfigMode("hang");
  const started = Date.now();
  const hung = await new Promise<number | null>((resolve) => {
    const child = execFile(join(rd.dir, "config.sh"), ["--unattended"], () => resolve(child.exitCode));
    setTimeout(() => child.kill("SIGTERM"), 500);
  });
  assert.notEqual(hung, 0);
  assert.ok(Date.now() - started >= 450);
});

test("runner dir - config.sh refuses root without RUNNER_ALLOW_RUNASROOT when asked to check", async (t) => {
  const gh = await fake(t);
  const rd = await runnerDir(t, gh);
  const token = await mint(gh, "/orgs/acme");
  const args = ["--unattended", "--url", "https://github.com/acme", "--name", "r1"];
  const refused = await run(join(rd.dir, "config.sh"), args, { FAKE_RUNNER_CHECK_ROOT: "1", FAKE_RUNNER_UID: "0", ACTIONS_RUNNER_INPUT_TOKEN: token });
  assert.equal(refused.code, 1);
  assert.match(refused.stdout, /Must not run with sudo/);
  const allowed = await run(join(rd.dir, "config.sh"), args, {
    FAKE_RUNNER_CHECK_ROOT: "1",
    FAKE_RUNNER_UID: "0",
    RUNNER_ALLOW_RUNASROOT: "1",
    ACTIONS_RUNNER_INPUT_TOKEN: token,
  });
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.deepEqual(rd.invocations("config.sh").map((i) => i.tokenFromEnv), [true, true]);
});

test("runner dir - svc.sh start and stop move the runner on and offline on the fake", async (t) => {
  const gh = await fake(t);
  const rd = await runnerDir(t, gh, true);
  const notConfigured = await run(join(rd.dir, "svc.sh"), ["start"]);
  assert.equal(notConfigured.code, 1);
  const runner = gh.addRunner({ name: "r1", scope: "org:acme" });
  rd.writeRunnerFiles({ agentId: runner.id, name: "r1", url: "https://github.com/acme", migrated: true });
  const started = await run(join(rd.dir, "svc.sh"), ["start"]);
  assert.equal(started.code, 0, started.stderr);
  assert.equal(rd.serviceState(), "active");
  assert.equal(runner.status, "online");
  assert.match((await run(join(rd.dir, "svc.sh"), ["status"])).stdout, /Active: active \(running\)/);
  await run(join(rd.dir, "svc.sh"), ["stop"]);
  assert.equal(runner.status, "offline");
  assert.match((await run(join(rd.dir, "svc.sh"), ["status"])).stdout, /Active: inactive \(dead\)/);
  rd.setServiceState("active"); // a crash GitHub has not noticed yet
  assert.equal(runner.status, "offline");
  gh.deleteRunner(runner.id);
  rd.setServiceState("inactive");
  await run(join(rd.dir, "svc.sh"), ["start"]);
  assert.equal(rd.serviceState(), "inactive", "a deleted registration stops the listener");
  assert.deepEqual(rd.invocations("svc.sh").map((i) => i.argv[0]), ["start", "start", "status", "stop", "status", "start"]);
});

test("runner dir - config.sh remove --local needs the service uninstalled first", async (t) => {
  const gh = await fake(t);
  const rd = await runnerDir(t, gh, true);
  rd.writeRunnerFiles({ agentId: 3, name: "r1", url: "https://github.com/acme" });
  const blocked = await run(join(rd.dir, "config.sh"), ["remove", "--local"]);
  assert.equal(blocked.code, 1);
  assert.match(blocked.stderr, /Uninstall service first/);
  await rm(join(rd.dir, ".service"));
  const ok = await run(join(rd.dir, "config.sh"), ["remove", "--local"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(existsSync(join(rd.dir, ".runner")), false);
  assert.equal(existsSync(join(rd.dir, ".credentials")), false);
});

test("runner dir - config.sh remove --token deletes the registration on the fake", async (t) => {
  const gh = await fake(t);
  const rd = await runnerDir(t, gh);
  const token = await mint(gh, "/repos/acme/app");
  assert.equal((await configure(rd, "https://github.com/acme/app", token)).code, 0);
  const removeToken = ((await (await api(gh, "POST", "/repos/acme/app/actions/runners/remove-token")).json()) as { token: string }).token;
  const r = await run(join(rd.dir, "config.sh"), ["remove"], { ACTIONS_RUNNER_INPUT_TOKEN: removeToken });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(gh.runners.size, 0);
  assert.equal(existsSync(join(rd.dir, ".runner")), false);
});

test("no secrets - catches a planted secret without printing it", async (t) => {
  const secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
  assert.doesNotThrow(() => assertNoSecrets([secret, "abc"], [{ label: "log", text: "nothing here abc" }]));
  assert.throws(
    () => assertNoSecrets([secret], [{ label: "ok", text: "fine" }, { label: "agent log", text: `auth=${secret}!` }]),
    (err: unknown) => {
      assert.ok(err instanceof assert.AssertionError);
      assert.match(err.message, /agent log contains secret ghp_…/);
      assert.ok(!err.message.includes(secret));
      return true;
    },
  );
  assert.throws(() => assertNoSecrets(["a b/c=d&e"], [{ label: "url", text: "?q=a%20b%2Fc%3Dd%26e" }]), /url/);

  const dir = await mkdtemp(join(tmpdir(), "no-secrets-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, "nested", "deep"), { recursive: true });
  await writeFile(join(dir, "nested", "deep", "state.json"), `{"token":"${secret}"}`);
  writeFileSync(join(dir, "clean.txt"), "clean");
  const files = await collectFiles(dir);
  assert.deepEqual(files.map((f) => f.label), ["clean.txt", "nested/deep/state.json"]);
  assert.throws(() => assertNoSecrets([secret], files), /nested\/deep\/state\.json/);
  assert.deepEqual((await collectFiles(dir, { exclude: (p) => p === "nested" })).map((f) => f.label), ["clean.txt"]);
});
