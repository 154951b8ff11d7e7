/**
 * GitHub access through @octokit/rest with a PAT or a GitHub App. Library retries are off: the
 * agent's policy (retry.ts) decides. A wrapped `fetch` sees every request, including the App's
 * installation-token exchange, so every credential is registered for redaction and every
 * answer's rate-limit and Date headers are observed.
 */
import { Octokit } from "@octokit/rest";
import { createAppAuth } from "@octokit/auth-app";
import { GitHubError, AbortedError, errorMessage } from "../shared/errors.ts";
import { addSecret, redact } from "../shared/redact.ts";
import { sleep } from "../shared/backoff.ts";
import { scopeApiPath, type Scope } from "../shared/scope.ts";
import type { GitHubAuth } from "../config/types.ts";
import { describeFailure } from "./describe.ts";
import { isRateLimit, isRetryable, retryWaitSeconds, serverWaitSeconds, type FailedAttempt, type RetryPolicy } from "./retry.ts";

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
}

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

function toRunner(raw: { id: number; name: string; status: string; busy: boolean; labels?: { name: string }[] }): RunnerApiState {
  return { id: raw.id, name: raw.name, status: raw.status === "online" ? "online" : "offline", busy: raw.busy, labels: (raw.labels ?? []).map((l) => l.name) };
}

export class GitHubClient {
  private readonly octokits = new Map<string, Promise<Octokit>>();
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
      if (authorization) addSecret(authorization.replace(/^(token|bearer)\s+/i, ""));
      const response = await base(input, init);
      this.observeHeaders(response.headers);
      return response;
    }) as typeof fetch;
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
  ): Promise<OctokitResponse<T>> {
    const policy = this.options.retry;
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

  async mintRegistrationToken(scope: Scope, signal: AbortSignal): Promise<RegistrationToken> {
    const octokit = await this.octokitFor(scope, signal);
    const res = await this.call("registration-token", scope, signal, () =>
      octokit.request(`POST ${scopeApiPath(scope)}/actions/runners/registration-token`, { request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<{ token?: string; expires_at?: string }>>,
    );
    const { token, expires_at: expiresAtRaw } = res.data ?? {};
    if (typeof token === "string" && token) addSecret(token);
    const expiresAt = typeof expiresAtRaw === "string" ? new Date(expiresAtRaw) : null;
    if (typeof token !== "string" || !token || !expiresAt || Number.isNaN(expiresAt.getTime())) {
      throw new GitHubError(`GitHub's registration-token answer for ${scopeApiPath(scope)} has no usable token/expires_at: a proxy or GHES version problem? check github.apiUrl`, {
        status: res.status,
        endpoint: "registration-token",
        retryable: false,
      });
    }
    return { token, expiresAt };
  }

  /** The runner by id, or null when GitHub answers 404 (the caller decides whether to trust it). */
  async getRunner(scope: Scope, id: number, signal: AbortSignal): Promise<RunnerApiState | null> {
    const octokit = await this.octokitFor(scope, signal);
    const res = await this.call(
      "runner",
      scope,
      signal,
      () => octokit.request(`GET ${scopeApiPath(scope)}/actions/runners/{runner_id}`, { runner_id: id, request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<Parameters<typeof toRunner>[0]>>,
      [404],
    );
    return res.status === 404 ? null : toRunner(res.data);
  }

  /** Runners of the scope with exactly this name (a scope-level call: a 404 here is an error). */
  async findRunnersByName(scope: Scope, name: string, signal: AbortSignal): Promise<RunnerApiState[]> {
    const octokit = await this.octokitFor(scope, signal);
    const res = await this.call("runners-list", scope, signal, () =>
      octokit.request(`GET ${scopeApiPath(scope)}/actions/runners`, { name, per_page: 100, request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<{ runners: Parameters<typeof toRunner>[0][] }>>,
    );
    return (res.data.runners ?? []).filter((r) => r.name === name).map(toRunner);
  }

  /**
   * Every runner of the scope, all pages (fleet mode's poll). `etag` from the previous poll makes
   * the first page conditional: a 304 means nothing changed and costs no rate limit. Only a scope
   * that fits on one page gets an ETag back.
   */
  async listRunners(scope: Scope, signal: AbortSignal, etag?: string): Promise<{ notModified: boolean; etag: string | null; runners: RunnerApiState[] }> {
    const octokit = await this.octokitFor(scope, signal);
    const runners: RunnerApiState[] = [];
    let firstEtag: string | null = null;
    for (let page = 1; ; page++) {
      const headers = page === 1 && etag ? { "if-none-match": etag } : {};
      const res = await this.call(
        "runners-list",
        scope,
        signal,
        () =>
          octokit.request(`GET ${scopeApiPath(scope)}/actions/runners`, { per_page: 100, page, headers, request: { signal: this.attemptSignal(signal) } }) as Promise<
            OctokitResponse<{ total_count: number; runners: Parameters<typeof toRunner>[0][] }>
          >,
        [304],
      );
      if (res.status === 304) return { notModified: true, etag: etag ?? null, runners: [] };
      if (page === 1) firstEtag = typeof res.headers.etag === "string" ? res.headers.etag : null;
      const batch = res.data.runners ?? [];
      runners.push(...batch.map(toRunner));
      const link = typeof res.headers.link === "string" ? res.headers.link : "";
      if (!/rel="next"/.test(link) || batch.length === 0) break;
      // Page 1's ETag says nothing about later pages: a multi-page scope is always read whole.
      firstEtag = null;
    }
    return { notModified: false, etag: firstEtag, runners };
  }
}
