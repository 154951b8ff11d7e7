/**
 * Where a pool's runners come from: the agent's own GitHub credentials, or in fleet mode the
 * collector's broker (`<prefix>.jit.<encoded scope>`, SPEC 14), which takes labels, group and work
 * folder from its own `fleet.pools` and never from the request. Without credentials the agent
 * cannot delete runners: an unused JIT runner is removed by GitHub within minutes anyway.
 */
import type { Scope } from "../shared/scope.ts";
import type { GitHubClient } from "../github/client.ts";
import type { PoolConfig } from "../config/types.ts";
import type { FleetAgentClient } from "../fleet/agent-client.ts";
import { deleteRunner, generateJitConfig, resolveGroupId, type JitRunner } from "./github.ts";

export interface RunnerSource {
  /** "direct" or "broker", for logs. */
  readonly kind: string;
  /** Resolves what the source needs once (a group name to its id). */
  prepare(pool: PoolConfig, where: string, signal: AbortSignal): Promise<void>;
  jit(pool: PoolConfig, name: string, signal: AbortSignal): Promise<JitRunner | "name_taken">;
  /** "unsupported" when this source cannot delete (fleet mode without credentials). */
  delete(scope: Scope, id: number, signal: AbortSignal): Promise<"deleted" | "gone" | "busy" | "unsupported">;
  /** Ids GitHub lists for the scope, or null when this source cannot tell. */
  listedIds(scope: Scope, signal: AbortSignal): Promise<Set<number> | null>;
}

export class DirectSource implements RunnerSource {
  readonly kind = "direct";
  private readonly groups = new Map<string, number>();

  constructor(private readonly github: GitHubClient) {}

  async prepare(pool: PoolConfig, where: string, signal: AbortSignal): Promise<void> {
    const id = pool.groupId ?? (pool.group ? await resolveGroupId(this.github, pool.scope, pool.group, where, signal) : 1);
    this.groups.set(pool.name, id);
  }

  jit(pool: PoolConfig, name: string, signal: AbortSignal): Promise<JitRunner | "name_taken"> {
    return generateJitConfig(this.github, pool.scope, { name, runnerGroupId: this.groups.get(pool.name) ?? 1, labels: pool.labels, workFolder: pool.workFolder }, signal);
  }

  delete(scope: Scope, id: number, signal: AbortSignal) {
    return deleteRunner(this.github, scope, id, signal);
  }

  async listedIds(scope: Scope, signal: AbortSignal): Promise<Set<number> | null> {
    const listing = await this.github.listRunners(scope, signal);
    return listing.complete ? new Set(listing.runners.map((r) => r.id)) : null;
  }
}

export class BrokerSource implements RunnerSource {
  readonly kind = "broker";

  constructor(private readonly fleet: FleetAgentClient) {}

  async prepare(): Promise<void> {
    // The collector resolves the group from its own fleet.pools entry.
  }

  jit(pool: PoolConfig, name: string): Promise<JitRunner | "name_taken"> {
    return this.fleet.jit(pool.scope, pool.name, name);
  }

  async delete(): Promise<"unsupported"> {
    return "unsupported";
  }

  async listedIds(): Promise<Set<number> | null> {
    return null;
  }
}
