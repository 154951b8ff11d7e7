/**
 * Named errors. Each carries the exit code the CLI maps it to, keeps `cause`, and has a message
 * that names the file, field or flag and says what to do. Messages never contain secrets:
 * everything that formats an error goes through the redactor before it is printed or logged.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 64,
  lockTimeout: 75,
  config: 78,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class RtrError extends Error {
  readonly exitCode: ExitCodeValue;
  constructor(message: string, exitCode: ExitCodeValue, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RtrError";
    this.exitCode = exitCode;
  }
}

/** A flag or command the CLI does not understand (exit 64). */
export class UsageError extends RtrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.usage, options);
    this.name = "UsageError";
  }
}

/** A bad config file, value, credential setup or state dir (exit 78). */
export class ConfigError extends RtrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.config, options);
    this.name = "ConfigError";
  }
}

/** Another instance held a runner's lock past lockTimeout (exit 75). */
export class LockTimeoutError extends RtrError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.lockTimeout, options);
    this.name = "LockTimeoutError";
  }
}

/** A GitHub call failed after the retry policy gave up (or was not retryable). */
export class GitHubError extends RtrError {
  readonly status: number | undefined;
  readonly endpoint: string;
  readonly retryable: boolean;
  constructor(
    message: string,
    details: { status?: number; endpoint: string; retryable: boolean },
    options?: { cause?: unknown },
  ) {
    super(message, ExitCode.failed, options);
    this.name = "GitHubError";
    this.status = details.status;
    this.endpoint = details.endpoint;
    this.retryable = details.retryable;
  }
}

/** A registration step failed; `step` names which (SPEC 5, event runner.registration_failed). */
export class RegistrationError extends RtrError {
  readonly step: string;
  readonly exitStatus: number | null;
  constructor(message: string, step: string, options?: { cause?: unknown; exitStatus?: number | null }) {
    super(message, ExitCode.failed, options);
    this.name = "RegistrationError";
    this.step = step;
    this.exitStatus = options?.exitStatus ?? null;
  }
}

/** The pass was asked to stop (SIGTERM) at a point where stopping is safe. */
export class AbortedError extends RtrError {
  constructor(message = "stopped by signal", options?: { cause?: unknown }) {
    super(message, ExitCode.ok, options);
    this.name = "AbortedError";
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
