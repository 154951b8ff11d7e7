/**
 * The collector's per-runner series (SPEC 11: the agent's, with `host` and `runner` labels) and
 * `runner_token_fleet_runners{status}`, written as Prometheus text by hand and streamed.
 *
 * At 50,000 runners these are ~450,000 samples and ~40 MiB of text. Through prom-client a scrape
 * cost 11–14 s and several times the text's size in label maps (every sample hashed and stored
 * in a gauge reset and refilled per scrape, then formatted). Here one pass over the fleet view
 * takes the snapshot (each runner's label text and status: the counts are done then), and the text
 * of each family is written from that snapshot as the client reads it, a chunk of CHUNK_BYTES at a
 * time: no sample objects, the whole text never held at once, and the collector's event loop gets
 * a turn between chunks. The view is read once per scrape, so every family of one scrape shows the
 * same runners, and a runner removed from KV is gone from the next scrape.
 */
import type { CollectorView, FleetRunner } from "../collector/types.ts";
import { scopeKey } from "../shared/scope.ts";
import { FLEET_STATUSES, fleetStatus } from "./collector-metrics.ts";

/** About 64 KiB per chunk: large enough that per-chunk costs vanish, small to hold. */
const CHUNK_BYTES = 64 * 1024;
/** Text gathered before it is encoded into the chunk. */
const ENCODE_CHARS = 1024;

/** One runner as a scrape's snapshot holds it: its label text, read once. */
interface Row {
  r: FleetRunner;
  /** `host="…",runner="…"`, escaped. */
  labels: string;
  /** `host="…",runner="…",scope="…"`, or null when the runner's scope cannot be read. */
  scoped: string | null;
}

interface Family {
  name: string;
  help: string;
  type: "gauge" | "counter";
  /** This runner's sample lines, each ending in a newline; "" for none. */
  lines(row: Row): string;
}

/** Label value escaping of the text format (backslash, newline, double quote), as prom-client does it. */
function escapeLabel(value: string): string {
  return /[\\\n"]/.test(value) ? value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"') : value;
}

/**
 * `text` made one flat string now: a label text is used in 8 to 10 lines, and a string built from
 * pieces (a rope) would be walked again each time a line is encoded. Reading a character is what
 * makes V8 flatten a string in place; this halved the time to write the text at 50,000 runners.
 */
function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}

/**
 * `name{labels} value\n`, or "" when the value is not known (null: e.g. no GitHub status yet, no
 * sample rather than a false 0) or not a finite number (a state that slipped past validation).
 */
function line(name: string, labels: string | null, value: unknown): string {
  if (labels === null || typeof value !== "number" || !Number.isFinite(value)) return "";
  return `${name}{${labels}} ${value}\n`;
}

/**
 * Timestamps are epoch seconds; agents write integers, but anything that arrives fractional is
 * floored so the text format never depends on how a float prints.
 */
function seconds(value: unknown): unknown {
  return typeof value === "number" ? Math.floor(value) : value;
}

function flag(value: unknown): number | null {
  return value === null || value === undefined ? null : value ? 1 : 0;
}

function gauge(name: string, help: string, scoped: boolean, value: (r: FleetRunner) => unknown): Family {
  return { name, help, type: "gauge", lines: (row) => line(name, scoped ? row.scoped : row.labels, value(row.r)) };
}

/** Every per-runner family, in the order of the text. */
const FAMILIES: Family[] = [
  gauge("runner_token_expiry_timestamp_seconds", "When the runner's scope registration token expires (epoch seconds).", true, (r) => seconds(r.state.token_expires_at)),
  gauge("runner_token_last_check_timestamp_seconds", "When the agent last checked this runner (epoch seconds, the agent's clock).", false, (r) => {
    // The state document's `time` is the agent's pass; fall back to the KV write time.
    const t = Date.parse(r.state.time);
    return seconds((Number.isFinite(t) ? t : r.updatedAt) / 1000);
  }),
  gauge("runner_token_last_refresh_timestamp_seconds", "When the runner's scope registration token was last refreshed (epoch seconds).", true, (r) => seconds(r.state.last_refresh_timestamp)),
  gauge("runner_token_consecutive_failures", "Consecutive failed passes for this runner.", false, (r) => r.state.consecutive_failures),
  gauge("runner_registered", "1 when the runner is registered.", false, (r) => (r.state.registered ? 1 : 0)),
  gauge("runner_online", "1 when GitHub reports the runner online (absent when unknown).", false, (r) => flag(r.state.online)),
  gauge("runner_busy", "1 when the runner is running a job (absent when unknown).", false, (r) => flag(r.state.busy)),
  {
    // The agent owns these counts (total_refreshes counts successful mints, failed_refreshes failed
    // ones) and we only mirror them. They are per scope on the agent: runners sharing a host and
    // scope repeat the same numbers.
    name: "runner_token_refreshes_total",
    help: "Registration token refreshes by outcome, as the runner's agent counted them for its scope.",
    type: "counter",
    lines: ({ r, scoped }) =>
      line("runner_token_refreshes_total", scoped && `${scoped},outcome="success"`, Math.max(0, r.state.total_refreshes)) +
      line("runner_token_refreshes_total", scoped && `${scoped},outcome="failure"`, Math.max(0, r.state.failed_refreshes)),
  },
];

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
}

