/**
 * The configuration file's schema (SPEC 4). Unknown keys are errors everywhere, so a typo is
 * reported at start instead of silently ignored. Durations accept seconds or `30s`/`5m`/`4h`/`7d`.
 */
import { z } from "zod";
import { parseDuration } from "../shared/duration.ts";

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
  labels: z.array(z.string().min(1)).default([]),
  group: z.string().min(1).optional(),
  ephemeral: z.boolean().default(false),
  work: z.string().min(1).optional(),
  service: serviceSchema.optional(),
  offlineGrace: duration.default(600),
  offlineWarnAfter: duration.default(7 * 86400),
  runAs: z.string().min(1).optional(),
});

const appAuth = z.strictObject({
  appId: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]).transform(Number),
  privateKey: secretRef,
  installationId: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]).transform(Number).optional(),
});

export const githubSchema = z.strictObject({
  url: z.string().url().default("https://github.com"),
  apiUrl: z.string().url().optional(),
  auth: z
    .union([z.strictObject({ token: secretRef }), z.strictObject({ app: appAuth })])
    .optional(),
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
});

export const httpSchema = z.strictObject({
  listen: z.string().regex(/^[^\s:]*:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, "expected HOST:PORT, e.g. 127.0.0.1:9469").optional(),
  auth: z.strictObject({ token: secretRef }).optional(),
});

export const collectorSchema = z.strictObject({ staleAfter: duration.optional() });

export const fleetSchema = z.strictObject({
  enabled: z.boolean().default(false),
  scopes: z.array(scopeSchema).optional(),
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
