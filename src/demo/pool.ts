/**
 * The demo's pool of two ephemeral JIT runners (SPEC 14): a template whose run.sh plays the
 * runner started with a JIT config (decodes it, goes online at the simulated GitHub, runs one
 * job, deregisters, exits), and the user its jobs run as. Jobs run as another user than the
 * agent (SPEC 15), so the pool part needs the demo to run as root; `nobody` stands in for the
 * jobs' user there.
 */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";
import { lookupUser } from "../privsep/users.ts";

const RUN_JS = `
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
const files = JSON.parse(Buffer.from(process.env.ACTIONS_RUNNER_INPUT_JITCONFIG ?? "", "base64").toString("utf8") || "{}");
for (const [name, content] of Object.entries(files)) writeFileSync(name, Buffer.from(content, "base64"));
const runner = JSON.parse(Buffer.from(files[".runner"], "base64").toString("utf8"));
const call = (path, method = "GET") => fetch(runner.serverUrl + path, { method }).then((r) => r.json());
process.on("SIGTERM", () => process.exit(0));
await call("/_sim/jit/" + runner.agentId + "/online", "POST");
console.log("Listening for Jobs");
for (;;) {
  const s = await call("/_sim/jit/" + runner.agentId).catch(() => ({ exists: true }));
  if (!s.exists) { console.log("The runner no longer exists on the server."); process.exit(0); }
  if (s.job) {
    mkdirSync("_diag", { recursive: true });
    writeFileSync("_diag/Worker_" + Date.now() + ".log", "");
    console.log("Running job: demo-build");
    spawnSync(process.execPath, ["bin/Runner.Worker", String(s.job.seconds)]);
    console.log("Job demo-build completed with result: Succeeded");
    for (const f of Object.keys(files)) rmSync(f, { force: true });
    await call("/_sim/jit/" + runner.agentId + "/done", "POST");
    process.exit(0);
  }
  await new Promise((r) => setTimeout(r, 250));
}
`;

/** The user the demo pool's jobs run as, or why there is no pool in this demo. */
export async function demoPoolUser(runtime: Runtime): Promise<{ user: string } | { skip: string }> {
  if (runtime.uid() !== 0) return { skip: "the pool part needs root (pool jobs run as another user than the agent)" };
  if (!/(^|\/)node$/.test(runtime.execPath)) return { skip: "the pool part runs under node only" };
  const nobody = await lookupUser(runtime, "nobody");
  return nobody ? { user: "nobody" } : { skip: 'no user "nobody" for the pool\'s jobs' };
}

export async function createPoolTemplate(runtime: Runtime, dir: string): Promise<void> {
  await runtime.files.mkdir(join(dir, "bin"), 0o755);
  await runtime.files.writeAtomic(join(dir, "bin", "run.mjs"), RUN_JS, 0o644);
  await runtime.files.writeAtomic(join(dir, "bin", "Runner.Worker"), "setTimeout(() => {}, Number(process.argv[2] ?? 1) * 1000);\n", 0o755);
  await runtime.files.writeAtomic(join(dir, "run.sh"), `#!/bin/sh\n# Demo stand-in for the runner's run.sh (JIT).\ncd "$(dirname "$0")"\nexec "${runtime.execPath}" bin/run.mjs\n`, 0o755);
}
