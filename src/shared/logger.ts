/**
 * pino, JSON to stdout (and a log file when asked), with every known secret scrubbed from every
 * line just before it is written: the registry catches secrets that key-based redaction cannot
 * (a token inside a URL or a library's error message).
 */
import pino, { type Logger } from "pino";
import { redact } from "./redact.ts";

export type { Logger };

export interface LoggerOptions {
  level: string;
  write: (line: string) => void;
  file?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const stdout = { write: (line: string) => options.write(redact(line)) };
  const streams: pino.StreamEntry[] = [{ stream: stdout, level: options.level as pino.Level }];
  if (options.file) {
    const dest = pino.destination({ dest: options.file, sync: true, mkdir: true });
    streams.push({ stream: { write: (line: string) => dest.write(redact(line)) }, level: options.level as pino.Level });
  }
  return pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Belt and braces for objects logged whole.
      redact: { paths: ["token", "*.token", "password", "*.password", "authorization", "*.authorization"], censor: "[REDACTED]" },
    },
    pino.multistream(streams),
  );
}

const children = new WeakMap<Logger, Map<string, Logger>>();
const MAX_CHILDREN = 4096;

/**
 * The child logger with these bindings, made once per parent: a pass asks for the same few (one
 * per runner, per step) every time, and a pino child serializes its bindings when made.
 */
export function childLogger(log: Logger, bindings: Record<string, string>): Logger {
  let made = children.get(log);
  if (!made) children.set(log, (made = new Map()));
  const key = JSON.stringify(bindings);
  let child = made.get(key);
  if (!child) {
    if (made.size >= MAX_CHILDREN) made.clear();
    child = log.child(bindings);
    made.set(key, child);
  }
  return child;
}
