/**
 * `nats-permissions`: prints the nats-server user entry (with its permissions) for one agent
 * host, from that host's config file or from flags, or with --collector the collector's entry
 * (docs/nats.md, "Permissions"). It reads no secret and connects to nothing, so it runs on an
 * admin machine as well as on the host. Exit 0, 64 for usage, 78 for a bad config file.
 */
import { parseArgs } from "node:util";
import type { Runtime } from "../runtime/types.ts";
import { ConfigError, ExitCode, UsageError } from "../shared/errors.ts";
import { scopeKey, type Scope } from "../shared/scope.ts";
import { locateConfig } from "../config/locate.ts";
import { fileSchema, type FileConfig } from "../config/schema.ts";
import { configErrorFrom } from "../config/load.ts";
import { agentPermissions, collectorPermissions, defaultPasswordVar, renderUser, type UserAuth } from "../nats/permissions.ts";
import { inboxPrefixFor } from "../nats/subjects.ts";

/** Flags that take a value, for the CLI's command-word scan (args.ts). */
export const NATS_PERMISSIONS_STRING_FLAGS = ["host", "prefix", "user", "password-env", "nkey"] as const;

export const NATS_PERMISSIONS_USAGE = `Usage: runner-token-refresh nats-permissions [--config PATH] [--host NAME]
         [--org ORG]... [--repo OWNER/NAME]... [--enterprise SLUG]... [--prefix rtr]
         [--user NAME] [--password-env VAR | --nkey PUBLIC_KEY]
       runner-token-refresh nats-permissions --collector [--config PATH] [--prefix rtr]
         [--user NAME] [--password-env VAR | --nkey PUBLIC_KEY]

Prints the nats-server user entry for one agent host: it may publish only its own events
(<prefix>.events.<host>.>) and state keys ($KV.RTR_STATE.<host>.>), ask the token broker only
for its own scopes, read only its scopes' keys in RTR_GITHUB, and receive only on its inbox
prefix _INBOX_<host>. The host is --host, else nats.name of the config, else this machine's name;
the scopes are the --org/--repo/--enterprise flags (repeatable), else, when the config has
fleet.enabled, its runners' (and pools') scopes. With flags only, no config file is read.
--collector prints the collector's entry instead. The password is a variable nats-server
substitutes (--password-env, default RTR_<USER>_PASSWORD); --nkey names an nkey user instead.
Paste the entries into the users list of the account that holds the stream and buckets
(docs/nats.md; a complete example: config/nats/nats-server-3-hosts.conf).
Exit codes: 0 ok, 64 usage, 78 configuration error.
`;

interface Options {
  config?: string;
  host?: string;
  prefix?: string;
  user?: string;
  passwordEnv?: string;
  nkey?: string;
  collector: boolean;
  help: boolean;
  scopes: Scope[];
}

function parse(argv: string[]): Options {
  // The command word (wherever it stands, as the CLI found it) is not a flag.
  const at = argv.indexOf("nats-permissions");
  const args = at === -1 ? argv : [...argv.slice(0, at), ...argv.slice(at + 1)];
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: {
        config: { type: "string" },
        host: { type: "string" },
        prefix: { type: "string" },
        user: { type: "string" },
        "password-env": { type: "string" },
        nkey: { type: "string" },
        org: { type: "string", multiple: true },
        repo: { type: "string", multiple: true },
        enterprise: { type: "string", multiple: true },
        collector: { type: "boolean" },
        help: { type: "boolean" },
      },
    });
  } catch (err) {
    const message = (err as Error).message.split("\n")[0].replace(/\. To specify.*$/, "");
    throw new UsageError(`nats-permissions: ${message}: see runner-token-refresh nats-permissions --help`, { cause: err });
  }
  const v = parsed.values;
  for (const [flag, value] of Object.entries(v)) {
    if (value === "" || (Array.isArray(value) && value.includes(""))) throw new UsageError(`nats-permissions: --${flag} needs a value`);
  }
  const scopes: Scope[] = [];
  for (const org of v.org ?? []) scopes.push(checkedScope("org", org));
  for (const repo of v.repo ?? []) scopes.push(checkedScope("repo", repo));
  for (const enterprise of v.enterprise ?? []) scopes.push(checkedScope("enterprise", enterprise));
  const options: Options = { config: v.config, host: v.host, prefix: v.prefix, user: v.user, passwordEnv: v["password-env"], nkey: v.nkey, collector: v.collector ?? false, help: v.help ?? false, scopes };
  if (options.collector && (options.host || scopes.length)) throw new UsageError("nats-permissions: --collector describes the collector: leave out --host and the scope flags");
  if (options.nkey && options.passwordEnv) throw new UsageError("nats-permissions: pass --password-env or --nkey, not both (an nkey user has no password)");
  if (options.nkey && !/^U[A-Z2-7]{55}$/.test(options.nkey)) throw new UsageError(`nats-permissions: --nkey: expected a user's public nkey (U followed by 55 characters), got "${options.nkey}"`);
  if (options.passwordEnv && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.passwordEnv)) throw new UsageError(`nats-permissions: --password-env: expected a variable name such as RTR_CI01_PASSWORD, got "${options.passwordEnv}"`);
  if (options.prefix && !/^[a-z0-9_-]+$/.test(options.prefix)) throw new UsageError(`nats-permissions: --prefix: expected lower-case letters, digits, _ or - (e.g. rtr), got "${options.prefix}"`);
  return options;
}

