// Realistic envelopes and state documents, as agents publish them (sizes and shapes of the real
// thing), for the collector benchmarks.
import type { Envelope, EventType, StateDocument } from "../../src/shared/types.ts";

const TYPES: EventType[] = ["token.refreshed", "token.refreshed", "token.refreshed", "runner.registered", "runner.service_started", "token.refresh_failed", "agent.started"];

export function makeEnvelopes(n: number, hosts = 1000): Envelope[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const type = TYPES[i % TYPES.length];
    const host = `ci-${String(i % hosts).padStart(4, "0")}.example.com`;
    const runner = type.startsWith("runner.") ? "runner-1" : null;
    const data: Record<string, unknown> =
      type === "token.refreshed"
        ? { expires_at: new Date(now + 3600_000).toISOString(), source: "github" }
        : type === "token.refresh_failed"
          ? { error: "GitHub answered 502 Bad Gateway after 3 attempts", attempt: 3, consecutive_failures: 1 }
          : type === "runner.registered"
            ? { agent_id: 1000 + i, reason: "deleted_on_github" }
            : { tries: 1 };
    return {
      v: 1 as const,
      id: crypto.randomUUID(),
      seq: Math.floor(i / hosts) + 1,
      type,
      time: new Date(now + i).toISOString(),
      host,
      runner,
      scope: { org: "acme" },
      agent: { version: "0.1.0", runtime: "node" },
      data,
    };
  });
}

export function stateDoc(host: string, runner: string, consecutiveFailures = 0, time = new Date()): StateDocument {
  const failing = consecutiveFailures > 0;
  return {
    v: 1,
    host,
    time: time.toISOString(),
    interval: 60,
    name: runner,
    dir: `/home/runner/${runner}`,
    scope: { org: "acme" },
    ephemeral: false,
    registered: true,
    agent_id: 4242,
    service_active: true,
    online: !failing,
    busy: false,
    token_expires_at: Math.floor(time.getTime() / 1000) + 3000,
    last_refresh_timestamp: Math.floor(time.getTime() / 1000) - 600,
    total_refreshes: 12,
    failed_refreshes: consecutiveFailures,
    consecutive_failures: consecutiveFailures,
    registrations: 1,
    status: failing ? "failing" : "ok",
    last_error: failing ? "GitHub answered 502 Bad Gateway after 3 attempts: retrying next pass" : null,
  };
}
