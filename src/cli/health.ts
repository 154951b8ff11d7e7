/**
 * `health`: a Nagios/Icinga plugin over the local metrics file (SPEC 11). Needs no scope, config
 * or credentials (it runs under NRPE as another user): it only reads the file. Exit 0 OK,
 * 1 WARNING, 2 CRITICAL, 3 UNKNOWN (usage errors included), and exactly one line on stdout:
 *
 *   RUNNER TOKEN OK - 2 runners, token valid 52m | 'consecutive_failures'=0;0;2;0 'seconds_to_expiry'=3120s;150:;1:;0 'seconds_since_check'=25s;120;240;0
 *
 * Perfdata thresholds are Nagios ranges: a plain N alerts when the value is over N (so "warn at
 * W failures or more" is W-1), `N:` alerts when the value is under N.
 */
import { isAbsolute, join } from "node:path";
import { parseArgs } from "node:util";
import type { Runtime } from "../runtime/types.ts";
import { errorMessage } from "../shared/errors.ts";
import { formatDuration, parseDuration } from "../shared/duration.ts";
import { scopeKey, type Scope } from "../shared/scope.ts";
import { xdgStateDir } from "../config/state-dir.ts";

export const HEALTH_STATES = ["OK", "WARNING", "CRITICAL", "UNKNOWN"] as const;
export type HealthCode = 0 | 1 | 2 | 3;
const OK = 0;
const WARNING = 1;
const CRITICAL = 2;
const UNKNOWN = 3;

export const SYSTEM_METRICS_FILE = "/var/lib/runner-token-refresh/metrics.json";
/** Used when the file predates these fields (SPEC 3/4 defaults). */
const DEFAULT_INTERVAL = 60;
const DEFAULT_THRESHOLD = 300;
const DEFAULT_ALERT_AFTER = 3;
/** NRPE 2 cuts plugin output at 1 KiB: keep the text part short. */
const MAX_TEXT = 400;

export const HEALTH_USAGE = `Usage: runner-token-refresh health [--metrics-file PATH] [--max-age SECONDS] [--warn-failures N] [--crit-failures N]

Nagios/Icinga check of the agent's metrics file. Needs no config or credentials.
  --metrics-file PATH   [METRICS_FILE] else $STATE_DIR/metrics.json (--state-dir DIR), else
                        ${SYSTEM_METRICS_FILE} if it exists, else
                        $XDG_STATE_HOME (~/.local/state)/runner-token-refresh/metrics.json
  --max-age SECONDS     CRITICAL when the last check is older (default 3 × interval + 60)
  --warn-failures N     WARNING at N consecutive failures (default 1)
  --crit-failures N     CRITICAL at N consecutive failures (default alerts.afterConsecutiveFailures)
Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
`;

export interface HealthOptions {
  metricsFile?: string;
  stateDir?: string;
  maxAge?: number;
  warnFailures?: number;
  critFailures?: number;
  help?: boolean;
}

export interface HealthResult {
  code: HealthCode;
  line: string;
}

class HealthUsageError extends Error {}

function positiveInteger(flag: string, raw: string | undefined, allowDuration: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const n = allowDuration ? parseDuration(raw) : /^\d+$/.test(raw.trim()) ? Number(raw) : undefined;
  if (n === undefined || !Number.isFinite(n) || n < 1 || (!allowDuration && !Number.isSafeInteger(n))) {
    throw new HealthUsageError(`--${flag} ${JSON.stringify(raw)}: expected ${allowDuration ? "seconds (or 90s, 5m, 1h)" : "a whole number"} of at least 1`);
  }
  return Math.round(n);
}

