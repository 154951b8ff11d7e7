/**
 * Fleet mode's token broker (SPEC 9): agents ask on `<prefix>.token.<encoded scope>`; the leader
 * collector mints one registration token per scope, hands the same one out while it is valid past
 * the threshold, and renews it ahead of time. The reply is the only NATS message that carries a
 * secret: it is never stored in JetStream, the broker refuses to start unless its connection is
 * TLS or loopback (or fleet.allowInsecure says otherwise), and it answers only a host listed for
 * the scope, at that host's own inbox (authz.ts). A failed mint is remembered per scope for a
 * backoff, so a fleet asking during a GitHub outage or a revoked credential costs one call.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { errorMessage, ConfigError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { scopeKey, type Scope } from "../shared/scope.ts";
import type { GitHubClient, RegistrationToken } from "../github/client.ts";
import type { NatsConfig } from "../config/types.ts";
import { BrokerPolicy, type FleetScope } from "./authz.ts";
import { RefusalReporter } from "./refusal.ts";
import { insecureServers } from "./transport.ts";

/** After a failed mint the scope's error is answered without asking GitHub for this long, doubling. */
export const MINT_BACKOFF_INITIAL_MS = 30_000;
export const MINT_BACKOFF_MAX_MS = 300_000;

/** Loopback or TLS: the only transports a token may cross unless allowInsecure is set. */
export function brokerTransportProblem(cfg: NatsConfig, allowInsecure: boolean): string | null {
  const insecure = allowInsecure ? [] : insecureServers(cfg);
  return insecure.length
    ? `the token broker will not hand out registration tokens over plain NATS to ${insecure.join(", ")}: use TLS (nats.tls or tls:// URLs) or a loopback server, or set fleet.allowInsecure: true`
    : null;
}

/** A scope's last mint failed and its backoff has not passed: GitHub is not asked again yet. */
export class MintBackoffError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MintBackoffError";
  }
}

interface MintFailure {
  message: string;
  retryAt: number;
  delayMs: number;
}

export interface TokenBrokerOptions {
  nc: NatsConnection;
  prefix: string;
  github: GitHubClient;
  /** The brokered scopes with the hosts allowed to ask for each (fleet.scopes). */
  scopes: FleetScope[];
  threshold: number;
  log: Logger;
  /** Who publishes refusal events (the collector's host and runtime). */
  collector?: { host: string; runtime: string };
  now?: () => number;
}

export class TokenBroker {
  private readonly tokens = new Map<string, RegistrationToken>();
  private readonly minting = new Map<string, Promise<RegistrationToken>>();
  private readonly failures = new Map<string, MintFailure>();
  private readonly policy: BrokerPolicy;
  private readonly refusals: RefusalReporter;
  private sub: Subscription | null = null;
  get answering(): boolean {
    return this.sub !== null;
  }
  /** Requests answered, by outcome (for logs and tests); `refused` by reason in refusalCounts. */
  readonly answered = { token: 0, error: 0, refused: 0 };
  /** GitHub mint calls made (a failed one included). */
  mints = 0;

  constructor(private readonly options: TokenBrokerOptions) {
    this.policy = new BrokerPolicy(options.scopes);
    this.refusals = new RefusalReporter({ nc: options.nc, prefix: options.prefix, log: options.log, collector: options.collector ?? { host: "collector", runtime: "node" }, now: () => this.now() });
  }

  get refusalCounts(): ReadonlyMap<string, number> {
    return this.refusals.counts;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private valid(token: RegistrationToken | undefined): token is RegistrationToken {
    return token !== undefined && token.expiresAt.getTime() - this.now() > this.options.threshold * 1000;
  }

  /** The scope's token: the current one while valid past the threshold, else one new mint. */
  async tokenFor(scope: Scope, signal: AbortSignal = AbortSignal.timeout(60_000)): Promise<RegistrationToken> {
    const key = scopeKey(scope);
    const current = this.tokens.get(key);
    if (this.valid(current)) return current;
    const failed = this.failures.get(key);
    if (failed && this.now() < failed.retryAt) {
      throw new MintBackoffError(`${failed.message} (the broker asks GitHub again in ${Math.ceil((failed.retryAt - this.now()) / 1000)} s)`);
    }
    let pending = this.minting.get(key);
    if (!pending) {
      pending = this.mint(scope, key, signal).finally(() => this.minting.delete(key));
      this.minting.set(key, pending);
    }
    return pending;
  }

  private async mint(scope: Scope, key: string, signal: AbortSignal): Promise<RegistrationToken> {
    this.mints++;
    try {
      const minted = await this.options.github.mintRegistrationToken(scope, signal);
      this.tokens.set(key, minted);
      this.failures.delete(key);
      return minted;
    } catch (err) {
      const previous = this.failures.get(key);
      const delayMs = previous ? Math.min(previous.delayMs * 2, MINT_BACKOFF_MAX_MS) : MINT_BACKOFF_INITIAL_MS;
      this.failures.set(key, { message: errorMessage(err), retryAt: this.now() + delayMs, delayMs });
      this.options.log.warn({ scope: key, backoff_seconds: delayMs / 1000 }, `token broker could not mint a token for ${key} (${errorMessage(err)}): answering this error without asking GitHub for ${delayMs / 1000} s`);
      throw err;
    }
  }

  /** Renews every scope's token ahead of time (called on each poll tick by the leader). */
  async renew(signal: AbortSignal): Promise<void> {
    for (const scope of this.options.scopes) {
      // A failure was logged where it happened; a scope in backoff is simply skipped.
      await this.tokenFor(scope, signal).catch(() => {});
    }
  }

  private async answer(subject: string, reply: string | undefined, data: Uint8Array): Promise<Record<string, unknown>> {
    const decision = this.policy.decide(subject, reply, data);
    if (!decision.ok) {
      this.answered.refused++;
      this.refusals.report(decision);
      return { error: decision.error };
    }
    try {
      const t = await this.tokenFor(decision.scope);
      this.answered.token++;
      return { token: t.token, expires_at: t.expiresAt.toISOString() };
    } catch (e) {
      this.answered.error++;
      return { error: errorMessage(e) };
    }
  }

  start(): void {
    if (this.sub) return;
    this.sub = this.options.nc.subscribe(`${this.options.prefix}.token.*`, {
      callback: (err, msg) => {
        if (err) return;
        void this.answer(msg.subject, msg.reply, msg.data).then((reply) => msg.respond(new TextEncoder().encode(JSON.stringify(reply))));
      },
    });
    this.options.log.info({ hosts: this.policy.describe() }, "token broker answering (hosts allowed per scope)");
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = null;
  }
}

export function assertBrokerTransport(cfg: NatsConfig, allowInsecure: boolean): void {
  const problem = brokerTransportProblem(cfg, allowInsecure);
  if (problem) throw new ConfigError(`fleet: ${problem}`);
}
