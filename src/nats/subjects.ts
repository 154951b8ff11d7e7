/**
 * Every NATS name in one place (SPEC 8): subjects, stream, buckets, durable consumer. Host and
 * runner names are encoded as subject tokens; host-level and token events use the runner token `=`.
 */
import { encodeToken } from "../shared/scope.ts";
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
