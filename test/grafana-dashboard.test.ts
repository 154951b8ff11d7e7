// The Grafana dashboard, the collector's pages and the `status` command show the same facts the
// same way: every PromQL expression names only metrics the agent or collector exports (read from
// the registries' source, so a renamed metric fails here), pools have panels, and runner statuses
// carry the names and colours of src/shared/status-look.ts everywhere.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "./helpers/agent.ts";
import { STATUS_ANSI, STATUS_COLOURS, ansiStatus } from "../src/shared/status-look.ts";
import { FLEET_STATUSES } from "../src/http/collector-metrics.ts";
import { renderStatusTable } from "../src/cli/status.ts";
import type { MetricsDocument } from "../src/shared/types.ts";

/** Metric names registered in src/http/*metrics*.ts: every `runner_…` / `rtr_…` string literal there. */
async function exportedMetrics(): Promise<Set<string>> {
  const dir = join(REPO_ROOT, "src/http");
  const files = (await readdir(dir)).filter((f) => /metrics.*\.ts$/.test(f) && !f.endsWith(".test.ts"));
  const names = new Set<string>();
  for (const f of files) for (const m of (await readFile(join(dir, f), "utf8")).matchAll(/["'`]((?:runner|rtr)_[a-z0-9_]+)["'`]/g)) names.add(m[1]);
  return names;
}

function expressions(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) expressions(v, out);
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if ((k === "expr" || k === "query") && typeof v === "string") out.push(v);
      else expressions(v, out);
    }
  }
  return out;
}

const PROMQL_WORDS = new Set(["sum", "max", "min", "count", "by", "without", "rate", "increase", "time", "vector", "sort", "histogram_quantile", "label_values", "query_result", "or", "and", "unless", "on", "le"]);

test("grafana dashboard - every PromQL expression names only metrics the agent or collector exports", async () => {
  const exported = await exportedMetrics();
  assert.ok(exported.has("runner_token_fleet_runners") && exported.has("rtr_pool_size"), `registries read: ${[...exported].slice(0, 5)}`);
  const dashboard = JSON.parse(await readFile(join(REPO_ROOT, "docs/grafana-dashboard.json"), "utf8")) as { panels: unknown[]; templating: unknown };
  const exprs = expressions([dashboard.panels, dashboard.templating]);
  for (const e of exprs) {
    // Identifiers outside label matchers and strings, that are not PromQL's own words or labels after by/on.
    // label_values(metric, label): the second argument is a label, not a metric.
    const bare = e.replace(/label_values\(([^,()]+),\s*\w+\)/g, "$1").replace(/\{[^}]*\}/g, "").replace(/"[^"]*"/g, "").replace(/\b(by|without|on)\s*\([^)]*\)/g, "").replace(/\[[^\]]*\]/g, "");
    const names = (bare.match(/\b[a-zA-Z_][a-zA-Z0-9_]*\b/g) ?? []).filter((n) => !PROMQL_WORDS.has(n));
    assert.ok(names.length > 0, `no metric in ${e}`);
    for (const n of names) {
      const base = n.replace(/_(bucket|sum|count)$/, "");
      assert.ok(exported.has(n) || exported.has(base), `${n} (in ${e}) is exported by a registry in src/http/*metrics*.ts`);
    }
  }
  for (const m of ["rtr_pool_size", "rtr_pool_runners", "rtr_pool_jobs_total", "rtr_pool_launch_failures_total"]) {
    assert.ok(exprs.some((e) => e.includes(m)), `a pool panel shows ${m}`);
  }
});

test("grafana dashboard - runner statuses have the dashboard's names and colours, and the status command's too", async () => {
  const dashboard = JSON.parse(await readFile(join(REPO_ROOT, "docs/grafana-dashboard.json"), "utf8")) as { panels: { title: string; fieldConfig?: { overrides: { matcher: { options: string }; properties: { value: { fixedColor: string } }[] }[] } }[] };
  const panel = dashboard.panels.find((p) => p.title === "Runners by status")!;
  const colours = Object.fromEntries(panel.fieldConfig!.overrides.map((o) => [o.matcher.options, o.properties[0].value.fixedColor]));
  assert.deepEqual(colours, STATUS_COLOURS);
  assert.deepEqual(Object.keys(STATUS_COLOURS).sort(), [...FLEET_STATUSES].sort(), "every fleet status has one colour");
  assert.deepEqual(Object.keys(STATUS_ANSI).sort(), [...FLEET_STATUSES].sort());
  // The status command colours the same names, only on a terminal.
  const doc = { host: "h", last_check_timestamp: 100, runners: [{ name: "r", scope: { org: "a" }, status: "failing", registered: true, agent_id: 1, service_active: null, online: null, busy: null, token_expires_at: null, consecutive_failures: 3, last_error: null }] } as unknown as MetricsDocument;
  assert.ok(renderStatusTable(doc, 100, { colour: true }).includes(ansiStatus("failing")));
  assert.ok(!renderStatusTable(doc, 100).includes("\u001b["), "plain without a terminal");
});
