/**
 * One sentence per event type (SPEC 8), for people: the demo's terminal and the collector's pages
 * read the same words. Every value comes from an agent, so nothing here trusts a field's type: a
 * missing or odd field reads as "?" rather than throwing. An unknown type returns null and the
 * caller shows it raw.
 */
import { scopeKey, type Scope } from "./scope.ts";
import type { Envelope } from "./types.ts";

type Data = Record<string, unknown>;

const MAX_TEXT = 160;

function text(v: unknown, max = MAX_TEXT): string {
  const s = typeof v === "string" ? v : v === undefined || v === null ? "?" : typeof v === "object" ? JSON.stringify(v) : String(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** `10:04:05 UTC` for an ISO time, or the value as it came. */
function clockTime(v: unknown): string {
  const t = typeof v === "string" ? Date.parse(v) : NaN;
  return Number.isFinite(t) ? `${new Date(t).toISOString().slice(11, 19)} UTC` : text(v);
}

/** A coarse duration (45s, 52m, 3h 5m, 2d 4h); the pages, `status` and these sentences share it. */
export function humanDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) {
    const m = Math.floor((s % 3600) / 60);
    return `${Math.floor(s / 3600)}h${m ? ` ${m}m` : ""}`;
  }
  const h = Math.floor((s % 86400) / 3600);
  return `${Math.floor(s / 86400)}d${h ? ` ${h}h` : ""}`;
}

const REASONS: Record<string, string> = {
  new: "first registration",
  not_configured: "first registration: it was not configured yet",
  local_files_corrupt: "its local files were corrupt",
  deleted_on_github: "GitHub no longer had it",
  on_refresh: "re-registration on every refresh is configured",
  offline_grace: "it stayed offline past its grace period",
};

/** Why a runner was (re-)registered, in words; unknown reasons as they came. */
export function registrationReason(reason: unknown): string {
  return typeof reason === "string" ? (REASONS[reason] ?? reason.replace(/_/g, " ")) : "reason not given";
}

function runnerName(e: Envelope): string {
  return e.runner ?? "the host";
}

function scopeText(e: Envelope): string {
  return e.scope ? scopeKey(e.scope as Scope) : "its scope";
}

const SENTENCES: Record<string, (e: Envelope, d: Data) => string> = {
  "token.refreshed": (e, d) => `Registration token for ${scopeText(e)} refreshed, valid until ${clockTime(d.expires_at)}.`,
  "token.refresh_failed": (e, d) => `Token refresh for ${scopeText(e)} failed (${text(d.consecutive_failures)} in a row): ${text(d.error)}.`,
  "runner.registered": (e, d) => `${runnerName(e)} registered as runner id ${text(d.agent_id)} (${registrationReason(d.reason)}).`,
  "runner.registration_failed": (e, d) => `${runnerName(e)} could not register at step ${text(d.step)} (${text(d.consecutive_failures)} in a row): ${text(d.error)}.`,
  "runner.deferred_busy": (e, d) => `${runnerName(e)} is running a job, so its re-registration waits (${registrationReason(d.reason)}).`,
  "runner.offline": (e, d) => `${runnerName(e)} is offline at GitHub since ${clockTime(d.since)}.`,
  "runner.name_conflict": (e, d) => `Another runner (id ${text(d.other_id)}) already uses the name ${runnerName(e)}; left alone.`,
  "runner.service_started": (e) => `${runnerName(e)}: its service was down and was started.`,
  "runner.diag": (e, d) => `${runnerName(e)} diagnostics: ${text(d.finding)}.`,
  "runner.labels_repaired": (e, d) => `${runnerName(e)}: labels repaired at GitHub (${text(d.before)} → ${text(d.after)}).`,
  "runner.group_repaired": (e, d) => `${runnerName(e)}: runner group repaired (${text(d.before)} → ${text(d.after)}).`,
  "runner.version_stale": (e, d) => `${runnerName(e)} runs an old runner version ${text(d.version)}.`,
  "runner.version_deprecated": (e, d) => `${runnerName(e)} runs deprecated runner version ${text(d.version)} (${text(d.verdict)}).`,
  "runner.session_repaired": (e, d) => `${runnerName(e)}: its GitHub session was repaired after ${text(d.tries)} tries.`,
  "runner.session_conflict": (e, d) => `${runnerName(e)} is online elsewhere (${text(d.hosts)}): this host's copy waits.`,
  "pool.runner_started": (e, d) => `Pool ${text(d.pool)} started ${runnerName(e)} (runner id ${text(d.runner_id)}).`,
  "pool.runner_exited": (e, d) =>
    `Pool ${text(d.pool)}: ${runnerName(e)} exited ${d.job === true ? "after its job" : "without a job"} (exit code ${text(d.exit_code)}, alive ${typeof d.seconds_alive === "number" ? humanDuration(d.seconds_alive) : "?"}).`,
  "pool.launch_failed": (_e, d) => `Pool ${text(d.pool)} could not launch a runner (${text(d.consecutive_failures)} in a row, retry in ${text(d.retry_in_seconds)}s): ${text(d.error)}.`,
  "pool.drained": (_e, d) => `Pool ${text(d.pool)} is draining: busy runners finish, none start.`,
  "pool.resumed": (_e, d) => `Pool ${text(d.pool)} resumed.`,
  "clock.skew": (e, d) => `${e.host}'s clock is off by ${text(d.skew_seconds)}s from GitHub's.`,
  "credentials.expiring": (e, d) => `${e.host}'s GitHub credentials expire at ${clockTime(d.expires_at)}.`,
  "agent.started": (e, d) => `Agent on ${e.host} started: ${text(d.runners)} runner(s), a pass every ${text(d.interval)}s.`,
  "agent.stopped": (e, d) => `Agent on ${e.host} stopped (${text(d.reason)}).`,
  "broker.refused": (e, d) => `The token broker refused ${e.host} (${text(d.reason)}): ${text(d.error)}.`,
};

/** The event as one sentence, or null for a type this version does not know (show it raw). */
export function eventSentence(e: Envelope): string | null {
  const render = Object.hasOwn(SENTENCES, e.type) ? SENTENCES[e.type] : undefined;
  if (!render) return null;
  const data = e.data && typeof e.data === "object" ? (e.data as Data) : {};
  try {
    // An error text that ends its own sentence gets no second full stop.
    return render(e, data).replace(/([.!?…])\.$/, "$1");
  } catch {
    return null;
  }
}

/** Types that mean trouble (shown in red). */
export function isTroubleEvent(type: string): boolean {
  return /failed|offline|skew|conflict|expiring|refused|deprecated|stale/.test(type);
}
