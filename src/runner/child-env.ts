/**
 * Environment for every program the agent starts (config.sh, svc.sh, systemctl, custom service
 * commands): the agent's own credentials are removed, so a runner script, its logs or
 * /proc/<pid>/environ never see the PAT or NATS secrets.
 */
import { secretEnvNames } from "../config/secrets.ts";

export const AGENT_SECRET_ENV = ["GITHUB_TOKEN", "GITHUB_APP_PRIVATE_KEY_FILE", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS_FILE"] as const;

export function childEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  // Plus every variable a configured secret came from ({ env: SLACK_WEBHOOK_URL }, ...).
  for (const name of [...AGENT_SECRET_ENV, ...secretEnvNames]) env[name] = undefined;
  return { ...env, ...extra };
}