/** Parses `health` and its flags (argv as given to the program, command included). */
export function parseHealthArgs(argv: string[]): HealthOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        "metrics-file": { type: "string" },
        "state-dir": { type: "string" },
        "max-age": { type: "string" },
        "warn-failures": { type: "string" },
        "crit-failures": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new HealthUsageError(errorMessage(err).split("\n")[0].replace(/\. To specify.*$/, ""));
  }
  const extra = parsed.positionals.filter((p, i) => !(i === 0 && p === "health"));
  if (extra.length) throw new HealthUsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const v = parsed.values;
  for (const f of ["metrics-file", "state-dir"] as const) if (v[f] === "") throw new HealthUsageError(`--${f} needs a value`);
  return {
    metricsFile: v["metrics-file"],
    stateDir: v["state-dir"],
    maxAge: positiveInteger("max-age", v["max-age"], true),
    warnFailures: positiveInteger("warn-failures", v["warn-failures"], false),
    critFailures: positiveInteger("crit-failures", v["crit-failures"], false),
    help: Boolean(v.help),
  };
}

export interface MetricsFileLocation {
  path: string;
  /** Where the path came from, for the UNKNOWN message. */
  from: string;
  /** The system path, looked at first when the XDG one is used. */
  alsoTried?: string;
}

/**
 * --metrics-file, else METRICS_FILE, else $STATE_DIR/metrics.json (--state-dir beats STATE_DIR),
 * else the system state dir's file when it exists, else the XDG one (SPEC 11).
 */
export async function locateMetricsFile(runtime: Runtime, options: HealthOptions, systemFile = SYSTEM_METRICS_FILE): Promise<MetricsFileLocation> {
  const abs = (p: string) => (isAbsolute(p) ? p : join(runtime.cwd, p));
  if (options.metricsFile) return { path: abs(options.metricsFile), from: "from --metrics-file" };
  if (runtime.env.METRICS_FILE) return { path: abs(runtime.env.METRICS_FILE), from: "from METRICS_FILE" };
  if (options.stateDir) return { path: join(abs(options.stateDir), "metrics.json"), from: "from --state-dir" };
  if (runtime.env.STATE_DIR) return { path: join(abs(runtime.env.STATE_DIR), "metrics.json"), from: "from STATE_DIR" };
  if (await runtime.files.stat(systemFile).catch(() => null)) return { path: systemFile, from: "the system default" };
  return { path: join(xdgStateDir(runtime), "metrics.json"), from: "the user default", alsoTried: systemFile };
}

/** One line for Nagios: no newline, and no `|` in the text (it starts the perfdata). */
function clean(text: string): string {
  return text.replace(/\|/g, "/").replace(/\s+/g, " ").trim();
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

interface RunnerFacts {
  name: string;
  scope: string | null;
  ephemeral: boolean;
  registered: boolean | null;
  held: boolean;
  failures: number;
  lastError: string | null;
  tokenExpiresAt: number | null;
}

function runnerFacts(raw: unknown): RunnerFacts | null {
  if (!raw || typeof raw !== "object") return null;
  const r = raw as Record<string, unknown>;
  let scope: string | null = null;
  try {
    scope = r.scope && typeof r.scope === "object" ? scopeKey(r.scope as Scope) : null;
  } catch {
    scope = null;
  }
  return {
    name: typeof r.name === "string" ? r.name : "runner",
    scope,
    ephemeral: r.ephemeral === true,
    registered: typeof r.registered === "boolean" ? r.registered : null,
    held: r.status === "held",
    failures: Math.max(0, Math.floor(num(r.consecutive_failures) ?? 0)),
    lastError: typeof r.last_error === "string" && r.last_error ? r.last_error : null,
    tokenExpiresAt: num(r.token_expires_at),
  };
}

/** Exact, for texts that compare an age with a limit: 100 → 1m40s, 5460 → 1h31m, 45 → 45s. */
export function exactDuration(seconds: number): string {
  let s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n) parts.push(`${n}${unit}`);
  }
  return parts.join("");
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function unknown(text: string): HealthResult {
  return { code: UNKNOWN, line: `RUNNER TOKEN UNKNOWN - ${shorten(clean(text), MAX_TEXT)}` };
}

