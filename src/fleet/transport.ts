/**
 * Which NATS transports a registration token may cross (SPEC 9): TLS or loopback, unless
 * fleet.allowInsecure says otherwise. Both ends check: the broker before it answers, the agent
 * before it asks (a plain-NATS agent would read its token off the wire wherever the broker is).
 */
import type { NatsConfig } from "../config/types.ts";
import { stripUserinfo } from "../shared/url-credentials.ts";

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** The servers (userinfo removed) a connection with this config would reach without TLS on a non-loopback address. */
export function insecureServers(cfg: NatsConfig): string[] {
  if (cfg.tls) return [];
  return cfg.servers.filter((s) => {
    let url: URL;
    try {
      url = new URL(s.includes("://") ? s : `nats://${s}`);
    } catch {
      return true; // Not a URL we can judge: not known to be safe.
    }
    return !(url.protocol === "tls:" || isLoopback(url.hostname));
  }).map(stripUserinfo); // shown in logs and on /healthz: never a URL's user:password
}

/** Why an agent in fleet mode must not ask the broker over this connection, or null. */
export function agentTransportProblem(cfg: NatsConfig, allowInsecure: boolean): string | null {
  const insecure = allowInsecure ? [] : insecureServers(cfg);
  return insecure.length
    ? `nats.servers: fleet mode receives registration tokens over NATS, and ${insecure.join(", ")} is neither TLS nor loopback: use tls:// URLs or nats.tls, a loopback server, or set fleet.allowInsecure: true`
    : null;
}
