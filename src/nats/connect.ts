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
import { inboxPrefixFor } from "./subjects.ts";
import { scrubUrls, splitServerCredentials, stripUserinfo } from "../shared/url-credentials.ts";

export type ConnectMode = "daemon" | "check" | "collector";

export const CHECK_CONNECT_TIMEOUT_MS = 2000;

/**
 * Agents reply-subscribe under `_INBOX_<encoded name>`, which per-host NATS permissions grant to
 * that host alone (so no agent reads another's token reply, and the broker knows who asks); the
 * collector keeps nats.js's `_INBOX` unless nats.inboxPrefix says otherwise.
 */
export function inboxPrefixOf(cfg: NatsConfig, mode: ConnectMode): string | undefined {
  return cfg.inboxPrefix ?? (mode === "collector" ? undefined : inboxPrefixFor(cfg.name));
}

export async function connectionOptions(runtime: Runtime, cfg: NatsConfig, mode: ConnectMode): Promise<ConnectionOptions> {
  // nats.js ignores userinfo in a server URL (and would show it): log in with it instead, unless
  // nats.user/password (or a token) say otherwise. The config loader does this too; configs built
  // in code come through here.
  const fromUrl = splitServerCredentials(cfg.servers);
  const explicitUser = cfg.user !== undefined || cfg.password !== undefined;
  const options: ConnectionOptions = {
    servers: fromUrl.servers,
    name: `${cfg.name} (runner-token-refresh ${mode})`,
    user: explicitUser ? cfg.user : fromUrl.user,
    pass: explicitUser ? cfg.password : fromUrl.password,
    token: cfg.token ?? fromUrl.token,
    inboxPrefix: inboxPrefixOf(cfg, mode),
    // A cluster (SPEC 16): spread clients over nats.servers in random order, and learn the other
    // nodes from the server, so losing the listed ones does not strand a client.
    noRandomize: false,
    ignoreClusterUpdates: false,
    // No stack trace captured for every request and timer (a JetStream publish, a KV put): our
    // errors say what failed and where themselves, and the capture is a large share of a put's CPU.
    noAsyncTraces: true,
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
  // Shown on /healthz and the dashboard: never a URL's user:password.
  const message = scrubUrls(errorMessage(err));
  const servers = cfg.servers.map(stripUserinfo).join(",");
  if (/authorization|authentication|auth/i.test(message)) {
    const inUrl = cfg.servers.some((s) => stripUserinfo(s) !== s);
    const how = cfg.credsFile ? "nats.credsFile (NATS_CREDS_FILE)" : cfg.token ? "nats.token (NATS_TOKEN)" : cfg.user ? "nats.user/nats.password (NATS_USER/NATS_PASSWORD, or the user:password in NATS_URL)" : inUrl ? "the user:password in nats.servers (NATS_URL)" : "nats credentials (none were given: set nats.user/password, token or credsFile)";
    return `NATS at ${servers} refused the credentials (${message}): check ${how}`;
  }
  if (/permission/i.test(message)) return `NATS permission denied (${message}): this host's NATS user lacks a permission: runner-token-refresh nats-permissions prints the ones it needs (docs/nats.md)`;
  if (/tls|certificate|self.signed/i.test(message)) return `NATS TLS failed (${message}): check nats.tls.ca / cert / key`;
  return `NATS at ${servers} unreachable (${message}): check nats.servers (NATS_URL)`;
}

export async function connectNats(runtime: Runtime, cfg: NatsConfig, mode: ConnectMode): Promise<NatsConnection> {
  return connect(await connectionOptions(runtime, cfg, mode));
}
