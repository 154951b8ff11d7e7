// Starts a Collector in-process against a real nats-server, with a captured log.
import { createNodeRuntime } from "../../src/runtime/node.ts";
import { createLogger } from "../../src/shared/logger.ts";
import { Collector } from "../../src/collector/collector.ts";
import type { AgentConfig } from "../../src/config/types.ts";
import { fileSchema } from "../../src/config/schema.ts";

export interface TestCollector {
  collector: Collector;
  logs(): string;
  close(): Promise<void>;
}

export function collectorConfig(
  natsUrl: string,
  extra: { staleAfter?: number; user?: string; password?: string; prefix?: string; github?: { apiUrl: string; token: string }; fleetScopes?: ({ org: string } & { hosts?: string[] })[]; pollInterval?: number; threshold?: number } = {},
): AgentConfig {
  const file = fileSchema.parse({});
  return {
    configFile: null,
    configDir: "/",
    host: "collector",
    github: { url: "https://github.com", apiUrl: extra.github?.apiUrl ?? "https://api.github.com", auth: extra.github ? { kind: "token", token: extra.github.token } : null, statusInterval: 1800, requestTimeout: 30 },
    runners: [],
    pools: [],
    refresh: { ...file.refresh, retryBackoff: 0.01, threshold: extra.threshold ?? file.refresh.threshold },
    state: { dir: "/nonexistent", metricsFile: "/nonexistent/metrics.json" },
    nats: { servers: [natsUrl], prefix: extra.prefix ?? "rtr", name: "collector", user: extra.user, password: extra.password },
    http: { listen: "127.0.0.1:0" },
    collector: { staleAfter: extra.staleAfter },
    // Every host may ask unless a test says otherwise (the schema requires the list in a file).
    fleet: { ...file.fleet, scopes: extra.fleetScopes?.map((s) => ({ hosts: ["*"], ...s })), pollInterval: extra.pollInterval ?? file.fleet.pollInterval },
    alerts: file.alerts,
    log: { level: "info" },
    dryRun: false,
    json: false,
  };
}

export function startCollector(config: AgentConfig): TestCollector {
  let out = "";
  const log = createLogger({ level: "debug", write: (l) => void (out += l) });
  const collector = new Collector({ runtime: createNodeRuntime(), config, log });
  collector.start();
  return { collector, logs: () => out, close: () => collector.close() };
}
