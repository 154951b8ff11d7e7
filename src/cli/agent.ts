/** `check` and `daemon`: build the agent (with its alert plugins) and run one pass or the loop. */
import type { HttpServer, Runtime } from "../runtime/types.ts";
import { ConfigError, ExitCode, errorMessage } from "../shared/errors.ts";
import { redact } from "../shared/redact.ts";
import { sleep } from "../shared/backoff.ts";
import type { Logger } from "../shared/logger.ts";
import type { AgentConfig } from "../config/types.ts";
import { buildAgentContext } from "../agent/build.ts";
import { runDaemon, warnThreshold } from "../agent/daemon.ts";
import { runPass } from "../agent/pass.ts";
import { AlertHost } from "../alerts/host.ts";
import { FileAlertStore } from "../alerts/stores.ts";
import type { LoadedPlugin } from "../alerts/load.ts";
import type { MainOptions } from "./main.ts";
import type { AgentContext } from "../agent/context.ts";
import { splitListen } from "./listen.ts";

export const AGENT_DEFAULT_LISTEN = "127.0.0.1:9469";

/** A `check` waits this long at most for its alert notifications before exiting. */
const CHECK_ALERT_WAIT_MS = 60_000;

export async function runAgent(
  runtime: Runtime,
  config: AgentConfig,
  log: Logger,
  mode: "check" | "daemon",
  plugins: LoadedPlugin[],
  signal: AbortSignal,
  options: MainOptions,
): Promise<number> {
  // --dry-run pages nobody: it only says what it would do.
  const alerts = plugins.length && !config.dryRun ? await AlertHost.create(plugins, new FileAlertStore(runtime, config.state.dir), config, log) : null;
  const ctx = buildAgentContext(runtime, config, log, mode, { publisher: options.publisher, fetch: options.fetch, alerts });
  try {
    // SPEC 15: before anything runs as a runner's user, prove that user cannot read our secrets.
    await ctx.privsep.verify(log).catch(async (err) => {
      await ctx.events.publisher.close().catch(() => {});
      throw err;
    });
    if (mode === "daemon") {
      let http: AgentHttp | null;
      try {
        http = await startAgentHttp(ctx);
      } catch (err) {
        await ctx.events.publisher.close().catch(() => {});
        throw err;
      }
      try {
        return await runDaemon(ctx, signal);
      } finally {
        await http?.close();
      }
    }
    warnThreshold(ctx);
    if (config.refresh.splay > 0) {
      const delay = Math.random() * config.refresh.splay;
      log.debug({ splay_seconds: Math.round(delay) }, "splay: waiting before the pass");
      await sleep(delay * 1000, signal).catch(() => {});
    }
    const result = await runPass(ctx, signal);
    if (alerts) await Promise.race([alerts.idle(), sleep(CHECK_ALERT_WAIT_MS)]);
    await ctx.events.publisher.close();
    if (config.json && result.metrics) runtime.writeStdout(`${JSON.stringify(result.metrics)}\n`);
    if (result.aborted) return ExitCode.ok;
    // SPEC 3: every non-zero exit prints one line to stderr naming the problem and the fix
    // (a lock held past lockTimeout → 75, a failed refresh or registration → 1).
    if (result.exitCode !== ExitCode.ok) runtime.writeStderr(`error: ${redact(result.error ?? "the pass failed: see the log").replace(/\s*\n\s*/g, " ")}\n`);
    return result.exitCode;
  } finally {
    await alerts?.close();
  }
}

/** `alert test`: a marked test notification through every configured plugin; exit 1 if any failed. */
export async function runAlertTest(runtime: Runtime, config: AgentConfig, log: Logger, plugins: LoadedPlugin[]): Promise<number> {
  if (!plugins.length) {
    runtime.writeStderr(`error: no alert plugins configured: add alerts.plugins to ${config.configFile ?? "a config file"} (see docs/alerts.md)\n`);
    return ExitCode.failed;
  }
  const host = await AlertHost.create(plugins, { load: async () => ({}), save: async () => {} }, config, log);
  try {
    const results = await host.sendTest(config.host, config.alerts.timeout);
    for (const r of results) runtime.writeStdout(`${r.ok ? "ok    " : "FAILED"} ${r.plugin}${r.error ? `: ${r.error}` : ""}\n`);
    const failed = results.filter((r) => !r.ok).length;
    if (failed) runtime.writeStderr(`error: ${failed} of ${results.length} alert plugins failed the test: see above\n`);
    return failed ? ExitCode.failed : ExitCode.ok;
  } finally {
    await host.close();
  }
}

interface AgentHttp {
  close(): Promise<void>;
}

function url(hostname: string, port: number): string {
  return `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

/**
 * The daemon's /metrics, /healthz and /status on http.listen (--listen), default 127.0.0.1:9469.
 * A listen address the operator chose that cannot be bound is a configuration error (exit 78);
 * the default one being taken (a second agent on the host, another exporter) only costs the HTTP
 * endpoints: the daemon keeps refreshing tokens and says so in the log, because stopping the
 * agent (and, with RestartPreventExitStatus=78, leaving it stopped) over an optional port is worse.
 */
export async function startAgentHttp(ctx: AgentContext): Promise<AgentHttp | null> {
  const configured = ctx.config.http.listen;
  const listen = splitListen(configured ?? AGENT_DEFAULT_LISTEN, "http.listen (--listen)");
  // Only the daemon serves HTTP: `check` never loads the app, its prom-client registry or hono (issue #18, start-up).
  const { agentHttpSource, createAgentApp } = await import("../http/agent-app.ts");
  const { app, prepared, close } = createAgentApp(agentHttpSource(ctx), {
    onError: (err, path) => ctx.log.error({ path }, `HTTP ${path} failed: ${errorMessage(err)}`),
  });
  let server: HttpServer;
  try {
    server = await ctx.runtime.serve(app.fetch, { ...listen, prepared });
  } catch (err) {
    close();
    const why = errorMessage(err);
    if (configured !== undefined) {
      throw new ConfigError(`http.listen (--listen): cannot listen on ${configured}: ${why}: stop what holds the port or choose another HOST:PORT with http.listen or --listen`, { cause: err });
    }
    ctx.log.warn({ listen: AGENT_DEFAULT_LISTEN }, `cannot listen on the default ${AGENT_DEFAULT_LISTEN} (${why}): serving no /metrics, /healthz or /status; set http.listen (or --listen) to a free HOST:PORT`);
    return null;
  }
  const base = url(listen.hostname, server.port);
  ctx.log.info({ url: base }, `agent listening on ${base} (/metrics, /healthz, /status)`);
  return {
    async close() {
      close();
      await server.close().catch((err) => ctx.log.warn(`closing the HTTP server: ${errorMessage(err)}`));
    },
  };
}
