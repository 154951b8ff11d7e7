/**
 * JetStream cluster support (SPEC 16): the stream and buckets are created with `nats.replicas`
 * replicas; an existing one with another replica count is adopted unchanged (changing it moves
 * data between servers, an operator's decision) with a warning that says how to change it.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import type { Logger } from "../shared/logger.ts";

export const DEFAULT_REPLICAS = 1;

/** The stream behind a KV bucket. */
export function bucketStream(bucket: string): string {
  return `KV_${bucket}`;
}

/** The warning for an adopted stream whose replicas differ from nats.replicas; null when they match. */
export function replicasMismatch(stream: string, actual: number, wanted: number): string | null {
  if (actual === wanted) return null;
  return `NATS stream ${stream} has ${actual} replica${actual === 1 ? "" : "s"} but nats.replicas is ${wanted}: adopting it unchanged; to change it run \`nats stream edit ${stream} --replicas ${wanted}\` (or set nats.replicas: ${actual})`;
}

export function warnReplicas(log: Logger | undefined, stream: string, actual: number | undefined, wanted: number): void {
  const warning = replicasMismatch(stream, actual ?? 1, wanted);
  if (warning) log?.warn({ stream, replicas: actual ?? 1, wanted }, warning);
}

export interface BucketOptions {
  /** nats.replicas; default 1. */
  replicas?: number;
  /** Entries expire after this long (the leader lease). */
  ttlMs?: number;
  /** Where a replica mismatch of an existing bucket is reported. */
  log?: Logger;
}

/** Creates the bucket when missing (history 1), else opens it as it is. */
export async function createBucket(nc: NatsConnection, bucket: string, options: BucketOptions = {}): Promise<KV> {
  const replicas = options.replicas ?? DEFAULT_REPLICAS;
  const kv = await new Kvm(nc).create(bucket, { history: 1, replicas, ...(options.ttlMs ? { ttl: options.ttlMs } : {}) });
  if (options.log) {
    // create() adopts an existing bucket whatever its settings: say when they differ.
    const status = await kv.status().catch(() => null);
    if (status) warnReplicas(options.log, bucketStream(bucket), status.replicas, replicas);
  }
  return kv;
}
