/**
 * Narrowing the fleet (SPEC 9): `status=`, `host=`, `scope=`, `pool=` and `q=`, each repeatable or
 * comma-separated (values of one parameter are ORed, parameters ANDed), `limit=` and `cursor=`.
 * The API and the dashboard parse the same query string with the same code, so a dashboard URL and
 * an API URL with the same filters show the same runners.
 *
 * The cursor is the sort key of the last runner shown (base64url JSON), not an offset: a runner
 * that appears or leaves between two pages shifts nothing, and no server state is kept per reader.
 */
import type { FleetRunner } from "../collector/types.ts";
import { scopeKey } from "../shared/scope.ts";
import { FLEET_STATUSES, fleetStatus, type FleetStatus } from "./collector-metrics.ts";

export const RUNNERS_DEFAULT_LIMIT = 500;
export const RUNNERS_MAX_LIMIT = 5000;
/** A filter value longer than any host, scope or runner name is a mistake, not a query. */
const MAX_VALUE = 300;
const MAX_VALUES = 100;

export interface RunnerFilters {
  status: FleetStatus[];
  host: string[];
  scope: string[];
  pool: string[];
  q: string[];
  limit: number;
  cursor: string | null;
}

export type Order = "name" | "status";

export class FilterError extends Error {
  override name = "FilterError";
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(`invalid query parameter ${parameter}: ${message}`);
  }
}

const FILTER_PARAMS = ["status", "host", "scope", "pool", "q"] as const;

/** All values of a parameter, repeated or comma-separated, trimmed, empty ones dropped. */
function values(params: URLSearchParams, name: string): string[] {
  const out = params.getAll(name).flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
  if (out.length > MAX_VALUES) throw new FilterError(name, `at most ${MAX_VALUES} values`);
  for (const v of out) if (v.length > MAX_VALUE) throw new FilterError(name, `a value longer than ${MAX_VALUE} characters`);
  return out;
}

/** Parses the query string; throws FilterError naming the parameter for a bad value. */
export function parseRunnerFilters(params: URLSearchParams, defaultLimit = RUNNERS_DEFAULT_LIMIT): RunnerFilters {
  const statuses = values(params, "status");
  for (const s of statuses) {
    if (!(FLEET_STATUSES as readonly string[]).includes(s)) throw new FilterError("status", `${JSON.stringify(s)} is not one of ${FLEET_STATUSES.join(", ")}`);
  }
  const scopes = values(params, "scope");
  for (const s of scopes) {
    if (!/^(org|repo|enterprise):.+$/.test(s)) throw new FilterError("scope", `${JSON.stringify(s)}: write org:NAME, repo:OWNER/NAME or enterprise:SLUG`);
  }
  const rawLimit = params.get("limit");
  let limit = defaultLimit;
  if (rawLimit !== null && rawLimit !== "") {
    const n = /^\d+$/.test(rawLimit) ? Number(rawLimit) : NaN;
    if (!Number.isSafeInteger(n) || n < 1 || n > RUNNERS_MAX_LIMIT) throw new FilterError("limit", `${JSON.stringify(rawLimit)}: use an integer from 1 to ${RUNNERS_MAX_LIMIT} (default ${defaultLimit})`);
    limit = n;
  }
  const cursor = params.get("cursor") || null;
  if (cursor !== null && decodeCursor(cursor) === null) throw new FilterError("cursor", "not a cursor this collector gave out (use next_cursor from the previous page)");
  return { status: statuses as FleetStatus[], host: values(params, "host"), scope: scopes, pool: values(params, "pool"), q: values(params, "q"), limit, cursor };
}

/** The query string for these filters (without limit and cursor unless given), for links. */
export function filtersQuery(f: Partial<RunnerFilters>, extra: Record<string, string | null> = {}): string {
  const p = new URLSearchParams();
  for (const name of FILTER_PARAMS) for (const v of f[name] ?? []) p.append(name, v);
  for (const [k, v] of Object.entries(extra)) if (v !== null) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

export function hasFilters(f: RunnerFilters): boolean {
  return FILTER_PARAMS.some((name) => f[name].length > 0);
}

/** A pool runner's pool: `pool` in its state when an agent says so, else from its name (SPEC 14). */
export function runnerPool(r: FleetRunner): string | null {
  const said = (r.state as { pool?: unknown }).pool;
  return typeof said === "string" ? said : null;
}

function poolMatches(r: FleetRunner, pools: string[]): boolean {
  const said = runnerPool(r);
  // Pool runners are named `<pool>-<host>-<slot>-<hex>`; the prefix is how a page finds them.
  return pools.some((p) => said === p || (said === null && r.runner.startsWith(`${p}-`)));
}

export function matches(r: FleetRunner, f: RunnerFilters): boolean {
  if (f.status.length && !f.status.includes(fleetStatus(r))) return false;
  if (f.host.length && !f.host.includes(r.host)) return false;
  if (f.scope.length && !f.scope.includes(scopeKey(r.state.scope))) return false;
  if (f.pool.length && !poolMatches(r, f.pool)) return false;
  if (f.q.length) {
    const name = r.runner.toLowerCase();
    if (!f.q.some((q) => name.includes(q.toLowerCase()))) return false;
  }
  return true;
}

/** Worst first on the dashboard, so a problem is on screen without scrolling. */
const RANK: Record<string, number> = { failing: 0, unregistered: 1, stale: 2, deferred_busy: 3, refreshing: 4, held: 5, ok: 6 };

type SortKey = [number, string, string];

function sortKey(r: FleetRunner, order: Order): SortKey {
  return [order === "status" ? (RANK[fleetStatus(r)] ?? -1) : 0, String(r.host), String(r.runner)];
}

function compare(a: SortKey, b: SortKey): number {
  return a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
}

function encodeCursor(key: SortKey): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(key)))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeCursor(cursor: string): SortKey | null {
  try {
    const json = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(atob(cursor.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)));
    const v = JSON.parse(json) as unknown;
    if (Array.isArray(v) && v.length === 3 && typeof v[0] === "number" && typeof v[1] === "string" && typeof v[2] === "string") return v as SortKey;
  } catch {
    // Not ours.
  }
  return null;
}

export interface RunnerPage {
  runners: FleetRunner[];
  total: number;
  nextCursor: string | null;
}

/** Filters, sorts and cuts one page. One pass over the fleet; the sort is over the matches only. */
export function pageRunners(all: FleetRunner[], f: RunnerFilters, order: Order): RunnerPage {
  const keyed: { r: FleetRunner; k: SortKey }[] = [];
  for (const r of all) {
    try {
      if (matches(r, f)) keyed.push({ r, k: sortKey(r, order) });
    } catch {
      // A runner whose state cannot be read matches nothing but the unfiltered list.
      if (!hasFilters(f)) keyed.push({ r, k: [-1, String(r.host), String(r.runner)] });
    }
  }
  keyed.sort((a, b) => compare(a.k, b.k));
  const after = f.cursor ? decodeCursor(f.cursor) : null;
  let start = 0;
  if (after) {
    // The first runner sorting after the cursor: a binary search over the sorted matches.
    let lo = 0;
    let hi = keyed.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(keyed[mid].k, after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const page = keyed.slice(start, start + f.limit);
  const more = start + f.limit < keyed.length;
  return { runners: page.map((x) => x.r), total: keyed.length, nextCursor: more && page.length ? encodeCursor(page[page.length - 1].k) : null };
}
