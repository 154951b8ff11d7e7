/**
 * Where alert state lives: a file in the agent's state dir, or KV bucket RTR_ALERTS for the
 * collector (so another collector taking over knows what is firing and what resolve is owed).
 */
import { listKeys } from "../nats/kv-keys.ts";
import { join } from "node:path";
import type { KV } from "@nats-io/kv";
import { encodeToken } from "../shared/scope.ts";
import type { Runtime } from "../runtime/types.ts";
import type { AlertRecord, AlertStore, SharedAlertStore } from "./engine.ts";
import { FileAlertLock } from "./file-lock.ts";

/**
 * The agent's alerts.json. A cron `check` and the daemon of one host both change it, so it is
 * shared (SharedAlertStore): every change is made under a lock on records read under it.
 */
export class FileAlertStore implements AlertStore {
  readonly shared: SharedAlertStore | undefined;

  constructor(
    private readonly runtime: Runtime,
    private readonly stateDir: string,
    private readonly readOnly = false,
  ) {
    this.shared = readOnly ? undefined : new FileAlertLock(runtime, stateDir);
  }

  private get path(): string {
    return join(this.stateDir, "alerts.json");
  }

  async load(): Promise<Record<string, AlertRecord>> {
    try {
      return JSON.parse(await this.runtime.files.readText(this.path)) as Record<string, AlertRecord>;
    } catch {
      return {};
    }
  }

  async save(records: Record<string, AlertRecord>): Promise<void> {
    if (this.readOnly) return;
    await this.runtime.files.mkdir(this.stateDir, 0o750);
    await this.runtime.files.writeAtomic(this.path, `${JSON.stringify(records, null, 2)}\n`, 0o640);
  }
}

export class KvAlertStore implements AlertStore {
  constructor(private readonly kv: KV) {}

  async load(): Promise<Record<string, AlertRecord>> {
    const out: Record<string, AlertRecord> = {};
    for (const key of await listKeys(this.kv)) {
      const entry = await this.kv.get(key);
      if (entry?.operation === "PUT") {
        const rec = entry.json<AlertRecord>();
        out[rec.key] = rec;
      }
    }
    return out;
  }

  async save(records: Record<string, AlertRecord>, changedKeys: string[]): Promise<void> {
    for (const changedKey of changedKeys) {
      const rec = records[changedKey];
      const key = encodeToken(changedKey);
      if (rec) await this.kv.put(key, JSON.stringify(rec));
      else await this.kv.delete(key);
    }
  }
}