function checkedScope(kind: "org" | "repo" | "enterprise", name: string): Scope {
  const ok = kind === "repo" ? /^[^/\s]+\/[^/\s]+$/.test(name) : /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name);
  if (!ok) throw new UsageError(`nats-permissions: --${kind}: expected ${kind === "repo" ? "OWNER/NAME" : `an ${kind} name`}, got "${name}"`);
  return { [kind]: name } as Scope;
}

/** The config file, validated but with no secret resolved (they may live only on the host). */
async function readConfig(runtime: Runtime, options: Options): Promise<{ file: FileConfig; label: string } | null> {
  // Flags alone describe a host: reading whatever config sits in this directory would mix two.
  if (!options.config && (options.host || options.scopes.length)) return null;
  const located = await locateConfig(runtime, options.config);
  if (!located) return null;
  const raw = located.raw ?? {};
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError(`${located.label}: expected a mapping of sections (github, runners, nats, ...) at the top level`);
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw configErrorFrom(located.label, parsed.error);
  return { file: parsed.data, label: located.label };
}

function uniqueScopes(scopes: Scope[]): Scope[] {
  return [...new Map(scopes.map((s) => [scopeKey(s), s])).values()];
}

/** Pools (SPEC 14) may not be in the schema yet; their scopes are read when they are. */
function poolScopes(file: FileConfig): Scope[] {
  const pools = (file as { pools?: { scope?: Scope }[] }).pools ?? [];
  return pools.flatMap((p) => (p.scope ? [p.scope] : []));
}

function describeNatsPermissions(runtime: Runtime, options: Options, config: { file: FileConfig; label: string } | null): string {
  const nats = config?.file.nats;
  const prefix = options.prefix ?? nats?.prefix ?? "rtr";
  const auth = (user: string): UserAuth => ({ user, passwordVar: options.passwordEnv, nkey: options.nkey });
  const secretNote = (user: string) => (options.nkey ? "an nkey user: the host connects with its seed (nats.credsFile)" : `password: $${options.passwordEnv ?? defaultPasswordVar(user)}, from nats-server's environment (or a variable set at the top of its config)`);
  if (options.collector) {
    const user = options.user ?? nats?.user ?? "collector";
    const inbox = nats?.inboxPrefix ?? "_INBOX";
    return renderUser(auth(user), collectorPermissions({ prefix, inboxPrefix: nats?.inboxPrefix }), [
      `runner-token-refresh collector (prefix ${prefix}, inbox ${inbox}; creates the stream and buckets, answers token requests)`,
      secretNote(user),
    ]);
  }
  const host = options.host ?? nats?.name ?? runtime.hostname();
  const fleet = options.scopes.length > 0 || (config?.file.fleet.enabled ?? false);
  const tokenScopes = options.scopes.length ? uniqueScopes(options.scopes) : fleet && config ? uniqueScopes(config.file.runners.map((r) => r.scope)) : [];
  const jitScopes = !options.scopes.length && fleet && config ? uniqueScopes(poolScopes(config.file)) : [];
  const inboxPrefix = nats?.inboxPrefix ?? inboxPrefixFor(host);
  const user = options.user ?? nats?.user ?? host;
  const what = tokenScopes.length ? `fleet mode: tokens for ${tokenScopes.map(scopeKey).join(", ")}${jitScopes.length ? `; JIT configs for ${jitScopes.map(scopeKey).join(", ")}` : ""}` : "no fleet mode: events and state only";
  return renderUser(auth(user), agentPermissions({ host, prefix, inboxPrefix, tokenScopes, jitScopes }), [
    `agent on host ${host}${config ? ` (${config.label})` : ""}: prefix ${prefix}, inbox ${inboxPrefix}; ${what}`,
    secretNote(user),
  ]);
}

export async function runNatsPermissions(runtime: Runtime, argv: string[]): Promise<number> {
  const options = parse(argv);
  if (options.help) {
    runtime.writeStdout(NATS_PERMISSIONS_USAGE);
    return ExitCode.ok;
  }
  const config = await readConfig(runtime, options);
  if (!config && !options.host && !options.scopes.length && !options.collector) {
    throw new UsageError("nats-permissions: no config file found and no --host: pass --config PATH (the host's agent config) or --host NAME [--org ORG ...]");
  }
  runtime.writeStdout(describeNatsPermissions(runtime, options, config));
  return ExitCode.ok;
}
