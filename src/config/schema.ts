/**
 * The configuration file's schema (SPEC 4). Unknown keys are errors everywhere, so a typo is
 * reported at start instead of silently ignored. Durations accept seconds or `30s`/`5m`/`4h`/`7d`.
 *
 * Written with `zod/mini` (issue #18): the same checks and issue messages as the full build (the
 * English messages are loaded below), without its method chains and every locale, which cost
 * the daemon ~5 MiB of RSS and ~50 ms of start-up for a schema used once.
 */
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { parseDuration } from "../shared/duration.ts";
import type { Scope } from "../shared/scope.ts";

// The full build sets English messages itself; zod/mini leaves that to its user.
z.config(en());

/** A transform's failure, as the full build's `ctx.addIssue` records it (zod/mini has no addIssue there). */
function fail(payload: z.core.ParsePayload, message: string, path?: PropertyKey[]): never {
  payload.issues.push({ code: "custom", message, input: payload.value, ...(path ? { path } : {}) });
  return z.NEVER;
}

const str = (min = 1, message?: string) => z.string().check(z.minLength(min, message));
const opt = z.optional;
const def = z._default;

export const duration = z.pipe(
  z.union([z.number(), z.string()]),
  z.transform((value: number | string, payload) => {
    const seconds = parseDuration(value);
    if (seconds === undefined) return fail(payload, `expected a duration such as 300, "30s", "5m", "4h" or "7d", got ${JSON.stringify(value)}`);
    return seconds;
  }),
);

/** A secret: a literal string, `{ env: NAME }` or `{ file: PATH }` (resolved in load.ts). */
export const secretRef = z.union([str(), z.strictObject({ env: str() }), z.strictObject({ file: str() })]);
export type SecretRef = z.infer<typeof secretRef>;

const SCOPE_KEYS = ["org", "repo", "enterprise"] as const;
export const scopeSchema = z.pipe(
  z.record(z.string(), z.unknown()).check(
    z.superRefine((value, ctx) => {
      const keys = Object.keys(value);
      if (keys.length !== 1 || !SCOPE_KEYS.includes(keys[0] as (typeof SCOPE_KEYS)[number])) {
        ctx.addIssue({ code: "custom", message: "expected one of org, repo, enterprise (exactly one key, e.g. { org: my-org })" });
        return;
      }
      const [key] = keys;
      const name = value[key];
      if (typeof name !== "string" || name.length === 0) {
        ctx.addIssue({ code: "custom", path: [key], message: "expected a non-empty name" });
      } else if (key === "repo" && !/^[^/\s]+\/[^/\s]+$/.test(name)) {
        ctx.addIssue({ code: "custom", path: [key], message: `expected OWNER/NAME, got "${name}"` });
      } else if (key !== "repo" && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
        ctx.addIssue({ code: "custom", path: [key], message: `"${name}" is not a valid ${key} name` });
      }
    }),
  ),
  z.transform((value) => value as { org: string } | { repo: string } | { enterprise: string }),
);

const nonEmptyList = z.array(z.string()).check(z.minLength(1));
const serviceSchema = z.union([
  z.enum(["systemd", "svc.sh", "none"]),
  z.strictObject({ start: nonEmptyList, stop: nonEmptyList, status: nonEmptyList }),
]);

export const runnerSchema = z.strictObject({
  dir: str(),
  scope: scopeSchema,
  name: opt(z.string().check(z.minLength(1), z.maxLength(64))),
  url: opt(z.string().check(z.url())),
  // No default: absent means "leave the runner's labels alone", [] means "no custom labels" (hygiene).
  labels: opt(z.array(str())),
  group: opt(str()),
  ephemeral: def(z.boolean(), false),
  work: opt(str()),
  service: opt(serviceSchema),
  offlineGrace: def(duration, 600),
  offlineWarnAfter: def(duration, 7 * 86400),
  runAs: opt(str()),
});

const groupOrId = z.refine<{ group?: string; groupId?: number }>((p) => !(p.group && p.groupId), { message: "give group (a name) or groupId, not both", path: ["group"] });

/** A pool of ephemeral JIT runners (SPEC 14). Paths resolve against the config file's folder. */
export const poolSchema = z
  .strictObject({
    name: z.string().check(z.regex(/^[a-z0-9-]{1,24}$/, "expected 1 to 24 lower-case letters, digits or - (it becomes part of runner names)")),
    scope: scopeSchema,
    size: z.int("expected a whole number of runners").check(z.gte(1, "expected at least 1 runner (drain a pool with `pool drain NAME` instead of size 0)"), z.lte(100, "expected at most 100 runners per pool")),
    labels: z.array(str()).check(z.minLength(1, "a JIT runner needs at least one custom label (jobs select it by label)"), z.maxLength(100, "GitHub allows at most 100 custom labels")),
    group: opt(str()),
    groupId: opt(z.int().check(z.positive())),
    template: str(),
    baseDir: opt(str()),
    runAs: str(),
    workFolder: def(str(), "_work"),
  })
  .check(groupOrId);

