/**
 * The program: parse, load config, run the command, map errors to exit codes. Every non-zero
 * exit prints one line to stderr naming the problem and the fix; never a stack trace.
 *
 * The commands an agent host does not run (collector, demo, health, nats-permissions) are
 * imported when chosen, so the agent's process neither parses nor keeps their code (in the
 * bundle they are chunks of their own, issue #18).
 */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";
import { ExitCode, RtrError, UsageError, errorMessage } from "../shared/errors.ts";
import { redact } from "../shared/redact.ts";
import { createLogger, type Logger } from "../shared/logger.ts";
import { VERSION } from "../shared/version.ts";
import { loadConfig } from "../config/load.ts";
import type { AgentConfig } from "../config/types.ts";
import { HOLD_FILE } from "../runner/files.ts";
import type { Publisher } from "../agent/events.ts";
import { HELP, commandOf, parseCommandLine, type ParsedArgs } from "./args.ts";
import { readMetricsFile, renderStatusTable } from "./status.ts";
import { runAgent, runAlertTest } from "./agent.ts";
import { loadPlugins, type PluginRegistry } from "../alerts/load.ts";
import { PoolStore } from "../pool/store.ts";

export interface MainOptions {
  /** Tests and the demo inject these; production uses the defaults. */
  publisher?: Publisher;
  fetch?: typeof fetch;
  /** The clock (epoch milliseconds) `health` judges ages by; tests pin it. */
  now?: () => number;
  /** Alert plugins known by name: the entry point hands in the built-ins (src/builtin-plugins.ts). */
  plugins?: PluginRegistry;
}

function signalController(runtime: Runtime, log: Logger | null): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: string) => () => {
    log?.info({ signal: name }, "signal received: finishing the work in flight");
    controller.abort(new Error(name));
  };
  const off = [runtime.onSignal("SIGTERM", onSignal("SIGTERM")), runtime.onSignal("SIGINT", onSignal("SIGINT"))];
  return { signal: controller.signal, dispose: () => off.forEach((f) => f()) };
}

async function holdOrRelease(runtime: Runtime, config: AgentConfig, args: ParsedArgs): Promise<number> {
  const wanted = args.positionals[0];
  const runner = config.runners.find((r) => r.name === wanted || r.dir === wanted || r.dir === join(runtime.cwd, wanted));
  if (!runner) throw new UsageError(`no configured runner named "${wanted}": expected one of ${config.runners.map((r) => r.name).join(", ")}`);
  const path = join(runner.dir, HOLD_FILE);
  if (args.command === "hold") {
    // The runner dir is its user's (and its jobs'): a link planted as .rtr-hold is replaced, never followed.
    await runtime.files.writeAtomic(path, `held by runner-token-refresh hold at ${new Date().toISOString()}\n`, 0o644, { replaceLink: true });
    runtime.writeStdout(`${runner.name}: held (the agent leaves it alone until "release ${runner.name}")\n`);
  } else {
    await runtime.files.remove(path);
    runtime.writeStdout(`${runner.name}: released\n`);
  }
  return ExitCode.ok;
}

/** `pool drain|resume NAME`: a file in the state dir the daemon's pool loop looks at (SPEC 14). */
async function drainOrResume(runtime: Runtime, config: AgentConfig, args: ParsedArgs): Promise<number> {
  const [verb, name] = args.positionals;
  if (!config.pools.some((p) => p.name === name)) {
    throw new UsageError(`no pool named "${name}": expected one of ${config.pools.map((p) => p.name).join(", ") || "(no pools configured)"}`);
  }
  const file = new PoolStore(runtime, config.state.dir).drainFile(name);
  if (verb === "drain") {
    await runtime.files.mkdir(join(config.state.dir, "pools"), 0o700);
    await runtime.files.writeAtomic(file, `drained by runner-token-refresh pool drain at ${new Date().toISOString()}\n`, 0o600);
    runtime.writeStdout(`${name}: draining (idle runners are removed, busy ones finish, none is started until "pool resume ${name}")\n`);
  } else {
    await runtime.files.remove(file);
    runtime.writeStdout(`${name}: resumed\n`);
  }
  return ExitCode.ok;
}

