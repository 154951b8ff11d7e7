/** Named errors of runner hygiene; each message names the setting or runner and what to do. */
import { RtrError, ExitCode } from "../shared/errors.ts";

/** runners[].group names a group the org does not have. */
export class RunnerGroupNotFoundError extends RtrError {
  readonly group: string;
  constructor(group: string, org: string, options?: { cause?: unknown }) {
    super(`runner group "${group}" does not exist in org ${org}: create it (Settings → Actions → Runner groups) or fix runners[].group`, ExitCode.failed, options);
    this.name = "RunnerGroupNotFoundError";
    this.group = group;
  }
}

/** GitHub's latest-release answer for actions/runner had no usable tag or date. */
export class ReleaseLookupError extends RtrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.failed, options);
    this.name = "ReleaseLookupError";
  }
}
