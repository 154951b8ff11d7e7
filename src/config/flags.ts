/** The command line's options (SPEC 3), shared by the CLI parser and the config loader. */
export interface CliFlags {
  config?: string;
  org?: string;
  repo?: string;
  enterprise?: string;
  name?: string;
  url?: string;
  runnerDir?: string;
  threshold?: string;
  interval?: string;
  maxRetries?: string;
  retryBackoff?: string;
  logFile?: string;
  metricsFile?: string;
  stateDir?: string;
  splay?: string;
  logLevel?: string;
  listen?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** Flag name → environment variable (flag beats env beats file beats default). */
export const FLAG_ENV: Partial<Record<keyof CliFlags, string>> = {
  org: "RUNNER_ORG",
  repo: "RUNNER_REPO",
  enterprise: "RUNNER_ENTERPRISE",
  name: "RUNNER_NAME",
  url: "RUNNER_URL",
  runnerDir: "RUNNER_DIR",
  threshold: "REFRESH_THRESHOLD",
  interval: "CHECK_INTERVAL",
  maxRetries: "MAX_RETRY_ATTEMPTS",
  retryBackoff: "RETRY_BACKOFF_SECONDS",
  logFile: "LOG_FILE",
  metricsFile: "METRICS_FILE",
  stateDir: "STATE_DIR",
  logLevel: "LOG_LEVEL",
};

/** `runnerDir` → `--runner-dir`. */
export function flagName(key: keyof CliFlags): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
