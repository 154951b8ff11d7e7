/**
 * Wires loaded plugins into delivery targets and an engine: what the agent and the collector hold.
 * Counts deliveries per plugin and outcome (runner_token_alert_notifications_total).
 */
import type { Logger } from "../shared/logger.ts";
import { errorMessage } from "../shared/errors.ts";
import { redact } from "../shared/redact.ts";
import type { AgentConfig } from "../config/types.ts";
import { DEFAULT_DELIVERY, PluginTarget, classify, type DeliveryPolicy, type Outcome } from "./delivery.ts";
import { AlertEngine, type AlertCondition, type AlertStore } from "./engine.ts";
import type { LoadedPlugin } from "./load.ts";
import type { Notification, PluginLogger } from "./sdk.ts";

function pluginLogger(log: Logger): PluginLogger {
  return {
    debug: (msg, fields) => log.debug(fields ?? {}, msg),
    info: (msg, fields) => log.info(fields ?? {}, msg),
    warn: (msg, fields) => log.warn(fields ?? {}, msg),
    error: (msg, fields) => log.error(fields ?? {}, msg),
  };
}

export class AlertHost {
  readonly counts = new Map<string, number>();
  readonly engine: AlertEngine;
  private readonly stopper = new AbortController();

  private constructor(
    readonly targets: PluginTarget[],
    store: AlertStore,
    config: AgentConfig,
    log: Logger,
    now?: () => number,
  ) {
    this.engine = new AlertEngine({ targets, store, repeatInterval: config.alerts.repeatInterval, groupWait: config.alerts.groupWait, sendResolved: config.alerts.sendResolved, log, now });
  }

  static async create(plugins: LoadedPlugin[], store: AlertStore, config: AgentConfig, log: Logger, options: { policy?: Partial<DeliveryPolicy>; now?: () => number } = {}): Promise<AlertHost> {
    const policy: DeliveryPolicy = { ...DEFAULT_DELIVERY, timeoutSeconds: config.alerts.timeout, maxPerMinute: config.alerts.maxPerMinute, ...options.policy };
    const targets: PluginTarget[] = [];
    const holder: { host?: AlertHost } = {};
    const metrics = { count: (plugin: string, outcome: Outcome) => holder.host?.count(plugin, outcome) };
    const stop = new AbortController();
    for (const p of plugins) {
      const child = log.child({ plugin: p.definition.name });
      const instance = await p.definition.create(p.options, { log: pluginLogger(child), fetch: (input, init) => fetch(input, init) });
      targets.push(new PluginTarget(p.definition.name, p.definition.groups !== false, instance, policy, child, metrics, stop.signal, options.now));
    }
    const host = new AlertHost(targets, store, config, log, options.now);
    holder.host = host;
    host.stopper.signal.addEventListener("abort", () => stop.abort(), { once: true });
    await host.engine.start();
    return host;
  }

  count(plugin: string, outcome: Outcome): void {
    const key = `${plugin}\u0000${outcome}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Known plugin × outcome pairs start at 0 (SPEC 11). */
  deliveries(): { plugin: string; outcome: string; count: number }[] {
    const out: { plugin: string; outcome: string; count: number }[] = [];
    for (const t of this.targets) {
      for (const outcome of ["success", "failure", "retry", "skipped"]) out.push({ plugin: t.name, outcome, count: this.counts.get(`${t.name}\u0000${outcome}`) ?? 0 });
    }
    return out;
  }

  evaluate(conditions: AlertCondition[]): Promise<void> {
    return this.engine.evaluate(conditions);
  }

  /** Plugins a receiver refused for good (4xx): /healthz reports them. */
  misconfigured(): { plugin: string; error: string }[] {
    return this.targets.filter((t) => t.misconfigured).map((t) => ({ plugin: t.name, error: t.misconfigured! }));
  }

  /** `alert test`: one clearly marked notification through every plugin, no retries, outcome each. */
  async sendTest(host: string, timeoutSeconds: number): Promise<{ plugin: string; ok: boolean; error: string | null }[]> {
    const now = new Date().toISOString();
    const notification: Notification = {
      status: "firing",
      rule: "test",
      key: `test/${host}/-`,
      host,
      runner: null,
      scope: null,
      severity: "info",
      summary: "Test notification from runner-token-refresh: if you read this, alert delivery works. No action needed.",
      startsAt: now,
      details: { sent_by: "runner-token-refresh alert test" },
      test: true,
    };
    return Promise.all(
      this.targets.map(async (t) => {
        try {
          await t.instance.send(notification, AbortSignal.timeout(timeoutSeconds * 1000));
          this.count(t.name, "success");
          return { plugin: t.name, ok: true, error: null };
        } catch (err) {
          this.count(t.name, "failure");
          const { retryable } = classify(err);
          return { plugin: t.name, ok: false, error: `${redact(errorMessage(err))}${retryable ? "" : " (not retryable: check the plugin's options)"}` };
        }
      }),
    );
  }

  async idle(): Promise<void> {
    await this.engine.idle();
  }

  async close(): Promise<void> {
    this.engine.stop();
    this.stopper.abort();
    for (const t of this.targets) await t.close().catch(() => {});
    await this.engine.close();
  }
}
