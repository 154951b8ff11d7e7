// nats-server configuration for permission tests: one account with JetStream and the users the
// product's own generator (src/nats/permissions.ts) describes, passwords as config variables.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { defaultPasswordVar } from "../../src/nats/permissions.ts";

/** `users` are rendered user entries (renderUser); `passwords` maps user name → password. */
export function accountConfig(users: string[], passwords: Record<string, string>): string {
  const vars = Object.entries(passwords).map(([user, pw]) => `${defaultPasswordVar(user)}: ${JSON.stringify(pw)}`);
  return [...vars, "accounts {", "  RTR {", "    jetstream: enabled", "    users = [", ...users.map((u) => u.replace(/^/gm, "      ")), "    ]", "  }", "}"].join("\n");
}

/** Permission violations the server logged (publish or subscription), one per line. */
export function violations(serverLog: string): string[] {
  return serverLog.split("\n").filter((l) => /Violation/i.test(l));
}

export function connectAs(url: string, user: string, password: string, inboxPrefix?: string): Promise<NatsConnection> {
  return connect({ servers: url, user, pass: password, inboxPrefix, reconnect: false, timeout: 2000 });
}
