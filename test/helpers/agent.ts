// Runs the agent for tests: in-process through main() with a captured runtime (fast), or as a real
// child process (for signals, locks and crashes). Both return everything the agent printed.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createNodeRuntime } from "../../src/runtime/node.ts";
import type { RuntimeFiles } from "../../src/runtime/types.ts";
import { main, type MainOptions } from "../../src/cli/main.ts";
import { BUILTIN_PLUGINS } from "../../src/builtin-plugins.ts";
import { startFakeGitHub, type FakeGitHub } from "./fake-github.ts";
import { makeRunnerDir, type FakeRunnerDir, type MakeRunnerDirOptions } from "./runner-dir.ts";
import { assertNoSecrets, collectFiles, type Output } from "./no-secrets.ts";

export const REPO_ROOT = new URL("../..", import.meta.url).pathname;
const ENTRY = join(REPO_ROOT, "src/main.node.ts");
const DENO_ENTRY = join(REPO_ROOT, "src/main.deno.ts");
/** True when the tests themselves run under `deno test`: child agents then run under Deno too. */
export const UNDER_DENO = "Deno" in globalThis;

/** The command line that starts the agent on the runtime the tests run on. */
export function agentCommand(): string[] {
  if (UNDER_DENO) return [process.execPath, "run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-run", "--allow-sys=hostname,homedir,uid", DENO_ENTRY];
  return [process.execPath, "--import", "tsx", ENTRY];
}

export interface AgentRun {
  code: number;
  stdout: string;
  stderr: string;
  logs: Record<string, unknown>[];
}

export function parseLogs(stdout: string): Record<string, unknown>[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return { unparsed: l };
      }
    });
}

/** Events the log publisher printed, in order. */
export function eventsOf(run: AgentRun, type?: string): Record<string, unknown>[] {
  return run.logs.filter((l) => typeof l.event === "string" && (!type || l.event === type));
}

export async function runInProcess(args: string[], env: Record<string, string>, options: MainOptions & { cwd?: string; files?: Partial<RuntimeFiles> } = {}): Promise<AgentRun> {
  let stdout = "";
  let stderr = "";
  const base = createNodeRuntime();
  const runtime = {
    ...base,
    files: { ...base.files, ...options.files },
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env },
    cwd: options.cwd ?? base.cwd,
    argv: args,
    writeStdout: (t: string) => void (stdout += t),
    writeStderr: (t: string) => void (stderr += t),
    onSignal: () => () => {},
  };
  // As the entry points do: the built-in alert plugins, unless a test hands its own registry.
  const code = await main(runtime, args, { plugins: BUILTIN_PLUGINS, ...options });
  return { code, stdout, stderr, logs: parseLogs(stdout) };
}

export interface SpawnedAgent {
  child: ChildProcess;
  /**
   * Signals the agent with process.kill: Deno's child.kill() reports the child as killed by the
   * signal even when it handled it and exited 0, which would hide the exit code under test.
   */
  kill(signal: NodeJS.Signals): void;
  done: Promise<AgentRun>;
  output(): string;
}

export function spawnAgent(args: string[], env: Record<string, string>, options: { cwd?: string; wrapper?: string[] } = {}): SpawnedAgent {
  const argv = [...(options.wrapper ?? []), ...agentCommand(), ...args];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: options.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", NODE_PATH: join(REPO_ROOT, "node_modules"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const done = new Promise<AgentRun>((resolve) => {
    child.on("close", (code, signal) => resolve({ code: code ?? (signal === "SIGKILL" ? 137 : 128), stdout, stderr, logs: parseLogs(stdout) }));
  });
  const kill = (signal: NodeJS.Signals) => {
    try {
      if (child.pid && child.exitCode === null) process.kill(child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  return { child, kill, done, output: () => stdout + stderr };
}

/** Polls until `predicate` holds (no fixed sleeps: the CI machine is slow and noisy). */
/**
 * Polls until the predicate holds. Each call of the predicate is itself bounded by the time left
 * (a read of NATS that never answers counts as "not yet"), so a waitFor always ends by its
 * deadline instead of holding the test file until the runner's own timeout.
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await withinTime(predicate, deadline)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function withinTime(predicate: () => boolean | Promise<boolean>, deadline: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()) + 50);
  });
  try {
    return await Promise.race([Promise.resolve().then(predicate), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fake GitHub, a runner dir and a state dir, with the env of a seed-style setup. */
export interface World {
  github: FakeGitHub;
  runner: FakeRunnerDir;
  stateDir: string;
  tmp: string;
  env: Record<string, string>;
  /** Writes a YAML config into tmp and returns its path. */
  config(yaml: string): Promise<string>;
  metrics(): Promise<Record<string, any>>;
  secrets(): string[];
  /** Every output an operator could see, for the no-secret check. */
  outputs(runs: AgentRun[]): Promise<Output[]>;
  assertNoLeaks(runs: AgentRun[]): Promise<void>;
  close(): Promise<void>;
}

export async function makeWorld(options: { runner?: Omit<MakeRunnerDirOptions, "github">; tokenTtlSeconds?: number } = {}): Promise<World> {
  const github = await startFakeGitHub({ tokenTtlSeconds: options.tokenTtlSeconds });
  const runner = await makeRunnerDir({ github, ...options.runner });
  const tmp = await mkdtemp(join(tmpdir(), "rtr-test-"));
  const stateDir = join(tmp, "state");
  const env: Record<string, string> = {
    GITHUB_TOKEN: github.pat,
    GITHUB_API_URL: github.url,
    RUNNER_ORG: "acme",
    RUNNER_NAME: "runner-1",
    RUNNER_DIR: runner.dir,
    STATE_DIR: stateDir,
    LOG_FILE: join(tmp, "agent.log"),
    RETRY_BACKOFF_SECONDS: "0.01",
  };
  const world: World = {
    github,
    runner,
    stateDir,
    tmp,
    env,
    async config(yaml) {
      const path = join(tmp, "config.yaml");
      await writeFile(path, yaml);
      return path;
    },
    async metrics() {
      return JSON.parse(await readFile(join(stateDir, "metrics.json"), "utf8"));
    },
    secrets: () => [github.pat, ...github.mintedTokens, ...github.mintedRemoveTokens, ...github.installationTokens.keys()],
    async outputs(runs) {
      const files = [
        ...(await collectFiles(stateDir, { exclude: (p) => p.startsWith("tokens/") })),
        ...(await collectFiles(runner.dir, { exclude: (p) => p.startsWith(".fake/") && p !== ".fake/argv.log" })),
      ];
      const log = await readFile(join(tmp, "agent.log"), "utf8").catch(() => "");
      return [
        ...runs.flatMap((r, i) => [
          { label: `run ${i} stdout`, text: r.stdout },
          { label: `run ${i} stderr`, text: r.stderr },
        ]),
        { label: "log file", text: log },
        ...files,
      ];
    },
    async assertNoLeaks(runs) {
      assertNoSecrets(world.secrets(), await world.outputs(runs));
    },
    async close() {
      await runner.cleanup();
      await github.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
  return world;
}
