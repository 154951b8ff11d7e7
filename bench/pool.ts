// Pools (SPEC 14): how fast a finished job's slot gets a fresh runner online, how long a slot
// takes to make from a 200 MB template with hard links against copying it, and how many GitHub
// calls one job costs. The agent runs as a real daemon process with the JIT stand-in template
// (test/helpers/pool-template.ts) and the fake GitHub; jobs are handed out one after the other.
import { mkdtemp, mkdir, rm, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { makeSlotDir } from "../src/pool/slot-dir.ts";
import type { Runtime } from "../src/runtime/types.ts";
import { startFakeGitHub } from "../test/helpers/fake-github.ts";
import { jit } from "../test/helpers/fake-github-jit.ts";
import { makePoolTemplate } from "../test/helpers/pool-template.ts";
import { spawnAgent, waitFor } from "../test/helpers/agent.ts";
import { ensureUser, JOB_USER } from "../test/helpers/users.ts";
import type { Part } from "./report.ts";

export interface PoolBenchResult {
  jobs: number;
  /** Job end (the runner deregistered) → the next runner created at GitHub, ms. */
  reactMs: { p50: number; p99: number };
  /** Runner created → online (the runner's own start: the stand-in's), ms. */
  ownStartMs: { p50: number; p99: number };
  /** Job end → next runner online, ms. */
  totalMs: { p50: number; p99: number };
  githubCallsPerJob: number;
  slot: { templateMiB: number; files: number; linkMs: number; copyMs: number };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function slotCreation(): Promise<PoolBenchResult["slot"]> {
  const root = await mkdtemp(join(tmpdir(), "rtr-bench-template-"));
  try {
    const template = join(root, "template");
    // Shaped like a runner package: a few hundred files, most of the bytes in a few big ones.
    let bytes = 0;
    let files = 0;
    for (let d = 0; d < 20; d++) {
      await mkdir(join(template, "bin", `d${d}`), { recursive: true });
      for (let f = 0; f < 25; f++) {
        const size = f < 2 ? 5 * 1024 * 1024 - 23 * 4096 : 8 * 1024;
        await writeFile(join(template, "bin", `d${d}`, `f${f}.dll`), Buffer.alloc(size, 1));
        bytes += size;
        files++;
      }
    }
    await writeFile(join(template, "run.sh"), "#!/bin/sh\n");
    await chmod(join(template, "run.sh"), 0o755);
    const runtime = createNodeRuntime();
    const owner = ensureUser(JOB_USER);
    const time = async (rt: Runtime, dir: string) => {
      const t0 = performance.now();
      await makeSlotDir(rt, template, dir, owner);
      return performance.now() - t0;
    };
    // Copying: the same walk with links refused, as on a file system without them.
    const noLinks: Runtime = { ...runtime, files: { ...runtime.files, link: async () => Promise.reject(Object.assign(new Error("EXDEV"), { code: "EXDEV" })) } };
    const link: number[] = [];
    const copy: number[] = [];
    for (let i = 0; i < 3; i++) {
      link.push(await time(runtime, join(root, `link-${i}`)));
      copy.push(await time(noLinks, join(root, `copy-${i}`)));
      await rm(join(root, `link-${i}`), { recursive: true, force: true });
      await rm(join(root, `copy-${i}`), { recursive: true, force: true });
    }
    return { templateMiB: bytes / 1024 / 1024, files, linkMs: pct(link, 50), copyMs: pct(copy, 50) };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export async function benchPool(jobs = 20): Promise<PoolBenchResult> {
  ensureUser(JOB_USER);
  const slot = await slotCreation();
  const github = await startFakeGitHub();
  const template = await makePoolTemplate();
  const tmp = await mkdtemp(join(tmpdir(), "rtr-bench-pool-"));
  await chmod(tmp, 0o755);
  const stateDir = join(tmp, "state");
  const config = join(tmp, "config.yaml");
  await writeFile(config, `github: { apiUrl: "${github.url}", statusInterval: 3600 }\nstate: { dir: "${stateDir}" }\nrefresh: { interval: 60 }\npools:\n  - { name: bench, scope: { org: acme }, size: 1, labels: [bench], template: "${template.dir}", runAs: ${JOB_USER} }\n`);
  const agent = spawnAgent(["daemon", "--config", config, "--listen", "127.0.0.1:0"], { GITHUB_TOKEN: github.pat, LOG_LEVEL: process.env.BENCH_POOL_LOG ?? "warn" });
  const control = jit(github);
  const onlineAt = new Map<number, number>();
  const createdAt = new Map<number, number>();
  const finishedAt = new Map<number, number>();
  let watching = true;
  // Timestamps from a 5 ms watch on the fake's state (the fake runs in this process).
  const watch = (async () => {
    while (watching) {
      const now = performance.now();
      for (const id of control.created) if (!createdAt.has(id)) createdAt.set(id, now);
      for (const id of control.finished) if (!finishedAt.has(id)) finishedAt.set(id, now);
      for (const [id, r] of github.runners) if (r.status === "online" && !onlineAt.has(id)) onlineAt.set(id, now);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    await waitFor(() => onlineAt.size === 1, "the first pool runner online", 60_000);
    const callsBefore = github.calls.length;
    const react: number[] = [];
    const own: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < jobs; i++) {
      const current = control.created[control.created.length - 1];
      control.assignJob(current, 0);
      await waitFor(() => finishedAt.has(current), `job ${i} to finish`, 30_000);
      await waitFor(() => control.created.length > i + 1 && onlineAt.has(control.created[i + 1]), `runner ${i + 1} online`, 30_000);
      const next = control.created[i + 1];
      react.push(createdAt.get(next)! - finishedAt.get(current)!);
      own.push(onlineAt.get(next)! - createdAt.get(next)!);
      total.push(onlineAt.get(next)! - finishedAt.get(current)!);
    }
    const calls = github.calls.slice(callsBefore).filter((c) => !c.path.startsWith("/_fake")).length;
    return {
      jobs,
      reactMs: { p50: pct(react, 50), p99: pct(react, 99) },
      ownStartMs: { p50: pct(own, 50), p99: pct(own, 99) },
      totalMs: { p50: pct(total, 50), p99: pct(total, 99) },
      githubCallsPerJob: calls / jobs,
      slot,
    };
  } catch (err) {
    if (process.env.BENCH_POOL_LOG) console.error(agent.output());
    throw err;
  } finally {
    watching = false;
    await watch;
    agent.kill("SIGTERM");
    await agent.done;
    await github.close();
    await template.cleanup();
    await rm(tmp, { recursive: true, force: true });
    await rm(`${stateDir}-pools`, { recursive: true, force: true });
  }
}

export function poolPart(r: PoolBenchResult): Part {
  const ms = (n: number) => `${Math.round(n)} ms`;
  const met = r.reactMs.p99 <= 2000;
  return {
    rows: [
      { area: "8", figure: `pool: job end → next runner online, p50 / p99 (${r.jobs} jobs)`, value: `${ms(r.totalMs.p50)} / ${ms(r.totalMs.p99)}`, baseline: `the runner's own start: ${ms(r.ownStartMs.p50)} / ${ms(r.ownStartMs.p99)}`, ratio: "—", target: "≤ 2 s plus the runner's own start", met },
      { area: "8", figure: `pool: slot from a ${r.slot.templateMiB.toFixed(0)} MiB template (${r.slot.files} files), hard links`, value: ms(r.slot.linkMs), baseline: `copying it: ${ms(r.slot.copyMs)}`, ratio: `${(r.slot.linkMs / r.slot.copyMs).toFixed(2)}×`, target: "—", met: null },
      { area: "8", figure: "pool: GitHub REST calls per job", value: r.githubCallsPerJob.toFixed(2), baseline: "—", ratio: "—", target: "1 (generate-jitconfig)", met: r.githubCallsPerJob <= 1.05 },
    ],
    section: [
      "## 8. Ephemeral pools",
      "",
      "| measure | p50 | p99 |",
      "|---|---|---|",
      `| job end → next runner created at GitHub (the agent's part: slot, mint, start) | ${ms(r.reactMs.p50)} | ${ms(r.reactMs.p99)} |`,
      `| runner created → online (the runner's own start; here the stand-in's) | ${ms(r.ownStartMs.p50)} | ${ms(r.ownStartMs.p99)} |`,
      `| job end → next runner online | ${ms(r.totalMs.p50)} | ${ms(r.totalMs.p99)} |`,
      "",
      `A slot from a ${r.slot.templateMiB.toFixed(0)} MiB template of ${r.slot.files} files: ${ms(r.slot.linkMs)} with hard links, ${ms(r.slot.copyMs)} copying (median of 3).`,
      `GitHub REST calls per job: ${r.githubCallsPerJob.toFixed(2)} (generate-jitconfig; the runner deregisters itself after its job).`,
      "",
    ],
  };
}
