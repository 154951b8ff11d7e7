/**
 * A KV bucket's keys, bounded in time. nats.js's `kv.keys()` lists through an ordered consumer
 * and ends when it thinks it saw every key; with keys written or deleted meanwhile (the fleet
 * poller does both every poll) it can wait for ever — a known class of bug across NATS clients.
 * A `check` waiting for ever is worse than one that fails with a clear error: so stop after
 * `timeoutMs` and say why.
 */
import type { KV } from "@nats-io/kv";

export class KeyListingTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyListingTimeoutError";
  }
}

export async function listKeys(kv: KV, filter?: string, timeoutMs = 10_000): Promise<string[]> {
  const iter = await kv.keys(filter);
  const keys: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      iter.stop();
      reject(new KeyListingTimeoutError(`listing the keys ${filter ?? ">"} of a NATS KV bucket did not finish within ${timeoutMs / 1000}s: NATS is slow or the bucket changed while it was read; the next pass tries again`));
    }, timeoutMs);
  });
  const collect = (async () => {
    for await (const k of iter) keys.push(k);
    return keys;
  })();
  try {
    return await Promise.race([collect, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
