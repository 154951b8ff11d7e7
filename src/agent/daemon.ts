/**
 * The daemon: a pass every `interval` seconds until SIGTERM/SIGINT. A signal aborts waits and
 * GitHub calls at once; a registration in flight is finished (bounded by configureTimeout) so a
 * runner is never left half-configured. Exits 0.
 */
import { sleep } from "../shared/backoff.ts";
import { errorMessage } from "../shared/errors.ts";
import type { AgentContext } from "./context.ts";
import { runPass } from "./pass.ts";

export function warnThreshold(ctx: AgentContext): void {
  const { threshold, interval } = ctx.config.refresh;
  if (threshold < interval + 60) {
    ctx.log.warn(
      { threshold, interval },
      `refresh.threshold (${threshold}s) is shorter than refresh.interval + 60s (${interval + 60}s): the token can expire between passes; cron users set interval to their cron period`,
    );
  }
}

/** Random lead so a fleet's mints spread out instead of all landing in the same minute. */
function leadSeconds(ctx: AgentContext): number {
  return Math.random() * Math.min(60, ctx.config.refresh.threshold / 10);
}

export async function runDaemon(ctx: AgentContext, signal: AbortSignal, options: { onPass?: (n: number) => void } = {}): Promise<number> {
  warnThreshold(ctx);
  ctx.log.info({ runners: ctx.config.runners.length, pools: ctx.config.pools.length, interval: ctx.config.refresh.interval, state_dir: ctx.config.state.dir }, "daemon started");
  await ctx.events.emit("agent.started", null, null, { mode: "daemon", runners: ctx.config.runners.length, interval: ctx.config.refresh.interval });
  // Pools keep their own loop (a finished job is replaced at once, not at the next pass).
  await ctx.pools?.start(signal);
  for (let n = 1; !signal.aborted; n++) {
    const started = ctx.now();
    try {
      const result = await runPass(ctx, signal, { leadSeconds: leadSeconds(ctx) });
      // A pass cut short by the signal says nothing about the runners: /healthz keeps the last one.
      if (!result.aborted) ctx.telemetry.passFinished({ finishedAt: ctx.now(), ok: result.exitCode === 0, error: result.error }, result.metrics);
      ctx.log.info({ pass: n, exit_code: result.exitCode, duration_ms: ctx.now() - started }, "pass finished");
    } catch (err) {
      // A bug in one pass must not stop the agent: log and try again next interval.
      ctx.log.error({ pass: n }, `pass failed unexpectedly: ${errorMessage(err)}`);
      ctx.telemetry.passFinished({ finishedAt: ctx.now(), ok: false, error: `the pass failed unexpectedly: ${errorMessage(err)}` }, null);
    }
    options.onPass?.(n);
    const wait = Math.max(0, ctx.config.refresh.interval * 1000 - (ctx.now() - started));
    await sleep(wait, signal).catch(() => {});
  }
  ctx.log.info("stopping on signal");
  await ctx.pools?.stop();
  await ctx.events.emit("agent.stopped", null, null, { reason: "signal" });
  await ctx.events.publisher.close();
  return 0;
}
