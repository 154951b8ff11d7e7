/**
 * Delivery is the host's job, not the plugins' (SPEC 10): one queue per plugin, a timeout per
 * attempt, retries with backoff and jitter on network errors, 5xx and 429 (honouring Retry-After),
 * none on other 4xx (the plugin is then marked misconfigured). A slow or failing plugin only ever
 * delays its own queue. The per-minute cap folds the excess into one "N more" notification.
 */
import { backoffDelay, sleep } from "../shared/backoff.ts";
import { errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { redact } from "../shared/redact.ts";
import type { Notification, PluginInstance } from "./sdk.ts";

export type Outcome = "success" | "failure" | "retry" | "skipped";

export interface DeliveryPolicy {
  timeoutSeconds: number;
  maxAttempts: number;
  backoffSeconds: number;
  maxBackoffSeconds: number;
  maxPerMinute: number;
  /** The cap's window (60 s; shorter only in tests). */
  capWindowMs: number;
}

export const DEFAULT_DELIVERY: DeliveryPolicy = { timeoutSeconds: 10, maxAttempts: 5, backoffSeconds: 2, maxBackoffSeconds: 300, maxPerMinute: 20, capWindowMs: 60_000 };

export interface DeliveryItem {
  notification: Notification;
  /** Checked when the item's turn comes (a resolve goes only where the firing was delivered). */
  shouldSend?: () => boolean;
  onResult?: (delivered: boolean) => void;
}

export interface DeliveryMetrics {
  count(plugin: string, outcome: Outcome): void;
}

/** What a thrown error means for a retry, recognised by name so plugins may bundle their own SDK. */
export function classify(err: unknown): { retryable: boolean; retryAfterSeconds?: number } {
  const e = err as { name?: string; retryable?: unknown; retryAfterSeconds?: unknown };
  if (e?.name === "AlertDeliveryError") {
    return { retryable: e.retryable === true, retryAfterSeconds: typeof e.retryAfterSeconds === "number" ? e.retryAfterSeconds : undefined };
  }
  // Timeouts, aborted or refused connections and plugin bugs we cannot judge: worth another try.
  return { retryable: true };
}

export class PluginTarget {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly sentTimes: number[] = [];
  private overflow: DeliveryItem[] = [];
  private overflowTimer: ReturnType<typeof setTimeout> | null = null;
  /** Set when the receiver refused us for good (a 4xx): visible in /healthz and metrics. */
  misconfigured: string | null = null;
  lastError: string | null = null;

  constructor(
    readonly name: string,
    readonly groups: boolean,
    readonly instance: PluginInstance,
    private readonly policy: DeliveryPolicy,
    private readonly log: Logger,
    private readonly metrics: DeliveryMetrics,
    private readonly stop: AbortSignal,
    private readonly now: () => number = Date.now,
  ) {}

  /** Queues an item; returns at once (the refresh loop never waits for a plugin). */
  enqueue(item: DeliveryItem): void {
    if (this.groups && !this.withinCap()) {
      this.overflow.push(item);
      this.scheduleOverflow();
      return;
    }
    this.queue = this.queue.then(() => this.deliver(item));
  }

  /** Resolves when everything queued so far was attempted (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue.then(() => undefined);
  }

  private withinCap(): boolean {
    const cutoff = this.now() - this.policy.capWindowMs;
    while (this.sentTimes.length && this.sentTimes[0] < cutoff) this.sentTimes.shift();
    if (this.sentTimes.length >= this.policy.maxPerMinute) return false;
    this.sentTimes.push(this.now());
    return true;
  }

  private scheduleOverflow(): void {
    if (this.overflowTimer) return;
    const wait = Math.max(0, (this.sentTimes[0] ?? this.now()) + this.policy.capWindowMs - this.now());
    this.overflowTimer = setTimeout(() => {
      this.overflowTimer = null;
      const items = this.overflow;
      this.overflow = [];
      if (!items.length) return;
      const first = items[0].notification;
      const summary: Notification = {
        ...first,
        key: `summary/${first.host}/${this.name}`,
        summary: `${items.length} more alert notifications over the limit of ${this.policy.maxPerMinute} per minute`,
        more: items.length,
        group: items.map((i) => i.notification),
      };
      this.sentTimes.push(this.now());
      this.queue = this.queue.then(() => this.deliver({ notification: summary, onResult: (ok) => items.forEach((i) => i.onResult?.(ok)) }));
    }, wait);
    // A pending summary must not keep a finished `check` alive.
    (this.overflowTimer as { unref?: () => void }).unref?.();
  }

  private async deliver(item: DeliveryItem): Promise<void> {
    if (item.shouldSend && !item.shouldSend()) {
      this.metrics.count(this.name, "skipped");
      item.onResult?.(false);
      return;
    }
    const n = item.notification;
    for (let attempt = 1; ; attempt++) {
      if (this.stop.aborted) return item.onResult?.(false);
      const signal = AbortSignal.any([this.stop, AbortSignal.timeout(this.policy.timeoutSeconds * 1000)]);
      try {
        // Raced against the timeout too: a plugin that ignores its signal must not stall the queue.
        await Promise.race([
          this.instance.send(n, signal),
          new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason ?? new Error("aborted")), { once: true })),
        ]);
        this.metrics.count(this.name, "success");
        this.misconfigured = null;
        this.lastError = null;
        this.log.info({ plugin: this.name, alert: n.key, status: n.status }, `alert ${n.status} delivered by ${this.name}`);
        item.onResult?.(true);
        return;
      } catch (err) {
        const message = redact(signal.aborted && !this.stop.aborted ? `no answer within ${this.policy.timeoutSeconds}s` : errorMessage(err));
        const { retryable, retryAfterSeconds } = classify(err);
        this.lastError = message;
        if (!retryable || attempt >= this.policy.maxAttempts || this.stop.aborted) {
          this.metrics.count(this.name, "failure");
          if (!retryable) this.misconfigured = message;
          this.log.error({ plugin: this.name, alert: n.key, attempt }, `alert delivery by ${this.name} failed${retryable ? ` after ${attempt} attempts` : " (not retried: fix the plugin's options)"}: ${message}`);
          item.onResult?.(false);
          return;
        }
        this.metrics.count(this.name, "retry");
        const wait = Math.min(this.policy.maxBackoffSeconds, retryAfterSeconds ?? backoffDelay(attempt, this.policy.backoffSeconds, this.policy.maxBackoffSeconds));
        this.log.warn({ plugin: this.name, alert: n.key, attempt, wait_seconds: Math.round(wait * 10) / 10 }, `alert delivery by ${this.name} failed (${message}); retrying`);
        await sleep(wait * 1000, this.stop).catch(() => {});
      }
    }
  }

  async close(): Promise<void> {
    if (this.overflowTimer) clearTimeout(this.overflowTimer);
    await this.instance.close?.();
  }
}
