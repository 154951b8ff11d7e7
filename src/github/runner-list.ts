/**
 * Checks on `GET {scope}/actions/runners` pages (fleet mode's poll). GitHub pages this list by
 * number, so a runner that comes or goes between two page requests shifts the rest: one may be
 * listed twice or not at all. A listing is `complete` only when every page agreed on
 * `total_count` and it holds that many runners. A page that contradicts itself says nothing about
 * which runners exist: it throws RunnerListError, and the poll changes nothing.
 */
import { GitHubError } from "../shared/errors.ts";
import { scopeApiPath, type Scope } from "../shared/scope.ts";
import type { RunnerApiState } from "./client.ts";

/** GitHub's largest page of runners. */
export const LIST_PAGE_SIZE = 100;

export interface RunnerListing {
  notModified: boolean;
  etag: string | null;
  runners: RunnerApiState[];
  /** Every page agreed on total_count and the listing holds that many: no runner was skipped. */
  complete: boolean;
}

/** A 200 runner list that contradicts itself: the poll learnt nothing and must change nothing. */
export class RunnerListError extends GitHubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { status: 200, endpoint: "runners-list", retryable: false }, options);
    this.name = "RunnerListError";
  }
}

export interface RawRunner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels?: { name: string }[];
}

/**
 * One page, checked against itself: a `runners` array of runners with an id and a name, a
 * `total_count`, full when another page follows, and on the last page exactly what `total_count`
 * leaves for it (none for a page past the end).
 */
export function checkListPage(data: unknown, page: number, hasNext: boolean, scope: Scope): { total: number; batch: RawRunner[] } {
  const where = `GitHub's runner list for ${scopeApiPath(scope)} (page ${page})`;
  const failed = "treated as a failed poll (nothing deleted)";
  const body = (typeof data === "object" && data !== null ? data : {}) as { total_count?: unknown; runners?: unknown };
  if (!Array.isArray(body.runners)) throw new RunnerListError(`${where} has no runners array: ${failed}; is a proxy in front of github.apiUrl answering?`);
  const total = body.total_count;
  if (typeof total !== "number" || !Number.isInteger(total) || total < 0) throw new RunnerListError(`${where} has no valid total_count: ${failed}`);
  const batch = body.runners as RawRunner[];
  if (batch.some((r) => typeof r !== "object" || r === null || !Number.isInteger(r.id) || typeof r.name !== "string")) {
    throw new RunnerListError(`${where} holds a runner without an id or a name: ${failed}`);
  }
  const left = total - (page - 1) * LIST_PAGE_SIZE;
  if (!hasNext && left > LIST_PAGE_SIZE) throw new RunnerListError(`${where} says total_count ${total} but links no next page: ${failed}; does a proxy strip the Link header?`);
  const expected = hasNext ? LIST_PAGE_SIZE : Math.max(0, left);
  if (batch.length !== expected) throw new RunnerListError(`${where} holds ${batch.length} runners where its total_count ${total} means ${expected}: ${failed}`);
  return { total, batch };
}
