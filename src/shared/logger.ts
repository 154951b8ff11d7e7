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
