// The dashboard page for a large fleet: server-side render time of `/` (the whole response through
// the hono app, filters and all) for 10,000 runners against 100, median of several runs after a
// warm-up. The page shows one page of runners (200) and counts all of them, so render time should
// grow with the fleet only through the counting and sorting.
import process from "node:process";
import { createCollectorApp } from "../src/http/collector-app.ts";
import type { CollectorView } from "../src/collector/types.ts";
import { History } from "../src/collector/history.ts";
import { fixtureFleet } from "../test/helpers/fleet-fixture.ts";
import type { Part } from "./report.ts";

export interface DashboardBenchResult {
  runs: number;
  /** Median milliseconds per page, by fleet size. */
  small: { runners: number; ms: number; bytes: number };
  large: { runners: number; ms: number; bytes: number };
  filteredMs: number;
}

async function measure(runners: number, path: string, runs: number): Promise<{ ms: number; bytes: number }> {
  const now = Date.now();
  const fleet = fixtureFleet(runners, now);
  const history = new History(() => now);
  const view: CollectorView = {
    runners: () => fleet,
    runner: (h, r) => fleet.find((x) => x.host === h && x.runner === r),
    events: async () => [],
    recentEvents: () => [],
    alerts: () => [],
    eventCounts: () => new Map(),
    health: () => ({ ok: true, reason: null }),
    history: () => history,
  };
  const app = createCollectorApp(view, { version: "bench", now: () => now });
  let bytes = 0;
  for (let i = 0; i < 3; i++) bytes = (await (await app.request(path)).text()).length;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await (await app.request(path)).text();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], bytes };
}

export async function benchDashboard(runs = 15): Promise<DashboardBenchResult> {
  const small = await measure(100, "/", runs);
  const large = await measure(10_000, "/", runs);
  const filtered = await measure(10_000, "/?status=failing,stale&scope=org:acme&q=runner", runs);
  return { runs, small: { runners: 100, ...small }, large: { runners: 10_000, ...large }, filteredMs: filtered.ms };
}

export function dashboardPart(r: DashboardBenchResult): Part {
  const ms = (n: number) => (n < 10 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`);
  return {
    rows: [
      { area: "9", figure: "dashboard: render `/` for 10,000 runners (median)", value: ms(r.large.ms), baseline: `100 runners: ${ms(r.small.ms)}`, ratio: `${(r.large.ms / r.small.ms).toFixed(1)}×`, target: "< 300 ms", met: r.large.ms < 300 },
    ],
    section: [
      "## 9. Dashboard",
      "",
      `Median of ${r.runs} renders of \`/\` through the collector's hono app (after 3 warm-ups), a synthetic fleet with every status.`,
      "",
      "| fleet | render | page size |",
      "|---|---|---|",
      `| 100 runners | ${ms(r.small.ms)} | ${(r.small.bytes / 1024).toFixed(0)} KiB |`,
      `| 10,000 runners | ${ms(r.large.ms)} | ${(r.large.bytes / 1024).toFixed(0)} KiB |`,
      `| 10,000 runners, filtered (\`status=failing,stale&scope=org:acme&q=runner\`) | ${ms(r.filteredMs)} | |`,
      "",
      "The page shows one page of runners (200) and counts the whole fleet, so the larger fleet costs the counting, filtering and sorting.",
      "",
    ],
  };
}

// `npx tsx bench/dashboard.ts` prints the figures on their own.
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchDashboard();
  console.log(JSON.stringify(r, null, 1));
}
