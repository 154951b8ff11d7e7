// Turns the benchmarks' figures into docs/benchmarks.md: one results table (figure, baseline
// measured in the same run, ratio, target, met?) and a section per benchmark with its method, its
// details and, for a target missed, the profile that shows why and what would fix it.
import type { IngestResult } from "./collector-ingest.ts";
import type { HeartbeatResult } from "./collector-heartbeat.ts";
import type { EventToAlertResult } from "./event-to-alert.ts";
import type { FootprintResult, RuntimeFootprint } from "./agent-footprint.ts";
import type { MetricsEndpointResult } from "./metrics-endpoint.ts";
import type { GitHubCallsResult } from "./github-calls.ts";
import type { ReplayResult } from "./outbox-replay.ts";
import type { StartupRuntime } from "./startup.ts";
import type { ProfileSummary } from "./helpers/cpu-profile.ts";
import { RUNTIME_LABEL, type Builds } from "./helpers/runtimes.ts";

export interface Row {
  area: string;
  figure: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
  /** null: no target (reported only). */
  met: boolean | null;
}

export interface Part {
  rows: Row[];
  section: string[];
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const ms = (n: number) => (n < 10 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`);
const pct = (share: number, digits = 1) => `${(share * 100).toFixed(digits)} %`;
const x = (ratio: number) => `${ratio.toFixed(2)}×`;
const mib = (n: number) => `${n.toFixed(1)} MiB`;

export function metCell(met: boolean | null): string {
  return met === null ? "—" : met ? "yes" : "**no**";
}

export function renderTable(rows: Row[]): string[] {
  return [
    "| # | figure | value | baseline (same run) | ratio | target | met? |",
    "|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.area} | ${r.figure} | ${r.value} | ${r.baseline} | ${r.ratio} | ${r.target} | ${metCell(r.met)} |`),
  ];
}

function profileLines(p: ProfileSummary, top = 8): string[] {
  return [
    "| main-thread time attributed to (nearest product function on the stack) | share |",
    "|---|---|",
    ...p.byProductFunction.slice(0, top).map((s) => `| ${s.name.replace(/\|/g, "\\|")} | ${pct(s.share)} |`),
    "",
    "| hottest functions by self time (any code) | share |",
    "|---|---|",
    ...p.bySelf.slice(0, top).map((s) => `| ${s.name.replace(/\|/g, "\\|")} | ${pct(s.share)} |`),
  ];
}

export function ingestPart(r: IngestResult): Part {
  const ratio = r.collectorRate / r.bareRate;
  return {
    rows: [
      {
        area: "1",
        figure: "collector ingest, events/s end to end (consume, decode, fleet view, ack)",
        value: int(r.collectorRate),
        baseline: `bare durable consumer with acks: ${int(r.bareRate)}`,
        ratio: pct(ratio, 0),
        target: "≥ 70 % of the bare consumer",
        met: ratio >= 0.7,
      },
    ],
    section: [
      "## 1. Collector ingest",
      "",
      `${int(r.events)} events (${r.bytesPerEvent} bytes each on average, a realistic mix of types from 1,000 hosts) are published to \`RTR_EVENTS\`, then read`,
      "by alternating rounds of (a) a bare durable pull consumer with explicit acks that only parses JSON, configured like the",
      "collector's (consume() with 1,000 messages per pull, max 10,000 unacknowledged, acks not awaited), and (b) the `Collector`",
      "class itself, in process, with its own fresh durable consumer (decode and validate, de-duplicate by id, update the fleet",
      "view, ack). Rate = messages from first to last; each side's best round counts.",
      "",
      "| round | bare consumer (events/s) | collector (events/s) |",
      "|---|---|---|",
      ...r.rounds.bare.map((b, i) => `| ${i + 1} | ${int(b)} | ${int(r.rounds.collector[i])} |`),
      "",
      `The collector handles ${pct(ratio, 0)} of what the bare consumer does. (The bare consumer here is faster than the 17-20k/s floor`,
      "quoted in the issue, which was measured differently; what matters is the ratio in the same run.)",
      "",
    ],
  };
}

/** A scrape must end well inside Prometheus's interval (15-30 s) and default timeout (10 s). */
const SCRAPE_TARGET_MS = 1000;

