/**
 * Builds the resolved configuration: config file (validated), then environment variables, then
 * flags (flag beats env beats file beats default, SPEC 3). Every error names the file, the dotted
 * path (or the flag / variable) and the fix.
 */
import { isAbsolute, resolve } from "node:path";
import type * as z from "zod/mini";
import { ConfigError, UsageError } from "../shared/errors.ts";
import { parseDuration } from "../shared/duration.ts";
import { addSecret } from "../shared/redact.ts";
import { resolvePools } from "../pool/config.ts";
import { splitServerCredentials, type ServerCredentials } from "../shared/url-credentials.ts";
import { deriveApiUrl, scopeKind, scopeRunnerUrl, type Scope } from "../shared/scope.ts";
import type { Runtime } from "../runtime/types.ts";
import { FLAG_ENV, flagName, type CliFlags } from "./flags.ts";
import { locateConfig } from "./locate.ts";
import { fileSchema, type FileConfig, type RunnerFileConfig, type SecretRef } from "./schema.ts";
import { resolveSecret } from "./secrets.ts";
import { chooseStateDir } from "./state-dir.ts";
import type { AgentConfig, GitHubAuth, NatsConfig, RunnerConfig, ServiceSpec } from "./types.ts";

export interface LoadOptions {
  /** Commands that act on runners need a scope (check, daemon, status). */
  needRunners: boolean;
  /** Commands that call GitHub (check, daemon) need credentials unless fleet mode brokers them. */
  needCredentials: boolean;
}

/** `["runners", 1, "scope"]` → `runners[1].scope`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || "(top level)";
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "unrecognized_keys":
      return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}: remove it or check the spelling`;
    case "invalid_value":
      return `expected one of ${issue.values.map(String).join(", ")}`;
    case "invalid_type":
      return `expected ${issue.expected}${issue.input === undefined ? " (missing)" : ""}`;
    case "invalid_union":
      return "not one of the accepted forms (see docs/configuration.md)";
    default:
      return issue.message;
  }
}

export function configErrorFrom(file: string, error: z.core.$ZodError): ConfigError {
  const lines = error.issues.slice(0, 5).map((issue) => {
    const path = issue.code === "unrecognized_keys" && issue.keys.length === 1 ? [...issue.path, issue.keys[0]] : issue.path;
    const text = issue.code === "unrecognized_keys" && issue.keys.length === 1 ? "unknown key: remove it or check the spelling" : describeIssue(issue);
    return `${file}: ${formatPath(path)}: ${text}`;
  });
  const more = error.issues.length > 5 ? `; and ${error.issues.length - 5} more` : "";
  return new ConfigError(lines.join("; ") + more, { cause: error });
}

type Source = { value: string; from: string; viaFlag: boolean };

/** A flag's value, else its environment variable's, with where it came from (for messages). */
function pick(runtime: Runtime, flags: CliFlags, key: keyof CliFlags): Source | undefined {
  const flagValue = flags[key];
  if (typeof flagValue === "string") return { value: flagValue, from: flagName(key), viaFlag: true };
  const envName = FLAG_ENV[key];
  const envValue = envName ? runtime.env[envName] : undefined;
  if (envName && envValue) return { value: envValue, from: envName, viaFlag: false };
  return undefined;
}

function badValue(source: Source, expected: string): Error {
  const msg = `${source.from}: expected ${expected}, got "${source.value}"`;
  return source.viaFlag ? new UsageError(msg) : new ConfigError(`${msg}: fix the environment variable`);
}

function durationFrom(source: Source | undefined): number | undefined {
  if (!source) return undefined;
  const seconds = parseDuration(source.value);
  if (seconds === undefined) throw badValue(source, 'seconds or a duration such as "30s", "5m"');
  return seconds;
}

/** The scope given by a flag or variable, with which one (for messages). */
function scopeOverride(runtime: Runtime, flags: CliFlags): { scope: Scope; from: string } | undefined {
  const scopeKeys = ["org", "repo", "enterprise"] as const;
  const fromFlags = scopeKeys.filter((k) => flags[k]);
  if (fromFlags.length > 1) throw new UsageError(`conflicting scope: pass only one of ${fromFlags.map((k) => `--${k}`).join(", ")}`);
  const chosen = fromFlags.length === 1 ? fromFlags : scopeKeys.filter((k) => runtime.env[FLAG_ENV[k]!]);
  if (fromFlags.length === 0 && chosen.length > 1) {
    throw new UsageError(`conflicting scope: ${chosen.map((k) => FLAG_ENV[k]).join(" and ")} are both set: unset all but one`);
  }
  if (chosen.length === 0) return undefined;
  const source = pick(runtime, flags, chosen[0])!;
  const key = chosen[0];
  if (key === "repo" && !/^[^/\s]+\/[^/\s]+$/.test(source.value)) throw badValue(source, "OWNER/NAME");
  if (key !== "repo" && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(source.value)) throw badValue(source, `an ${key} name`);
  return { scope: { [key]: source.value } as Scope, from: source.from };
}

