/** `HOST:PORT` (or `[v6]:PORT`) of a listen option, for the agent's and the collector's HTTP servers. */
import { ConfigError } from "../shared/errors.ts";

export function splitListen(listen: string, from: string): { hostname: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${from}: "${listen}" is not HOST:PORT (e.g. 127.0.0.1:9470)`);
  return { hostname: m[1] || "0.0.0.0", port };
}
