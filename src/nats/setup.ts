/**
 * Creates the events stream and the state bucket when missing (SPEC 8), and adopts existing
 * ones: an existing stream is never changed (that could cut retention and lose data); one whose
 * subjects do not cover ours is a clear error. Agents with publish-only permissions skip this.
 *
 * Retention (docs/nats.md): events are kept 7 days or 256 MiB (about 600,000 events), whichever comes first, oldest
 * dropped; the dedupe window is 2 hours, longer than any outbox replay normally takes (the
 * collector also drops repeats by id, for replays after longer outages).
 */
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { DiscardPolicy, RetentionPolicy, StorageType, jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { RtrError, ExitCode } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import type { NatsNames } from "./subjects.ts";
import { createBucket, warnReplicas, type BucketOptions } from "./cluster.ts";

export const EVENTS_MAX_AGE_MS = 7 * 86_400_000;
export const EVENTS_MAX_BYTES = 256 * 1024 ** 2;
export const DEDUPE_WINDOW_MS = 2 * 3_600_000;

export class NatsSetupError extends RtrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.config, options);
    this.name = "NatsSetupError";
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; code?: unknown; message?: string };
  return e?.name === "StreamNotFoundError" || e?.code === 10059 || /stream not found/i.test(e?.message ?? "");
}

function subjectCovers(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return true;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** `replicas` is nats.replicas (SPEC 16): used when creating, compared when adopting. */
export async function ensureEventsStream(nc: NatsConnection, names: NatsNames, log: Logger, replicas = 1): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    const info = await jsm.streams.info(names.eventsStream);
    const subjects = info.config.subjects ?? [];
    if (!subjects.some((s) => subjectCovers(s, names.eventsSubjects))) {
      throw new NatsSetupError(
        `NATS stream ${names.eventsStream} exists with subjects [${subjects.join(", ")}], which do not include ${names.eventsSubjects}: add the subject to the stream or choose another nats.prefix`,
      );
    }
    const window = Number(info.config.duplicate_window) / 1e6;
    if (window < DEDUPE_WINDOW_MS) {
      log.warn({ stream: names.eventsStream, duplicate_window_ms: window }, `stream ${names.eventsStream} has a dedupe window shorter than 2h: an outbox replay after a long outage may store repeats (the collector drops them by id); adopting it unchanged`);
    }
    if (info.config.retention !== RetentionPolicy.Limits) {
      log.warn({ stream: names.eventsStream, retention: info.config.retention }, `stream ${names.eventsStream} uses ${info.config.retention} retention: /api/v1/events may miss events; adopting it unchanged`);
    }
    warnReplicas(log, names.eventsStream, info.config.num_replicas, replicas);
    return;
  } catch (err) {
    if (err instanceof NatsSetupError) throw err;
    if (!isNotFound(err)) throw err;
  }
  const config: Partial<StreamConfig> & { name: string } = {
    name: names.eventsStream,
    subjects: [names.eventsSubjects],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(EVENTS_MAX_AGE_MS),
    max_bytes: EVENTS_MAX_BYTES,
    duplicate_window: nanos(DEDUPE_WINDOW_MS),
    num_replicas: replicas,
  };
  try {
    await jsm.streams.add(config);
    log.info({ stream: names.eventsStream }, `created NATS stream ${names.eventsStream}`);
  } catch (err) {
    // Another agent or collector created it at the same moment.
    if (!/already in use|already exists/i.test(String(err))) throw err;
  }
}

/** `options.replicas` (nats.replicas) applies when the bucket is created; see cluster.ts. */
export async function openBucket(nc: NatsConnection, bucket: string, create: boolean, options: BucketOptions = {}): Promise<KV> {
  if (!create) return new Kvm(nc).open(bucket);
  return createBucket(nc, bucket, options);
}
