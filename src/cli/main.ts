/**
 * The program: parse, load config, run the command, map errors to exit codes. Every non-zero
 * exit prints one line to stderr naming the problem and the fix; never a stack trace.
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
import { runCollector } from "./collector.ts";
import { runAgent, runAlertTest } from "./agent.ts";
import { loadPlugins } from "../alerts/load.ts";
import { runHealth } from "./health.ts";
import { runDemo } from "../demo/demo.ts";

export interface MainOptions {
  /** Tests and the demo inject these; production uses the defaults. */
  publisher?: Publisher;
  fetch?: typeof fetch;
  /** The clock (epoch milliseconds) `health` judges ages by; tests pin it. */
  now?: () => number;
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
    await runtime.files.writeAtomic(path, `held by runner-token-refresh hold at ${new Date().toISOString()}\n`, 0o644);
    runtime.writeStdout(`${runner.name}: held (the agent leaves it alone until "release ${runner.name}")\n`);
  } else {
    await runtime.files.remove(path);
    runtime.writeStdout(`${runner.name}: released\n`);
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
      return runHealth(runtime, runtime.argv, options.now);
    case "demo": {
      const { signal, dispose } = signalController(runtime, null);
      try {
        return await runDemo(runtime, signal);
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
    const plugins = await loadPlugins(runtime, config);
    const { signal, dispose } = signalController(runtime, log);
    try {
      return await runCollector(runtime, config, log, signal, args.flags.listen, plugins);
    } finally {
      dispose();
    }
  }
  if (args.command === "status") {
    const doc = await readMetricsFile(runtime, config.state.metricsFile);
    runtime.writeStdout(args.flags.json ? `${JSON.stringify(doc, null, 2)}\n` : renderStatusTable(doc, Math.floor(Date.now() / 1000)));
    return ExitCode.ok;
  }
  if (args.command === "hold" || args.command === "release") return holdOrRelease(runtime, config, args);

  const log = createLogger({ level: config.log.level, write: (line) => runtime.writeStdout(line), file: config.log.file });
  // Plugins load (and their options are checked) at start, not when the first alert fires.
  const plugins = await loadPlugins(runtime, config);
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
  if (commandOf(argv) === "health") return runHealth(runtime, argv, options.now);
  try {
    return await run(runtime, parseCommandLine(argv), options);
  } catch (err) {
    const code = err instanceof RtrError ? err.exitCode : ExitCode.failed;
    const message = err instanceof RtrError ? err.message : `unexpected error: ${errorMessage(err)} (please report this)`;
    runtime.writeStderr(`error: ${redact(message).replace(/\s*\n\s*/g, " ")}\n`);
    return code;
  }
}
