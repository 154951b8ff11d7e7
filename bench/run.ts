// npm run bench: runs every benchmark and writes docs/benchmarks.md (machine, date, versions,
// each figure beside its baseline measured in the same run).
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { execFileSync } from "node:child_process";
import { benchOutboxReplay } from "./outbox-replay.ts";
import { VERSION } from "../src/shared/version.ts";

const natsVersion = (() => {
  try {
    return execFileSync("nats-server", ["--version"]).toString().trim();
  } catch {
    return execFileSync("/usr/sbin/nats-server", ["--version"]).toString().trim();
  }
})();

const replay = await benchOutboxReplay(10_000);
const lines = [
  "# Benchmarks",
  "",
  `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}.`,
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB; Node ${process.versions.node}; ${natsVersion}; runner-token-refresh ${VERSION}.`,
  "Every figure is compared with a baseline measured in the same run; ratios matter, absolute numbers vary with the machine.",
  "",
  "## Outage recovery (outbox replay)",
  "",
  "| measure | value | baseline (same run) | ratio |",
  "|---|---|---|---|",
  `| replay of ${replay.events} queued events, NATS back → outbox empty | ${replay.replaySeconds.toFixed(2)} s, ${Math.round(replay.replayRate)} events/s | awaited one-by-one publishing: ${Math.round(replay.baselineRate)} events/s | ${(replay.replayRate / replay.baselineRate).toFixed(1)}× |`,
  `| stored in the stream / duplicates | ${replay.stored} / ${replay.duplicates} | | |`,
  "",
  "Target: ≥ 5,000 events/s, zero lost, zero duplicates.",
  "",
];
writeFileSync("docs/benchmarks.md", lines.join("\n"));
console.log(lines.join("\n"));