async function run(runtime: Runtime, args: ParsedArgs, options: MainOptions): Promise<number> {
  switch (args.command) {
    case "help":
      runtime.writeStdout(HELP);
      return ExitCode.ok;
    case "version":
      runtime.writeStdout(`runner-token-refresh ${VERSION} (${runtime.name} ${runtime.version})\n`);
      return ExitCode.ok;
    case "health":
      // Not reached in practice: main() hands `health` to runHealth before parsing.
      return (await import("./health.ts")).runHealth(runtime, runtime.argv, options.now);
    case "demo": {
      const { signal, dispose } = signalController(runtime, null);
      try {
        const { runDemo } = await import("../demo/demo.ts");
        return await runDemo(runtime, signal, { plugins: options.plugins ?? {} });
      } finally {
        dispose();
      }
    }
    default:
      break;
  }
  const acting = args.command === "check" || args.command === "daemon";
  const config = await loadConfig(runtime, args.flags, { needRunners: acting || args.command === "hold" || args.command === "release", needCredentials: acting });
  if (args.command === "collector") {
    const log = createLogger({ level: config.log.level, write: (line) => runtime.writeStdout(line), file: config.log.file });
    const plugins = await loadPlugins(runtime, config, options.plugins ?? {});
    const { runCollector } = await import("./collector.ts");
    const { signal, dispose } = signalController(runtime, log);
    try {
      return await runCollector(runtime, config, log, signal, args.flags.listen, plugins);
    } finally {
      dispose();
    }
  }
  if (args.command === "status") {
    const doc = await readMetricsFile(runtime, config.state.metricsFile);
    runtime.writeStdout(args.flags.json ? `${JSON.stringify(doc, null, 2)}\n` : renderStatusTable(doc, Math.floor(Date.now() / 1000), { colour: (runtime.stdoutIsTerminal?.() ?? false) && runtime.env.NO_COLOR === undefined }));
    return ExitCode.ok;
  }
  if (args.command === "hold" || args.command === "release") return holdOrRelease(runtime, config, args);
  if (args.command === "pool") return drainOrResume(runtime, config, args);

  const log = createLogger({ level: config.log.level, write: (line) => runtime.writeStdout(line), file: config.log.file });
  // Plugins load (and their options are checked) at start, not when the first alert fires.
  const plugins = await loadPlugins(runtime, config, options.plugins ?? {});
  if (args.command === "alert") return runAlertTest(runtime, config, log, plugins);
  const { signal, dispose } = signalController(runtime, log);
  try {
    return await runAgent(runtime, config, log, args.command === "daemon" ? "daemon" : "check", plugins, signal, options);
  } finally {
    dispose();
  }
}

export async function main(runtime: Runtime, argv: string[] = runtime.argv, options: MainOptions = {}): Promise<number> {
  // `health` needs no scope, config or credentials, and answers everything (usage errors
  // included) with a Nagios code 0-3 and one line: it never reaches the parser or loadConfig below.
  if (commandOf(argv) === "health") return (await import("./health.ts")).runHealth(runtime, argv, options.now);
  try {
    // Its flags (repeatable scopes, --collector) are its own: it parses its command line itself.
    if (commandOf(argv) === "nats-permissions") return await (await import("./nats-permissions.ts")).runNatsPermissions(runtime, argv);
    return await run(runtime, parseCommandLine(argv), options);
  } catch (err) {
    const code = err instanceof RtrError ? err.exitCode : ExitCode.failed;
    const message = err instanceof RtrError ? err.message : `unexpected error: ${errorMessage(err)} (please report this)`;
    runtime.writeStderr(`error: ${redact(message).replace(/\s*\n\s*/g, " ")}\n`);
    return code;
  }
}
