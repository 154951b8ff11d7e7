/**
 * Exponential backoff with full jitter around the base ("equal jitter": half fixed, half random),
 * so a fleet that failed together does not retry together.
 */
export function backoffDelay(attempt: number, baseSeconds: number, maxSeconds: number, random = Math.random): number {
  const exp = Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, attempt - 1));
  return exp / 2 + (random() * exp) / 2;
}

/** Sleeps, waking early (with an AbortError) when the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error("aborted"));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error("aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
