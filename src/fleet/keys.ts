/** Fleet mode's names (SPEC 9): RTR_GITHUB keys, the poll marker, the token broker's subjects. */
import { decodeToken, encodeToken, scopeKey, type Scope } from "../shared/scope.ts";

export function scopeToken(scope: Scope): string {
  return encodeToken(scopeKey(scope));
}

/** `<encoded scope>.<id>` */
export function runnerKey(scope: Scope, id: number): string {
  return `${scopeToken(scope)}.${id}`;
}

/**
 * `<encoded scope>._poll`: `{ started, finished }`. `finished` is when the last poll ended;
 * `started` when the last complete listing began (every runner registered before it and still at
 * GitHub has a key), which is older than the last poll when the list changed while it was read.
 */
export function pollMarkerKey(scope: Scope): string {
  return `${scopeToken(scope)}._poll`;
}

export function brokerSubject(prefix: string, scope: Scope): string {
  return `${prefix}.token.${scopeToken(scope)}`;
}

/** The broker's JIT subject for a scope (SPEC 14). */
export function jitSubject(prefix: string, scope: Scope): string {
  return `${prefix}.jit.${scopeToken(scope)}`;
}

/** `org:acme` (decoded from a subject token) back to a scope; null when it is not one. */
export function parseScopeKey(text: string): Scope | null {
  const m = /^(org|repo|enterprise):(.+)$/.exec(text);
  if (!m) return null;
  return { [m[1]]: m[2] } as Scope;
}

export function scopeFromSubject(subject: string): Scope | null {
  const last = subject.split(".").pop() ?? "";
  return parseScopeKey(decodeToken(last));
}

export interface FleetRunnerEntry {
  id: number;
  name: string;
  status: "online" | "offline";
  busy: boolean;
  labels: string[];
}

export interface PollMarker {
  started: string;
  finished: string;
}
