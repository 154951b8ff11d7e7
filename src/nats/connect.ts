/**
 * NATS connection options from the config (SPEC 8): several servers, user/password, token,
 * creds file (nkey + JWT), TLS with CA and client certificate, connection name = host. The daemon
 * and the collector reconnect forever with backoff; a `check` gets a short connect timeout so a
 * dead NATS never delays token work.
 */
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { addSecret } from "../shared/redact.ts";
import { ConfigError, errorMessage } from "../shared/errors.ts";
import type { NatsConfig } from "../config/types.ts";
import type { Runtime } from "../runtime/types.ts";

export type ConnectMode = "daemon" | "check" | "collector";

export const CHECK_CONNECT_TIMEOUT_MS = 2000;

export async function connectionOptions(runtime: Runtime, cfg: NatsConfig, mode: ConnectMode): Promise<ConnectionOptions> {
  const options: ConnectionOptions = {
    servers: cfg.servers,
    name: `${cfg.name} (runner-token-refresh ${mode})`,
    user: cfg.user,
    pass: cfg.password,
    token: cfg.token,
  };
  if (cfg.credsFile) {
    let creds: string;
    try {
      creds = await runtime.files.readText(cfg.credsFile);
    } catch (err) {
      throw new ConfigError(`nats.credsFile: cannot read ${cfg.credsFile} (${(err as { code?: string }).code ?? errorMessage(err)}): check the path (or NATS_CREDS_FILE) and its mode`);
    }
    addSecret(creds.trim());
    // A creds file (JWT + seed), or a bare nkey seed for servers configured with nkey users.
    const seed = creds.trim();
    options.authenticator = /^SU[A-Z2-7]{50,}$/.test(seed) ? nkeyAuthenticator(new TextEncoder().encode(seed)) : credsAuthenticator(new TextEncoder().encode(creds));
  }
  if (cfg.tls) options.tls = { caFile: cfg.tls.ca, certFile: cfg.tls.cert, keyFile: cfg.tls.key };
  if (mode === "check") {
    options.timeout = CHECK_CONNECT_TIMEOUT_MS;
    options.reconnect = false;
  } else {
    // Forever, with backoff and jitter so a fleet does not reconnect in lockstep.
    options.waitOnFirstConnect = true;
    options.maxReconnectAttempts = -1;
    options.reconnectTimeWait = 1000;
    options.reconnectJitter = 1000;
    options.timeout = 5000;
  }
  return options;
}

/** Names the option to fix when the server refuses us. */
export function describeNatsError(err: unknown, cfg: NatsConfig): string {
  const message = errorMessage(err);
  if (/authorization|authentication|auth/i.test(message)) {
    const how = cfg.credsFile ? "nats.credsFile (NATS_CREDS_FILE)" : cfg.token ? "nats.token (NATS_TOKEN)" : cfg.user ? "nats.user/nats.password (NATS_USER/NATS_PASSWORD)" : "nats credentials (none were given: set nats.user/password, token or credsFile)";
    return `NATS at ${cfg.servers.join(",")} refused the credentials (${message}): check ${how}`;
  }
  if (/permission/i.test(message)) return `NATS permission denied (${message}): the NATS user needs publish rights on the events subjects and $JS API (see docs/nats.md)`;
  if (/tls|certificate|self.signed/i.test(message)) return `NATS TLS failed (${message}): check nats.tls.ca / cert / key`;
  return `NATS at ${cfg.servers.join(",")} unreachable (${message}): check nats.servers (NATS_URL)`;
}

export async function connectNats(runtime: Runtime, cfg: NatsConfig, mode: ConnectMode): Promise<NatsConnection> {
  return connect(await connectionOptions(runtime, cfg, mode));
}
