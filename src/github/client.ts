/**
 * GitHub access through @octokit/core (`request` only: @octokit/rest's endpoint tables cost
 * memory for routes the agent never calls) with a PAT, a GitHub App or several Apps
 * (credentials.ts picks one per call and sets aside one that is rate-limited or refused). Library
 * retries are off: the agent's policy (retry.ts) decides. Every Octokit fetches through
 * observed-fetch.ts, so every credential is registered for redaction and every answer observed.
 */
import { Octokit } from "@octokit/core";
import { GitHubError, AbortedError, errorMessage } from "../shared/errors.ts";
import { addSecret, redact } from "../shared/redact.ts";
import { sleep } from "../shared/backoff.ts";
import { scopeApiPath, scopeKey, type Scope } from "../shared/scope.ts";
import type { GitHubAuth } from "../config/types.ts";
import { describeFailure } from "./describe.ts";
import { CredentialPool, type Credential } from "./credentials.ts";
import { observedFetch, TOKEN_LIFETIME_MS } from "./observed-fetch.ts";
import { isRateLimit, isRetryable, rateLimitBackAt, retryWaitSeconds, serverWaitSeconds, type FailedAttempt, type RetryPolicy } from "./retry.ts";
import { checkListPage, LIST_PAGE_SIZE, type RunnerListing } from "./runner-list.ts";
import { toRunner, type ConditionalRunner, type FailoverReason, type GitHubObserver, type RawRunner, type RegistrationToken, type RunnerApiState } from "./types.ts";

export type { ConditionalRunner, GitHubObserver, RateLimitInfo, RegistrationToken, RunnerApiState } from "./types.ts";

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
type RequestFailure = { status?: number; response?: { headers: Record<string, string | undefined> }; request?: { url?: string } };

