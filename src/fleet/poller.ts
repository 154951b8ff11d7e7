/**
 * Fleet mode, collector side (SPEC 9): the leader lists each scope's runners every pollInterval
 * (all pages; the first page conditional on the last ETag, so an unchanged fleet costs nothing)
 * and keeps KV bucket RTR_GITHUB current: one key per runner, deleted when GitHub stops listing
 * it, and a `_poll` marker with the poll's start and finish that agents judge freshness by.
 */
import type { KV } from "@nats-io/kv";
import { errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { scopeKey, type Scope } from "../shared/scope.ts";
import type { GitHubClient } from "../github/client.ts";
import { pollMarkerKey, runnerKey, scopeToken, type FleetRunnerEntry, type PollMarker } from "./keys.ts";

export class FleetPoller {
  private readonly etags = new Map<string, string>();
  private readonly written = new Map<string, string>();

  constructor(
    private readonly options: { github: GitHubClient; kv: KV; scopes: Scope[]; log: Logger; now?: () => number },
  ) {}

  /** Forget what this process wrote: another leader may have changed the bucket since. */
  reset(): void {
    this.etags.clear();
    this.written.clear();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** One poll of every scope; a failing scope is logged and leaves its marker unchanged. */
  async pollOnce(signal: AbortSignal): Promise<void> {
    for (const scope of this.options.scopes) {
      try {
        await this.pollScope(scope, signal);
      } catch (err) {
        if (signal.aborted) return;
        this.options.log.warn({ scope: scopeKey(scope) }, `fleet poll of ${scopeKey(scope)} failed: ${errorMessage(err)}`);
      }
    }
  }

  private async pollScope(scope: Scope, signal: AbortSignal): Promise<void> {
    const { kv, github } = this.options;
    const started = new Date(this.now()).toISOString();
    const key = scopeKey(scope);
    const result = await github.listRunners(scope, signal, this.etags.get(key));
    if (!result.notModified) {
      if (result.etag) this.etags.set(key, result.etag);
      const seen = new Set<string>();
      for (const r of result.runners) {
        const k = runnerKey(scope, r.id);
        seen.add(k);
        const entry: FleetRunnerEntry = { id: r.id, name: r.name, status: r.status, busy: r.busy, labels: r.labels };
        const value = JSON.stringify(entry);
        // Unchanged runners are not rewritten: KV watchers see only real changes.
        if (this.written.get(k) !== value) {
          await kv.put(k, value);
          this.written.set(k, value);
        }
      }
      const prefix = `${scopeToken(scope)}.`;
      for await (const k of await kv.keys(`${prefix}*`)) {
        if (k === pollMarkerKey(scope) || seen.has(k)) continue;
        await kv.delete(k);
        this.written.delete(k);
      }
    }
    const marker: PollMarker = { started, finished: new Date(this.now()).toISOString() };
    await kv.put(pollMarkerKey(scope), JSON.stringify(marker));
  }
}
