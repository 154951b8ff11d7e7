/**
 * Events and state documents (SPEC 8) leave the agent through one Publisher. This issue's
 * publisher logs them; the NATS publisher (with its outbox) implements the same interface.
 */
import type { Logger } from "../shared/logger.ts";
import { redactValue } from "../shared/redact.ts";
import type { Scope } from "../shared/scope.ts";
import type { Envelope, EventType, PoolsStateDocument, Publisher, StateDocument } from "../shared/types.ts";

export type { Publisher };
import { VERSION } from "../shared/version.ts";


/** Hands every call to each publisher in turn (the log and NATS). */
export class FanoutPublisher implements Publisher {
  constructor(private readonly publishers: Publisher[]) {}
  async publishEvent(event: Envelope): Promise<void> {
    for (const p of this.publishers) await p.publishEvent(event);
  }
  async putState(doc: StateDocument): Promise<void> {
    for (const p of this.publishers) await p.putState(doc);
  }
  async putPools(doc: PoolsStateDocument): Promise<void> {
    for (const p of this.publishers) await p.putPools?.(doc);
  }
  async close(): Promise<void> {
    for (const p of this.publishers) await p.close();
  }
  async pending(): Promise<number> {
    let n = 0;
    for (const p of this.publishers) n += (await p.pending?.()) ?? 0;
    return n;
  }
}

export class LogPublisher implements Publisher {
  constructor(private readonly log: Logger) {}
  async publishEvent(event: Envelope): Promise<void> {
    this.log.info({ event: event.type, seq: event.seq, runner: event.runner, data: event.data }, `event ${event.type}`);
  }
  async putState(doc: StateDocument): Promise<void> {
    this.log.debug({ state: doc.name, status: doc.status }, "state");
  }
  async close(): Promise<void> {}
}

/** Builds envelopes with ids and the state dir's sequence, and hands them to the publisher. */
export class EventEmitter {
  constructor(
    private readonly options: {
      host: string;
      runtime: string;
      nextSeq: () => Promise<number>;
      publisher: Publisher;
      log: Logger;
      now?: () => Date;
    },
  ) {}

  get publisher(): Publisher {
    return this.options.publisher;
  }

  async emit(type: EventType, runner: string | null, scope: Scope | null, data: Record<string, unknown> = {}): Promise<Envelope> {
    const now = this.options.now?.() ?? new Date();
    const event: Envelope = {
      v: 1,
      id: crypto.randomUUID(),
      seq: await this.options.nextSeq(),
      type,
      time: now.toISOString(),
      host: this.options.host,
      runner,
      scope,
      agent: { version: VERSION, runtime: this.options.runtime },
      // Never a secret in an envelope: data may quote errors and config.sh output.
      data: redactValue(data),
    };
    try {
      await this.options.publisher.publishEvent(event);
    } catch (err) {
      // Telemetry must never break token or registration work.
      this.options.log.warn({ err: String(err), event: type }, "could not publish event");
    }
    return event;
  }
}