/** The snapshot of one scrape: every runner's labels, and the counts by status. */
function snapshot(view: CollectorView): { rows: Row[]; counts: Map<string, number> } {
  const counts = new Map<string, number>(FLEET_STATUSES.map((s) => [s, 0]));
  const rows: Row[] = [];
  for (const r of view.runners()) {
    // A runner whose state cannot be read costs its own samples only, never the whole scrape.
    try {
      const s = fleetStatus(r);
      // Only known statuses become labels (validation guarantees it; this keeps the set bounded).
      if (counts.has(s)) counts.set(s, (counts.get(s) ?? 0) + 1);
      const labels = `host="${escapeLabel(r.host)}",runner="${escapeLabel(r.runner)}"`;
      let scoped: string | null = null;
      try {
        scoped = `${labels},scope="${escapeLabel(scopeKey(r.state.scope))}"`;
      } catch {
        // No scope label to give: the scoped series skip this runner.
      }
      rows.push({ r, labels: flat(labels), scoped: scoped === null ? null : flat(scoped) });
    } catch {
      // Its samples are missing; the documents that get this far were validated (validate.ts).
    }
  }
  return { rows, counts };
}

/**
 * Writes text as UTF-8 into chunks of CHUNK_BYTES, about a kilobyte at a time: encoding short
 * strings straight into the chunk costs half of building ~64 KiB strings and encoding those (their
 * flattening), and fewer, slightly longer strings a little less than one per line.
 */
class ChunkWriter {
  private readonly encoder = new TextEncoder();
  private buf = new Uint8Array(CHUNK_BYTES);
  private used = 0;
  private pending = "";

  /** Appends `text`; a full chunk when one filled up, else null. */
  write(text: string): Uint8Array | null {
    this.pending += text;
    return this.pending.length >= ENCODE_CHARS ? this.encode() : null;
  }

  /** The last chunks: everything written that is not in a chunk yet. */
  finish(): Uint8Array[] {
    const full = this.encode();
    const last = this.buf.subarray(0, this.used);
    return full ? [full, last] : [last];
  }

  private encode(): Uint8Array | null {
    const text = this.pending;
    this.pending = "";
    let full: Uint8Array | null = null;
    // A UTF-16 unit is at most 3 bytes of UTF-8: with that much room the text fits whole.
    if (this.used + text.length * 3 > this.buf.length) {
      if (this.used > 0) full = this.buf.subarray(0, this.used);
      this.buf = new Uint8Array(Math.max(CHUNK_BYTES, text.length * 3));
      this.used = 0;
    }
    this.used += this.encoder.encodeInto(text, this.buf.subarray(this.used)).written;
    return full;
  }
}

/** The text in chunks of about CHUNK_BYTES, each family's lines together, families apart by a blank line. */
function* chunks(rows: Row[], counts: Map<string, number>, tail: string): Generator<Uint8Array> {
  const out = new ChunkWriter();
  const write = (text: string): Uint8Array | null => out.write(text);
  for (const family of FAMILIES) {
    let full = write(header(family.name, family.help, family.type));
    if (full) yield full;
    for (const row of rows) {
      let text = "";
      try {
        text = family.lines(row);
      } catch {
        // This runner's sample of this family is missing (see snapshot).
      }
      if (text && (full = write(text))) yield full;
    }
    if ((full = write("\n"))) yield full;
  }
  let fleet = header("runner_token_fleet_runners", "Runners by status; a stale runner counts only as stale.", "gauge");
  for (const [status, n] of counts) fleet += `runner_token_fleet_runners{status="${status}"} ${n}\n`;
  for (const text of [fleet, `\n${tail}`]) {
    const full = write(text);
    if (full) yield full;
  }
  yield* out.finish();
}

/**
 * The whole /metrics body: the per-runner families and the fleet counts from one snapshot of the
 * view taken now, then `tail` (the registry's text of the bounded families, already rendered).
 */
export function collectorMetricsStream(view: CollectorView, tail: string): ReadableStream<Uint8Array> {
  const { rows, counts } = snapshot(view);
  const body = chunks(rows, counts, tail);
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = body.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel() {
      body.return(undefined);
    },
  });
}
