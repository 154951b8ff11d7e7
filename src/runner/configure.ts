/**
 * Runs `config.sh --unattended --replace ...` (SPEC 5 step 5) as the runner's user. The token goes
 * only in ACTIONS_RUNNER_INPUT_TOKEN, never argv; RUNNER_ALLOW_RUNASROOT is never set by us.
 */
import { join } from "node:path";
import { RegistrationError } from "../shared/errors.ts";
import { redact } from "../shared/redact.ts";
import type { Runtime } from "../runtime/types.ts";
import type { RunnerConfig } from "../config/types.ts";
import { runnerEnv, switchTo, type SystemUser } from "../privsep/index.ts";

export function configArgs(runner: RunnerConfig): string[] {
  const args = ["--unattended", "--replace", "--url", runner.url, "--name", runner.name];
  if (runner.labels.length) args.push("--labels", runner.labels.join(","));
  if (runner.group) args.push("--runnergroup", runner.group);
  if (runner.ephemeral) args.push("--ephemeral");
  if (runner.work) args.push("--work", runner.work);
  return args;
}

/** The last lines of output, with any secret scrubbed (they go into events and logs). */
export function outputTail(stdout: string, stderr: string, lines = 8): string {
  const all = `${stdout}\n${stderr}`.split(/\r?\n/).map((l) => l.trimEnd()).filter(Boolean);
  return redact(all.slice(-lines).join("\n"));
}

export async function runConfigure(
  runtime: Runtime,
  runner: RunnerConfig,
  token: string,
  options: { timeoutSeconds: number; user: SystemUser },
): Promise<{ output: string }> {
  const script = join(runner.dir, "config.sh");
  const stat = await runtime.files.stat(script);
  if (!stat) throw new RegistrationError(`config.sh not found in ${runner.dir}: is runners[].dir the runner's folder? (download and unpack the runner there)`, "configure");
  if (!(stat.mode & 0o111)) throw new RegistrationError(`${script} is not executable: chmod +x it`, "configure");
  const result = await runtime.spawn(script, configArgs(runner), {
    cwd: runner.dir,
    // As the runner's user, with nothing of the agent's environment but the one token (SPEC 15).
    inheritEnv: false,
    env: runnerEnv(runtime, options.user, { ACTIONS_RUNNER_INPUT_TOKEN: token }),
    timeoutMs: options.timeoutSeconds * 1000,
    user: switchTo(runtime, options.user),
  });
  const output = outputTail(result.stdout, result.stderr);
  if (result.spawnError) {
    throw new RegistrationError(`cannot start ${script} (${result.spawnError.code}): check the file and its interpreter`, "configure");
  }
  if (result.timedOut) {
    throw new RegistrationError(`config.sh did not finish within refresh.configureTimeout (${options.timeoutSeconds}s) and was killed: ${output || "no output"}`, "configure", { exitStatus: null });
  }
  if (result.code !== 0) {
    let hint = "";
    if (/runner exists with the same name/i.test(output)) hint = ": a runner of this name exists and --replace was refused";
    else if (/NotFound|404/.test(output)) hint = ": GitHub refused the registration token (stale or for another scope/URL): check runners[].url";
    else if (/sudo|as root/i.test(output)) hint = ": config.sh refuses to run as root: set runners[].runAs to the runner's user";
    throw new RegistrationError(`config.sh exited ${result.code}${hint}: ${output || "no output"}`, "configure", { exitStatus: result.code });
  }
  return { output };
}
