import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { watchForStall, type StreamTail } from "./stall-watch.ts";

/** Runs the watchdog against a scripted stream and feed, one check per step; the step it stalled at, or null. */
async function run(steps: { tail: StreamTail | "no leader"; delivered: number }[]): Promise<number | null> {
  let step = -1;
  let stalledAt: number | null = null;
  const done = new AbortController();
  await new Promise<void>((resolve) => {
    watchForStall({
      everyMs: 1,
      signal: done.signal,
      tail: async () => {
        step++;
        if (step >= steps.length) {
          done.abort();
          resolve();
          throw new Error("end");
        }
        const t = steps[step].tail;
        if (t === "no leader") throw new Error("timeout");
        return t;
      },
      delivered: () => steps[Math.min(step, steps.length - 1)].delivered,
      onStall: () => {
        stalledAt = step;
        resolve();
      },
    });
  });
  return stalledAt;
}

const at = (lastSeq: number, messages = lastSeq) => ({ lastSeq, messages });

test("stall watch - a feed that delivers nothing for a whole check while its stream moved on is ended", async () => {
  assert.equal(await run([{ tail: at(5), delivered: 5 }, { tail: at(6), delivered: 5 }, { tail: at(6), delivered: 5 }]), 2);
  // Through an election: checks that get no answer are skipped, then the stall is seen.
  assert.equal(await run([{ tail: at(5), delivered: 5 }, { tail: "no leader", delivered: 5 }, { tail: at(7), delivered: 5 }, { tail: "no leader", delivered: 5 }, { tail: at(8), delivered: 5 }]), 4);
});

test("stall watch - a feed that keeps up, catches up or is still replaying is left alone; so is an emptied stream", async () => {
  assert.equal(await run([{ tail: at(5), delivered: 5 }, { tail: at(9), delivered: 9 }, { tail: at(9), delivered: 9 }, { tail: at(9), delivered: 9 }]), null);
  // Behind at every check, but delivering: a replay of a large bucket or a busy stream.
  assert.equal(await run([{ tail: at(1000), delivered: 10 }, { tail: at(1200), delivered: 400 }, { tail: at(1300), delivered: 900 }, { tail: at(1300), delivered: 1300 }]), null);
  // Purged, or every message aged out: a last sequence with nothing behind it to deliver.
  assert.equal(await run([{ tail: at(50, 0), delivered: 0 }, { tail: at(50, 0), delivered: 0 }, { tail: at(50, 0), delivered: 0 }]), null);
});
