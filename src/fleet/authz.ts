/**
 * Who may ask the token broker for which scope (docs/fleet.md, "Who may ask").
 *
 * The requester's identity is its reply subject: NATS permissions let only host H's user
 * subscribe to `_INBOX_<encoded H>.>` (`runner-token-refresh nats-permissions`), so a reply sent
 * there reaches H and nobody else. The broker therefore requires the inbox's host to be the host
 * the body names, and that host to be listed for the scope in fleet.scopes[].hosts. A client that
 * claims another host, or replies to an inbox of its own choosing, gets nothing it can read.
 */
import { scopeKey, type Scope } from "../shared/scope.ts";
import { hostOfInbox } from "../nats/subjects.ts";
import { scopeFromSubject } from "./keys.ts";

/** A brokered scope and the host patterns allowed to ask for it (`*` any run, `?` one character). */
export type FleetScope = Scope & { hosts?: string[] };

/** Why a request was refused: a fixed set (a metric label and the event's `data.reason`). */
export const REFUSAL_REASONS = ["bad_request", "no_inbox", "host_mismatch", "scope_not_brokered", "host_not_allowed", "pool_not_brokered", "bad_name"] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export type Decision =
  | { ok: true; host: string; scope: Scope; runner: string | null }
  | { ok: false; reason: RefusalReason; error: string; host: string | null; claimedHost: string | null; inboxHost: string | null; scope: Scope | null };

export function hostMatches(pattern: string, host: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(host);
}

function parseBody(data: Uint8Array): { host: string; runner: string | null } | null {
  try {
    const body = JSON.parse(new TextDecoder().decode(data)) as { v?: unknown; host?: unknown; runner?: unknown };
    if (body?.v !== 1 || typeof body.host !== "string" || !body.host) return null;
    return { host: body.host, runner: typeof body.runner === "string" ? body.runner : null };
  } catch {
    return null;
  }
}

export class BrokerPolicy {
  private readonly byScope = new Map<string, string[]>();

  constructor(scopes: FleetScope[]) {
    // No `hosts` (a config built in code, not through the schema, which requires it): nobody.
    for (const s of scopes) this.byScope.set(scopeKey(s), s.hosts ?? []);
  }

  /** The patterns per scope key, for the start-up log line. */
  describe(): Record<string, string[]> {
    return Object.fromEntries(this.byScope);
  }

  decide(subject: string, reply: string | undefined, data: Uint8Array): Decision {
    const scope = scopeFromSubject(subject);
    const body = parseBody(data);
    const inboxHost = hostOfInbox(reply);
    const claimedHost = body?.host ?? null;
    const refuse = (reason: RefusalReason, error: string): Decision => ({ ok: false, reason, error, host: inboxHost ?? claimedHost, claimedHost, inboxHost, scope });
    if (!scope || !body) return refuse("bad_request", 'expected a request on <prefix>.token.<encoded scope> with body {"v":1,"host":...,"runner":...}');
    const key = scopeKey(scope);
    if (!inboxHost) {
      return refuse("no_inbox", `the reply subject is not a host inbox (_INBOX_<encoded host>.…): upgrade the agent, or remove nats.inboxPrefix from its config (the broker knows a host by its inbox)`);
    }
    if (inboxHost !== body.host) return refuse("host_mismatch", `the request names host ${body.host} but its reply inbox belongs to host ${inboxHost}`);
    const patterns = this.byScope.get(key);
    if (!patterns) return refuse("scope_not_brokered", `scope ${key} is not in this collector's fleet.scopes`);
    if (!patterns.some((p) => hostMatches(p, inboxHost))) return refuse("host_not_allowed", `host ${inboxHost} is not in fleet.scopes[${key}].hosts of this collector`);
    return { ok: true, host: inboxHost, scope, runner: body.runner };
  }
}
