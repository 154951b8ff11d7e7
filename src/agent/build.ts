/** Wires an AgentContext from a loaded config: logger, GitHub client, stores, publisher. */
import type { Runtime } from "../runtime/types.ts";
import type { AgentConfig } from "../config/types.ts";
import type { Logger } from "../shared/logger.ts";
import { VERSION } from "../shared/version.ts";
import { GitHubClient } from "../github/client.ts";
import { TokenCache } from "../github/token-cache.ts";
import { EventEmitter, FanoutPublisher, LogPublisher, type Publisher } from "./events.ts";
import { NatsPublisher } from "../nats/publisher.ts";
import { StateStore } from "./state-store.ts";
import { AgentTelemetry } from "./telemetry.ts";
import type { AgentContext } from "./context.ts";
import type { AlertHost } from "../alerts/host.ts";
import { FleetAgentClient } from "../fleet/agent-client.ts";
import { agentTransportProblem } from "../fleet/transport.ts";
import { inboxPrefixFor } from "../nats/subjects.ts";
import { ConfigError } from "../shared/errors.ts";
import { Privsep } from "../privsep/index.ts";
import { BrokerSource, DirectSource, PoolManager } from "../pool/index.ts";

export function buildAgentContext(
  runtime: Runtime,
  config: AgentConfig,
  log: Logger,
  mode: "check" | "daemon",
  options: { publisher?: Publisher; fetch?: typeof fetch; now?: () => number; alerts?: AlertHost | null } = {},
): AgentContext {
  const now = options.now ?? Date.now;
  const telemetry = new AgentTelemetry(log);
  const store = new StateStore(runtime, config.state.dir, config.dryRun);
  const github = config.github.auth
    ? new GitHubClient({
        apiUrl: config.github.apiUrl,
        auth: config.github.auth,
        requestTimeout: config.github.requestTimeout,
        retry: { maxRetries: config.refresh.maxRetries, retryBackoff: config.refresh.retryBackoff, maxRetryWait: config.refresh.maxRetryWait },
        observer: telemetry,
        userAgent: `runner-token-refresh/${VERSION}`,
        fetch: options.fetch ?? runtime.fetch,
        now,
      })
    : null;
  if (config.fleet.enabled && !config.nats) {
    throw new ConfigError(`${config.configFile ?? "configuration"}: fleet.enabled: fleet mode talks to the collector over NATS: set nats.servers (or NATS_URL)`);
  }
  // Checked before the publisher connects: a token request over plain NATS is readable on the wire.
  const transport = config.fleet.enabled && config.nats ? agentTransportProblem(config.nats, config.fleet.allowInsecure) : null;
  if (transport) throw new ConfigError(`${config.configFile ?? "configuration"}: ${transport}`);
  if (config.fleet.enabled && config.nats?.inboxPrefix && config.nats.inboxPrefix !== inboxPrefixFor(config.nats.name)) {
    log.warn({ inboxPrefix: config.nats.inboxPrefix }, `nats.inboxPrefix is ${config.nats.inboxPrefix}, not ${inboxPrefixFor(config.nats.name)}: the token broker knows a host by its inbox and will refuse this agent; remove nats.inboxPrefix (docs/fleet.md, "Who may ask")`);
  }
  // --dry-run writes nothing and publishes nothing: events are only logged.
  const nats = !options.publisher && config.nats && !config.dryRun ? new NatsPublisher({ runtime, config: config.nats, stateDir: config.state.dir, log, mode }) : null;
  const publisher = options.publisher ?? (nats ? new FanoutPublisher([new LogPublisher(log), nats]) : new LogPublisher(log));
  const fleet = config.fleet.enabled && nats ? new FleetAgentClient(() => nats.connection(), nats.names, { host: config.host }) : null;
  const events = new EventEmitter({ host: config.host, runtime: runtime.name, nextSeq: () => store.nextSeq(), publisher, log });
  if (config.pools.length && !github && !fleet) {
    throw new ConfigError(`${config.configFile ?? "configuration"}: pools: JIT runners need the agent's own GitHub credentials (github.auth or GITHUB_TOKEN), or fleet mode's broker (fleet.enabled)`);
  }
  // Own credentials first (they can also delete runners); else the collector's broker.
  const source = github ? new DirectSource(github) : fleet ? new BrokerSource(fleet) : null;
  const pools = mode === "daemon" && config.pools.length && source && !config.dryRun ? new PoolManager({ runtime, config, log, source, events, now }) : null;
  return { runtime, config, log, github, tokens: new TokenCache(runtime, config.state.dir), store, events, telemetry, mode, now, alerts: options.alerts ?? null, fleet, privsep: new Privsep(runtime, config), pools };
}