export function heartbeatPart(r: HeartbeatResult): Part {
  const ratio = r.collectorCpuShare / r.watcherCpuShare;
  const met = r.collectorCpuShare <= 0.35 && ratio <= 3 && r.collectorRunners === r.agents && r.putErrors === 0 && r.generatorKeptUp;
  const t = r.timers;
  const [base, ...larger] = r.scrapes;
  const scrapeRow = (s: HeartbeatResult["scrapeUnderLoad"], figure: string): Row => ({
    area: "1",
    figure,
    value: `${ms(s.ms)} (collector CPU ${ms(s.cpuMs)}; ${mib(s.bytes / 2 ** 20)} of text)`,
    baseline: base && s !== base ? `${int(base.agents)} agents: ${ms(base.ms)}` : "—",
    ratio: base && s !== base ? x(s.ms / base.ms) : "—",
    target: "< 1 s",
    met: s.ms < SCRAPE_TARGET_MS,
  });
  const scrapesMet = [...r.scrapes, r.scrapeUnderLoad].every((s) => s.ms < SCRAPE_TARGET_MS);
  return {
    rows: [
      {
        area: "1",
        figure: `collector CPU, ${int(r.agents)} agents heartbeating every ${r.periodSeconds} s (${int(r.agents / r.periodSeconds)} KV puts/s), real rate, ${Math.round(r.windowSeconds)} s`,
        value: `${pct(r.collectorCpuShare, 2)} of a core`,
        baseline: `bare KV watcher: ${pct(r.watcherCpuShare, 2)}`,
        ratio: x(ratio),
        target: "≤ 35 % of a core and ≤ 3× the bare watcher, 50,000 agents",
        met,
      },
      ...larger.map((s) => scrapeRow(s, `collector GET /metrics, ${int(s.agents)} agents (whole body read, median of ${s.samples})`)),
      scrapeRow(r.scrapeUnderLoad, `collector GET /metrics, ${int(r.agents)} agents, heartbeats running (whole body read, median of ${r.scrapeUnderLoad.samples})`),
    ],
    section: [
      "### Heartbeats at fleet scale",
      "",
      `${int(r.agents)} simulated agents over ${r.connections} NATS connections put their state document to \`RTR_STATE\` every ${r.periodSeconds} s,`,
      "evenly spread (agent i at i/N of the period, so puts arrive a few milliseconds apart), at real rate. A put is a core",
      "publish to the bucket's subject, flushed every few milliseconds (the generator must not be what costs on 2 cores); what",
      "arrived is read from the stream's sequence at both ends of the window. All agents are put once first, so the collector",
      "holds the whole fleet before the window opens. The collector runs as shipped (`node <bundle> collector`) in its own",
      "process; its CPU (user + system, all threads) is read from `/proc/<pid>/stat`. Baseline in the same window: a bare",
      "process watching the same bucket and parsing each value.",
      "",
      "| measure | value |",
      "|---|---|",
      `| window | ${f1(r.windowSeconds)} s |`,
      `| puts stored in the window / expected at real rate | ${int(r.putsInWindow)} / ${int(r.putsExpected)} (${r.putErrors} failed)${r.generatorKeptUp ? "" : " — **the generator fell behind real rate: the CPU figures are low**"} |`,
      `| collector CPU | ${pct(r.collectorCpuShare, 2)} of a core |`,
      `| bare KV watcher CPU | ${pct(r.watcherCpuShare, 2)} of a core |`,
      `| collector RSS at the end | ${mib(r.collectorRssMiB)} |`,
      `| runners the collector reports after the window (of which stale) | ${int(r.collectorRunners)} (${r.collectorStale}) |`,
      `| one sweep of the rules over ${int(r.agents)} runners (\`FleetState.alerts\`, in process) | ${ms(r.fullEvaluationMs)} |`,
      "",
      `The collector evaluates its rules${t.onStateChangeMs !== null ? ` after every batch of state changes (\`STATE_EVALUATE_DELAY_MS\` = ${t.onStateChangeMs} ms), for the runners that changed,` : ""}${t.everyMs !== null ? ` and every ${t.everyMs} ms over every runner (silence and expiry come with time alone)` : ""}.`,
      `Where its time goes, from a profiled copy following the same updates in the same window:`,
      "",
      ...(r.profile ? profileLines(r.profile, 6) : ["(no profile was written)"]),
      "",
      ...(met
        ? []
        : [
            `**Why the target is missed.** Following the updates costs the bare watcher ${pct(r.watcherCpuShare, 2)} of a core; the collector ${x(ratio)} that.${r.profile?.byProductFunction[0] ? ` The hottest product code above is \`${r.profile.byProductFunction[0].name}\`.` : ""}`,
            "",
          ]),
      "`GET /metrics` on the collector, timed as a scraper sees it (request sent to the whole body read, median of",
      `${r.scrapeUnderLoad.samples}), at each size the fleet reaches while it is put (once both collectors hold it, nothing else going on) and`,
      "again over the whole fleet after the window with the heartbeats still coming (the generator then shares the client's",
      "process and the cores). The collector's CPU per scrape (from `/proc`, less its heartbeat share of the window) is what a",
      "scrape costs it whatever the client's speed. The collector writes the per-runner series (SPEC 11: about 9 per runner)",
      "from one read of its fleet view and streams them in 64 KiB chunks, so the text is never held whole; the RSS column is that",
      "read and the scrapes' garbage until the collector's GC takes it back:",
      "",
      "| runners | scrape | collector CPU per scrape | text | collector RSS growth during the scrapes (peak, sampled every 10 ms) |",
      "|---|---|---|---|---|",
      ...[...r.scrapes, r.scrapeUnderLoad].map((s) => `| ${int(s.agents)}${s === r.scrapeUnderLoad ? ", heartbeats running" : ""} | ${ms(s.ms)} | ${ms(s.cpuMs)} | ${mib(s.bytes / 2 ** 20)} | ${mib(s.rssGrowthMiB)} |`),
      "",
      ...(scrapesMet
        ? []
        : [
            `**Why a scrape misses 1 s.** The text grows with the fleet (about ${int(r.scrapeUnderLoad.bytes / Math.max(1, r.agents))} bytes per runner), and each scrape`,
            "writes and encodes all of it (`src/http/collector-metrics-runners.ts`: one pass over the view, then the text as it is read);",
            "the profile above covers the heartbeats, not a scrape. What would cut it: keep each runner's encoded lines between",
            "scrapes (a heartbeat changes only its own runner's), so a scrape copies bytes instead of writing text.",
            "",
          ]),
    ],
  };
}

export function alertPart(r: EventToAlertResult): Part {
  const met = r.p99 < 250;
  const t = r.timers;
  const [evalP50, evalP99] = r.legs.evaluation;
  const timers = [t.onStateChangeMs !== null ? `within \`STATE_EVALUATE_DELAY_MS\` (${t.onStateChangeMs} ms) of a state change, batched` : null, t.everyMs !== null ? `every \`EVALUATE_EVERY_MS\` (${t.everyMs} ms)` : null].filter(Boolean).join(", and ");
  return {
    rows: [
      { area: "2", figure: "event to alert, p50 (agent publishes 3rd failure → webhook receives)", value: ms(r.p50), baseline: `NATS delivery leg: ${ms(r.legs.delivery[0])}`, ratio: x(r.p50 / r.legs.delivery[0]), target: "—", met: null },
      { area: "2", figure: `event to alert, p99 (${r.samples} samples${r.samples <= 100 ? ": the slowest" : ""})`, value: ms(r.p99), baseline: `NATS delivery leg: ${ms(r.legs.delivery[1])}`, ratio: x(r.p99 / r.legs.delivery[1]), target: "< 250 ms", met },
    ],
    section: [
      "## 2. Event to alert",
      "",
      "An agent (the real `NatsPublisher`) publishes a runner's third consecutive failure: the `token.refresh_failed` event and then",
      "its state document with `consecutive_failures: 3`, as a pass does. The collector (in process, leader, with the built-in",
      "`webhook` plugin, `groupWait: 0`, the per-minute cap raised so no sample is capped) pages a receiver on loopback",
      "(test/helpers/receivers.ts). Samples are spaced by a random 300-700 ms so they fall at every phase of the collector's",
      `timers. The collector evaluates its rules ${timers || "(no evaluation timer found in src/collector/collector.ts)"}. Each latency is split`,
      "where the collector's own methods see it (wrapped on the instance, nothing else changed): publish → the KV watch hands",
      "the state to `FleetState.putState` (delivery) → the first `Collector.evaluate` that sees the alert has run and queued",
      "the notification (evaluation: waiting for it, and running it) → the receiver has it (notify: plugin, HTTP).",
      "",
      "| samples | p50 | p99 | delivery p50 / p99 | evaluation p50 / p99 | notify p50 / p99 |",
      "|---|---|---|---|---|---|",
      `| ${r.samples} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.legs.delivery[0])} / ${ms(r.legs.delivery[1])} | ${ms(evalP50)} / ${ms(evalP99)} | ${ms(r.legs.notify[0])} / ${ms(r.legs.notify[1])} |`,
      "",
      ...(met
        ? []
        : [
            `**Why the target is missed.** Of the p99 of ${ms(r.p99)}, the state reaches the collector in ${ms(r.legs.delivery[1])} and the notification`,
            `is delivered in ${ms(r.legs.notify[1])}; the evaluation leg is ${ms(evalP99)}. The rules run ${timers || "on the collector's timers"}; an`,
            "evaluation after a state change looks only at the runners that changed (`src/collector/rules.ts` keeps each runner's",
            "alerts and re-derives only those), and the periodic sweep, for the time-based rules, costs a few comparisons per",
            "runner (the heartbeat section's sweep over the whole fleet). So the leg is mostly waiting: for the batch of changes to",
            "close, and behind an evaluation already running (evaluations are serialised, the alert engine's work included).",
            "",
            "**What fixes it.** A shorter `STATE_EVALUATE_DELAY_MS`, or letting an evaluation of changed runners go ahead of a",
            "periodic one still waiting on the alert engine; a slow notify leg is the plugin's or the receiver's.",
            "",
          ]),
    ],
  };
}

