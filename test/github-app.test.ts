import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeWorld, runInProcess } from "./helpers/agent.ts";

function appKey(): string {
  return generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
}

test("github app - looks up the installation by scope, mints with an installation token, never leaks the key", async () => {
  const w = await makeWorld();
  try {
    const key = appKey();
    const keyFile = join(w.tmp, "app.pem");
    await writeFile(keyFile, key, { mode: 0o600 });
    const { GITHUB_TOKEN: _pat, ...env } = w.env;
    const run = await runInProcess(["check"], { ...env, GITHUB_APP_ID: "1234", GITHUB_APP_PRIVATE_KEY_FILE: keyFile });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const paths = w.github.calls.map((c) => `${c.method} ${c.path.split("?")[0]}`);
    assert.ok(paths.includes("GET /orgs/acme/installation"), paths.join("\n"));
    assert.ok(paths.some((p) => /^POST \/app\/installations\/\d+\/access_tokens$/.test(p)));
    const mint = w.github.calls.find((c) => c.path.endsWith("/registration-token"))!;
    assert.ok(mint.auth && w.github.installationTokens.has(mint.auth.replace(/^(token|bearer) /i, "")), "minted with the installation token");
    assert.equal((await w.metrics()).runners[0].registered, true);
    const keyLines = key.split("\n").filter((l) => l.length > 40);
    await w.assertNoLeaks([run]);
    const { assertNoSecrets } = await import("./helpers/no-secrets.ts");
    assertNoSecrets(keyLines, await w.outputs([run]));
  } finally {
    await w.close();
  }
});

test("github app - an explicit installation id skips the lookup", async () => {
  const w = await makeWorld();
  try {
    const keyFile = join(w.tmp, "app.pem");
    await writeFile(keyFile, appKey(), { mode: 0o600 });
    const { GITHUB_TOKEN: _pat, ...env } = w.env;
    const run = await runInProcess(["check"], { ...env, GITHUB_APP_ID: "1234", GITHUB_APP_PRIVATE_KEY_FILE: keyFile, GITHUB_APP_INSTALLATION_ID: "4242" });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.ok(!w.github.calls.some((c) => c.path.endsWith("/installation")));
  } finally {
    await w.close();
  }
});

test("github app - an unreadable private key file is a configuration error naming the variable", async () => {
  const w = await makeWorld();
  try {
    const { GITHUB_TOKEN: _pat, ...env } = w.env;
    const run = await runInProcess(["check"], { ...env, GITHUB_APP_ID: "1234", GITHUB_APP_PRIVATE_KEY_FILE: join(w.tmp, "missing.pem") });
    assert.equal(run.code, 78);
    assert.match(run.stderr, /^error: GITHUB_APP_PRIVATE_KEY_FILE: .*cannot read .*missing\.pem/);
    assert.equal(run.stderr.trim().split("\n").length, 1);
  } finally {
    await w.close();
  }
});
