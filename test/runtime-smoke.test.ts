// The Deno side and the single-file bundle, proven by running them: `check` registers a runner
// against the fake GitHub and a daemon pass stops cleanly on SIGTERM, under `deno run` with the
// documented narrow permissions, and the bundle copied alone into an empty dir under node and deno.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { build } from "esbuild";
import { bundleOptions } from "../scripts/bundle-options.ts";
import { REPO_ROOT, makeWorld, parseLogs, waitFor, type AgentRun } from "./helpers/agent.ts";

export const DENO_PERMISSIONS = ["--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-run", "--allow-sys=hostname,homedir,uid"];

function denoBinary(): string {
  return "Deno" in globalThis ? process.execPath : "deno";
}

function run(argv: string[], env: Record<string, string>, cwd: string, onStart?: (kill: (s: NodeJS.Signals) => void, out: () => string) => void): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 128, stdout, stderr, logs: parseLogs(stdout) }));
    // process.kill, not child.kill: see SpawnedAgent.kill in helpers/agent.ts.
    onStart?.((s) => child.pid && process.kill(child.pid, s), () => stdout);
  });
}

async function bundleInto(dir: string): Promise<string> {
  const outfile = join(dir, "runner-token-refresh.mjs");
  await build({ ...bundleOptions(REPO_ROOT, outfile), logLevel: "error" });
  return outfile;
}

async function assertRegistered(w: Awaited<ReturnType<typeof makeWorld>>, result: AgentRun): Promise<void> {
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const runnerFile = await readFile(join(w.runner.dir, ".runner"), "utf8");
  assert.ok(w.github.runners.has(JSON.parse(runnerFile.replace(/^\uFEFF/, "")).agentId));
  assert.equal((await w.metrics()).runners[0].status, "ok");
  await w.assertNoLeaks([result]);
}

test("deno - check registers a runner through src/main.deno.ts with narrow permissions", async () => {
  const w = await makeWorld();
  try {
    const result = await run([denoBinary(), "run", ...DENO_PERMISSIONS, join(REPO_ROOT, "src/main.deno.ts"), "check"], w.env, REPO_ROOT);
    await assertRegistered(w, result);
    assert.ok(result.logs.some((l) => l.event === "token.refreshed"));
  } finally {
    await w.close();
  }
});

test("deno - a daemon pass runs, and SIGTERM stops the daemon with exit 0", async () => {
  const w = await makeWorld();
  try {
    const result = await run([denoBinary(), "run", ...DENO_PERMISSIONS, join(REPO_ROOT, "src/main.deno.ts"), "daemon", "--interval", "1"], w.env, REPO_ROOT, (kill, out) => {
      waitFor(() => out().includes('"pass finished"'), "a daemon pass").then(() => kill("SIGTERM"), () => kill("SIGKILL"));
    });
    await assertRegistered(w, result);
    assert.ok(result.logs.some((l) => l.event === "agent.stopped"), "agent.stopped emitted on SIGTERM");
  } finally {
    await w.close();
  }
});

for (const runtime of ["node", "deno"] as const) {
  test(`bundle - runs check from an empty dir with no node_modules under ${runtime}`, async () => {
    const w = await makeWorld();
    const empty = await mkdtemp(join(tmpdir(), "rtr-bundle-"));
    try {
      const bundle = await bundleInto(empty);
      // The entry and its chunks together: the whole agent, not a stub that needs node_modules.
      const chunks = join(bundle, "..", "chunks");
      const sizes = await Promise.all([bundle, ...(await readdir(chunks)).map((f) => join(chunks, f))].map(async (f) => (await stat(f)).size));
      assert.ok(sizes.reduce((a, b) => a + b, 0) > 500_000, `bundle of ${sizes.length} files`);
      const argv = runtime === "node" ? ["node", bundle, "check"] : [denoBinary(), "run", ...DENO_PERMISSIONS, bundle, "check"];
      const result = await run(argv, w.env, empty);
      await assertRegistered(w, result);
    } finally {
      await rm(empty, { recursive: true, force: true });
      await w.close();
    }
  });
}
