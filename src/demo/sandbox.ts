/**
 * A sandbox runner dir for the demo, with config.sh and svc.sh that behave like the real ones in
 * the ways the agent relies on: config.sh refuses while `.runner` exists, reads the token from
 * ACTIONS_RUNNER_INPUT_TOKEN, registers with the simulated GitHub and writes `.runner` with a BOM;
 * svc.sh start/stop/status moves the runner on and offline.
 */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";

const CONFIG_JS = `
import { existsSync, writeFileSync } from "node:fs";
const args = process.argv.slice(2);
const flag = (n) => { const i = args.indexOf("--" + n); return i >= 0 ? args[i + 1] : undefined; };
if (existsSync(".runner")) { console.error("Cannot configure the runner because it is already configured."); process.exit(1); }
const token = process.env.ACTIONS_RUNNER_INPUT_TOKEN;
if (!token) { console.error("Invalid configuration provided for token. Terminating unattended configuration."); process.exit(1); }
const res = await fetch(process.env.DEMO_GITHUB + "/_sim/register", { method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ token, name: flag("name"), labels: (flag("labels") ?? "").split(",").filter(Boolean) }) });
if (res.status === 404) { console.error("Http response code: NotFound from 'POST .../actions/runner-registration'"); process.exit(1); }
const { id, name } = await res.json();
writeFileSync(".runner", "\\uFEFF" + JSON.stringify({ agentId: id, agentName: name, poolId: 1, poolName: "Default", gitHubUrl: flag("url"), workFolder: "_work" }, null, 2));
writeFileSync(".credentials", "\\uFEFF" + JSON.stringify({ scheme: "OAuth", data: { clientId: crypto.randomUUID() } }, null, 2));
writeFileSync(".credentials_rsaparams", "{}", { mode: 0o600 });
console.log("√ Runner successfully added\\n√ Settings Saved.");
`;

const SVC_JS = `
import { existsSync, readFileSync, writeFileSync } from "node:fs";
const cmd = process.argv[2];
const state = () => (existsSync(".svc-state") ? readFileSync(".svc-state", "utf8") : "inactive");
const id = () => JSON.parse(readFileSync(".runner", "utf8").replace(/^\\uFEFF/, "")).agentId;
async function tell(status) {
  await fetch(process.env.DEMO_GITHUB + "/_sim/runners/" + id() + "/status", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ status }) });
}
if (cmd === "status") console.log(state() === "active" ? "Active: active (running)" : "Active: inactive (dead)");
else if (cmd === "start") { if (!existsSync(".runner")) { console.error("Not configured"); process.exit(1); } writeFileSync(".svc-state", "active"); await tell("online"); }
else if (cmd === "stop") { writeFileSync(".svc-state", "inactive"); if (existsSync(".runner")) await tell("offline"); }
else { console.error("usage: svc.sh start|stop|status"); process.exit(2); }
`;

export async function createSandboxRunner(runtime: Runtime, dir: string, githubUrl: string): Promise<void> {
  await runtime.files.mkdir(dir, 0o755);
  await runtime.files.writeAtomic(join(dir, ".sim-config.mjs"), CONFIG_JS, 0o644);
  await runtime.files.writeAtomic(join(dir, ".sim-svc.mjs"), SVC_JS, 0o644);
  // The interpreter this demo runs on runs the scripts too (node, or deno with permissions).
  // Judged by the binary, not runtime.name: the Node seam also runs under Deno (deno test).
  const interpreter = /(^|\/)deno(\.exe)?$/.test(runtime.execPath) ? `"${runtime.execPath}" run --allow-all` : `"${runtime.execPath}"`;
  for (const [script, js] of [["config.sh", ".sim-config.mjs"], ["svc.sh", ".sim-svc.mjs"]]) {
    await runtime.files.writeAtomic(join(dir, script), `#!/bin/sh\n# Demo stand-in for the actions runner's ${script}.\ncd "$(dirname "$0")"\nDEMO_GITHUB="${githubUrl}" exec ${interpreter} "./${js}" "$@"\n`, 0o755);
  }
}

/** The demo pool's template: run.sh plays a runner started with a JIT config (SPEC 14). */
const POOL_RUN_JS = `
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
const files = JSON.parse(Buffer.from(process.env.ACTIONS_RUNNER_INPUT_JITCONFIG ?? "", "base64").toString("utf8") || "{}");
for (const [name, content] of Object.entries(files)) writeFileSync(name, Buffer.from(content, "base64"));
const runner = JSON.parse(Buffer.from(files[".runner"], "base64").toString("utf8"));
const call = (path, method = "GET") => fetch(runner.serverUrl + path, { method }).then((r) => r.json());
process.on("SIGTERM", () => process.exit(0));
let unreachable = 0;
await call("/_sim/jit/" + runner.agentId + "/online", "POST");
console.log("Listening for Jobs");
for (;;) {
  const s = await call("/_sim/jit/" + runner.agentId).then((x) => ((unreachable = 0), x), () => ({ exists: ++unreachable < 40 }));
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

export async function createPoolTemplate(runtime: Runtime, dir: string): Promise<void> {
  await runtime.files.mkdir(join(dir, "bin"), 0o755);
  await runtime.files.writeAtomic(join(dir, "bin", "run.mjs"), POOL_RUN_JS, 0o644);
  await runtime.files.writeAtomic(join(dir, "bin", "Runner.Worker"), "setTimeout(() => {}, Number(process.argv[2] ?? 1) * 1000);\n", 0o755);
  await runtime.files.writeAtomic(join(dir, "run.sh"), `#!/bin/sh\n# Demo stand-in for the runner's run.sh (JIT).\ncd "$(dirname "$0")"\nexec "${runtime.execPath}" bin/run.mjs\n`, 0o755);
}
