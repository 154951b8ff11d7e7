/** `collector`: the central collector and its HTTP API, until SIGTERM/SIGINT. */
import type { Runtime } from "../runtime/types.ts";
import { ConfigError } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { VERSION } from "../shared/version.ts";
import type { AgentConfig } from "../config/types.ts";
import { Collector } from "../collector/collector.ts";
import { createCollectorApp } from "../http/collector-app.ts";
import { AlertHost } from "../alerts/host.ts";
import { KvAlertStore } from "../alerts/stores.ts";
import type { LoadedPlugin } from "../alerts/load.ts";
import { openBucket } from "../nats/setup.ts";
import { splitListen } from "./listen.ts";

export const COLLECTOR_DEFAULT_LISTEN = "127.0.0.1:9470";

export async function runCollector(runtime: Runtime, config: AgentConfig, log: Logger, signal: AbortSignal, listenFlag: string | undefined, plugins: LoadedPlugin[]): Promise<number> {
  if (!config.nats) {
    throw new ConfigError(`the collector needs NATS: set nats.servers in ${config.configFile ?? "a config file"} or NATS_URL`);
  }
  const listen = splitListen(listenFlag ?? config.http.listen ?? COLLECTOR_DEFAULT_LISTEN, listenFlag ? "--listen" : "http.listen");
  const collector = new Collector({
    runtime,
    config,
    log,
    alerts: plugins.length ? async (nc, names) => AlertHost.create(plugins, new KvAlertStore(await openBucket(nc, names.alertsBucket, true, { replicas: config.nats?.replicas, log })), config, log) : undefined,
  });
  const app = createCollectorApp(collector, { authToken: config.http.authToken, version: VERSION });
  const server = await runtime.serve(app.fetch, listen);
  collector.start();
  log.info({ url: `http://${listen.hostname}:${server.port}/` }, `collector listening on http://${listen.hostname}:${server.port}/ (dashboard), /api/v1/runners, /metrics`);
  await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
  log.info("collector stopping");
  await server.close();
  await collector.close();
  return 0;
}