function footprintRow(rt: RuntimeFootprint, field: "oneRunner" | "twentyRunners"): string {
  return `${mib(rt.rss[field])} (${x(rt.rss[field] / rt.rss.baseline)}); peak ${mib(rt.peakRss[field])}`;
}

export function footprintPart(r: FootprintResult, builds: Builds): Part {
  const b = r.runtimes.find((x) => x.runtime === "bundle")!;
  const ratio1 = b.rss.oneRunner / b.rss.baseline;
  const ratio20 = b.rss.twentyRunners / b.rss.baseline;
  // Issue #18's targets: RSS ≤ 1.15× the bare process with 1 runner, ≤ 1.3× with 20; a pass ≤ 5 ms / ≤ 40 ms.
  const RSS_ONE = 1.15;
  const RSS_TWENTY = 1.3;
  const PASS_ONE_MS = 5;
  const PASS_TWENTY_MS = 40;
  const rssMet = ratio1 <= RSS_ONE && ratio20 <= RSS_TWENTY;
  const passOneMet = b.perPass.oneRunner <= PASS_ONE_MS;
  const passTwentyMet = b.perPass.twentyRunners <= PASS_TWENTY_MS;
  const passMet = passOneMet && passTwentyMet;
  const idleMet = b.idleCpu.oneRunner <= 0.001;
  const col = (f: (rt: RuntimeFootprint) => string) => r.runtimes.map(f).join(" | ");
  const top = builds.composition.slice(0, 8);
  return {
    rows: [
      { area: "3", figure: `agent steady RSS (median over ${r.windowSeconds} s), daemon with 1 runner (bundle, as shipped)`, value: mib(b.rss.oneRunner), baseline: `bare NATS + hono process: ${mib(b.rss.baseline)}`, ratio: x(ratio1), target: `≤ ${RSS_ONE}×`, met: ratio1 <= RSS_ONE },
      { area: "3", figure: "agent steady RSS, daemon with 20 runners (bundle)", value: mib(b.rss.twentyRunners), baseline: `bare: ${mib(b.rss.baseline)}`, ratio: x(ratio20), target: `≤ ${RSS_TWENTY}×`, met: ratio20 <= RSS_TWENTY },
      { area: "3", figure: "agent CPU per pass, 1 runner (bundle)", value: ms(b.perPass.oneRunner), baseline: "—", ratio: "—", target: `≤ ${PASS_ONE_MS} ms`, met: passOneMet },
      { area: "3", figure: "agent CPU per pass, 20 runners (bundle)", value: ms(b.perPass.twentyRunners), baseline: "—", ratio: "—", target: `≤ ${PASS_TWENTY_MS} ms`, met: passTwentyMet },
      {
        area: "3",
        figure: `agent idle CPU over ${r.windowSeconds} s after settling, 1 runner (bundle)`,
        value: pct(b.idleCpu.oneRunner, 2),
        baseline: `bare: ${pct(b.idleCpu.baseline, 2)}`,
        ratio: "—",
        target: "≤ 0.1 % of a core",
        met: idleMet,
      },
    ],
    section: [
      "## 3. Agent footprint",
      "",
      "Every process below runs at once, in one window, so they see the same machine. Daemons have registered, healthy runners",
      "(registered at the fake GitHub, so no registration happens) and NATS; each runner has a systemd unit, and a stand-in",
      "`systemctl` (a shell script; no systemd on the bench machine) answers the agent's `systemctl show` with every unit active and a running `sleep` as its main process, which the agent then watches in /proc instead of asking again. RSS is the median of samples taken every 2 s over the window (the steady size; the peak, which depends on when the garbage collector last ran, is shown beside it), from `/proc/<pid>/status`;",
      "CPU is user + system time of all threads from `/proc/<pid>/stat`. Idle: the default 60 s interval, measured over the",
      `${r.windowSeconds} s window that opens ${r.settleSeconds} s after every daemon has finished its first pass (one regular pass falls inside it). Per pass: daemons at a 1 s interval (3 s with 20`,
      "runners), CPU over the window divided by the passes in it. Baselines: a bare process on the same runtime that only",
      "connects to NATS, serves one hono route and logs with pino (bench/helpers/baseline-process.ts), and the same with the",
      "product's whole CLI module graph loaded but not run (bench/helpers/loaded-process.ts).",
      "",
      `| | ${r.runtimes.map((rt) => RUNTIME_LABEL[rt.runtime]).join(" | ")} |`,
      `|---|${r.runtimes.map(() => "---").join("|")}|`,
      `| bare process (baseline) RSS | ${col((rt) => `${mib(rt.rss.baseline)}; peak ${mib(rt.peakRss.baseline)}`)} |`,
      `| bare + product code loaded, not run | ${col((rt) => `${mib(rt.rss.loaded)} (${x(rt.rss.loaded / rt.rss.baseline)})`)} |`,
      `| daemon, 1 runner, RSS (ratio to bare) | ${col((rt) => footprintRow(rt, "oneRunner"))} |`,
      `| daemon, 20 runners, RSS (ratio to bare) | ${col((rt) => footprintRow(rt, "twentyRunners"))} |`,
      `| CPU per pass, 1 runner: all threads (main thread) | ${col((rt) => `${ms(rt.perPass.oneRunner)} (${ms(rt.perPass.oneRunnerMain)}), ${rt.perPass.passesOne} passes`)} |`,
      `| CPU per pass, 1 runner, \`service: none\` (no status command) | ${col((rt) => ms(rt.perPass.oneRunnerNoService))} |`,
      `| CPU per pass, 20 runners: all threads (main thread) | ${col((rt) => `${ms(rt.perPass.twentyRunners)} (${ms(rt.perPass.twentyRunnersMain)}), ${rt.perPass.passesTwenty} passes`)} |`,
      `| idle CPU, 1 runner | ${col((rt) => pct(rt.idleCpu.oneRunner, 2))} |`,
      `| … of which in the 2-s slices with its pass / between passes | ${col((rt) => `${ms(rt.idleSplit.duringPass)} / ${ms(rt.idleSplit.betweenPasses)}`)} |`,
      `| idle CPU, 20 runners | ${col((rt) => pct(rt.idleCpu.twentyRunners, 2))} |`,
      `| idle CPU, bare process | ${col((rt) => pct(rt.idleCpu.baseline, 2))} |`,
      "",
      "Targets apply to the bundle, as shipped. CPU time is counted in 10 ms ticks by the kernel: idle figures below 0.02 % are",
      "at the resolution of the measurement.",
      "",
      ...(rssMet
        ? []
        : [
            `**Why RSS is over its target** (${x(ratio1)} with 1 runner against ≤ ${RSS_ONE}×, ${x(ratio20)} with 20 against ≤ ${RSS_TWENTY}×). The bare process is ${mib(b.rss.baseline)}. Loading the product's code without running it adds`,
            `${mib(b.rss.loaded - b.rss.baseline)} (an agent reads ${f2(builds.agentBytes / 1024 / 1024)} MiB of JavaScript at start, of the bundle's ${f2(builds.agentTotalBytes / 1024 / 1024)} MiB: its source and the functions V8 compiled stay in memory), and running the`,
            `daemon adds ${mib(b.rss.oneRunner - b.rss.loaded)} more with 1 runner, ${mib(b.rss.twentyRunners - b.rss.loaded)} with 20 (heap for the JetStream/KV`,
            "clients, prom-client registry, pino, per-pass garbage). What the agent reads at start is made of, largest first:",
            "",
            "| package | bytes read at start |",
            "|---|---|",
            ...top.map((p) => `| ${p.name} | ${int(p.bytes)} |`),
            "",
            "**What is done, and what is left.** Done (issue #18): the bundle is a directory of ESM chunks, and what a daemon does not use",
            "is in chunks it never reads: the collector, the demo, `health`, `nats-permissions`, each alert plugin (nodemailer only with",
            "email) and @octokit/auth-app (only with App authentication), and the files are minified (whitespace and syntax: less",
            "source text kept); the config and the collector's documents are checked with",
            "`zod/mini` (the full build with every locale cost ~5 MiB and ~50 ms to load); and on Node the GitHub client fetches through",
            "node:http (src/runtime/node-fetch.ts), because undici's first request compiles its HTTP parser from WebAssembly on V8's",
            "worker threads, which left 10-20 MiB in their malloc arenas. Left: the JetStream/KV clients, prom-client (with",
            "@opentelemetry/api, which its default metrics require), cosmiconfig with js-yaml, and the product's own code are read at",
            "start by every command; the running-state share shrinks with fewer allocations per pass (see below).",
            "",
          ]),
      ...(passMet && idleMet
        ? []
        : [
            `**Why a pass costs ${ms(b.perPass.oneRunner)} with one runner (target ≤ ${PASS_ONE_MS} ms) and ${ms(b.perPass.twentyRunners)} with 20 (target ≤ ${PASS_TWENTY_MS} ms).** A steady pass starts no process`,
            `any more (the same daemon with \`service: none\` costs ${ms(b.perPass.oneRunnerNoService)} a pass, against ${ms(b.perPass.oneRunner)} with its systemd unit), so what is left is`,
            `file-system calls, the NATS heartbeat and JavaScript. About ${pct(1 - b.perPass.oneRunnerMain / b.perPass.oneRunner, 0)} of the CPU is outside the main thread (the fsync of the metrics file in`,
            "libuv's thread pool, V8's garbage collector and compiler threads); on this virtual machine every system call is expensive",
            "(tens of µs), so their count per pass matters more than their kind. The main thread's share, from a profiled copy of the 1-runner daemon",
            "(the bundle with a source map, `--cpu-prof`, same window):",
            "",
            ...(r.profile ? profileLines(r.profile) : ["(no profile was written)"]),
            "",
            ...(r.syscallsPerPass
              ? [
                  "System calls per pass of another copy under `strace -f -c` (all threads):",
                  "",
                  "| system call | per pass |",
                  "|---|---|",
                  ...r.syscallsPerPass.slice(0, 14).map((s) => `| ${s.name} | ${f1(s.perPass)} |`),
                  "",
                ]
              : []),
            "**What is done, and what is left.** Done (issue 18): no `systemctl` while a unit's main process runs (systemd's MainPID,",
            "checked by pid and start time in /proc/<pid>/stat; one `systemctl show` for every unit only when one is not known to run,",
            "so a stopped service is still noticed and started in the first pass after it stops); small files read and metadata calls",
            "made synchronously (a few µs each, against ~50 µs of CPU through the thread pool), atomic writes with one thread-pool call",
            "(the fsync); memory, hygiene and token files not read again while their inode, size and mtime are unchanged, and written only",
            "when their text changed; the state documents put all at once (one round trip; each still acknowledged and retried",
            "through an election, SPEC 16; SPEC 8 keeps one put per runner per pass: it is the heartbeat); the runner's lock taken only",
            "when a step changes something (src/agent/runner-lock.ts: a quiet pass makes no mkdir/rmdir of the lock directory, and what",
            "it read is checked again under the lock before anything changes); `_diag` not listed nor read again while unchanged, and",
            "read from its tail (64 KiB) when it grew; the metrics file built from the memories the pass just saved; no async stack",
            "trace captured per NATS request (`noAsyncTraces`); one pino child logger per runner. Left: the metrics file's write",
            "(SPEC 7: temp file, fsync, rename every pass; its `last_check_timestamp` changes every pass), the heartbeat put and its",
            "acknowledgement, and V8's own work between passes a second apart (optimising compilation and garbage collection run on",
            "other threads: the share outside the main thread above). With one runner most of a pass is fixed cost (those three and",
            "the token cache's check), so the figure per runner falls with more runners (see 20).",
            "",
          ]),
      ...(idleMet
        ? []
        : [
            `**Why idle CPU is over 0.1 %.** Over the ${r.windowSeconds} s window the 1-runner daemon used ${ms(b.idleCpu.oneRunner * r.windowSeconds * 1000)} of CPU (0.1 % is`,
            `${ms(r.windowSeconds)}): ${ms(b.idleSplit.duringPass)} in the seconds around its one regular pass and ${ms(b.idleSplit.betweenPasses)} between passes. A pass alone`,
            `(${ms(b.perPass.oneRunner)} measured above at a 1 s interval; one after a minute idle costs more) is already ${pct(b.perPass.oneRunner / (r.windowSeconds * 1000), 2)} of a core at the default 60 s interval, so the cheaper pass`,
            "above is the fix that matters (and it allocates less, so the collector has less to do after it); between passes the daemon",
            "runs only timers and V8's background work (garbage collection, optimising compilation), which fades as the process settles",
            "but is not zero on a busy machine.",
            "",
          ]),
    ],
  };
}

