/** Command-line parsing (SPEC 3): one command, flags that mirror the environment variables. */
import { parseArgs } from "node:util";
import { UsageError } from "../shared/errors.ts";
import type { CliFlags } from "../config/flags.ts";
import { NATS_PERMISSIONS_STRING_FLAGS } from "./nats-permissions.ts";

export const COMMANDS = ["check", "daemon", "collector", "health", "status", "hold", "release", "pool", "alert", "nats-permissions", "demo", "version", "help"] as const;
export type Command = (typeof COMMANDS)[number];

export interface ParsedArgs {
  command: Command;
  flags: CliFlags;
  positionals: string[];
}

const STRING_FLAGS = [
  "config", "org", "repo", "enterprise", "name", "url", "runner-dir", "threshold", "interval", "max-retries",
  "retry-backoff", "log-file", "metrics-file", "state-dir", "splay", "log-level", "listen",
] as const;

export const HELP = `runner-token-refresh: keeps self-hosted GitHub Actions runners registered

Usage: runner-token-refresh <command> [flags]

Commands:
  check              one pass over every runner, then exit (alias: --check-and-refresh)
  daemon             a pass every --interval seconds until SIGTERM (alias: --daemon); serves
                     /metrics, /healthz and /status on --listen HOST:PORT (default 127.0.0.1:9469)
  collector          the central collector: NATS consumer, fleet view, HTTP API and dashboard
                     (--listen HOST:PORT, default 127.0.0.1:9470)
  health             Nagios/Icinga check of the metrics file, no config needed: exit 0 OK,
                     1 WARNING, 2 CRITICAL, 3 UNKNOWN; one line with perfdata
                     [--metrics-file PATH] [--max-age SECONDS] [--warn-failures N] [--crit-failures N]
                     (runner-token-refresh health --help)
  status [--json]    the state of every runner, from the metrics file
  hold RUNNER        leave a runner alone (maintenance); release RUNNER undoes it
  pool drain NAME    stop a pool's idle runners and start none (busy ones finish) while the
                     daemon runs; pool resume NAME undoes it
  alert test         send a marked test notification through every alert plugin
  nats-permissions   print the nats-server user entry for this host (or --collector), with only
                     the subjects it needs (runner-token-refresh nats-permissions --help)
  demo               the whole product locally, no GitHub or config needed (Ctrl-C stops it)
  version            print the version

Flags (environment variable in brackets; flag > env > config file > default):
  --config PATH            config file (else the usual places, else /etc/runner-token-refresh/)
  --org ORG [RUNNER_ORG]   --repo OWNER/NAME [RUNNER_REPO]   --enterprise SLUG [RUNNER_ENTERPRISE]
  --name NAME [RUNNER_NAME, hostname]       --url URL [RUNNER_URL, https://github.com/<scope>]
  --runner-dir DIR [RUNNER_DIR, ./actions-runner]
  --threshold SECONDS [REFRESH_THRESHOLD, 300]   --interval SECONDS [CHECK_INTERVAL, 60]
  --max-retries N [MAX_RETRY_ATTEMPTS, 3]        --retry-backoff SECONDS [RETRY_BACKOFF_SECONDS, 30]
  --state-dir DIR [STATE_DIR]   --metrics-file PATH [METRICS_FILE]   --log-file PATH [LOG_FILE]
  --log-level LEVEL [LOG_LEVEL, info]   --splay SECONDS   --dry-run   --json
Credentials: GITHUB_TOKEN, or GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY_FILE [+ GITHUB_APP_INSTALLATION_ID];
GITHUB_API_URL for GHES (https://HOST/api/v3) and *.ghe.com (https://api.HOST).

Exit codes: 0 ok; 1 a refresh or registration failed; 64 usage; 75 lock held past lockTimeout;
78 configuration error. health keeps the Nagios codes 0-3 for everything, usage errors included.
`;

/** Flags only `health` takes (SPEC 11); it parses its own command line. */
const HEALTH_STRING_FLAGS = ["max-age", "warn-failures", "crit-failures"] as const;

/**
 * The command word of a command line without judging its flags, so that `health` can parse its
 * own (and answer a bad one with the Nagios UNKNOWN code 3 instead of the usage code 64).
 */
export function commandOf(argv: string[]): string | undefined {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const f of [...STRING_FLAGS, ...HEALTH_STRING_FLAGS, ...NATS_PERMISSIONS_STRING_FLAGS]) options[f] = { type: "string" };
  try {
    const { tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: false, tokens: true });
    const first = tokens.find((t) => t.kind === "positional");
    return first?.kind === "positional" ? first.value : undefined;
  } catch {
    return undefined;
  }
}

function camel(flag: string): keyof CliFlags {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof CliFlags;
}

export function parseCommandLine(argv: string[]): ParsedArgs {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const f of STRING_FLAGS) options[f] = { type: "string" };
  for (const f of ["dry-run", "json", "help", "version", "check-and-refresh", "daemon"]) options[f] = { type: "boolean" };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message.split("\n")[0].replace(/\. To specify.*$/, "");
    throw new UsageError(`${message}: see runner-token-refresh --help`, { cause: err });
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const flags: CliFlags = {};
  for (const f of STRING_FLAGS) {
    const v = values[f];
    if (typeof v === "string") {
      if (v === "") throw new UsageError(`--${f} needs a value`);
      (flags as Record<string, unknown>)[camel(f)] = v;
    }
  }
  flags.dryRun = Boolean(values["dry-run"]);
  flags.json = Boolean(values.json);

  const [first, ...rest] = parsed.positionals;
  const aliases = [values["check-and-refresh"] && "check", values.daemon && "daemon", values.help && "help", values.version && "version"].filter(Boolean) as Command[];
  if (aliases.length > 1 || (aliases.length === 1 && first)) {
    throw new UsageError(`give one command, not ${[...aliases, first].filter(Boolean).join(" and ")}: see --help`);
  }
  const command = aliases[0] ?? first ?? "help";
  if (!COMMANDS.includes(command as Command)) throw new UsageError(`unknown command "${command}": expected one of ${COMMANDS.join(", ")}`);
  const positionals = aliases.length ? parsed.positionals : rest;
  const wantsOne = command === "hold" || command === "release";
  if (wantsOne && positionals.length !== 1) throw new UsageError(`${command} needs one runner name (or dir): runner-token-refresh ${command} RUNNER`);
  if (command === "pool") {
    if (positionals.length !== 2 || !["drain", "resume"].includes(positionals[0])) throw new UsageError("pool needs drain or resume and a pool name: runner-token-refresh pool drain NAME");
    return { command: "pool", flags, positionals };
  }
  if (command === "alert") {
    if (positionals.length !== 1 || positionals[0] !== "test") throw new UsageError("alert needs the subcommand test: runner-token-refresh alert test");
    return { command: "alert", flags, positionals };
  }
  if (!wantsOne && positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" for ${command}: see --help`);
  return { command: command as Command, flags, positionals };
}