/** The check itself, over a parsed metrics document; `nowSeconds` is epoch seconds. */
export function evaluateHealth(doc: unknown, nowSeconds: number, options: HealthOptions = {}, path = "the metrics file"): HealthResult {
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) return unknown(`${path} is not a runner-token-refresh metrics file (not a JSON object)`);
  const d = doc as Record<string, unknown>;
  const lastCheck = num(d.last_check_timestamp);
  if (lastCheck === null) return unknown(`${path} has no last_check_timestamp: not a runner-token-refresh metrics file?`);
  const interval = num(d.interval) !== null && (d.interval as number) > 0 ? (d.interval as number) : DEFAULT_INTERVAL;
  const threshold = num(d.threshold) !== null && (d.threshold as number) >= 0 ? (d.threshold as number) : DEFAULT_THRESHOLD;
  const alertAfter = num(d.alert_after_failures) !== null && (d.alert_after_failures as number) >= 1 ? Math.floor(d.alert_after_failures as number) : DEFAULT_ALERT_AFTER;

  const maxAge = options.maxAge ?? Math.round(3 * interval + 60);
  const warnFailures = options.warnFailures ?? 1;
  const critFailures = options.critFailures ?? alertAfter;
  const now = Math.floor(nowSeconds);
  // A file from the future (clock stepped back) is as fresh as it gets.
  const age = Math.max(0, Math.floor(now - lastCheck));

  const runners = (Array.isArray(d.runners) ? d.runners : []).map(runnerFacts).filter((r): r is RunnerFacts => r !== null);
  // Failures per runner; a seed-style file without runners[] has only the top-level count.
  const failing: { name: string | null; failures: number; lastError: string | null }[] = runners.length
    ? runners.map((r) => ({ name: r.name, failures: r.failures, lastError: r.lastError }))
    : [{ name: null, failures: Math.max(0, Math.floor(num(d.consecutive_failures) ?? 0)), lastError: null }];
  const maxFailures = Math.max(0, Math.floor(num(d.consecutive_failures) ?? 0), ...failing.map((f) => f.failures));

  // The soonest expiry over every scope (a scope's runners all carry its token).
  const tokens = new Map<string, number>();
  for (const r of runners) if (r.tokenExpiresAt !== null) tokens.set(r.scope ?? "token", Math.min(tokens.get(r.scope ?? "token") ?? Infinity, r.tokenExpiresAt));
  const top = num(d.token_expires_at);
  if (top !== null && tokens.size === 0) tokens.set("token", top);
  let soonest: { scope: string; at: number } | null = null;
  for (const [scope, at] of tokens) if (!soonest || at < soonest.at) soonest = { scope, at };
  const left = soonest ? Math.floor(soonest.at - now) : null;
  const tokenName = soonest && tokens.size > 1 ? `token for ${soonest.scope}` : "token";

  const problems: { code: HealthCode; text: string }[] = [];
  const failureText = (f: (typeof failing)[number]) => {
    const what = `${plural(f.failures, "consecutive failure")}${f.lastError ? ` (${shorten(clean(f.lastError), 120)})` : ""}`;
    return f.name === null ? what : `${f.name}: ${what}`;
  };
  for (const f of failing) {
    if (f.failures >= critFailures) problems.push({ code: CRITICAL, text: failureText(f) });
    else if (f.failures >= warnFailures) problems.push({ code: WARNING, text: failureText(f) });
  }
  // A held runner is under maintenance: the operator asked the agent to leave it alone.
  for (const r of runners) if (!r.ephemeral && !r.held && r.registered === false) problems.push({ code: CRITICAL, text: `${r.name} unregistered` });
  // SPEC 14: a pool short of runners for longer than two intervals is a WARNING.
  const pools = Array.isArray(d.pools) ? (d.pools as { name?: unknown; size?: unknown; short_since?: unknown; runners?: { idle?: unknown; busy?: unknown } }[]) : [];
  for (const p of pools) {
    const since = num(p.short_since);
    if (since === null || now - since <= 2 * interval) continue;
    const live = (num(p.runners?.idle) ?? 0) + (num(p.runners?.busy) ?? 0);
    problems.push({ code: WARNING, text: `pool ${String(p.name)}: ${live} of ${num(p.size) ?? "?"} runners for ${exactDuration(now - since)}` });
  }
  // A host with pools only needs no registration token (JIT runners do not use one).
  if (left === null) {
    if (!(runners.length === 0 && pools.length)) problems.push({ code: WARNING, text: "no registration token held" });
  } else if (left <= 0) problems.push({ code: CRITICAL, text: `${tokenName} expired ${exactDuration(-left)} ago` });
  else if (left < threshold / 2) problems.push({ code: WARNING, text: `${tokenName} valid ${exactDuration(left)}, under half the ${threshold}s threshold: refresh overdue` });
  if (age > maxAge) problems.push({ code: CRITICAL, text: `last check ${exactDuration(age)} ago (max age ${exactDuration(maxAge)})` });
  else if (age > 2 * interval) problems.push({ code: WARNING, text: `last check ${exactDuration(age)} ago (expected every ${exactDuration(interval)})` });

  const code = problems.reduce<HealthCode>((worst, p) => (p.code > worst ? p.code : worst), OK);
  let text: string;
  if (code === OK) {
    const poolText = pools.length ? `${plural(pools.length, "pool")}` : "";
    text = left === null ? poolText : `${runners.length ? `${plural(runners.length, "runner")}, ` : ""}${poolText ? `${poolText}, ` : ""}${tokenName} valid ${formatDuration(left)}`;
  } else {
    // The worst problems only, each short, within what NRPE passes on.
    const worst = problems.filter((p) => p.code === code).map((p) => p.text);
    text = "";
    let shown = 0;
    for (const t of worst) {
      const next = text ? `${text}; ${t}` : t;
      if (shown > 0 && next.length > MAX_TEXT) break;
      text = shorten(next, MAX_TEXT);
      shown++;
    }
    if (shown < worst.length) text += `; and ${worst.length - shown} more`;
  }

  const perf = [`'consecutive_failures'=${maxFailures};${warnFailures - 1};${critFailures - 1};0`];
  if (left !== null) perf.push(`'seconds_to_expiry'=${Math.max(0, left)}s;${Math.ceil(threshold / 2)}:;1:;0`);
  perf.push(`'seconds_since_check'=${age}s;${Math.round(2 * interval)};${maxAge};0`);
  return { code, line: `RUNNER TOKEN ${HEALTH_STATES[code]} - ${clean(text)} | ${perf.join(" ")}` };
}

