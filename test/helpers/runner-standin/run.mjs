// Stand-in for the actions runner's run.sh started with a JIT config (SPEC 14): decodes
// ACTIONS_RUNNER_INPUT_JITCONFIG (base64 of a JSON map of file → base64 content), writes .runner,
// .credentials and .credentials_rsaparams raw (no BOM), goes online at the fake GitHub, takes one
// job (bin/Runner.Worker runs for the job's length, _diag/Worker_*.log records it), deletes its
// config and exits 0. When GitHub removed it unused it says so and exits 0, like the real one.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";

const slot = process.cwd();
const log = (line) => console.log(`${new Date().toISOString()} ${line}`);
if (existsSync(join(slot, ".fake-crash"))) {
  console.error("simulated crash: the listener could not start");
  process.exit(1);
}
const encoded = process.env.ACTIONS_RUNNER_INPUT_JITCONFIG;
if (!encoded) {
  console.error("Missing JIT configuration: pass --jitconfig or set ACTIONS_RUNNER_INPUT_JITCONFIG");
  process.exit(1);
}
appendFileSync(join(slot, ".fake-env"), JSON.stringify({ uid: process.getuid(), names: Object.keys(process.env).sort(), argv: process.argv.slice(2) }) + "\n");
const files = JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
for (const [name, content] of Object.entries(files)) writeFileSync(join(slot, name), Buffer.from(content, "base64"));
const runner = JSON.parse(Buffer.from(files[".runner"], "base64").toString("utf8"));
const base = runner.serverUrl.replace(/\/+$/, "");
const call = async (method, path) => {
  const res = await fetch(`${base}${path}`, { method });
  return res.json();
};
let stopping = false;
let unreachable = 0;
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => {
  stopping = true;
  log("Runner listener exit because of cancellation");
  process.exit(0);
});
await call("POST", `/_fake/jit/${runner.agentId}/online`).catch(() => {});
log(`√ Connected to GitHub\nListening for Jobs`);
for (;;) {
  if (stopping) break;
  // GitHub unreachable for ~10 s (the test that started it is gone): exit rather than linger.
  const state = await call("GET", `/_fake/jit/${runner.agentId}`).then((s) => ((unreachable = 0), s), () => ({ exists: ++unreachable < 100, job: null }));
  if (!state.exists) {
    log("The runner no longer exists on the server. Please reconfigure the runner.");
    process.exit(0);
  }
  if (state.job) {
    mkdirSync(join(slot, "_diag"), { recursive: true });
    writeFileSync(join(slot, "_diag", `Worker_${Date.now()}.log`), "job started\n");
    log(`Running job: build`);
    await new Promise((resolve) => {
      const worker = spawn(process.execPath, [join(slot, "bin", "Runner.Worker"), String(state.job.seconds)], { stdio: "ignore" });
      worker.on("exit", resolve);
    });
    log(`Job build completed with result: Succeeded`);
    for (const f of [".runner", ".credentials", ".credentials_rsaparams"]) rmSync(join(slot, f), { force: true });
    await call("POST", `/_fake/jit/${runner.agentId}/done`).catch(() => {});
    process.exit(0);
  }
  await new Promise((r) => setTimeout(r, 100));
}