export function metricsPart(r: MetricsEndpointResult): Part {
  // Issue #18: ≥ 60 % of raw node:http's requests/s at 10 connections (median of the per-round ratios), p99 ≤ 5 ms.
  const RATIO = 0.6;
  const P99_MS = 5;
  const [agent10, agent1] = r.agent;
  const [raw10, raw1] = r.raw;
  const [ratio10, ratio1] = r.ratio;
  const rateMet = ratio10.median >= RATIO;
  const p99Met = agent10.p99 <= P99_MS;
  const met = rateMet && p99Met;
  const cpuRatio = agent10.cpuUsPerRequest / raw10.cpuUsPerRequest;
  const spread = (c: number) => {
    const ratios = r.perRound.filter((p) => p.connections === c).map((p) => p.ratio);
    return `${pct(Math.min(...ratios), 0)}–${pct(Math.max(...ratios), 0)}`;
  };
  const us = (n: number) => `${n.toFixed(0)} µs`;
  // Product code on the stack under load, less the socket write that node:http does for the raw server too.
  const routeShare = (r.profile?.byProductFunction ?? []).filter((p) => !p.name.startsWith("(no product code") && !p.name.startsWith("write (src/runtime/node-server.ts")).reduce((n, p) => n + p.share, 0);
  return {
    rows: [
      {
        area: "4",
        figure: `agent GET /metrics, requests/s (10 connections, median of ${r.rounds} rounds)`,
        value: int(agent10.requestsPerSecond),
        baseline: `raw node:http, same bytes and headers: ${int(raw10.requestsPerSecond)}`,
        ratio: `${pct(ratio10.median, 0)} (best ${pct(ratio10.best, 0)})`,
        target: `≥ ${pct(RATIO, 0)} of raw`,
        met: rateMet,
      },
      {
        area: "4",
        figure: "agent GET /metrics, server CPU per request (10 connections; steadier than requests/s on a shared machine)",
        value: us(agent10.cpuUsPerRequest),
        baseline: `raw: ${us(raw10.cpuUsPerRequest)}`,
        ratio: x(cpuRatio),
        target: "—",
        met: null,
      },
      { area: "4", figure: "agent GET /metrics, p99 latency (10 connections)", value: `${agent10.p99} ms`, baseline: `raw: ${raw10.p99} ms`, ratio: "—", target: `≤ ${P99_MS} ms`, met: p99Met },
      { area: "4", figure: "agent GET /metrics, p99 latency (1 connection, a scraper)", value: `${agent1.p99} ms`, baseline: `raw: ${raw1.p99} ms`, ratio: "—", target: `≤ ${P99_MS} ms`, met: agent1.p99 <= P99_MS },
    ],
    section: [
      "## 4. GET /metrics",
      "",
      `autocannon (its own process) against the agent daemon's \`/metrics\` (the bundle under node, one runner, after its first pass;`,
      `${int(r.bytes)} bytes of Prometheus text) and against a raw \`node:http\` server in its own process serving the same bytes with the`,
      `same headers (${Object.keys(r.headers).map((h) => `\`${h}\``).join(", ")}; both add node's own Date and keep-alive headers), checked before the`,
      `first run. Each target gets a 2 s warm-up; then ${r.rounds} rounds, each running both targets back to back (which goes first`,
      `alternates) for ${r.seconds} s at 10 connections (autocannon's default) and ${r.seconds} s at 1 connection. A neighbour's burst on a`,
      "shared machine hits one round rather than one target, so the judged ratio is the median of the per-round ratios. CPU per",
      "request is the server process's CPU time (all threads, `/proc`) over the requests it answered in the run, which a busy",
      "machine disturbs less than requests/s. autocannon reports latency in whole milliseconds; p99 is the median round's.",
      "",
      "| target | connections | requests/s (median round) | p50 | p99 | CPU per request | errors |",
      "|---|---|---|---|---|---|---|",
      ...[...r.agent.map((a) => ["agent /metrics", a] as const), ...r.raw.map((a) => ["raw node:http", a] as const)].map(
        ([name, a]) => `| ${name} | ${a.connections} | ${int(a.requestsPerSecond)} | ${a.p50} ms | ${a.p99} ms | ${us(a.cpuUsPerRequest)} | ${a.errors} |`,
      ),
      "",
      "| round | connections | agent requests/s | raw requests/s | agent / raw |",
      "|---|---|---|---|---|",
      ...r.perRound.map((p, i) => `| ${Math.floor(i / 2) + 1} | ${p.connections} | ${int(p.agent.requestsPerSecond)} | ${int(p.raw.requestsPerSecond)} | ${pct(p.ratio, 0)} |`),
      "",
      `Agent / raw, median of the rounds: ${pct(ratio10.median, 0)} at 10 connections (rounds ${spread(10)}), ${pct(ratio1.median, 0)} at 1 (rounds ${spread(1)}).`,
      `CPU per request at 10 connections: agent ${us(agent10.cpuUsPerRequest)}, raw ${us(raw10.cpuUsPerRequest)} (${x(cpuRatio)}).`,
      "",
      "The daemon answers `/metrics` from a prepared answer (src/http/agent-metrics-snapshot.ts): the text is rendered, encoded",
      "and hashed for its ETag only when something it shows changed, and the runtime's server (src/runtime/node-server.ts)",
      "writes those bytes and headers before hono sees the request, so a scrape of unchanged state costs a key comparison and",
      "the socket write, as on the raw server.",
      "",
      ...(met
        ? []
        : [
            `**Why the target is missed.** ${rateMet ? "" : `The median round gave ${pct(ratio10.median, 0)} of raw (target ${pct(RATIO, 0)}). `}${p99Met ? "" : `The p99 at 10 connections is ${agent10.p99} ms (raw: ${raw10.p99} ms). `}Per`,
            `request the daemon used ${x(cpuRatio)} the raw server's CPU (${us(agent10.cpuUsPerRequest)} against ${us(raw10.cpuUsPerRequest)}); ${cpuRatio <= 1 / RATIO ? `a CPU-bound server that costly still reaches ≥ ${pct(RATIO, 0)} of raw, so the rest is the shared machine: see the spread of the rounds above` : `over the ${x(1 / RATIO)} that ≥ ${pct(RATIO, 0)} of raw's requests/s allows a CPU-bound server`}.`,
            "Where the daemon's main thread spends its time under the same 10-connection load (a copy with a source map, `--cpu-prof`):",
            "",
            ...(r.profile ? profileLines(r.profile) : ["(no profile was written)"]),
            "",
            "`write (src/runtime/node-server.ts)` is the socket write itself (node's `writev`), which the raw server pays alike.",
            routeShare < 0.05
              ? `The route's own code (key check, prepared answer) takes ${pct(routeShare)} of the main thread: what is left beyond node:http's parsing and writing is the daemon's process itself (garbage collection of a larger heap, its NATS connection and timers), not the route.`
              : `The route's own code (everything above but the socket write) takes ${pct(routeShare)} of the main thread: that is the part to cut next.`,
            "",
          ]),
    ],
  };
}