/** The whole command: never throws, always one line (the usage text for --help) and a 0-3 code. */
export async function runHealth(runtime: Runtime, argv: string[], now: () => number = Date.now): Promise<HealthCode> {
  const result = await checkHealth(runtime, argv, now);
  runtime.writeStdout(`${result.line}\n`);
  return result.code;
}

async function checkHealth(runtime: Runtime, argv: string[], now: () => number): Promise<HealthResult> {
  let options: HealthOptions;
  try {
    options = parseHealthArgs(argv);
  } catch (err) {
    if (err instanceof HealthUsageError) return unknown(`usage: ${err.message}: see runner-token-refresh health --help`);
    throw err;
  }
  if (options.help) return { code: UNKNOWN, line: HEALTH_USAGE.trimEnd() };
  let where: MetricsFileLocation;
  try {
    where = await locateMetricsFile(runtime, options);
  } catch (err) {
    return unknown(`cannot find the metrics file: ${errorMessage(err)}`);
  }
  let text: string;
  try {
    text = await runtime.files.readText(where.path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR" || /not ?found|no such file/i.test(errorMessage(err))) {
      const also = where.alsoTried ? `; nor at ${where.alsoTried}` : "";
      return unknown(`no metrics file at ${where.path} (${where.from}${also}): has the agent run yet? pass --metrics-file PATH (or set METRICS_FILE)`);
    }
    return unknown(`cannot read ${where.path} (${where.from}): ${errorMessage(err)}: the file must be readable by this user (mode 0644)`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return unknown(`${where.path} is not valid JSON: the agent rewrites it on its next pass`);
  }
  return evaluateHealth(doc, now() / 1000, options, where.path);
}
