/**
 * The environment of a program run as a runner's user: a fixed system PATH, the user's own HOME,
 * USER and LOGNAME, locale and time zone, proxy settings (config.sh must reach GitHub through the
 * same proxy as the agent), and the one secret it needs. Nothing else of the agent's environment
 * (credentials, NATS settings, variables a secret came from) ever reaches it.
 */
import type { Runtime } from "../runtime/types.ts";
import { SYSTEM_PATH, type SystemUser } from "./users.ts";

const PASSED_THROUGH = ["LANG", "LC_ALL", "TZ", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"];

export function runnerEnv(runtime: Runtime, user: SystemUser, secret: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: SYSTEM_PATH, HOME: user.home, USER: user.name, LOGNAME: user.name };
  for (const name of PASSED_THROUGH) {
    const value = runtime.env[name];
    if (value) env[name] = value;
  }
  return { ...env, ...secret };
}
