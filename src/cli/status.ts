/** `status`: the metrics file as a table (or the document itself with --json). */
import type { Runtime } from "../runtime/types.ts";
import { formatDuration } from "../shared/duration.ts";
import type { MetricsDocument } from "../shared/types.ts";
import { scopeKey } from "../shared/scope.ts";
import { RtrError, ExitCode } from "../shared/errors.ts";
import { ansiStatus } from "../shared/status-look.ts";

export async function readMetricsFile(runtime: Runtime, path: string): Promise<MetricsDocument> {
  let text: string;
  try {
    text = await runtime.files.readText(path);
  } catch {
    throw new RtrError(`no metrics file at ${path}: run "runner-token-refresh check" first (or pass --metrics-file)`, ExitCode.failed);
  }
  try {
    return JSON.parse(text) as MetricsDocument;
  } catch {
    throw new RtrError(`${path} is not valid JSON: it is rewritten by the next check`, ExitCode.failed);
  }
}

function yesNo(v: boolean | null): string {
  return v === null ? "?" : v ? "yes" : "no";
}

/**
 * `colour` paints the STATUS column in the dashboard's status colours (src/shared/status-look.ts),
 * after padding, so the escape codes never shift a column.
 */
export function renderStatusTable(doc: MetricsDocument, nowSeconds: number, options: { colour?: boolean } = {}): string {
  const header = ["RUNNER", "SCOPE", "STATUS", "REGISTERED", "SERVICE", "ONLINE", "BUSY", "TOKEN LEFT", "FAILURES", "LAST ERROR"];
  const rows = doc.runners.map((r) => [
    r.name,
    scopeKey(r.scope),
    r.status,
    r.registered ? `yes (${r.agent_id})` : "no",
    r.service_active === null ? "-" : r.service_active ? "active" : "inactive",
    yesNo(r.online),
    yesNo(r.busy),
    r.token_expires_at === null ? "none" : r.token_expires_at <= nowSeconds ? "expired" : formatDuration(r.token_expires_at - nowSeconds),
    String(r.consecutive_failures),
    (r.last_error ?? "").slice(0, 80),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[], paint = false) => cells.map((c, i) => (paint && i === 2 && options.colour ? ansiStatus(c, c.padEnd(widths[i])) : c.padEnd(widths[i]))).join("  ").trimEnd();
  const age = nowSeconds - doc.last_check_timestamp;
  const out = [`host ${doc.host}, last check ${formatDuration(age)} ago`, line(header), ...rows.map((r) => line(r, true))];
  if (doc.pools?.length) out.push("", ...renderPools(doc.pools, nowSeconds));
  return out.join("\n") + "\n";
}

/** Pools beside runners (SPEC 14): size, idle, busy, starting, jobs, failures. */
function renderPools(pools: NonNullable<MetricsDocument["pools"]>, nowSeconds: number): string[] {
  const header = ["POOL", "SCOPE", "SIZE", "IDLE", "BUSY", "STARTING", "JOBS", "FAILURES", "STATE"];
  const rows = pools.map((p) => [
    p.name,
    scopeKey(p.scope),
    String(p.size),
    String(p.runners.idle),
    String(p.runners.busy),
    String(p.runners.starting),
    String(p.jobs_total),
    String(p.consecutive_failures),
    p.draining ? "draining" : p.short_since !== null ? `short for ${formatDuration(Math.max(0, nowSeconds - p.short_since))}` : "ok",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}
