/**
 * "Runner version vX is deprecated and cannot receive messages" in `_diag`: real when GitHub
 * stopped serving the version (a runner must take each release within 30 days), false on any 403
 * from the broker host (actions/runner#3381, #4613: outages where the current release was
 * "deprecated"). The log cannot tell them apart on its own: a false one reads "Error: Forbidden
 * Runner version …" after "GET request to https://broker.actions.githubusercontent.com/… failed.
 * HTTP Status: Forbidden", and so may a real one from the broker. The release data can: a version
 * that is current, or whose successor is under 30 days old, is not deprecated.
 */
import { compareVersions } from "./runner-version.ts";

export interface DeprecationNotice {
  /** The version the message names. */
  version: string;
  /** The message came with a 403 from the broker host (the raw "Forbidden" reason, or a broker URL answered Forbidden). */
  brokerForbidden: boolean;
}

const NOTICE = /Runner version v?(\d+\.\d+\.\d+) is deprecated and cannot receive messages/g;
const BROKER_403 = /broker\.actions\.githubusercontent\.com\S*\s+failed\.\s+HTTP Status: Forbidden|Error: Forbidden Runner version/i;

/** The last deprecation notice in the log text, or null. */
export function findDeprecation(text: string): DeprecationNotice | null {
  let last: RegExpExecArray | null = null;
  for (const m of text.matchAll(NOTICE)) last = m as RegExpExecArray;
  if (!last) return null;
  // The lines just before it: the request that failed, and the error line itself.
  const context = text.slice(Math.max(0, last.index - 4096), last.index + last[0].length);
  return { version: last[1], brokerForbidden: BROKER_403.test(context) };
}

export type Verdict = { kind: "genuine" | "broker_403"; reason: string };

/** Enforced on github.com: a runner must take each release within 30 days (FACTS). */
export const DEPRECATION_DAYS = 30;

/**
 * `ageDays`: days since the release after the named version came out (0 when it is current),
 * null when the release data is not known.
 */
export function judgeDeprecation(notice: DeprecationNotice, latest: string | null, ageDays: number | null): Verdict {
  if (latest !== null && compareVersions(notice.version, latest) >= 0) {
    return { kind: "broker_403", reason: `v${notice.version} is the latest release: a 403 from the broker host (actions/runner#3381), not a deprecation; the runner retries or needs a restart once GitHub recovers` };
  }
  if (ageDays !== null && ageDays < DEPRECATION_DAYS) {
    return { kind: "broker_403", reason: `v${notice.version}'s successor is only ${ageDays} days old (GitHub allows ${DEPRECATION_DAYS}): a 403 from the broker host (actions/runner#3381), not a deprecation` };
  }
  if (ageDays !== null) {
    return { kind: "genuine", reason: `v${notice.version} is ${ageDays} days behind ${latest ? `v${latest}` : "the newest release"} (GitHub allows ${DEPRECATION_DAYS}): update the runner (or drop --disableupdate)` };
  }
  // No release data: the log is all there is.
  return notice.brokerForbidden
    ? { kind: "broker_403", reason: `the message came with a 403 from the broker host (actions/runner#3381), most likely not a deprecation; no release data to confirm` }
    : { kind: "genuine", reason: `no release data to confirm: check v${notice.version} against https://github.com/actions/runner/releases` };
}