function serviceSpec(service: RunnerFileConfig["service"]): ServiceSpec {
  if (!service) return { kind: "auto" };
  if (typeof service === "string") return { kind: service };
  return { kind: "custom", ...service };
}

async function resolveGitHubAuth(runtime: Runtime, file: FileConfig, where: { file: string; baseDir: string }): Promise<GitHubAuth | null> {
  const envToken = runtime.env.GITHUB_TOKEN;
  if (envToken) {
    addSecret(envToken);
    return { kind: "token", token: envToken };
  }
  const appId = runtime.env.GITHUB_APP_ID;
  const keyFile = runtime.env.GITHUB_APP_PRIVATE_KEY_FILE;
  if (appId || keyFile) {
    if (!appId || !/^\d+$/.test(appId)) throw new ConfigError(`GITHUB_APP_ID: expected the App's numeric id${appId ? `, got "${appId}"` : " (missing while GITHUB_APP_PRIVATE_KEY_FILE is set)"}`);
    if (!keyFile) throw new ConfigError("GITHUB_APP_PRIVATE_KEY_FILE: missing while GITHUB_APP_ID is set: point it at the App's private key (.pem)");
    const privateKey = await resolveSecret(runtime, { file: keyFile }, { file: "GITHUB_APP_PRIVATE_KEY_FILE", path: "", baseDir: runtime.cwd });
    const inst = runtime.env.GITHUB_APP_INSTALLATION_ID;
    if (inst && !/^\d+$/.test(inst)) throw new ConfigError(`GITHUB_APP_INSTALLATION_ID: expected a numeric id, got "${inst}"`);
    return { kind: "app", appId: Number(appId), privateKey, installationId: inst ? Number(inst) : undefined };
  }
  const auth = file.github.auth;
  if (!auth) return null;
  if (auth.token !== undefined) {
    return { kind: "token", token: await resolveSecret(runtime, auth.token, { file: where.file, path: "github.auth.token", baseDir: where.baseDir }) };
  }
  if (auth.apps) {
    const apps = [];
    for (const [i, a] of auth.apps.entries()) {
      // `{ file }` keeps the secret-file bookkeeping (privsep refuses a key the runner's user can read).
      const privateKey = await resolveSecret(runtime, { file: a.privateKeyFile }, { file: where.file, path: `github.auth.apps[${i}]`, key: `github.auth.apps[${i}].privateKeyFile`, baseDir: where.baseDir });
      apps.push({ appId: a.appId, privateKey, installationId: a.installationId });
    }
    return { kind: "apps", apps };
  }
  const app = auth.app!;
  const privateKey = await resolveSecret(runtime, app.privateKey, { file: where.file, path: "github.auth.app.privateKey", baseDir: where.baseDir });
  return { kind: "app", appId: app.appId, privateKey, installationId: app.installationId };
}

/** nats.user/password when either is set, else the URL's. */
function natsLogin(user: string | undefined, password: string | undefined, fromUrl: ServerCredentials): { user?: string; password?: string } {
  return user !== undefined || password !== undefined ? { user, password } : { user: fromUrl.user, password: fromUrl.password };
}

async function resolveNats(runtime: Runtime, file: FileConfig, where: { file: string; baseDir: string }, host: string): Promise<NatsConfig | null> {
  const env = runtime.env;
  const fromFile = file.nats;
  if (!fromFile && !env.NATS_URL) return null;
  // A URL's user:password (nats://u:p@host) becomes options and leaves the URL, which is shown.
  const fromUrl = splitServerCredentials(env.NATS_URL ? env.NATS_URL.split(",").map((s) => s.trim()).filter(Boolean) : fromFile!.servers);
  const servers = fromUrl.servers;
  const secret = async (envName: string, ref: SecretRef | undefined, path: string) => {
    if (env[envName]) {
      addSecret(env[envName]);
      return env[envName];
    }
    return ref ? resolveSecret(runtime, ref, { file: where.file, path, baseDir: where.baseDir }) : undefined;
  };
  const tls = fromFile?.tls
    ? Object.fromEntries(Object.entries(fromFile.tls).map(([k, v]) => [k, v ? resolve(where.baseDir, v) : v]))
    : undefined;
  const credsFile = env.NATS_CREDS_FILE ?? (fromFile?.credsFile ? resolve(where.baseDir, fromFile.credsFile) : undefined);
  return {
    servers,
    credsFile,
    ...natsLogin(env.NATS_USER ?? fromFile?.user, await secret("NATS_PASSWORD", fromFile?.password, "nats.password"), fromUrl),
    token: (await secret("NATS_TOKEN", fromFile?.token, "nats.token")) ?? fromUrl.token,
    tls,
    prefix: fromFile?.prefix ?? "rtr",
    name: fromFile?.name ?? host,
    inboxPrefix: fromFile?.inboxPrefix,
    replicas: fromFile?.replicas ?? 1,
  };
}

