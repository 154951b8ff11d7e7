/**
 * Fleet mode's token broker (SPEC 9): agents ask on `<prefix>.token.<encoded scope>`; the leader
 * collector mints one registration token per scope, hands the same one out while it is valid past
 * the threshold, and renews it ahead of time. The reply is the only NATS message that carries a
 * secret: it is never stored in JetStream, and the broker refuses to start unless its connection
 * is TLS or loopback (or fleet.allowInsecure says otherwise).
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { errorMessage, ConfigError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { scopeKey, type Scope } from "../shared/scope.ts";
import type { GitHubClient, RegistrationToken } from "../github/client.ts";
import type { NatsConfig } from "../config/types.ts";
import { scopeFromSubject } from "./keys.ts";

/** Loopback or TLS: the only transports a token may cross unless allowInsecure is set. */
export function brokerTransportProblem(cfg: NatsConfig, allowInsecure: boolean): string | null {
  if (allowInsecure) return null;
  const insecure = cfg.servers.filter((s) => {
    const url = new URL(s.includes("://") ? s : `nats://${s}`);
    const loopback = ["127.0.0.1", "localhost", "[::1]", "::1"].includes(url.hostname);
    return !(loopback || url.protocol === "tls:" || cfg.tls);
  });
  return insecure.length
    ? `the token broker will not hand out registration tokens over plain NATS to ${insecure.join(", ")}: use TLS (nats.tls or tls:// URLs) or a loopback server, or set fleet.allowInsecure: true`
    : null;
}

export class TokenBroker {
  private readonly tokens = new Map<string, RegistrationToken>();
  private readonly minting = new Map<string, Promise<RegistrationToken>>();
  private sub: Subscription | null = null;
  get answering(): boolean {
    return this.sub !== null;
  }
  /** Requests answered, by outcome (for logs and tests). */
  readonly answered = { token: 0, error: 0 };

  constructor(
    private readonly options: { nc: NatsConnection; prefix: string; github: GitHubClient; scopes: Scope[]; threshold: number; log: Logger; now?: () => number },
  ) {}

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
    let pending = this.minting.get(key);
    if (!pending) {
      pending = this.options.github.mintRegistrationToken(scope, signal).finally(() => this.minting.delete(key));
      this.minting.set(key, pending);
    }
    const minted = await pending;
    this.tokens.set(key, minted);
    return minted;
  }

  /** Renews every scope's token ahead of time (called on each poll tick by the leader). */
  async renew(signal: AbortSignal): Promise<void> {
    for (const scope of this.options.scopes) {
      try {
        await this.tokenFor(scope, signal);
      } catch (err) {
        this.options.log.warn({ scope: scopeKey(scope) }, `token broker could not renew the token for ${scopeKey(scope)}: ${errorMessage(err)}`);
      }
    }
  }

  start(): void {
    if (this.sub) return;
    const brokered = new Set(this.options.scopes.map(scopeKey));
    this.sub = this.options.nc.subscribe(`${this.options.prefix}.token.*`, {
      callback: (err, msg) => {
        if (err) return;
        void (async () => {
          const scope = scopeFromSubject(msg.subject);
          let reply: Record<string, unknown>;
          if (!scope || !brokered.has(scopeKey(scope))) {
            reply = { error: `scope ${scope ? scopeKey(scope) : "?"} is not in this collector's fleet.scopes` };
          } else {
            try {
              const t = await this.tokenFor(scope);
              reply = { token: t.token, expires_at: t.expiresAt.toISOString() };
            } catch (e) {
              reply = { error: errorMessage(e) };
            }
          }
          this.answered[reply.error ? "error" : "token"]++;
          msg.respond(new TextEncoder().encode(JSON.stringify(reply)));
        })();
      },
    });
    this.options.log.info({ scopes: [...brokered] }, "token broker answering");
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
