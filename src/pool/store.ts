/**
 * Every runner a pool created, remembered in the state dir (SPEC 14): after a crash or a reboot
 * the agent deletes at GitHub the ones whose process is gone, so no offline ghost stays behind.
 */
import { join } from "node:path";
import type { Runtime } from "../runtime/types.ts";

export interface RememberedRunner {
  id: number;
  name: string;
  slotDir: string;
  /** run.sh's pid (its process group), when it was started. */
  pid: number | null;
  createdAt: number;
}

export class PoolStore {
  constructor(
    private readonly runtime: Runtime,
    private readonly stateDir: string,
  ) {}

  private path(pool: string): string {
    return join(this.stateDir, "pools", `${pool}.json`);
  }

  async load(pool: string): Promise<RememberedRunner[]> {
    try {
      const doc = JSON.parse(await this.runtime.files.readText(this.path(pool))) as { runners?: RememberedRunner[] };
      return Array.isArray(doc.runners) ? doc.runners.filter((r) => Number.isInteger(r.id) && typeof r.slotDir === "string") : [];
    } catch {
      return [];
    }
  }

  async save(pool: string, runners: RememberedRunner[]): Promise<void> {
    await this.runtime.files.mkdir(join(this.stateDir, "pools"), 0o700);
    await this.runtime.files.writeAtomic(this.path(pool), `${JSON.stringify({ runners })}\n`, 0o600);
  }

  drainFile(pool: string): string {
    return join(this.stateDir, "pools", `${pool}.drain`);
  }
}