export async function loadConfig(runtime: Runtime, flags: CliFlags, options: LoadOptions): Promise<AgentConfig> {
  const located = await locateConfig(runtime, flags.config);
  const fileLabel = located?.label ?? "configuration";
  const baseDir = located?.dir ?? runtime.cwd;
  const raw = located?.raw ?? {};
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(`${fileLabel}: expected a mapping of sections (github, runners, refresh, ...) at the top level`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw configErrorFrom(fileLabel, parsed.error);
  const file = parsed.data;
  const host = file.nats?.name ?? runtime.hostname();

  const githubUrl = file.github.url;
  const apiUrl = runtime.env.GITHUB_API_URL ?? file.github.apiUrl ?? deriveApiUrl(githubUrl);
  try {
    new URL(apiUrl);
  } catch {
    throw new ConfigError(`GITHUB_API_URL: "${apiUrl}" is not a URL: use https://api.github.com, https://HOST/api/v3 (GHES) or https://api.HOST (*.ghe.com)`);
  }

  // Runners: the file's list, with flags/env describing or overriding the only runner.
  const scopeSource = scopeOverride(runtime, flags);
  const scope = scopeSource?.scope;
  const name = pick(runtime, flags, "name");
  const url = pick(runtime, flags, "url");
  const dir = pick(runtime, flags, "runnerDir");
  const overrides = [scope, name, url, dir].some(Boolean);
  let runnerEntries: { entry: Partial<RunnerFileConfig>; dirBase: string }[] = file.runners.map((entry) => ({ entry, dirBase: baseDir }));
  if (overrides && file.runners.length > 1) {
    throw new UsageError(`--org/--repo/--enterprise/--name/--url/--runner-dir (and their variables) apply only when ${fileLabel} has at most one runner; it has ${file.runners.length}: edit the file instead`);
  }
  if (file.runners.length === 0 && overrides) runnerEntries = [{ entry: {}, dirBase: runtime.cwd }];
  const runners: RunnerConfig[] = [];
  for (const { entry, dirBase } of runnerEntries) {
    const runnerScope = scope ?? entry.scope;
    if (!runnerScope) {
      throw new UsageError("no scope: pass --org, --repo or --enterprise (or set RUNNER_ORG)");
    }
    const runnerDir = dir ? resolve(runtime.cwd, dir.value) : resolve(dirBase, entry.dir ?? "./actions-runner");
    const runnerUrl = url?.value ?? entry.url ?? scopeRunnerUrl(githubUrl, runnerScope);
    if (url) {
      try {
        new URL(url.value);
      } catch {
        throw badValue(url, "a URL such as https://github.com/my-org");
      }
    }
    runners.push({
      dir: runnerDir,
      scope: runnerScope,
      name: name?.value ?? entry.name ?? runtime.hostname(),
      url: runnerUrl,
      labels: entry.labels ?? [],
      manageLabels: entry.labels !== undefined,
      group: entry.group,
      ephemeral: entry.ephemeral ?? false,
      work: entry.work,
      service: serviceSpec(entry.service),
      offlineGrace: entry.offlineGrace ?? 600,
      offlineWarnAfter: entry.offlineWarnAfter ?? 7 * 86400,
      runAs: entry.runAs,
    });
  }
  const names = new Map<string, number>();
  runners.forEach((r, i) => {
    const key = `${r.dir}`;
    if (names.has(key)) throw new ConfigError(`${fileLabel}: runners[${i}].dir: the same directory as runners[${names.get(key)}]: each runner needs its own dir`);
    names.set(key, i);
  });
  if (options.needRunners && runners.length === 0 && file.pools.length === 0) {
    throw new UsageError("no scope: pass --org, --repo or --enterprise (or set RUNNER_ORG)");
  }

  const refresh = { ...file.refresh };
  refresh.threshold = durationFrom(pick(runtime, flags, "threshold")) ?? refresh.threshold;
  refresh.interval = durationFrom(pick(runtime, flags, "interval")) ?? refresh.interval;
  refresh.retryBackoff = durationFrom(pick(runtime, flags, "retryBackoff")) ?? refresh.retryBackoff;
  refresh.splay = durationFrom(pick(runtime, flags, "splay")) ?? refresh.splay;
  const maxRetries = pick(runtime, flags, "maxRetries");
  if (maxRetries) {
    if (!/^\d+$/.test(maxRetries.value) || Number(maxRetries.value) < 1 || Number(maxRetries.value) > 20) throw badValue(maxRetries, "a whole number of attempts from 1 to 20");
    refresh.maxRetries = Number(maxRetries.value);
  }
  if (refresh.interval < 1) {
    // Name where the value came from: the flag/variable when one was given, else the file.
    const source = pick(runtime, flags, "interval");
    throw source ? badValue(source, "at least 1 second") : new ConfigError(`${fileLabel}: refresh.interval: must be at least 1 second`);
  }

  const where = { file: fileLabel, baseDir };
  const auth = await resolveGitHubAuth(runtime, file, where);
  if (options.needCredentials && !auth && !file.fleet.enabled) {
    throw new ConfigError(
      `no GitHub credentials: set GITHUB_TOKEN (a PAT with admin:org, or "Self-hosted runners: write") or GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY_FILE, or github.auth in ${located ? fileLabel : "a config file"}`,
    );
  }
  if (auth?.kind === "app" || auth?.kind === "apps") {
    const i = runners.findIndex((r) => scopeKind(r.scope) === "enterprise");
    // An enterprise scope from --enterprise / RUNNER_ENTERPRISE is named as such: without a
    // config file "configuration: runners[0].scope" points at nothing the operator wrote.
    const where = scopeSource && scopeKind(scopeSource.scope) === "enterprise" ? scopeSource.from : `${fileLabel}: runners[${i}].scope`;
    if (i >= 0) throw new ConfigError(`${where}: enterprise scopes need a classic PAT (manage_runners:enterprise); GitHub App auth cannot mint enterprise registration tokens`);
  }

  const logLevel = pick(runtime, flags, "logLevel")?.value ?? file.log.level;
  if (!["trace", "debug", "info", "warn", "error", "fatal", "silent"].includes(logLevel)) {
    throw new UsageError(`--log-level: expected one of trace, debug, info, warn, error, fatal, silent, got "${logLevel}"`);
  }
  const logFileSource = pick(runtime, flags, "logFile");
  const logFile = logFileSource ? resolve(runtime.cwd, logFileSource.value) : file.log.file ? resolve(baseDir, file.log.file) : undefined;

  const stateDirSource = pick(runtime, flags, "stateDir");
  const stateDir = await chooseStateDir(runtime, stateDirSource ? { path: resolve(runtime.cwd, stateDirSource.value), from: stateDirSource.from } : file.state.dir ? { path: resolve(baseDir, file.state.dir), from: `${fileLabel}: state.dir` } : undefined, !flags.dryRun);
  const metricsSource = pick(runtime, flags, "metricsFile");
  const metricsFile = metricsSource ? resolve(runtime.cwd, metricsSource.value) : file.state.metricsFile ? resolve(baseDir, file.state.metricsFile) : `${stateDir}/metrics.json`;

  const httpToken = file.http.auth ? await resolveSecret(runtime, file.http.auth.token, { file: fileLabel, path: "http.auth.token", baseDir }) : undefined;

  return {
    configFile: located?.label ?? null,
    configDir: baseDir,
    host,
    github: { url: githubUrl, apiUrl: apiUrl.replace(/\/+$/, ""), auth, statusInterval: file.github.statusInterval, requestTimeout: file.github.requestTimeout },
    runners,
    pools: await resolvePools(runtime, file.pools, { file: fileLabel, baseDir, stateDir }),
    refresh,
    state: { dir: stateDir, metricsFile: isAbsolute(metricsFile) ? metricsFile : resolve(runtime.cwd, metricsFile) },
    nats: await resolveNats(runtime, file, where, host),
    // No default here: the agent (127.0.0.1:9469) and the collector (127.0.0.1:9470) differ.
    http: { listen: flags.listen ?? file.http.listen, authToken: httpToken },
    collector: file.collector,
    fleet: file.fleet,
    alerts: file.alerts,
    log: { level: logLevel, file: logFile },
    dryRun: flags.dryRun ?? false,
    json: flags.json ?? false,
  };
}
