/**
 * Leadership among collectors (SPEC 9): a lease in KV bucket RTR_LEADER whose entries expire
 * after `ttlMs`. The holder renews it (a compare-and-set on its revision) well within the TTL; when
 * it dies, the key expires and the next collector's create() succeeds. Only the leader evaluates
 * rules and sends alerts (and, in fleet mode, polls GitHub and mints).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import type { Logger } from "../shared/logger.ts";
import type { AgentConfig } from "../config/types.ts";
import { isElectionError, retryThroughElection } from "../nats/retry.ts";
import { bucketStream, createBucket } from "../nats/cluster.ts";

const KEY = "leader";

/** The lease's TTL without fleet mode, and the most fleet mode uses. */
export const LEASE_TTL_MS = 15_000;
/**
 * The least TTL on a JetStream cluster (nats.replicas > 1). The holder renews every TTL/3, so when
 * a node dies it has at least 2/3 of the TTL left to renew through the election: 2/3 × 15 s = 10 s,
 * more than the 4–9 s an election takes (docs/nats.md, "Elections").
 */
export const CLUSTER_LEASE_TTL_MS = 15_000;

/**
 * The TTL a collector asks for (SPEC 9): 15 s; in fleet mode 1.5 × fleet.pollInterval between
 * 1.5 s and 15 s, so another collector takes over within two poll intervals. On a cluster never
 * below CLUSTER_LEASE_TTL_MS: a lease shorter than an election would lapse in every election.
 */
export function leaseTtlFor(config: Pick<AgentConfig, "fleet" | "nats">): { ttlMs: number; floored: string | null } {
  const fleet = config.fleet.scopes?.length ? Math.min(LEASE_TTL_MS, Math.max(1500, config.fleet.pollInterval * 1500)) : null;
  const ttlMs = fleet ?? LEASE_TTL_MS;
  const replicas = config.nats?.replicas ?? 1;
  if (replicas <= 1 || ttlMs >= CLUSTER_LEASE_TTL_MS) return { ttlMs, floored: null };
  return {
    ttlMs: CLUSTER_LEASE_TTL_MS,
    floored:
      `nats.replicas is ${replicas}: the leader lease lives ${CLUSTER_LEASE_TTL_MS / 1000} s, not 1.5 × fleet.pollInterval (${ttlMs / 1000} s), so it outlasts a JetStream election (4–9 s); ` +
      `another collector takes over within about ${(CLUSTER_LEASE_TTL_MS * 4) / 3000} s of the leader's death (docs/nats.md, "Cluster")`,
  };
}

export class Lease {
  private revision = 0;
  private renewedAt = 0;
  private kv: KV | null = null;
  private ttlMs: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    readonly id: string,
    /** The TTL asked for; an existing bucket's own TTL wins (see `ttl`). */
    private readonly wantedTtlMs: number,
    /** nats.replicas, for the bucket when this creates it. */
    private readonly replicas = 1,
    /** Where an adopted bucket's differing settings are reported. */
    private readonly log?: Logger,
  ) {
    this.ttlMs = wantedTtlMs;
  }

  /**
   * How long an entry lives: the bucket's max age, which is what expires the key, so the holder
   * must renew (every ttl/3) and give up by it even when the bucket was created with another TTL.
   */
  get ttl(): number {
    return this.ttlMs;
  }

  private async bucketKv(): Promise<KV> {
    if (this.kv) return this.kv;
    // As for the other buckets (src/nats/setup.ts): created when missing, else adopted as it is,
    // with a warning when its replicas or its TTL differ from what this collector asks for.
    const kv = await createBucket(this.nc, this.bucket, { replicas: this.replicas, ttlMs: this.wantedTtlMs, log: this.log });
    const actual = (await kv.status().catch(() => null))?.ttl;
    if (actual !== undefined && actual !== this.wantedTtlMs) {
      const stream = bucketStream(this.bucket);
      this.log?.warn(
        { stream, ttl_ms: actual, wanted_ms: this.wantedTtlMs },
        actual > 0
          ? `NATS bucket ${this.bucket} has a TTL of ${actual / 1000} s but this collector's lease wants ${this.wantedTtlMs / 1000} s: adopting it (the lease lives ${actual / 1000} s, renewed every ${Math.round(actual / 3) / 1000} s); to change it run \`nats stream edit ${stream} --max-age ${this.wantedTtlMs / 1000}s\``
          : `NATS bucket ${this.bucket} has no TTL, so a dead leader's lease never expires and no other collector takes over: run \`nats stream edit ${stream} --max-age ${this.wantedTtlMs / 1000}s\``,
      );
      if (actual > 0) this.ttlMs = actual;
    }
    this.kv = kv;
    return kv;
  }

  /** Takes or renews the lease; true while this process holds it. Call every ttl/3 or so. */
  async tick(): Promise<boolean> {
    const kv = await this.bucketKv();
    const started = Date.now();
    try {
      // Through a JetStream leader election (SPEC 16) the write is retried, same revision.
      const revision = this.revision;
      this.revision = await retryThroughElection(() => (revision ? kv.update(KEY, this.id, revision) : kv.create(KEY, this.id)), { budgetMs: this.ttlMs / 3 });
      this.renewedAt = started;
      return true;
    } catch (err) {
      // Still unanswered: nobody else can write the key either, so the holder keeps the lease
      // while its last renewal is younger than the TTL, and renews with the same revision next tick.
      if (this.revision && isElectionError(err) && Date.now() - this.renewedAt < this.ttlMs) return true;
      // Someone else holds it (or our revision is stale after a takeover): follow until it expires.
      this.revision = 0;
      return false;
    }
  }

  async holder(): Promise<string | null> {
    const entry = await (await this.bucketKv()).get(KEY);
    return entry?.operation === "PUT" ? entry.string() : null;
  }

  async release(): Promise<void> {
    if (!this.revision || !this.kv) return;
    await this.kv.delete(KEY, { previousSeq: this.revision }).catch(() => {});
    this.revision = 0;
  }
}