export function githubPart(r: GitHubCallsResult): Part {
  // Issue #18: calls counted against the rate limit (a 304 is not) ≤ 1.2 per runner-hour standalone,
  // and ≤ 1.2 per scope-hour in fleet mode, tokens and list pages together.
  const COUNTED_MAX = 1.2;
  const s = r.standalone;
  const f = r.fleet;
  const fs = f.perScopeHour!;
  const counted = s.perRunnerHour.counted ?? s.perRunnerHour.total;
  const countedStatus = counted - s.perRunnerHour.token;
  const listCounted = fs.list - fs.listNotModified;
  const fleetCounted = fs.token + listCounted;
  const standaloneMet = counted <= COUNTED_MAX;
  const fleetMet = fleetCounted <= COUNTED_MAX;
  const counts = (c: Record<string, number>) =>
    Object.entries(c)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
  return {
    rows: [
      {
        area: "5",
        figure: `GitHub calls per runner-hour, standalone (${s.hosts} hosts): token + status, 304s included`,
        value: `${f2(s.perRunnerHour.total)} (${f2(s.perRunnerHour.token)} + ${f2(s.perRunnerHour.status)})`,
        baseline: "—",
        ratio: "—",
        // Reported only: the rate limit counts what the next row counts.
        target: "—",
        met: null,
      },
      {
        area: "5",
        figure: `GitHub calls counted against the rate limit per runner-hour, standalone (a 304 is not counted)`,
        value: f2(counted),
        baseline: `all calls: ${f2(s.perRunnerHour.total)}`,
        ratio: x(counted / s.perRunnerHour.total),
        target: `≤ ${COUNTED_MAX}`,
        met: standaloneMet,
      },
      {
        area: "5",
        figure: `GitHub calls counted against the rate limit per scope-hour, fleet mode (${f.hosts} hosts, 1 scope): tokens + list pages that were not 304`,
        value: `${f2(fleetCounted)} (${f2(fs.token)} + ${f2(listCounted)})`,
        baseline: `standalone, same fleet: ${f2(counted * s.hosts)}`,
        ratio: x(fleetCounted / (counted * s.hosts)),
        target: `≤ ${COUNTED_MAX}`,
        met: fleetMet,
      },
      { area: "5", figure: "GitHub list pages per scope-hour, fleet mode (304 = unchanged)", value: `${f1(fs.list)} (${f1(fs.listNotModified)} were 304)`, baseline: "—", ratio: "—", target: "—", met: null },
      {
        area: "5",
        figure: "all GitHub calls per runner-hour, fleet mode",
        value: f2(f.perRunnerHour.total),
        baseline: `standalone: ${f2(s.perRunnerHour.total)}`,
        ratio: x(f.perRunnerHour.total / s.perRunnerHour.total),
        target: "—",
        met: null,
      },
    ],
    section: [
      "## 5. GitHub calls",
      "",
      `${s.hosts} hosts with one registered runner each, real daemons through the CLI (50 per process, bench/helpers/host-pool.ts),`,
      `against the fake GitHub, which logs every call. Every interval and TTL is divided by ${r.factor}, so a simulated hour lasts`,
      `${f1(3600 / r.factor)} s: token TTL ${f1(3600 / r.factor)} s, \`refresh.threshold\` ${f1(300 / r.factor)} s, \`refresh.interval\` ${f1(60 / r.factor)} s, \`github.statusInterval\``,
      `${f1(1800 / r.factor)} s, \`fleet.pollInterval\` ${f1(60 / r.factor)} s (runners have \`service: none\`, which changes no GitHub call). Standalone: each host has its own credentials and its own org (so`,
      "each call names the host that made it). Fleet: one org; a collector with `fleet.scopes` polls and brokers tokens; agents",
      "have `fleet.enabled` and no credentials. Steady-state rates come from the intervals between a host's (or the broker's)",
      "successive calls of one kind, in simulated time; counts over the whole window are listed too.",
      "",
      "| mode | simulated hours | passes run / due | token | status | list pages | total per runner-hour | calls in the window |",
      "|---|---|---|---|---|---|---|---|",
      `| standalone | ${f2(s.simulatedHours)} | ${pct(s.passesOnTime, 0)} | ${f2(s.perRunnerHour.token)} | ${f2(s.perRunnerHour.status)} | — | ${f2(s.perRunnerHour.total)} | ${counts(s.counts)} |`,
      `| fleet | ${f2(f.simulatedHours)} | ${pct(f.passesOnTime, 0)} | ${f2(f.perRunnerHour.token)} (${f2(fs.token)} per scope-hour) | ${f2(f.perRunnerHour.status)} | ${f2(f.perRunnerHour.list)} (${f1(fs.list)} per scope-hour) | ${f2(f.perRunnerHour.total)} | ${counts(f.counts)} |`,
      "",
      ...(f.mintTimes ? [`Broker mints at ${f.mintTimes.map((t) => `${f1(t)}`).join(", ")} simulated minutes after it started answering.`, ""] : []),
      ...(standaloneMet && fleetMet
        ? []
        : [
            "**Why the target is missed.** What the rate limit counts, from the figures above:",
            ...(standaloneMet
              ? []
              : [
                  `- Standalone, ${f2(counted)} per runner-hour: ${f2(s.perRunnerHour.token)} token mints and ${f2(countedStatus)} status reads that were not 304 (of ${f2(s.perRunnerHour.status)}).`,
                  "  A registration token lives 3600 s and is renewed once less than `threshold` (300 s, plus a random lead of up to",
                  "  30 s on agents) is left, at the first pass after that point: one mint about every 3,300 s, ≈ 1.09 per hour while",
                  "  a valid token is always kept ready.",
                ]),
            ...(fleetMet
              ? []
              : [
                  `- Fleet mode, ${f2(fleetCounted)} per scope-hour: ${f2(fs.token)} token mints at the broker (≈ 1.09 per hour while a token is kept ready) and`,
                  `  ${f2(listCounted)} list pages that were not 304 (of ${f1(fs.list)} per scope-hour: a page counts unless GitHub answered 304 Not Modified, i.e. the first poll and any after a change).`,
                ]),
            "",
            "**What would fix it.** The mints are the floor of keeping one token ready per scope (README: 'keeps one valid",
            "registration token ready per scope'). Minting on demand (a registration, the only user of the token, would mint first",
            "and wait one API round trip) would make a healthy runner cost no token call at all; the reads that are counted",
            "fall with fewer changes seen, or a longer `github.statusInterval` (standalone) or `fleet.pollInterval` (fleet).",
            "",
          ]),
    ],
  };
}

