/**
 * Every NATS name in one place (SPEC 8): subjects, stream, buckets, durable consumer. Host and
 * runner names are encoded as subject tokens; host-level and token events use the runner token `=`.
 */
import { decodeToken, encodeToken } from "../shared/scope.ts";
import type { Envelope } from "../shared/types.ts";

export const NO_RUNNER = "=";

export interface NatsNames {
  prefix: string;
  eventsStream: string;
  eventsSubjects: string;
  stateBucket: string;
  githubBucket: string;
  leaderBucket: string;
  alertsBucket: string;
  durable: string;
}

export function natsNames(prefix: string): NatsNames {
  const upper = prefix.toUpperCase();
  return {
    prefix,
    eventsStream: `${upper}_EVENTS`,
    eventsSubjects: `${prefix}.events.>`,
    stateBucket: `${upper}_STATE`,
    githubBucket: `${upper}_GITHUB`,
    leaderBucket: `${upper}_LEADER`,
    alertsBucket: `${upper}_ALERTS`,
    durable: `${prefix}-collector`,
  };
}

/** `<prefix>.events.<host>.<runner>.<type>`; the type's dots make subject levels. */
export function eventSubject(prefix: string, event: Pick<Envelope, "host" | "runner" | "type">): string {
  return `${prefix}.events.${encodeToken(event.host)}.${event.runner === null ? NO_RUNNER : encodeToken(event.runner)}.${event.type}`;
}

/** A filter for reading the stream: any of host / type may be left open. */
export function eventFilter(prefix: string, filter: { host?: string; type?: string }): string {
  const host = filter.host ? encodeToken(filter.host) : "*";
  return `${prefix}.events.${host}.*.${filter.type ?? ">"}`;
}

/** KV key of a runner's state: `<host>.<runner>`, both encoded. */
export function stateKey(host: string, runner: string): string {
  return `${encodeToken(host)}.${encodeToken(runner)}`;
}

/**
 * An agent's inbox prefix: `_INBOX_<encoded host>`. NATS permissions let only host H's user
 * subscribe to `_INBOX_<H>.>`, so a reply subject under this prefix can only be read by H: the
 * token broker derives the requester's identity from it (src/fleet/broker.ts).
 */
export function inboxPrefixFor(host: string): string {
  return `_INBOX_${encodeToken(host)}`;
}

/**
 * The host whose inbox `reply` lies in (`_INBOX_<encoded host>.…`), else null. Only the canonical
 * encoding counts: `_INBOX_ci=2D01` is not ci-01's inbox (no permission grants it to anyone).
 */
export function hostOfInbox(reply: string | undefined): string | null {
  const m = /^_INBOX_([A-Za-z0-9_=-]+)\./.exec(reply ?? "");
  if (!m) return null;
  const host = decodeToken(m[1]);
  return encodeToken(host) === m[1] ? host : null;
}
