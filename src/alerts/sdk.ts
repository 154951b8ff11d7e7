/**
 * The public plugin SDK (`runner-token-refresh/plugin`, SPEC 10). A plugin is a module whose default
 * export is `definePlugin({ name, parseOptions, create })`; `create` returns `{ send, close? }`.
 * The host owns retry, timeout, logging, metrics and redaction; a plugin only speaks its channel's
 * wire format and says, by throwing AlertDeliveryError, whether a failure is worth retrying.
 * This file imports nothing from the rest of the program, so plugins depend on it alone.
 */

export type Severity = "critical" | "error" | "warning" | "info";

export interface AlertScope {
  org?: string;
  repo?: string;
  enterprise?: string;
}

export interface Notification {
  status: "firing" | "resolved";
  /** `refresh_failures`, `registration_failures`, `runner_offline`, `agent_silent`, `token_expired`, ... */
  rule: string;
  /** `<rule>/<host>/<runner>`, or `<rule>/<host>/<scope>` for a scope alert: stable for the life of the alert (PagerDuty's dedup_key). */
  key: string;
  host: string;
  runner: string | null;
  scope: AlertScope | null;
  severity: Severity;
  summary: string;
  /** When the condition started (ISO 8601). */
  startsAt: string;
  /** When it ended (resolved notifications only). */
  endsAt?: string;
  /** Resolved notifications: how long the alert lasted, in seconds (set by the host). */
  resolvedAfterSeconds?: number;
  /** Resolved notifications: the same in words, `recovered after 12m` (set by the host). */
  recovered?: string;
  /** A scope alert (`runner` null) lists the runners it affects in `runners` (a string array). */
  details: Record<string, unknown>;
  /** A reminder of an alert still firing (repeatInterval). */
  reminder?: boolean;
  /** Sent by `runner-token-refresh alert test`: not a real alert. */
  test?: boolean;
  /** Several alerts of one rule that started within groupWait, sent as one notification. */
  group?: Notification[];
  /** This notification stands for this many alerts over the per-minute cap ("N more"). */
  more?: number;
}

/** The words every plugin's human-readable text starts with. */
export function statusWord(n: Pick<Notification, "status" | "test">): string {
  return `${n.test ? "TEST " : ""}${n.status === "firing" ? "FIRING" : "RESOLVED"}`;
}

/** `org:acme`, `repo:OWNER/NAME` or `enterprise:SLUG`, as alert keys write a scope; null for none. */
export function scopeName(scope: AlertScope | null | undefined): string | null {
  if (scope?.enterprise) return `enterprise:${scope.enterprise}`;
  if (scope?.org) return `org:${scope.org}`;
  if (scope?.repo) return `repo:${scope.repo}`;
  return null;
}

/**
 * The runners an alert is about: its own runner, or for a scope alert (`runner` null) the names
 * in `details.runners`. A page that says "org:acme is failing" must also say which runners.
 */
export function affectedRunners(n: Pick<Notification, "runner" | "details">): string[] {
  if (n.runner) return [n.runner];
  const listed = n.details?.runners;
  return Array.isArray(listed) ? listed.filter((r): r is string => typeof r === "string" && r !== "") : [];
}

/** `a, b, c and 4 more`: names for a line of text, at most `max` of them spelled out. */
export function nameList(names: string[], max = 10): string {
  if (names.length <= max) return names.join(", ");
  return `${names.slice(0, max).join(", ")} and ${names.length - max} more`;
}

/** Where an alert is: `ci-01/runner-1`, `ci-01/org:acme` for a scope alert, else the host. */
export function alertTarget(n: Pick<Notification, "host" | "runner" | "scope">): string {
  if (n.runner) return `${n.host}/${n.runner}`;
  const scope = scopeName(n.scope);
  return scope ? `${n.host}/${scope}` : n.host;
}

