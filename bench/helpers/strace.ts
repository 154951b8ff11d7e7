// System calls a process makes while attached (`strace -f -c`), when strace is installed: the
// evidence for where a pass's time goes outside JavaScript (file-system calls, forks, fsyncs).
import { existsSync, readFileSync } from "node:fs";
import { spawnChild } from "./proc.ts";

export interface SyscallCounts {
  [syscall: string]: number;
}

export function straceAvailable(): string | null {
  for (const p of ["/usr/bin/strace", "/bin/strace", "/usr/local/bin/strace"]) if (existsSync(p)) return p;
  return null;
}

/** Attaches to `pid` (all threads); `stop()` detaches and returns the calls by name. */
export function traceSyscalls(pid: number, outFile: string): { stop(): Promise<SyscallCounts> } | null {
  const strace = straceAvailable();
  if (!strace) return null;
  const child = spawnChild([strace, "-f", "-c", "-o", outFile, "-p", String(pid)]);
  return {
    async stop() {
      child.kill("SIGINT");
      await child.exited;
      const counts: SyscallCounts = {};
      for (const line of readFileSync(outFile, "utf8").split("\n")) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 5 || !/^\d/.test(cols[0]) || cols[cols.length - 1] === "total") continue;
        counts[cols[cols.length - 1]] = Number(cols[3]);
      }
      return counts;
    },
  };
}