/** A 401/403/404 from the App's JWT calls (installation lookup, token exchange): the App cannot act here. */
function refusedAppAuth(err: unknown): boolean {
  const e = err as RequestFailure;
  const url = e.request?.url ?? "";
  return [401, 403, 404].includes(e.status ?? 0) && /\/app\/installations\/[^/]+\/access_tokens$|\/installation$/.test(url.replace(/[?#].*$/, ""));
}

/**
 * Why a failed attempt lets the same request go on through another credential, or null when it
 * does not. Only answers that say GitHub did nothing qualify (a rate limit, a 401, a refused token
 * exchange); a timeout never does, since a generate-jitconfig that went through answers 409 when sent again.
 */
function failoverReason(failure: FailedAttempt, err: unknown): FailoverReason | null {
  if (failure.network) return null;
  if (isRateLimit(failure)) return "rate_limit";
  if (failure.status === 401 || refusedAppAuth(err)) return "revoked";
  return null;
}

export class GitHubClient {
  private readonly octokits = new Map<string, Promise<Octokit>>();
  /** The last `?name=` answer per scope and name, with its ETag (conditional re-reads). */
  private readonly byName = new Map<string, { etag: string; runners: RunnerApiState[] }>();
  private readonly now: () => number;
  private readonly pool: CredentialPool;

  constructor(private readonly options: GitHubClientOptions) {
    this.now = options.now ?? Date.now;
    this.pool = new CredentialPool(options.auth);
    for (const c of this.pool.all) addSecret(c.token ?? c.app!.privateKey);
    const appIds = this.pool.all.flatMap((c) => (c.app ? [c.app.appId] : []));
    if (appIds.length) options.observer.appsConfigured?.(appIds);
  }

  /** `appAuth`: @octokit/auth-app's strategy, for an App's credential (loaded on first use: a token-only agent never reads it). */
  private newOctokit(credential: Credential, auth: unknown, budgetKey: string | null, appAuth?: unknown): Octokit {
    const silent = () => {};
    const app = credential.app;
    const fetch = observedFetch({
      base: this.options.fetch ?? globalThis.fetch,
      observer: this.options.observer,
      now: this.now,
      longLived: !app,
      budget:
        budgetKey === null
          ? undefined
          : (info) => {
              credential.observeBudget(budgetKey, info);
              if (app) this.options.observer.appRateLimit?.(app.appId, info);
            },
    });
    return new Octokit({
      baseUrl: this.options.apiUrl,
      userAgent: this.options.userAgent,
      auth: auth as string,
      ...(app ? { authStrategy: appAuth as never } : {}),
      request: { fetch },
      log: { debug: silent, info: silent, warn: silent, error: silent },
    });
  }

  /** One Octokit per credential and installation key (installation ids differ per org/repo). */
  private octokitFor(credential: Credential, scope: Scope | undefined, signal: AbortSignal): Promise<Octokit> {
    const budgetKey = credential.key(scope);
    const cacheKey = `${this.pool.all.indexOf(credential)}\u0000${budgetKey}`;
    let found = this.octokits.get(cacheKey);
    if (found) return found;
    const app = credential.app;
    if (!app) {
      found = Promise.resolve(this.newOctokit(credential, credential.token, budgetKey));
    } else {
      found = (async () => {
        const { createAppAuth } = await import("@octokit/auth-app");
        let installationId = app.installationId;
        if (!installationId) {
          if (!scope) throw new GitHubError(`${credential.label} has no installationId and the call names no scope to look it up`, { endpoint: "installation", retryable: false });
          const appOctokit = this.newOctokit(credential, { appId: app.appId, privateKey: app.privateKey }, null, createAppAuth);
          // Pinned to this App: its installation, not another App's, is what is looked up.
          const res = await this.call("installation", scope, signal, (o) => o.request(`GET ${scopeApiPath(scope)}/installation`, { request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<{ id: number }>>, [], this.options.retry, appOctokit);
          installationId = res.data.id;
        }
        // auth-app caches the installation token and renews it before its one-hour expiry.
        return this.newOctokit(credential, { appId: app.appId, privateKey: app.privateKey, installationId }, budgetKey, createAppAuth);
      })();
      found.catch(() => this.octokits.delete(cacheKey));
    }
    this.octokits.set(cacheKey, found);
    return found;
  }

  private attemptSignal(passSignal: AbortSignal): AbortSignal {
    return AbortSignal.any([passSignal, AbortSignal.timeout(this.options.requestTimeout * 1000)]);
  }

  /** Every credential is set aside for `scope`: one line naming them and when the first returns. */
  private allSetAside(endpoint: string, scope: Scope | undefined, back: { atMs: number; credential: Credential; reason: FailoverReason }, cause: unknown): GitHubError {
    const names = this.pool.all.map((c) => c.app?.appId ?? "token").join(", ");
    const where = `${endpoint}${scope ? ` for ${scopeKey(scope)}` : ""}`;
    const inSeconds = Math.max(0, Math.ceil((back.atMs - this.now()) / 1000));
    const why = back.reason === "rate_limit" ? "its rate-limit budget returns" : "it is tried again";
    return new GitHubError(
      `every GitHub App (${names}) is rate-limited or refused on ${where}: the first back is ${back.credential.label}, at ${new Date(back.atMs).toISOString()} (in ${inSeconds}s) when ${why}: the pass records a failure; add an App or check the Apps' installations`,
      { status: (cause as RequestFailure | undefined)?.status, endpoint, retryable: true },
      { cause },
    );
  }

  /**
   * Runs one logical call under the retry policy; `endpoint` labels metrics and messages. Each
   * attempt goes through the credential the pool picks; with several, an answer that says GitHub
   * did nothing (failoverReason) sets that one aside and the same request goes at once through
   * the next, without counting as an attempt. `pinned` sends through one Octokit only.
   */
  private async call<T>(
    endpoint: string,
    scope: Scope | undefined,
    signal: AbortSignal,
    send: (octokit: Octokit) => Promise<OctokitResponse<T>>,
    /** Answers that are results, not failures (404 for a runner lookup, 304 for a conditional list). */
    accept: number[] = [],
    policy: RetryPolicy = this.options.retry,
    pinned?: Octokit,
  ): Promise<OctokitResponse<T>> {
    // Bounded even if a credential keeps coming back at once (a reset already past).
    let failovers = 0;
    let lastError: unknown;
    for (let attempt = 1; ; ) {
      if (signal.aborted) throw new AbortedError();
      const credential = pinned ? null : this.pool.pick(scope, this.now());
      if (!pinned && !credential) {
        const back = this.pool.firstBack(scope, this.now())!;
        const wait = (back.atMs - this.now()) / 1000;
        // Waiting helps a budget that returns soon; a refused App is only tried again by a later call.
        if (back.reason !== "rate_limit" || attempt >= policy.maxRetries || wait > policy.maxRetryWait) throw this.allSetAside(endpoint, scope, back, lastError);
        this.options.observer.retrying(endpoint, attempt, wait, `every GitHub App set aside until ${new Date(back.atMs).toISOString()}`);
        attempt++;
        try {
          await sleep(wait * 1000, signal);
        } catch {
          throw new AbortedError("stopped by signal while waiting to retry GitHub");
        }
        continue;
      }
      let octokit: Octokit;
      try {
        octokit = pinned ?? (await this.octokitFor(credential!, scope, signal));
      } catch (err) {
        // The installation lookup failed under its own retries: 401/403/404 means this App cannot act here.
        const status = (err as GitHubError).status;
        if (this.pool.several && credential && [401, 403, 404].includes(status ?? 0) && failovers < 2 * this.pool.all.length) {
          failovers++;
          lastError = err;
          this.failOver(credential, scope, endpoint, "revoked", null);
          continue;
        }
        throw err;
      }
      let failure: FailedAttempt;
      let message: string;
      try {
        const res = await send(octokit);
        this.options.observer.request(endpoint, String(res.status));
        credential?.answered(scope);
        return res;
      } catch (err) {
        if (signal.aborted) throw new AbortedError("stopped by signal during a GitHub call", { cause: err });
        const e = err as RequestFailure;
        const network = !e.response;
        failure = { status: network ? undefined : e.status, headers: e.response?.headers, network };
        this.options.observer.request(endpoint, network ? "error" : String(e.status));
        const reason = failoverReason(failure, err);
        if (reason && credential && this.pool.several && failovers < 2 * this.pool.all.length) {
          failovers++;
          lastError = err;
          this.failOver(credential, scope, endpoint, reason, reason === "rate_limit" ? rateLimitBackAt(failure, this.now()) : null);
          continue;
        }
        // A refused token exchange is never an answer to the call itself (a 404 there is not "no runner").
        if (failure.status !== undefined && accept.includes(failure.status) && !refusedAppAuth(err)) return { status: failure.status, data: undefined as T, headers: (e.response?.headers ?? {}) as Record<string, string> };
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
        attempt++;
        try {
          await sleep(wait * 1000, signal);
        } catch {
          throw new AbortedError("stopped by signal while waiting to retry GitHub");
        }
      }
    }
  }

  /** Sets `credential` aside for `scope` and tells the observer which App takes the request on. */
  private failOver(credential: Credential, scope: Scope | undefined, endpoint: string, reason: FailoverReason, untilMs: number | null): void {
    credential.putAside(scope, reason, this.now(), untilMs);
    const next = this.pool.pick(scope, this.now());
    if (credential.app) this.options.observer.failover?.(credential.app.appId, next?.app?.appId ?? 0, endpoint, reason);
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
    const policy = options.retry === false ? { ...this.options.retry, maxRetries: 1 } : this.options.retry;
    const res = await this.call(
      endpoint,
      scope,
      signal,
      (octokit) => octokit.request(route.replace("{scope}", scopeApiPath(scope)), { ...params, request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<T>>,
      options.accept ?? [],
      policy,
    );
    return { status: res.status, data: res.data };
  }

  async mintRegistrationToken(scope: Scope, signal: AbortSignal): Promise<RegistrationToken> {
    const res = await this.call("registration-token", scope, signal, (octokit) =>
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
    return this.call(endpoint, scope, signal, (octokit) => octokit.request(route, { ...params, request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<T>>, accept);
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
    const headers = etag ? { "if-none-match": etag } : {};
    const res = await this.call(
      "runner",
      scope,
      signal,
      (octokit) => octokit.request(`GET ${scopeApiPath(scope)}/actions/runners/{runner_id}`, { runner_id: id, headers, request: { signal: this.attemptSignal(signal) } }) as Promise<OctokitResponse<RawRunner>>,
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
    const key = `${scopeApiPath(scope)}\u0000${name}`;
    const known = this.byName.get(key);
    const headers = known ? { "if-none-match": known.etag } : {};
    const res = await this.call(
      "runners-list",
      scope,
      signal,
      (octokit) =>
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
    const byId = new Map<number, RunnerApiState>();
    const totals = new Set<number>();
    let firstEtag: string | null = null;
    for (let page = 1; ; page++) {
      const headers = page === 1 && etag ? { "if-none-match": etag } : {};
      const res = await this.call(
        "runners-list",
        scope,
        signal,
        (octokit) =>
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
