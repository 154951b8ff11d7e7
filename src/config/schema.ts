/**
 * The configuration file's schema (SPEC 4). Unknown keys are errors everywhere, so a typo is
 * reported at start instead of silently ignored. Durations accept seconds or `30s`/`5m`/`4h`/`7d`.
 */
import { z } from "zod";
import { parseDuration } from "../shared/duration.ts";
import type { Scope } from "../shared/scope.ts";

export const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const seconds = parseDuration(value);
  if (seconds === undefined) {
    ctx.addIssue({ code: "custom", message: `expected a duration such as 300, "30s", "5m", "4h" or "7d", got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return seconds;
});

/** A secret: a literal string, `{ env: NAME }` or `{ file: PATH }` (resolved in load.ts). */
export const secretRef = z.union([
  z.string().min(1),
  z.strictObject({ env: z.string().min(1) }),
  z.strictObject({ file: z.string().min(1) }),
]);
export type SecretRef = z.infer<typeof secretRef>;

const SCOPE_KEYS = ["org", "repo", "enterprise"] as const;
export const scopeSchema = z
  .record(z.string(), z.unknown())
  .superRefine((value, ctx) => {
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
  })
  .transform((value) => value as { org: string } | { repo: string } | { enterprise: string });

const serviceSchema = z.union([
  z.enum(["systemd", "svc.sh", "none"]),
  z.strictObject({
    start: z.array(z.string()).min(1),
    stop: z.array(z.string()).min(1),
    status: z.array(z.string()).min(1),
  }),
]);

export const runnerSchema = z.strictObject({
  dir: z.string().min(1),
  scope: scopeSchema,
  name: z.string().min(1).max(64).optional(),
  url: z.string().url().optional(),
  // No default: absent means "leave the runner's labels alone", [] means "no custom labels" (hygiene).
  labels: z.array(z.string().min(1)).optional(),
  group: z.string().min(1).optional(),
  ephemeral: z.boolean().default(false),
  work: z.string().min(1).optional(),
  service: serviceSchema.optional(),
  offlineGrace: duration.default(600),
  offlineWarnAfter: duration.default(7 * 86400),
  runAs: z.string().min(1).optional(),
});

/** A pool of ephemeral JIT runners (SPEC 14). Paths resolve against the config file's folder. */
export const poolSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9-]{1,24}$/, "expected 1 to 24 lower-case letters, digits or - (it becomes part of runner names)"),
    scope: scopeSchema,
    size: z.number().int("expected a whole number of runners").min(1, "expected at least 1 runner (drain a pool with `pool drain NAME` instead of size 0)").max(100, "expected at most 100 runners per pool"),
    labels: z.array(z.string().min(1)).min(1, "a JIT runner needs at least one custom label (jobs select it by label)").max(100, "GitHub allows at most 100 custom labels"),
    group: z.string().min(1).optional(),
    groupId: z.number().int().positive().optional(),
    template: z.string().min(1),
    baseDir: z.string().min(1).optional(),
    runAs: z.string().min(1),
    workFolder: z.string().min(1).default("_work"),
  })
  .refine((p) => !(p.group && p.groupId), { message: "give group (a name) or groupId, not both", path: ["group"] });

const appAuth = z.strictObject({
  appId: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]).transform(Number),
  privateKey: secretRef,
  installationId: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]).transform(Number).optional(),
});

/**
 * One of several Apps (`github.auth.apps`): the key from a file only, so no key is ever written
 * into a config file that lists many of them. Calls spread over the Apps by remaining budget.
 */
const appsEntry = z.strictObject({
  appId: appAuth.shape.appId,
  privateKeyFile: z.string().min(1, "expected the path of the App's private key (.pem)"),
  installationId: appAuth.shape.installationId,
});

/** A strict object with exactly one form, so a wrong field is named (a union would only say "no form matched"). */
const authSchema = z
  .strictObject({ token: secretRef.optional(), app: appAuth.optional(), apps: z.array(appsEntry).min(1, "expected at least one App: { appId, privateKeyFile }").optional() })
  .superRefine((auth, ctx) => {
    const given = (["token", "app", "apps"] as const).filter((k) => auth[k] !== undefined);
    if (given.length !== 1) ctx.addIssue({ code: "custom", message: `give exactly one of token, app, apps${given.length ? ` (got ${given.join(" and ")})` : ""}` });
    const seen = new Set<number>();
    auth.apps?.forEach((a, i) => {
      if (seen.has(a.appId)) ctx.addIssue({ code: "custom", path: ["apps", i, "appId"], message: `App ${a.appId} is listed twice: remove one entry` });
      seen.add(a.appId);
    });
  });

export const githubSchema = z.strictObject({
  url: z.string().url().default("https://github.com"),
  apiUrl: z.string().url().optional(),
  auth: authSchema.optional(),
  statusInterval: duration.default(1800),
  requestTimeout: duration.default(30),
});

export const refreshSchema = z.strictObject({
  threshold: duration.default(300),
  interval: duration.default(60),
  maxRetries: z.number().int().min(1).max(20).default(3),
  retryBackoff: duration.default(30),
  maxRetryWait: duration.default(300),
  lockTimeout: duration.default(120),
  splay: duration.default(0),
  reregister: z.enum(["when-needed", "on-refresh"]).default("when-needed"),
  /** How long config.sh may run before it is killed (extension; SPEC is silent). */
  configureTimeout: duration.default(300),
  /** How long to wait for a new registration to show `online` (extension). */
  onlineTimeout: duration.default(120),
});

export const stateSchema = z.strictObject({
  dir: z.string().min(1).optional(),
  metricsFile: z.string().min(1).optional(),
});

const tlsSchema = z.strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() });

export const natsSchema = z.strictObject({
  servers: z.union([z.string(), z.array(z.string()).min(1)]).transform((s) => (Array.isArray(s) ? s : s.split(",").map((x) => x.trim()).filter(Boolean))),
  credsFile: z.string().optional(),
  user: z.string().optional(),
  password: secretRef.optional(),
  token: secretRef.optional(),
  tls: tlsSchema.optional(),
  prefix: z.string().regex(/^[a-z0-9_-]+$/, "expected lower-case letters, digits, _ or - (e.g. rtr)").default("rtr"),
  name: z.string().min(1).optional(),
  /** Reply subjects' prefix; agents default to `_INBOX_<encoded name>` (docs/nats.md, "Permissions"). */
  inboxPrefix: z.string().regex(/^[^\s.*>]+(\.[^\s.*>]+)*$/, "expected subject tokens without wildcards or spaces, e.g. _INBOX_ci-01").optional(),
  /** Replicas of RTR_EVENTS and every KV bucket created (SPEC 16): 1 on a single server, 3 on a cluster. */
  replicas: z.number().int("expected a whole number of replicas: 1, or 3 on a three-node cluster").min(1, "expected 1 to 5 replicas (1 on a single server, 3 on a three-node cluster)").max(5, "expected 1 to 5 replicas (JetStream allows at most 5)").default(1),
});

export const httpSchema = z.strictObject({
  listen: z.string().regex(/^[^\s:]*:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, "expected HOST:PORT, e.g. 127.0.0.1:9469").optional(),
  auth: z.strictObject({ token: secretRef }).optional(),
});

export const collectorSchema = z.strictObject({ staleAfter: duration.optional() });

const FLEET_SCOPE_FORM = '{ org | repo | enterprise: NAME, hosts: [PATTERN, ...] }';

/**
 * A brokered scope and the hosts (their nats.name; `*` and `?` wildcards) allowed to ask for its
 * token. The list is required: a collector that would hand any scope's token to any host must
 * say so (`hosts: ["*"]`), see docs/fleet.md "Who may ask".
 */
export const fleetScopeSchema = z.record(z.string(), z.unknown()).transform((value, ctx) => {
  const { hosts, ...scope } = value;
  const parsed = scopeSchema.safeParse(scope);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", path: issue.path, message: `${issue.message}; a fleet scope is ${FLEET_SCOPE_FORM}` });
    return z.NEVER;
  }
  if (hosts === undefined) {
    ctx.addIssue({ code: "custom", path: ["hosts"], message: 'missing: list the hosts (their nats.name, * and ? as wildcards) allowed to ask the broker for this scope\'s token, e.g. hosts: ["ci-*"], or hosts: ["*"] for every host' });
    return z.NEVER;
  }
  const patterns = z.array(z.string().regex(/^\S+$/, "expected a host name or pattern without spaces")).min(1, 'expected at least one host pattern (["*"] for every host)').safeParse(hosts);
  if (!patterns.success) {
    for (const issue of patterns.error.issues) ctx.addIssue({ code: "custom", path: ["hosts", ...issue.path], message: issue.message });
    return z.NEVER;
  }
  return { ...parsed.data, hosts: patterns.data } as Scope & { hosts: string[] };
});

/**
 * A pool the collector's broker mints JIT runners for (SPEC 14): labels, group and work folder
 * come from here, never from the agent's request; `hosts` say which hosts may ask.
 */
export const fleetPoolSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9-]{1,24}$/, "expected the pool's name as the agents' pools[].name: 1 to 24 lower-case letters, digits or -"),
    scope: scopeSchema,
    labels: z.array(z.string().min(1)).min(1, "a JIT runner needs at least one custom label").max(100, "GitHub allows at most 100 custom labels"),
    group: z.string().min(1).optional(),
    groupId: z.number().int().positive().optional(),
    workFolder: z.string().min(1).default("_work"),
    hosts: z.array(z.string().regex(/^\S+$/, "expected a host name or pattern without spaces")).min(1, 'expected at least one host pattern (["*"] for every host)'),
  })
  .refine((p) => !(p.group && p.groupId), { message: "give group (a name) or groupId, not both", path: ["group"] });

export const fleetSchema = z.strictObject({
  enabled: z.boolean().default(false),
  scopes: z.array(fleetScopeSchema).optional(),
  pools: z.array(fleetPoolSchema).optional(),
  pollInterval: duration.default(60),
  allowInsecure: z.boolean().default(false),
});

export const alertsSchema = z.strictObject({
  afterConsecutiveFailures: z.number().int().min(1).default(3),
  repeatInterval: duration.default(4 * 3600),
  groupWait: duration.default(0),
  maxPerMinute: z.number().int().min(1).default(20),
  sendResolved: z.boolean().default(true),
  timeout: duration.default(10),
  plugins: z.array(z.tuple([z.string().min(1), z.unknown()]).or(z.tuple([z.string().min(1)]))).default([]),
});

export const logSchema = z.strictObject({
  level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  file: z.string().min(1).optional(),
});

export const fileSchema = z.strictObject({
  github: githubSchema.default(githubSchema.parse({})),
  runners: z.array(runnerSchema).default([]),
  pools: z.array(poolSchema).default([]),
  refresh: refreshSchema.default(refreshSchema.parse({})),
  state: stateSchema.default({}),
  nats: natsSchema.optional(),
  http: httpSchema.default({}),
  collector: collectorSchema.default({}),
  fleet: fleetSchema.default(fleetSchema.parse({})),
  alerts: alertsSchema.default(alertsSchema.parse({})),
  log: logSchema.default(logSchema.parse({})),
});

export type FileConfig = z.infer<typeof fileSchema>;
export type RunnerFileConfig = z.infer<typeof runnerSchema>;
export type ScopeConfig = z.infer<typeof scopeSchema>;