const numericId = z.pipe(z.union([z.int().check(z.positive()), z.string().check(z.regex(/^\d+$/))]), z.transform(Number));
const appAuth = z.strictObject({
  appId: numericId,
  privateKey: secretRef,
  installationId: opt(numericId),
});

/**
 * One of several Apps (`github.auth.apps`): the key from a file only, so no key is ever written
 * into a config file that lists many of them. Calls spread over the Apps by remaining budget.
 */
const appsEntry = z.strictObject({
  appId: appAuth.shape.appId,
  privateKeyFile: str(1, "expected the path of the App's private key (.pem)"),
  installationId: appAuth.shape.installationId,
});

/** A strict object with exactly one form, so a wrong field is named (a union would only say "no form matched"). */
const authSchema = z
  .strictObject({ token: opt(secretRef), app: opt(appAuth), apps: opt(z.array(appsEntry).check(z.minLength(1, "expected at least one App: { appId, privateKeyFile }"))) })
  .check(
    z.superRefine((auth, ctx) => {
      const given = (["token", "app", "apps"] as const).filter((k) => auth[k] !== undefined);
      if (given.length !== 1) ctx.addIssue({ code: "custom", message: `give exactly one of token, app, apps${given.length ? ` (got ${given.join(" and ")})` : ""}` });
      const seen = new Set<number>();
      auth.apps?.forEach((a, i) => {
        if (seen.has(a.appId)) ctx.addIssue({ code: "custom", path: ["apps", i, "appId"], message: `App ${a.appId} is listed twice: remove one entry` });
        seen.add(a.appId);
      });
    }),
  );

const url = z.string().check(z.url());

export const githubSchema = z.strictObject({
  url: def(url, "https://github.com"),
  apiUrl: opt(url),
  auth: opt(authSchema),
  statusInterval: def(duration, 1800),
  requestTimeout: def(duration, 30),
});

export const refreshSchema = z.strictObject({
  threshold: def(duration, 300),
  interval: def(duration, 60),
  maxRetries: def(z.int().check(z.gte(1), z.lte(20)), 3),
  retryBackoff: def(duration, 30),
  maxRetryWait: def(duration, 300),
  lockTimeout: def(duration, 120),
  splay: def(duration, 0),
  reregister: def(z.enum(["when-needed", "on-refresh"]), "when-needed"),
  /** How long config.sh may run before it is killed (extension; SPEC is silent). */
  configureTimeout: def(duration, 300),
  /** How long to wait for a new registration to show `online` (extension). */
  onlineTimeout: def(duration, 120),
});

export const stateSchema = z.strictObject({
  dir: opt(str()),
  metricsFile: opt(str()),
});

const tlsSchema = z.strictObject({ ca: opt(z.string()), cert: opt(z.string()), key: opt(z.string()) });

export const natsSchema = z.strictObject({
  servers: z.pipe(
    z.union([z.string(), z.array(z.string()).check(z.minLength(1))]),
    z.transform((s: string | string[]) => (Array.isArray(s) ? s : s.split(",").map((x) => x.trim()).filter(Boolean))),
  ),
  credsFile: opt(z.string()),
  user: opt(z.string()),
  password: opt(secretRef),
  token: opt(secretRef),
  tls: opt(tlsSchema),
  prefix: def(z.string().check(z.regex(/^[a-z0-9_-]+$/, "expected lower-case letters, digits, _ or - (e.g. rtr)")), "rtr"),
  name: opt(str()),
  /** Reply subjects' prefix; agents default to `_INBOX_<encoded name>` (docs/nats.md, "Permissions"). */
  inboxPrefix: opt(z.string().check(z.regex(/^[^\s.*>]+(\.[^\s.*>]+)*$/, "expected subject tokens without wildcards or spaces, e.g. _INBOX_ci-01"))),
  /** Replicas of RTR_EVENTS and every KV bucket created (SPEC 16): 1 on a single server, 3 on a cluster. */
  replicas: def(
    z.int("expected a whole number of replicas: 1, or 3 on a three-node cluster").check(
      z.gte(1, "expected 1 to 5 replicas (1 on a single server, 3 on a three-node cluster)"),
      z.lte(5, "expected 1 to 5 replicas (JetStream allows at most 5)"),
    ),
    1,
  ),
});

