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
  /** The answer for the current state: 200, Prometheus text, content-length and a strong ETag. */
  current(): Promise<PreparedResponse>;
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

  const stateKey = async (): Promise<string> => {
    const [pending, dropped] = await Promise.all([source.outboxPending().catch(() => null), source.outboxDropped().catch(() => 0)]);
    const hygiene = source.telemetry.hygiene;
    let repairs = 0;
    for (const n of hygiene.repairs.values()) repairs += n;
    const ages = [...hygiene.versionAgeDays].join(",");
    const deliveries = (source.alerts?.deliveries() ?? []).map((d) => `${d.plugin}:${d.outcome}:${d.count}`).join(",");
    return `${source.telemetry.version}|${pending}|${dropped}|${hygiene.repairs.size}:${repairs}|${ages}|${deliveries}`;
  };

  const render = async (): Promise<PreparedResponse> => {
    const body = encoder.encode(await registry.metrics());
    const headers = { "content-type": PROMETHEUS_CONTENT_TYPE, "content-length": String(body.byteLength), etag: await etagOf(body) };
    return { status: 200, headers, body };
  };

  return {
    async current() {
      const key = await stateKey();
      if (cached?.key === key) return cached.answer;
      const entry = { key, answer: render() };
      cached = entry;
      // A failed render is not kept: the next scrape tries again.
      entry.answer.catch(() => {
        if (cached === entry) cached = null;
      });
      return entry.answer;
    },
  };
}
