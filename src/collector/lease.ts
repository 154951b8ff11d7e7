/**
 * Leadership among collectors (SPEC 9): a lease in KV bucket RTR_LEADER whose entries expire
 * after `ttlMs`. The holder renews it (a compare-and-set on its revision) well within the TTL; when
 * it dies, the key expires and the next collector's create() succeeds. Only the leader evaluates
 * rules and sends alerts (and, in fleet mode, polls GitHub and mints).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { isElectionError, retryThroughElection } from "../nats/retry.ts";

const KEY = "leader";

export class Lease {
  private revision = 0;
  private renewedAt = 0;
  private kv: KV | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    readonly id: string,
    private readonly ttlMs: number,
    /** nats.replicas, for the bucket when this creates it. */
    private readonly replicas = 1,
  ) {}

  private async bucketKv(): Promise<KV> {
    this.kv ??= await new Kvm(this.nc).create(this.bucket, { history: 1, ttl: this.ttlMs, replicas: this.replicas });
    return this.kv;
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
