/**
 * A feed on a consumer of the collector's own (the KV watch of RTR_STATE, the history feed's
 * ordered consumer) lives on one node: its consumer has one replica. When that node dies (SPEC 16)
 * nats.js 3.4 neither re-creates the consumer nor ends the iterator: measured on a three-node
 * nats-server 2.9 cluster, the feed stayed silent for good (40 s and counting) while the stream
 * took new messages from a new leader. This watchdog notices that: the stream holds a message
 * newer than the last one the feed delivered, and a whole check later the feed has still
 * delivered nothing. It then calls `onStall`, which ends the feed; the collector's loop starts it
 * again on a new consumer (the state watch replays every current value, the history feed resumes
 * after the last sequence it counted).
 */
import { sleep } from "../shared/backoff.ts";

/** Between two looks at the stream: a stalled feed is ended 1–2 checks after the missed message. */
export const STALL_CHECK_MS = 3000;
/** A look that gets no answer this soon (no stream leader yet) is skipped, not waited for. */
const TAIL_TIMEOUT_MS = 2000;

export interface StreamTail {
  /** The stream's last sequence. */
  lastSeq: number;
  /** Messages it holds: a purged or aged-out stream has a last sequence but nothing to deliver. */
  messages: number;
}

export interface StallWatchOptions {
  /** The stream's state; a throw (no leader during an election) skips that check. */
  tail: () => Promise<StreamTail>;
  /** The highest stream sequence the feed has delivered (0 before the first). */
  delivered: () => number;
  onStall: (stall: { delivered: number; lastSeq: number }) => void;
  signal: AbortSignal;
  everyMs?: number;
}

/** Runs until `signal` fires or a stall was reported; returns the stop function. */
export function watchForStall(options: StallWatchOptions): () => void {
  const stop = new AbortController();
  const abort = () => stop.abort();
  options.signal.addEventListener("abort", abort, { once: true });
  const every = options.everyMs ?? STALL_CHECK_MS;
  void (async () => {
    // What the feed had delivered when a check found the stream ahead of it; null when it was not.
    let suspect: number | null = null;
    while (!stop.signal.aborted) {
      await sleep(every, stop.signal).catch(() => {});
      if (stop.signal.aborted) return;
      let tail: StreamTail;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("timeout")), TAIL_TIMEOUT_MS)));
        tail = await Promise.race([options.tail(), late]);
      } catch {
        continue;
      } finally {
        clearTimeout(timer);
      }
      const delivered = options.delivered();
      const ahead = tail.messages > 0 && tail.lastSeq > delivered;
      if (ahead && suspect !== null && delivered === suspect) {
        stop.abort();
        options.onStall({ delivered, lastSeq: tail.lastSeq });
        return;
      }
      suspect = ahead ? delivered : null;
    }
  })().finally(() => options.signal.removeEventListener("abort", abort));
  return abort;
}
