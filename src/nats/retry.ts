/**
 * Publishing through a JetStream leader election (SPEC 16). While a stream has no leader (4–9 s
 * after its leader's node dies) a publish sees no responders or a timeout; nats.js reports the
 * last no-responders as `JetStreamNotEnabled`, which would mislead an operator. These are retried
 * with backoff and jitter for a bounded time; the caller then falls back (the outbox for events,
 * the next pass for state). Retries reuse the message id, so JetStream deduplicates them.
 */
import { errorMessage } from "../shared/errors.ts";

/** Longer than an election (4–9 s) plus one publish timeout's worth of slack. */
export const ELECTION_RETRY_BUDGET_MS = 15_000;
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 2000;

export const NO_LEADER_MESSAGE = "no JetStream stream leader answered (an election in progress, or JetStream down)";

/** No responders, a timeout, or JetStream's 503: what a leaderless stream looks like. */
export function isElectionError(err: unknown): boolean {
  for (let e = err as { name?: string; code?: unknown; message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.name === "JetStreamNotEnabled" || e.name === "NoRespondersError" || e.name === "TimeoutError") return true;
    if (e.code === 503 || e.code === "503" || e.code === 10008) return true;
    if (typeof e.message === "string" && /no responders|^timeout$|temporarily unavailable/i.test(e.message)) return true;
  }
  return false;
}

/** An operator-facing message: never "JetStream not enabled" for what is an election. */
export function describePublishError(err: unknown): string {
  if (isElectionError(err)) {
    const timeout = (err as { name?: string }).name === "TimeoutError" || /^timeout$/i.test(errorMessage(err));
    return timeout ? `${NO_LEADER_MESSAGE}: timed out` : NO_LEADER_MESSAGE;
  }
  return errorMessage(err);
}

export interface ElectionRetryOptions {
  budgetMs?: number;
  /** False stops retrying (the connection is down or closing: the outbox takes over at once). */
  shouldRetry?: () => boolean;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

/** The delay before attempt `n` (1-based): doubling from 250 ms to 2 s, each 50–100 % of that. */
export function electionBackoff(n: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (n - 1));
  return Math.round(base * (0.5 + random() / 2));
}

/** Runs `fn` until it succeeds, fails for another reason, or the budget is spent; throws the last error. */
export async function retryThroughElection<T>(fn: () => Promise<T>, options: ElectionRetryOptions = {}): Promise<T> {
  const budget = options.budgetMs ?? ELECTION_RETRY_BUDGET_MS;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isElectionError(err) || (options.shouldRetry && !options.shouldRetry())) throw err;
      const delay = electionBackoff(attempt, options.random);
      if (now() - started + delay >= budget) throw err;
      await sleep(delay);
    }
  }
}
