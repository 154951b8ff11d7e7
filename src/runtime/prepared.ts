/**
 * Prepared routes: a GET or HEAD answered with bytes and headers computed once (when what they show
 * changed), not per request. The servers in this folder answer them before the fetch handler, so a
 * scrape costs no Request, Response or router work; runtime-neutral (no Node or Deno globals).
 */

/** A response ready to write as it is. */
export interface PreparedResponse {
  status: number;
  /** Lower-case names, content-length included; an `etag` makes GETs with If-None-Match conditional. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** GET and HEAD of exactly `path` (any query string ignored). */
export interface PreparedRoute {
  path: string;
  /**
   * The current answer. A rejection is not answered here: the request goes on to the fetch
   * handler, whose own route for the path reports the error the usual way.
   */
  respond(): PreparedResponse | Promise<PreparedResponse>;
}

const NOTHING = new Uint8Array(0);

/** True when an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks for GET). */
export function etagMatches(ifNoneMatch: string | null | undefined, etag: string | undefined): boolean {
  if (!ifNoneMatch || !etag) return false;
  const strip = (tag: string) => (tag.startsWith("W/") ? tag.slice(2) : tag);
  const mine = strip(etag);
  return ifNoneMatch.split(",").some((tag) => {
    const t = tag.trim();
    return t === "*" || strip(t) === mine;
  });
}

/** `response`, or a bodiless 304 carrying its ETag when the client already holds these bytes. */
export function conditional(response: PreparedResponse, ifNoneMatch: string | null | undefined): PreparedResponse {
  const etag = response.headers.etag;
  if (response.status !== 200 || !etagMatches(ifNoneMatch, etag)) return response;
  return { status: 304, headers: { etag }, body: NOTHING };
}

/** The path part of a request target (`/metrics?x=1` → `/metrics`). */
export function pathOf(target: string): string {
  const q = target.indexOf("?");
  return q < 0 ? target : target.slice(0, q);
}

/** The route for a request, or undefined when the fetch handler answers it. */
export function preparedFor(routes: ReadonlyMap<string, PreparedRoute>, method: string | undefined, path: string): PreparedRoute | undefined {
  return method === "GET" || method === "HEAD" ? routes.get(path) : undefined;
}

export function routeMap(routes: readonly PreparedRoute[] | undefined): ReadonlyMap<string, PreparedRoute> {
  return new Map((routes ?? []).map((r) => [r.path, r]));
}
