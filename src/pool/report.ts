/** What a pool reports (metrics file `pools[]`, /metrics, status, health), and small helpers. */
import type { ProcessInfo } from "../runtime/types.ts";
import type { Scope } from "../shared/scope.ts";

export type SlotState = "starting" | "idle" | "busy" | "stopping";

export interface PoolReport {
  name: string;
  scope: Scope;
  size: number;
  draining: boolean;
  runners: { idle: number; busy: number; starting: number };
  jobs_total: number;
  launch_failures_total: number;
  idle_expired_total: number;
  ghosts_replaced_total: number;
  consecutive_failures: number;
  /** Since when fewer runners than `size` were alive (epoch seconds), null when full. */
  short_since: number | null;
  slots: { name: string; runner_id: number | null; state: SlotState }[];
}

/** Runner names are `<pool>-<host>-<slot>-<8 hex>`: unique by construction, within GitHub's 64. */
function safeHost(host: string): string {
  return host.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
}

/** Whether a runner name is one `slotName` makes for this pool and host (the JIT broker checks it). */
export function nameBelongsTo(name: string, pool: string, host: string): boolean {
  const m = new RegExp(`^${pool}-(.+)-(\\d+)-[0-9a-f]{8}$`).exec(name);
  return m !== null && m[1].length > 0 && safeHost(host).startsWith(m[1]);
}

export function slotName(pool: string, host: string, slot: number): string {
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, "0")).join("");
  const safe = safeHost(host);
  const room = 64 - pool.length - String(slot).length - hex.length - 3;
  return `${pool}-${safe.slice(0, Math.max(1, room))}-${slot}-${hex}`;
}

/** The slot dirs among `dirs` where a Runner.Worker (a job) runs. */
export function jobsInDirs(procs: ProcessInfo[], dirs: string[]): Set<string> {
  const out = new Set<string>();
  for (const p of procs) {
    const isWorker = p.cmdline.some((arg) => /(^|\/)Runner\.Worker(\.dll)?$/.test(arg)) || (p.exe ?? "").endsWith("/Runner.Worker");
    if (!isWorker) continue;
    for (const dir of dirs) {
      const prefix = `${dir}/`;
      if ([p.exe, p.cwd, ...p.cmdline].some((x) => x && (x === dir || x.startsWith(prefix)))) out.add(dir);
    }
  }
  return out;
}