/** `alertTarget`, plus a scope alert's runners: `ci-01/org:acme (runners runner-1, runner-2)`. */
export function targetWithRunners(n: Pick<Notification, "host" | "runner" | "scope" | "details">): string {
  const runners = n.runner ? [] : affectedRunners(n);
  return runners.length ? `${alertTarget(n)} (runner${runners.length > 1 ? "s" : ""} ${nameList(runners)})` : alertTarget(n);
}

/**
 * One line a human reads first: `[FIRING] refresh_failures on ci-01/runner-1: summary`; for a
 * scope alert `[FIRING] refresh_failures on ci-01/org:acme (runners runner-1, runner-2): summary`.
 */
export function headline(n: Notification): string {
  if (n.more) return `[${statusWord(n)}] ${n.more} more alerts (over the per-minute limit)`;
  if (n.group?.length) return `[${statusWord(n)}] ${n.group.length} × ${n.rule}: ${n.group.map(targetWithRunners).join(", ")}`;
  const recovered = recoveredText(n);
  return `[${statusWord(n)}] ${n.rule} on ${targetWithRunners(n)}: ${recovered ? `${recovered} (was: ${n.summary})` : n.summary}`;
}

/** A coarse duration: 45s, 12m, 3h 5m, 2d 4h. */
function duration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${s % 3600 >= 60 ? ` ${Math.floor((s % 3600) / 60)}m` : ""}`;
  return `${Math.floor(s / 86400)}d${s % 86400 >= 3600 ? ` ${Math.floor((s % 86400) / 3600)}h` : ""}`;
}

/**
 * `recovered after 12m` for a resolved notification: the host's words when it set them, else from
 * `startsAt` and `endsAt`; null for a firing one or when the times are unknown.
 */
export function recoveredText(n: Pick<Notification, "status" | "startsAt" | "endsAt" | "recovered" | "resolvedAfterSeconds">): string | null {
  if (n.status !== "resolved") return null;
  if (n.recovered) return n.recovered;
  const seconds = n.resolvedAfterSeconds ?? (n.endsAt ? (Date.parse(n.endsAt) - Date.parse(n.startsAt)) / 1000 : NaN);
  return Number.isFinite(seconds) ? `recovered after ${duration(seconds)}` : null;
}

/** Seconds a receiver asks us to wait (`Retry-After` as seconds or an HTTP date), if it says. */
export function retryAfterSeconds(res: Response): number | undefined {
  const h = res.headers.get("retry-after")?.trim();
  if (!h) return undefined;
  if (/^\d+$/.test(h)) return Number(h);
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

export class AlertDeliveryError extends Error {
  readonly retryable: boolean;
  /** Seconds the receiver asked us to wait (Retry-After). */
  readonly retryAfterSeconds?: number;
  constructor(message: string, options: { retryable: boolean; cause?: unknown; retryAfterSeconds?: number }) {
    super(message, { cause: options.cause });
    // The host recognises this by name, not instanceof: a plugin may bundle its own SDK copy.
    this.name = "AlertDeliveryError";
    this.retryable = options.retryable;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** A bad plugin option; `path` is relative to the plugin's options (`webhookUrl`, `smtp.port`). */
export class PluginOptionsError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = "PluginOptionsError";
    this.path = path;
  }
}

export interface PluginLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface PluginContext {
  log: PluginLogger;
  fetch: typeof fetch;
}

export interface OptionsHelpers {
  /** Resolves a secret given as a string, `{ env: NAME }` or `{ file: PATH }`, and keeps it out of logs. */
  secret(value: unknown, path: string): Promise<string>;
}

export interface PluginInstance {
  send(notification: Notification, signal: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}

export interface PluginDefinition<O = unknown> {
  name: string;
  /** False for channels that want one event per alert key (PagerDuty): no grouping, no "N more". */
  groups?: boolean;
  parseOptions(raw: unknown, helpers: OptionsHelpers): O | Promise<O>;
  create(options: O, ctx: PluginContext): PluginInstance | Promise<PluginInstance>;
}

export function definePlugin<O>(definition: PluginDefinition<O>): PluginDefinition<O> {
  return definition;
}

/** Reads a plugin's options object with typed accessors; `done()` rejects unknown keys. */
export class Options {
  private readonly seen = new Set<string>();
  private readonly value: Record<string, unknown>;

  constructor(raw: unknown, private readonly prefix = "") {
    if (raw === undefined || raw === null) raw = {};
    if (typeof raw !== "object" || Array.isArray(raw)) throw new PluginOptionsError(prefix || "(options)", "expected an object of options");
    this.value = raw as Record<string, unknown>;
  }

  private path(key: string): string {
    return this.prefix ? `${this.prefix}.${key}` : key;
  }

  raw(key: string): unknown {
    this.seen.add(key);
    return this.value[key];
  }

  has(key: string): boolean {
    return this.value[key] !== undefined;
  }

  string(key: string): string;
  string(key: string, opts: { optional: true }): string | undefined;
  string(key: string, opts: { default: string }): string;
  string(key: string, opts: { optional?: boolean; default?: string } = {}): string | undefined {
    const v = this.raw(key);
    if (v === undefined) {
      if (opts.default !== undefined) return opts.default;
      if (opts.optional) return undefined;
      throw new PluginOptionsError(this.path(key), "required");
    }
    if (typeof v !== "string" || v.length === 0) throw new PluginOptionsError(this.path(key), "expected a non-empty string");
    return v;
  }

  url(key: string, opts: { default?: string } = {}): string {
    const v = opts.default !== undefined ? this.string(key, { default: opts.default }) : this.string(key);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new PluginOptionsError(this.path(key), "expected a URL such as https://example.com/hook");
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") throw new PluginOptionsError(this.path(key), "expected an http(s) URL");
    return v;
  }

  number(key: string, opts: { default?: number; min?: number; max?: number; integer?: boolean } = {}): number {
    const v = this.raw(key);
    if (v === undefined && opts.default !== undefined) return opts.default;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new PluginOptionsError(this.path(key), v === undefined ? "required" : "expected a number");
    if (opts.integer && !Number.isInteger(v)) throw new PluginOptionsError(this.path(key), "expected a whole number");
    if (opts.min !== undefined && v < opts.min) throw new PluginOptionsError(this.path(key), `expected at least ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) throw new PluginOptionsError(this.path(key), `expected at most ${opts.max}`);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") throw new PluginOptionsError(this.path(key), "expected true or false");
    return v;
  }

  oneOf<T extends string>(key: string, values: readonly T[], fallback: T): T {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== "string" || !values.includes(v as T)) throw new PluginOptionsError(this.path(key), `expected one of ${values.join(", ")}`);
    return v as T;
  }

  strings(key: string, opts: { optional?: boolean; min?: number } = {}): string[] {
    const v = this.raw(key);
    if (v === undefined && opts.optional) return [];
    const list = typeof v === "string" ? [v] : v;
    if (!Array.isArray(list) || list.some((x) => typeof x !== "string" || !x)) throw new PluginOptionsError(this.path(key), "expected a list of strings");
    if (opts.min !== undefined && list.length < opts.min) throw new PluginOptionsError(this.path(key), `expected at least ${opts.min} item(s)`);
    return list as string[];
  }

  object(key: string, opts: { optional?: boolean } = {}): Options | undefined {
    const v = this.raw(key);
    if (v === undefined) {
      if (opts.optional) return undefined;
      throw new PluginOptionsError(this.path(key), "required");
    }
    return new Options(v, this.path(key));
  }

  /** Throws for any key no accessor read: a typo is reported at start, not ignored. */
  done(): void {
    for (const key of Object.keys(this.value)) {
      if (!this.seen.has(key)) throw new PluginOptionsError(this.path(key), "unknown option: remove it or check the spelling");
    }
  }
}
