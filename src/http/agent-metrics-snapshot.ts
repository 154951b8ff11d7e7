/**
 * GET /metrics from a snapshot: the text is rendered again only when something it shows changed
 * (the telemetry's version, hygiene's and the alert plugins' counts, the outbox counts), not per
 * scrape, and kept as the bytes and headers of a ready answer (src/runtime/prepared.ts), so a
 * scrape of unchanged state costs the key and a socket write. The key is taken before the
 * render, so a cached answer is never older than its key.
 */
import type { Registry } from "prom-client";
import type { PreparedResponse } from "../runtime/prepared.ts";
import { PROMETHEUS_CONTENT_TYPE, type AgentHttpSource } from "./agent-metrics.ts";

export interface MetricsSnapshot {
  /**
   * The answer for the current state: 200, Prometheus text, content-length and a strong ETag;
   * synchronous when nothing changed since the last answer (the common scrape).
   */
  current(): PreparedResponse | Promise<PreparedResponse>;
}

/** A content hash, so an ETag held by a scraper never matches other bytes, even after a restart. */
async function etagOf(body: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  let hex = "";
  for (const b of digest.subarray(0, 12)) hex += b.toString(16).padStart(2, "0");
  return `"${hex}"`;
}

export function createMetricsSnapshot(source: AgentHttpSource, registry: Registry): MetricsSnapshot {
  const encoder = new TextEncoder();
  let cached: { key: string; answer: Promise<PreparedResponse> } | null = null;
  // The last answer once rendered, with what it was rendered from: the in-memory key and the two
  // outbox reads. A source that reuses a read for a while (agentHttpSource) hands back the same
  // promise, hence the same value, so an unchanged key and the same promises need no await.
  let ready: { memoryKey: string; pending: Promise<number>; dropped: Promise<number>; answer: PreparedResponse } | null = null;

  /** Everything the text shows that lives in memory (the outbox counts are read apart). */
  const memoryKey = (): string => {
    const hygiene = source.telemetry.hygiene;
    let repairs = 0;
    for (const n of hygiene.repairs.values()) repairs += n;
    let ages = "";
    for (const [runner, days] of hygiene.versionAgeDays) ages += `${runner}=${days},`;
    let deliveries = "";
    for (const d of source.alerts?.deliveries() ?? []) deliveries += `${d.plugin}:${d.outcome}:${d.count},`;
    return `${source.telemetry.version}|${hygiene.repairs.size}:${repairs}|${ages}|${deliveries}`;
  };

  const slow = async (memory: string, pendingRead: Promise<number>, droppedRead: Promise<number>): Promise<PreparedResponse> => {
    const [pending, dropped] = await Promise.all([pendingRead.catch(() => null), droppedRead.catch(() => 0)]);
    const key = `${memory}|${pending}|${dropped}`;
    let entry = cached;
    if (entry?.key !== key) {
      entry = { key, answer: render() };
      cached = entry;
      // A failed render is not kept: the next scrape tries again.
      const failed = entry;
      entry.answer.catch(() => {
        if (cached === failed) cached = null;
      });
    }
    const answer = await entry.answer;
    ready = { memoryKey: memory, pending: pendingRead, dropped: droppedRead, answer };
    return answer;
  };

  const render = async (): Promise<PreparedResponse> => {
    const body = encoder.encode(await registry.metrics());
    const headers = { "content-type": PROMETHEUS_CONTENT_TYPE, "content-length": String(body.byteLength), etag: await etagOf(body) };
    return { status: 200, headers, body };
  };

  return {
    current() {
      const memory = memoryKey();
      const pending = source.outboxPending();
      const dropped = source.outboxDropped();
      if (ready && ready.memoryKey === memory && ready.pending === pending && ready.dropped === dropped) return ready.answer;
      return slow(memory, pending, dropped);
    },
  };
}