export const httpSchema = z.strictObject({
  listen: opt(z.string().check(z.regex(/^[^\s:]*:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, "expected HOST:PORT, e.g. 127.0.0.1:9469"))),
  auth: opt(z.strictObject({ token: secretRef })),
});

export const collectorSchema = z.strictObject({ staleAfter: opt(duration) });

const FLEET_SCOPE_FORM = '{ org | repo | enterprise: NAME, hosts: [PATTERN, ...] }';

const hostPatterns = z.array(z.string().check(z.regex(/^\S+$/, "expected a host name or pattern without spaces"))).check(z.minLength(1, 'expected at least one host pattern (["*"] for every host)'));

/**
 * A brokered scope and the hosts (their nats.name; `*` and `?` wildcards) allowed to ask for its
 * token. The list is required: a collector that would hand any scope's token to any host must
 * say so (`hosts: ["*"]`), see docs/fleet.md "Who may ask".
 */
export const fleetScopeSchema = z.pipe(
  z.record(z.string(), z.unknown()),
  z.transform((value: Record<string, unknown>, payload) => {
    const { hosts, ...scope } = value;
    const parsed = scopeSchema.safeParse(scope);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) fail(payload, `${issue.message}; a fleet scope is ${FLEET_SCOPE_FORM}`, issue.path);
      return z.NEVER;
    }
    if (hosts === undefined) {
      return fail(payload, 'missing: list the hosts (their nats.name, * and ? as wildcards) allowed to ask the broker for this scope\'s token, e.g. hosts: ["ci-*"], or hosts: ["*"] for every host', ["hosts"]);
    }
    const patterns = hostPatterns.safeParse(hosts);
    if (!patterns.success) {
      for (const issue of patterns.error.issues) fail(payload, issue.message, ["hosts", ...issue.path]);
      return z.NEVER;
    }
    return { ...parsed.data, hosts: patterns.data } as Scope & { hosts: string[] };
  }),
);

/**
 * A pool the collector's broker mints JIT runners for (SPEC 14): labels, group and work folder
 * come from here, never from the agent's request; `hosts` say which hosts may ask.
 */
export const fleetPoolSchema = z
  .strictObject({
    name: z.string().check(z.regex(/^[a-z0-9-]{1,24}$/, "expected the pool's name as the agents' pools[].name: 1 to 24 lower-case letters, digits or -")),
    scope: scopeSchema,
    labels: z.array(str()).check(z.minLength(1, "a JIT runner needs at least one custom label"), z.maxLength(100, "GitHub allows at most 100 custom labels")),
    group: opt(str()),
    groupId: opt(z.int().check(z.positive())),
    workFolder: def(str(), "_work"),
    hosts: hostPatterns,
  })
  .check(groupOrId);

export const fleetSchema = z.strictObject({
  enabled: def(z.boolean(), false),
  scopes: opt(z.array(fleetScopeSchema)),
  pools: opt(z.array(fleetPoolSchema)),
  pollInterval: def(duration, 60),
  allowInsecure: def(z.boolean(), false),
});

export const alertsSchema = z.strictObject({
  afterConsecutiveFailures: def(z.int().check(z.gte(1)), 3),
  repeatInterval: def(duration, 4 * 3600),
  groupWait: def(duration, 0),
  maxPerMinute: def(z.int().check(z.gte(1)), 20),
  sendResolved: def(z.boolean(), true),
  timeout: def(duration, 10),
  plugins: def(z.array(z.union([z.tuple([str(), z.unknown()]), z.tuple([str()])])), []),
});

export const logSchema = z.strictObject({
  level: def(z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]), "info"),
  file: opt(str()),
});

export const fileSchema = z.strictObject({
  github: def(githubSchema, githubSchema.parse({})),
  runners: def(z.array(runnerSchema), []),
  pools: def(z.array(poolSchema), []),
  refresh: def(refreshSchema, refreshSchema.parse({})),
  state: def(stateSchema, {}),
  nats: opt(natsSchema),
  http: def(httpSchema, {}),
  collector: def(collectorSchema, {}),
  fleet: def(fleetSchema, fleetSchema.parse({})),
  alerts: def(alertsSchema, alertsSchema.parse({})),
  log: def(logSchema, logSchema.parse({})),
});

export type FileConfig = z.infer<typeof fileSchema>;
export type RunnerFileConfig = z.infer<typeof runnerSchema>;
export type ScopeConfig = z.infer<typeof scopeSchema>;
