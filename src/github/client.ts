/**
 * GitHub access through @octokit/core (`request` only: @octokit/rest's endpoint tables cost
 * memory for routes the agent never calls) with a PAT or a GitHub App. Library retries are off: the
 * agent's policy (retry.ts) decides. A wrapped `fetch` sees every request, including the App's
 * installation-token exchange, so every credential is registered for redaction and every
 * answer's rate-limit and Date headers are observed.
 */
import { Octokit } from "@octokit/core";
import { createAppAuth } from "@octokit/auth-app";
import { GitHubError, AbortedError, errorMessage } from "../shared/errors.ts";
import { addSecret, redact } from "../shared/redact.ts";
import { sleep } from "../shared/backoff.ts";
import { scopeApiPath, type Scope } from "../shared/scope.ts";
import type { GitHubAuth } from "../config/types.ts";
import { describeFailure } from "./describe.ts";
import { isRateLimit, isRetryable, retryWaitSeconds, serverWaitSeconds, type FailedAttempt, type RetryPolicy } from "./retry.ts";
import { checkListPage, LIST_PAGE_SIZE, type RunnerListing } from "./runner-list.ts";

export interface RateLimitInfo {
  limit: number;
  remaining: number;
  reset: number;
  used: number;
  resource: string;
}

export interface GitHubObserver {
  request(endpoint: string, status: string): void;
  rateLimit(info: RateLimitInfo): void;
  /** Local clock minus the server's `Date`, when more than 60 s apart. */
  clockSkew(seconds: number): void;
  credentialExpiry(at: Date): void;
  /** A retry is about to wait (for logging). */
  retrying(endpoint: string, attempt: number, waitSeconds: number, reason: string): void;
}

export interface RunnerApiState {
  id: number;
  name: string;
  status: "online" | "offline";
  busy: boolean;
  labels: string[];
  /** Labels of type "custom" (hygiene compares them with runners[].labels); absent when not known. */
  customLabels?: string[];
  /** Labels of type "read-only" (set by config.sh: self-hosted, OS, architecture). */
  readOnlyLabels?: string[];
  /** `runner_group_id`, in newer API versions only. */
  groupId?: number;
}

/** A conditional status read: unchanged (304), or the runner (null: 404) with its ETag. */
export type ConditionalRunner = { notModified: true } | { notModified: false; runner: RunnerApiState | null; etag: string | null };

export interface RegistrationToken {
  token: string;
  expiresAt: Date;
}

export interface GitHubClientOptions {
  apiUrl: string;
  auth: GitHubAuth;
  requestTimeout: number;
  retry: RetryPolicy;
  observer: GitHubObserver;
  userAgent: string;
  fetch?: typeof fetch;
  now?: () => number;
}

type OctokitResponse<T> = { status: number; data: T; headers: Record<string, string | number | undefined> };

const CLOCK_SKEW_LIMIT_SECONDS = 60;
/** Registration and installation tokens live one hour at GitHub; used when no expiry is known. */
const TOKEN_LIFETIME_MS = 3600_000;

