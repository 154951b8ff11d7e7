/**
 * Fleet mode, collector side (SPEC 9): the leader lists each scope's runners every pollInterval
 * (all pages; the first page conditional on the last ETag, so an unchanged fleet costs nothing)
 * and keeps KV bucket RTR_GITHUB current: one key per runner, and a `_poll` marker agents judge
 * freshness by.
 *
 * Agents read "missing from a fresh poll" as "deleted" and re-register, so a key goes only when
 * the runner is confirmed gone: GitHub answers 404 for its id, or two complete listings in a row
 * (every page agreeing on total_count) lacked it. Page-number pagination under churn can skip a
 * live runner, so absence from one listing proves nothing; a malformed page fails the whole poll
 * (no deletion, no new marker). The marker's `started` is the start of the last complete listing:
 * only that one vouches for every runner registered before it.
 */
import { listKeys } from "../nats/kv-keys.ts";
import type { KV } from "@nats-io/kv";
import { errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { scopeKey, type Scope } from "../shared/scope.ts";
import type { GitHubClient, RunnerApiState } from "../github/client.ts";
import { pollMarkerKey, runnerKey, scopeToken, type FleetRunnerEntry, type PollMarker } from "./keys.ts";

/**
 * By-id confirmations per scope and poll. A listing that changed under the poll asks GitHub
 * about each runner it lacks; under heavy ephemeral churn that could be many calls, so the rest
 * wait for a later poll (or for two complete listings without them).
 */
const MAX_CONFIRMATIONS = 10;
/** "No complete listing yet": agents count no runner as deleted against it. */
const NEVER = new Date(0).toISOString();

export class FleetPoller {
  private readonly etags = new Map<string, string>();
  private readonly written = new Map<string, string>();
  /** Keys a complete listing lacked: the next complete listing without them deletes them. */
  private readonly absent = new Set<string>();
  /** Per scope, the start of this process's last complete listing. */
  private readonly completeSince = new Map<string, string>();

  constructor(
    private readonly options: { github: GitHubClient; kv: KV; scopes: Scope[]; log: Logger; now?: () => number },
  ) {}

  /** Forget what this process saw and wrote: another leader may have changed the bucket since. */
  reset(): void {
    this.etags.clear();
    this.written.clear();
    this.absent.clear();
    this.completeSince.clear();
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
    const prefix = `${scopeToken(scope)}.`;
    // An absence waiting for its second complete listing needs a real one, not a 304.
    const settling = [...this.absent].some((k) => k.startsWith(prefix));
    const result = await github.listRunners(scope, signal, settling ? undefined : this.etags.get(key));
    if (!result.notModified) {
      if (result.etag) this.etags.set(key, result.etag);
      else this.etags.delete(key);
      const seen = new Set<string>();
      for (const r of result.runners) {
        const k = runnerKey(scope, r.id);
        seen.add(k);
        this.absent.delete(k);
        await this.write(k, r);
      }
      const missing: string[] = [];
      for (const k of await listKeys(kv, `${prefix}*`)) if (k !== pollMarkerKey(scope) && !seen.has(k)) missing.push(k);
      await this.settle(scope, missing, result.complete, signal);
    }
    // A 304 repeats the last listing, and only a one-page (so complete) listing has an ETag.
    if (result.notModified || result.complete) this.completeSince.set(key, started);
    else this.options.log.info({ scope: key }, `fleet poll of ${key}: the runner list changed while it was read; missing runners were checked by id`);
    const since = this.completeSince.get(key) ?? (await this.markerStarted(scope)) ?? NEVER;
    const marker: PollMarker = { started: since, finished: new Date(this.now()).toISOString() };
    await kv.put(pollMarkerKey(scope), JSON.stringify(marker));
  }

  /** Decides about keys this listing lacked: delete the confirmed-gone, keep the rest. */
  private async settle(scope: Scope, missing: string[], complete: boolean, signal: AbortSignal): Promise<void> {
    const prefix = `${scopeToken(scope)}.`;
    let budget = MAX_CONFIRMATIONS;
    for (const k of missing) {
      if (complete) {
        if (this.absent.has(k)) await this.remove(k, "absent from two complete listings");
        else this.absent.add(k);
        continue;
      }
      const id = Number(k.slice(prefix.length));
      if (budget === 0 || !Number.isSafeInteger(id)) continue;
      budget--;
      let found: RunnerApiState | null;
      try {
        // The list call just succeeded with this credential: a 404 here means gone, not unseen.
        found = await this.options.github.getRunner(scope, id, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        this.options.log.warn({ scope: scopeKey(scope), id }, `could not confirm runner id ${id} by id (${errorMessage(err)}): its key stays`);
        continue;
      }
      if (found) await this.write(k, found);
      else await this.remove(k, "GitHub answered 404 for its id");
    }
  }

  private async write(k: string, r: RunnerApiState): Promise<void> {
    const entry: FleetRunnerEntry = { id: r.id, name: r.name, status: r.status, busy: r.busy, labels: r.labels };
    const value = JSON.stringify(entry);
    // Unchanged runners are not rewritten: KV watchers see only real changes.
    if (this.written.get(k) === value) return;
    await this.options.kv.put(k, value);
    this.written.set(k, value);
  }

  private async remove(k: string, why: string): Promise<void> {
    await this.options.kv.delete(k);
    this.written.delete(k);
    this.absent.delete(k);
    this.options.log.debug({ key: k }, `fleet: runner key ${k} deleted (${why})`);
  }

  /** The marker's start as another leader (or this one before a reset) left it. */
  private async markerStarted(scope: Scope): Promise<string | null> {
    const e = await this.options.kv.get(pollMarkerKey(scope)).catch(() => null);
    if (e?.operation !== "PUT") return null;
    try {
      const started = e.json<Partial<PollMarker>>().started;
      return typeof started === "string" && Number.isFinite(Date.parse(started)) ? started : null;
    } catch {
      return null;
    }
  }
}