export function replayPart(r: ReplayResult): Part {
  const met = r.replayRate >= 5000 && r.stored === r.events && r.duplicates === 0;
  return {
    rows: [
      { area: "6", figure: `outbox replay, ${int(r.events)} queued events, NATS back → outbox empty`, value: `${int(r.replayRate)} events/s`, baseline: `awaited one-by-one publishing: ${int(r.baselineRate)}`, ratio: x(r.replayRate / r.baselineRate), target: "≥ 5,000 events/s, none lost, no duplicates", met },
    ],
    section: [
      "## 6. Outage recovery (outbox replay)",
      "",
      "| measure | value | baseline (same run) | ratio |",
      "|---|---|---|---|",
      `| replay of ${r.events} queued events, NATS back → outbox empty | ${r.replaySeconds.toFixed(2)} s, ${Math.round(r.replayRate)} events/s | awaited one-by-one publishing: ${Math.round(r.baselineRate)} events/s | ${(r.replayRate / r.baselineRate).toFixed(1)}× |`,
      `| stored in the stream / duplicates | ${r.stored} / ${r.duplicates} | | |`,
      "",
      "Target: ≥ 5,000 events/s, zero lost, zero duplicates.",
      "",
    ],
  };
}

const STARTUP_RATIO = 2;

export function startupPart(r: StartupRuntime[]): Part {
  const bundle = r.find((s) => s.runtime === "bundle");
  return {
    rows: r.map((s) => ({
      area: "7",
      figure: `start-up: spawn → first \`check\` done with a fresh token, ${RUNTIME_LABEL[s.runtime]}`,
      value: ms(s.checkMs),
      baseline: `bare process ready: ${ms(s.baselineMs)}`,
      ratio: x(s.checkMs / s.baselineMs),
      // Issue #18 judges the bundle under node (as shipped): ≤ 2× the bare process; the others are reported.
      target: s.runtime === "bundle" ? `≤ ${STARTUP_RATIO}×` : "—",
      met: s.runtime === "bundle" ? s.checkMs / s.baselineMs <= STARTUP_RATIO : null,
    })),
    section: [
      "## 7. Start-up",
      "",
      "Wall time from spawning `check` to its exit 0, with a new state dir each time (so it mints a fresh token) for a registered",
      "runner, NATS configured (the check connects, publishes its events and state, and drains). Baseline: the bare process on",
      "the same runtime, spawn to ready. One untimed run of each fills tsx's and Deno's compile caches; medians of the rest",
      "(the fastest run too: the machine is shared, and a start-up that met a busy neighbour only shows noise).",
      "",
      "| runtime | check: median (fastest) | runs, ms | bare process ready: median (fastest) | runs, ms |",
      "|---|---|---|---|---|",
      ...r.map((s) => `| ${RUNTIME_LABEL[s.runtime]} | ${ms(s.checkMs)} (${ms(Math.min(...s.runs.check))}) | ${s.runs.check.map((v) => Math.round(v)).join(", ")} | ${ms(s.baselineMs)} (${ms(Math.min(...s.runs.baseline))}) | ${s.runs.baseline.map((v) => Math.round(v)).join(", ")} |`),
      "",
      "The check does more than start: it loads and validates the config, mints a token and reads the runner's status at the",
      "fake GitHub (which validates each answer against GitHub's OpenAPI schema), connects to NATS and waits for its publishes.",
      "",
      ...(bundle && bundle.checkMs / bundle.baselineMs > STARTUP_RATIO
        ? [
            `**Why the bundle's check takes ${x(bundle.checkMs / bundle.baselineMs)} the bare process (target ≤ ${STARTUP_RATIO}×).** Done (issue #18): a command reads only the`,
            "entry and the chunks it imports (the collector, the demo, alert plugins, App authentication and the HTTP server stay on",
            "disk), minified (whitespace and syntax, names kept); the config is checked with `zod/mini` instead of the full build (~50 ms",
            "less to load); GitHub is called through node:http, and its answers are read without fetch's globals (touching Headers,",
            "Request or Response makes Node load and compile its bundled undici); the NATS connection is made while the token is",
            "minted (it starts with the agent, before the privilege check). Where a check's time goes (marks in a run on this",
            "machine, ms from spawn): node's own start ~95, reading,",
            "compiling and evaluating the code read at start until `main` runs ~95 more (`node -e 0` alone takes 90-100 ms here),",
            "config ~18, the privilege check ~35 (a real process of the runner's user probes the secret files, SPEC 15; it must end",
            "before the token step, or a fresh token could land in a cache that user can read: a test holds this), token and NATS",
            "connect ~45, the runner ~30 (its status call and service command), metrics, state and drain ~8. The bare process does",
            "none of the work after its first ~150 ms, so the ratio's floor is the work itself. A V8 code cache would take most of the",
            "compile share (Node 22's `module.enableCompileCache`; on Node 20 only by hand), kept where only the agent can write: a",
            "cache in a shared /tmp is code another user could plant for a root process. Minting while the probe runs and writing",
            "the token only once it passed would take the probe's ~35 ms off, at the price of a GitHub call on a host that then",
            "refuses to run (today: none; privsep.test.ts holds that).",
            "",
          ]
        : []),
    ],
  };
}

export function failedPart(area: string, name: string, err: unknown): Part {
  const message = err instanceof Error ? err.message : String(err);
  return {
    rows: [{ area, figure: `${name}: did not complete`, value: "—", baseline: "—", ratio: "—", target: "—", met: false }],
    section: [`## ${area}. ${name}`, "", `Did not complete in this run: ${message.split("\n")[0].slice(0, 400)}`, ""],
  };
}