function requestPath(input: RequestInfo | URL): string {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  return url.replace(/[?#].*$/, "");
}

/**
 * When an App credential seen in a request stops mattering: a JWT says so itself (`exp`, at most
 * 10 minutes out); an installation token is registered from its exchange with the real expiry
 * first, so this guess (its one-hour lifetime from now) only covers a token we never saw minted.
 */
function shortLivedExpiry(credential: string, now: number): Date {
  const parts = credential.split(".");
  if (parts.length === 3) {
    try {
      const exp = (JSON.parse(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: unknown }).exp;
      if (typeof exp === "number") return new Date(exp * 1000);
    } catch {
      // Not a JWT after all: fall through to the token lifetime.
    }
  }
  return new Date(now + TOKEN_LIFETIME_MS);
}

type RawRunner = { id: number; name: string; status: string; busy: boolean; labels?: { name: string; type?: string }[]; runner_group_id?: number };

function toRunner(raw: RawRunner): RunnerApiState {
  const labels = raw.labels ?? [];
  const typed = labels.every((l) => l.type === "custom" || l.type === "read-only");
  return {
    id: raw.id,
    name: raw.name,
    status: raw.status === "online" ? "online" : "offline",
    busy: raw.busy,
    labels: labels.map((l) => l.name),
    // Only when every label says its type: an untyped answer must never look like "no custom labels".
    ...(typed ? { customLabels: labels.filter((l) => l.type === "custom").map((l) => l.name), readOnlyLabels: labels.filter((l) => l.type === "read-only").map((l) => l.name) } : {}),
    ...(typeof raw.runner_group_id === "number" ? { groupId: raw.runner_group_id } : {}),
  };
}

export class GitHubClient {
  private readonly octokits = new Map<string, Promise<Octokit>>();
  /** The last `?name=` answer per scope and name, with its ETag (conditional re-reads). */
  private readonly byName = new Map<string, { etag: string; runners: RunnerApiState[] }>();
  private readonly now: () => number;

  constructor(private readonly options: GitHubClientOptions) {
    this.now = options.now ?? Date.now;
    if (options.auth.kind === "token") addSecret(options.auth.token);
    else addSecret(options.auth.privateKey);
  }

  private observedFetch(): typeof fetch {
    const base = this.options.fetch ?? fetch;
    return (async (input: RequestInfo | URL, init?: RequestInit) => {
      const authorization = new Headers(init?.headers).get("authorization");
      if (authorization) {
        const credential = authorization.replace(/^(token|bearer)\s+/i, "");
        // With a PAT this is the PAT (long-lived); with an App, a JWT or an installation token.
        addSecret(credential, this.options.auth.kind === "token" ? null : shortLivedExpiry(credential, this.now()));
      }
      const response = await base(input, init);
      this.observeHeaders(response.headers);
      if (response.ok && /\/app\/installations\/[^/]+\/access_tokens$/.test(requestPath(input))) await this.observeInstallationToken(response);
      return response;
    }) as typeof fetch;
  }

  /** Registers a new installation token with its real expiry, before any request carries it. */
  private async observeInstallationToken(response: Response): Promise<void> {
    try {
      const data = (await response.clone().json()) as { token?: unknown; expires_at?: unknown };
      if (typeof data.token === "string" && typeof data.expires_at === "string") addSecret(data.token, new Date(data.expires_at));
    } catch {
      // Not JSON: auth-app fails on it too, and no token was handed out.
    }
  }

  private observeHeaders(headers: Headers): void {
    const { observer } = this.options;
    const remaining = headers.get("x-ratelimit-remaining");
    if (remaining !== null) {
      observer.rateLimit({
        limit: Number(headers.get("x-ratelimit-limit") ?? 0),
        remaining: Number(remaining),
        reset: Number(headers.get("x-ratelimit-reset") ?? 0),
        used: Number(headers.get("x-ratelimit-used") ?? 0),
        resource: headers.get("x-ratelimit-resource") ?? "core",
      });
    }
    const date = headers.get("date");
    if (date) {
      const server = Date.parse(date);
      // The Date header has one-second resolution: compare whole seconds.
      const skew = Math.round((this.now() - server) / 1000);
      if (Number.isFinite(server) && Math.abs(skew) > CLOCK_SKEW_LIMIT_SECONDS) observer.clockSkew(skew);
    }
    const expiry = headers.get("github-authentication-token-expiration");
    if (expiry) {
      const at = Date.parse(expiry.replace(" UTC", "Z").replace(" ", "T"));
      if (Number.isFinite(at)) observer.credentialExpiry(new Date(at));
    }
  }

  private newOctokit(auth: unknown, authStrategy?: unknown): Octokit {
    const silent = () => {};
    return new Octokit({
      baseUrl: this.options.apiUrl,
      userAgent: this.options.userAgent,
      auth: auth as string,
      ...(authStrategy ? { authStrategy: authStrategy as never } : {}),
      request: { fetch: this.observedFetch() },
      log: { debug: silent, info: silent, warn: silent, error: silent },
    });
  }

  /** One Octokit per scope for App auth (installation ids differ per org/repo), one for a PAT. */
  private octokitFor(scope: Scope, signal: AbortSignal): Promise<Octokit> {
    const auth = this.options.auth;
    if (auth.kind === "token") {
      const key = "token";
      if (!this.octokits.has(key)) this.octokits.set(key, Promise.resolve(this.newOctokit(auth.token)));
      return this.octokits.get(key)!;
    }
    const key = auth.installationId ? "app" : `app:${scopeApiPath(scope)}`;
    let found = this.octokits.get(key);
    if (!found) {
      found = (async () => {
        let installationId = auth.installationId;
        if (!installationId) {
          const appOctokit = this.newOctokit({ appId: auth.appId, privateKey: auth.privateKey }, createAppAuth);
          const res = await this.call("installation", scope, signal, () =>
            appOctokit.request(`GET ${scopeApiPath(scope)}/installation`, { request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<{ id: number }>>,
          );
          installationId = res.data.id;
        }
        // auth-app caches the installation token and renews it before its one-hour expiry.
        return this.newOctokit({ appId: auth.appId, privateKey: auth.privateKey, installationId }, createAppAuth);
      })();
      found.catch(() => this.octokits.delete(key));
      this.octokits.set(key, found);
    }
    return found;
  }

  private attemptSignal(passSignal: AbortSignal): AbortSignal {
    return AbortSignal.any([passSignal, AbortSignal.timeout(this.options.requestTimeout * 1000)]);
  }

  /** Runs one logical call under the retry policy; `endpoint` labels metrics and messages. */
  private async call<T>(
    endpoint: string,
    scope: Scope | undefined,
    signal: AbortSignal,
    attemptFn: () => Promise<OctokitResponse<T>>,
    /** Answers that are results, not failures (404 for a runner lookup, 304 for a conditional list). */
    accept: number[] = [],
    policy: RetryPolicy = this.options.retry,
  ): Promise<OctokitResponse<T>> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new AbortedError();
      let failure: FailedAttempt;
      let message: string;
      try {
        const res = await attemptFn();
        this.options.observer.request(endpoint, String(res.status));
        return res;
      } catch (err) {
        if (signal.aborted) throw new AbortedError("stopped by signal during a GitHub call", { cause: err });
        const e = err as { status?: number; response?: { headers: Record<string, string | undefined> }; name?: string };
        const network = !e.response;
        failure = { status: network ? undefined : e.status, headers: e.response?.headers, network };
        this.options.observer.request(endpoint, network ? "error" : String(e.status));
        if (failure.status !== undefined && accept.includes(failure.status)) return { status: failure.status, data: undefined as T, headers: (e.response?.headers ?? {}) as Record<string, string> };
        message = redact(network && /timeout|aborted/i.test(errorMessage(err)) ? `no answer within github.requestTimeout (${this.options.requestTimeout}s)` : errorMessage(err));
        const retryable = isRetryable(failure);
        const details = { status: failure.status, network, message, endpoint, scope, rateLimited: isRateLimit(failure), attempts: attempt };
        if (!retryable || attempt >= policy.maxRetries) {
          throw new GitHubError(describeFailure(details), { status: failure.status, endpoint, retryable }, { cause: err });
        }
        const wait = retryWaitSeconds(failure, attempt, policy, this.now());
        if (wait === null) {
          const asked = serverWaitSeconds(failure, this.now()) ?? policy.maxRetryWait;
          throw new GitHubError(describeFailure({ ...details, gaveUpWaitSeconds: asked }), { status: failure.status, endpoint, retryable: true }, { cause: err });
        }
        this.options.observer.retrying(endpoint, attempt, wait, network ? message : `HTTP ${failure.status}`);
        try {
          await sleep(wait * 1000, signal);
        } catch {
          throw new AbortedError("stopped by signal while waiting to retry GitHub");
        }
      }
    }
  }

  /**
   * One REST call of a scope's API (pools: generate-jitconfig, runner groups, delete). `retry:
   * false` makes it exactly one attempt: a retried generate-jitconfig that had succeeded answers
   * 409, so that one is never retried by anyone but its caller (with a new name).
   */
  async scopedRequest<T>(
    endpoint: string,
    scope: Scope,
    route: string,
    params: Record<string, unknown>,
    signal: AbortSignal,
    options: { accept?: number[]; retry?: boolean } = {},
  ): Promise<{ status: number; data: T }> {
    const octokit = await this.octokitFor(scope, signal);
    const policy = options.retry === false ? { ...this.options.retry, maxRetries: 1 } : this.options.retry;
    const res = await this.call(
      endpoint,
      scope,
      signal,
      () => octokit.request(route.replace("{scope}", scopeApiPath(scope)), { ...params, request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<T>>,
      options.accept ?? [],
      policy,
    );
    return { status: res.status, data: res.data };
  }

  async mintRegistrationToken(scope: Scope, signal: AbortSignal): Promise<RegistrationToken> {
    const octokit = await this.octokitFor(scope, signal);
    const res = await this.call("registration-token", scope, signal, () =>
      octokit.request(`POST ${scopeApiPath(scope)}/actions/runners/registration-token`, { request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<{ token?: string; expires_at?: string }>>,
    );
    const { token, expires_at: expiresAtRaw } = res.data ?? {};
    const expiresAt = typeof expiresAtRaw === "string" ? new Date(expiresAtRaw) : null;
    // With its expiry, so a daemon minting every hour does not keep every token it ever saw.
    if (typeof token === "string" && token) addSecret(token, expiresAt ?? new Date(this.now() + TOKEN_LIFETIME_MS));
    if (typeof token !== "string" || !token || !expiresAt || Number.isNaN(expiresAt.getTime())) {
      throw new GitHubError(`GitHub's registration-token answer for ${scopeApiPath(scope)} has no usable token/expires_at: a proxy or GHES version problem? check github.apiUrl`, {
        status: res.status,
        endpoint: "registration-token",
        retryable: false,
      });
    }
    return { token, expiresAt };
  }

  /**
   * One call beyond the runner basics (hygiene: labels, groups, releases), under the same retry
   * policy, metrics and redaction. `route` is Octokit's "METHOD /path/{param}"; `accept` lists
   * statuses that are answers, not failures (304 for a conditional GET, 404 for a lookup).
   */
  async rest<T>(endpoint: string, scope: Scope, route: string, params: Record<string, unknown>, signal: AbortSignal, accept: number[] = []): Promise<OctokitResponse<T>> {
    const octokit = await this.octokitFor(scope, signal);
    return this.call(endpoint, scope, signal, () => octokit.request(route, { ...params, request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<T>>, accept);
  }

  /** The runner by id, or null when GitHub answers 404 (the caller decides whether to trust it). */
  async getRunner(scope: Scope, id: number, signal: AbortSignal): Promise<RunnerApiState | null> {
    const res = await this.getRunnerConditional(scope, id, signal);
    return res.notModified ? null : res.runner;
  }

  /**
   * The runner by id, conditional on `etag` (the ETag of the answer the caller kept): a 304 means
   * the runner is as that answer said, and costs nothing against GitHub's primary rate limit.
   */
  async getRunnerConditional(scope: Scope, id: number, signal: AbortSignal, etag?: string | null): Promise<ConditionalRunner> {
    const octokit = await this.octokitFor(scope, signal);
    const headers = etag ? { "if-none-match": etag } : {};
    const res = await this.call(
      "runner",
      scope,
      signal,
      () => octokit.request(`GET ${scopeApiPath(scope)}/actions/runners/{runner_id}`, { runner_id: id, headers, request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<RawRunner>>,
      etag ? [404, 304] : [404],
    );
    if (res.status === 304) return { notModified: true };
    if (res.status === 404) return { notModified: false, runner: null, etag: null };
    return { notModified: false, runner: toRunner(res.data), etag: typeof res.headers.etag === "string" ? res.headers.etag : null };
  }

  /**
   * Runners of the scope with exactly this name (a scope-level call: a 404 here is an error).
   * Conditional on the last answer for that name (kept in this process): a 304 is free.
   */
  async findRunnersByName(scope: Scope, name: string, signal: AbortSignal): Promise<RunnerApiState[]> {
    const octokit = await this.octokitFor(scope, signal);
    const key = `${scopeApiPath(scope)}\u0000${name}`;
    const known = this.byName.get(key);
    const headers = known ? { "if-none-match": known.etag } : {};
    const res = await this.call(
      "runners-list",
      scope,
      signal,
      () =>
        octokit.request(`GET ${scopeApiPath(scope)}/actions/runners`, { name, per_page: 100, headers, request: { signal: this.attemptSignal(signal) } }) as Promise<
          OctokitResponse<{ runners: RawRunner[] }>
        >,
      known ? [304] : [],
    );
    if (res.status === 304 && known) return known.runners;
    const runners = (res.data.runners ?? []).filter((r) => r.name === name).map(toRunner);
    this.byName.delete(key);
    if (typeof res.headers.etag === "string") {
      // A handful of names per host; the bound only guards against a config with thousands.
      if (this.byName.size >= 1000) this.byName.delete(this.byName.keys().next().value!);
      this.byName.set(key, { etag: res.headers.etag, runners });
    }
    return runners;
  }

  /**
   * Every runner of the scope, all pages (fleet mode's poll). `etag` from the previous poll makes
   * the first page conditional: a 304 means nothing changed and costs no rate limit. Only a scope
   * that fits on one page gets an ETag back. Each page is checked against itself and the listing
   * says whether it is `complete` (runner-list.ts: churn between pages can skip a live runner).
   */
  async listRunners(scope: Scope, signal: AbortSignal, etag?: string): Promise<RunnerListing> {
    const octokit = await this.octokitFor(scope, signal);
    const byId = new Map<number, RunnerApiState>();
    const totals = new Set<number>();
    let firstEtag: string | null = null;
    for (let page = 1; ; page++) {
      const headers = page === 1 && etag ? { "if-none-match": etag } : {};
      const res = await this.call(
        "runners-list",
        scope,
        signal,
        () =>
          octokit.request(`GET ${scopeApiPath(scope)}/actions/runners`, { per_page: LIST_PAGE_SIZE, page, headers, request: { signal: this.attemptSignal(signal) } }) as Promise<
            OctokitResponse<unknown>
          >,
        [304],
      );
      if (res.status === 304) return { notModified: true, etag: etag ?? null, runners: [], complete: true };
      if (page === 1) firstEtag = typeof res.headers.etag === "string" ? res.headers.etag : null;
      const link = typeof res.headers.link === "string" ? res.headers.link : "";
      const hasNext = /rel="next"/.test(link);
      const { total, batch } = checkListPage(res.data, page, hasNext, scope);
      totals.add(total);
      for (const r of batch) byId.set(r.id, toRunner(r));
      if (!hasNext) break;
      // Page 1's ETag says nothing about later pages: a multi-page scope is always read whole.
      firstEtag = null;
    }
    const runners = [...byId.values()];
    return { notModified: false, etag: firstEtag, runners, complete: totals.size === 1 && totals.has(runners.length) };
  }
}
