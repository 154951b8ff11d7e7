// The collector's evaluation timings, read from its source (they are not exported), so the report
// states what the measured code does and follows any change to it.
import { readFileSync } from "node:fs";

export interface CollectorTimers {
  /** EVALUATE_EVERY_MS: the periodic evaluation (time-based rules). */
  everyMs: number | null;
  /** STATE_EVALUATE_DELAY_MS: how long state changes are batched before an evaluation. */
  onStateChangeMs: number | null;
}

/** The collector's evaluation timings, read from its source so the report follows any change. */
export function collectorTimers(): CollectorTimers {
  const source = readFileSync(new URL("../../src/collector/collector.ts", import.meta.url), "utf8");
  const constant = (name: string) => {
    const m = new RegExp(`${name}\\s*=\\s*([\\d_]+)`).exec(source);
    return m ? Number(m[1].replace(/_/g, "")) : null;
  };
  return { everyMs: constant("EVALUATE_EVERY_MS"), onStateChangeMs: constant("STATE_EVALUATE_DELAY_MS") };
}
