/**
 * Which credential carries a GitHub call: a PAT, one App, or several Apps (`github.auth.apps`,
 * issue 18). With several, each call goes through the App with the most primary-rate-limit budget
 * left for the scope's installation, learned from the `x-ratelimit-*` headers of its own answers
 * (unknown counts as full). An App that answers with a rate limit, a 401, or cannot get its
 * installation token (revoked, suspended, uninstalled) is set aside for that scope: until its
 * budget's reset, or for a backoff that doubles while it keeps failing. The client then sends the
 * same request again through the next App at once (client.ts, `call`).
 */
import { scopeApiPath, type Scope } from "../shared/scope.ts";
import type { GitHubAuth } from "../config/types.ts";
import type { FailoverReason, RateLimitInfo } from "./types.ts";

export interface AppCredential {
  appId: number;
  privateKey: string;
  installationId?: number;
}

interface Budget {
  remaining: number;
  limit: number;
  /** Epoch seconds when the window ends. */
  reset: number;
}

interface SetAside {
  reason: FailoverReason;
  untilMs: number;
  /** Consecutive refusals (revocation backoff doubles with each). */
  failures: number;
}

/** GitHub's installation budget per hour; an App never heard from counts as this full. */
const FULL_BUDGET = 5000;
/**
 * The App in use keeps the calls until another has this share of a window more left: the warm
 * App's installation token saves a JWT exchange, and calls do not ping-pong on every answer.
 */
const SWITCH_MARGIN = 0.05;
/** A refused App (401 / revoked / suspended) is tried again after 1 min, doubling up to 1 h. */
const REFUSED_BACKOFF_MS = 60_000;
const REFUSED_BACKOFF_MAX_MS = 3600_000;
/** A rate-limit answer without a usable reset (secondary limit, no hint): GitHub asks for a minute. */
const RATE_LIMIT_DEFAULT_MS = 60_000;

export class Credential {
  /** Budgets and set-asides per installation key (see `key`). */
  private readonly budgets = new Map<string, Budget>();
  private readonly setAside = new Map<string, SetAside>();

  constructor(
    /** The PAT, or null for an App. */
    readonly token: string | null,
    readonly app: AppCredential | null,
  ) {}

  /** "App 1234" or "the token", for messages. */
  get label(): string {
    return this.app ? `App ${this.app.appId}` : "the token";
  }

  /**
   * Where budget and availability are kept: a PAT has one budget; an App with an explicit
   * installation id one; otherwise one per scope (each scope looks its installation up).
   */
  key(scope: Scope | undefined): string {
    if (!this.app) return "token";
    if (this.app.installationId || !scope) return "installation";
    return scopeApiPath(scope);
  }

  observeBudget(key: string, info: RateLimitInfo): void {
    this.budgets.set(key, { remaining: info.remaining, limit: info.limit > 0 ? info.limit : FULL_BUDGET, reset: info.reset });
  }

  /** Requests left for `scope` now: unknown, or a window that has ended, counts as full. */
  left(scope: Scope | undefined, nowMs: number): number {
    const b = this.budgets.get(this.key(scope));
    if (!b) return FULL_BUDGET;
    return b.reset * 1000 <= nowMs ? b.limit : b.remaining;
  }

  limit(scope: Scope | undefined): number {
    return this.budgets.get(this.key(scope))?.limit ?? FULL_BUDGET;
  }

  isSetAside(scope: Scope | undefined, nowMs: number): boolean {
    const s = this.setAside.get(this.key(scope));
    return !!s && s.untilMs > nowMs;
  }

  /** When this credential is usable for `scope` again (ms), or null when it is now. */
  backAt(scope: Scope | undefined, nowMs: number): { atMs: number; reason: FailoverReason } | null {
    const s = this.setAside.get(this.key(scope));
    return s && s.untilMs > nowMs ? { atMs: s.untilMs, reason: s.reason } : null;
  }

  /**
   * Sets the credential aside for `scope`: a rate limit until `untilMs` (its reset or the server's
   * retry-after); a refusal for a backoff that doubles while the App keeps being refused.
   */
  putAside(scope: Scope | undefined, reason: FailoverReason, nowMs: number, untilMs: number | null): void {
    const key = this.key(scope);
    const failures = (this.setAside.get(key)?.failures ?? 0) + 1;
    // At least a second out even when the reset is already past: a stale header must not loop.
    const until =
      reason === "rate_limit"
        ? Math.max(nowMs + 1000, untilMs ?? nowMs + RATE_LIMIT_DEFAULT_MS)
        : nowMs + Math.min(REFUSED_BACKOFF_MAX_MS, REFUSED_BACKOFF_MS * 2 ** (failures - 1));
    this.setAside.set(key, { reason, untilMs: until, failures });
    if (reason === "rate_limit") this.budgets.set(key, { remaining: 0, limit: this.limit(scope), reset: Math.ceil(until / 1000) });
  }

  /** An answer came through: the refusal backoff starts again from its first step. */
  answered(scope: Scope | undefined): void {
    this.setAside.delete(this.key(scope));
  }
}

export class CredentialPool {
  readonly all: Credential[];
  /** The credential that carried the last call per scope (see SWITCH_MARGIN). */
  private readonly current = new Map<string, Credential>();

  constructor(auth: GitHubAuth) {
    if (auth.kind === "token") this.all = [new Credential(auth.token, null)];
    else if (auth.kind === "app") this.all = [new Credential(null, { appId: auth.appId, privateKey: auth.privateKey, installationId: auth.installationId })];
    else this.all = auth.apps.map((a) => new Credential(null, a));
  }

  /** Several credentials: a refused or rate-limited one hands the request to the next. */
  get several(): boolean {
    return this.all.length > 1;
  }

  /** The credential for the next attempt on `scope`, or null while every one is set aside. */
  pick(scope: Scope | undefined, nowMs: number): Credential | null {
    const usable = this.all.filter((c) => !c.isSetAside(scope, nowMs));
    if (usable.length === 0) return null;
    let best = usable[0];
    for (const c of usable) if (c.left(scope, nowMs) > best.left(scope, nowMs)) best = c;
    const key = scope ? scopeApiPath(scope) : "";
    const current = this.current.get(key);
    if (current && current !== best && usable.includes(current) && best.left(scope, nowMs) - current.left(scope, nowMs) <= best.limit(scope) * SWITCH_MARGIN) best = current;
    this.current.set(key, best);
    return best;
  }

  /** The first credential to come back for `scope` (all are set aside), for the wait or the message. */
  firstBack(scope: Scope | undefined, nowMs: number): { atMs: number; credential: Credential; reason: FailoverReason } | null {
    let first: { atMs: number; credential: Credential; reason: FailoverReason } | null = null;
    for (const c of this.all) {
      const back = c.backAt(scope, nowMs);
      if (back && (!first || back.atMs < first.atMs)) first = { ...back, credential: c };
    }
    return first;
  }
}
