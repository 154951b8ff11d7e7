/**
 * One pool of ephemeral JIT runners (SPEC 14): `size` slots, each a fresh directory from the
 * template, a runner from generate-jitconfig and run.sh started as the pool's user. A runner
 * that ran its job exits and is replaced at once; one that GitHub removed unused is replaced and
 * counted (idle_expired); one that crashed is replaced after a backoff (5 s doubling to 5 min).
 * A busy runner is never stopped: to stop, the agent first deletes the runner at GitHub, which
 * GitHub refuses (422) while a job runs.
 */
import { dirname, join } from "node:path";
import { ConfigError, errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { encodeToken, scopeKey } from "../shared/scope.ts";
import type { Runtime, ServiceChild } from "../runtime/types.ts";
import type { PoolConfig } from "../config/types.ts";
import type { EventEmitter } from "../agent/events.ts";
import { runnerEnv, switchTo, type SystemUser } from "../privsep/index.ts";
import type { RunnerSource } from "./source.ts";
import { makeSlotDir } from "./slot-dir.ts";
import type { PoolStore, RememberedRunner } from "./store.ts";
import { jobsInDirs, slotName, type PoolReport, type SlotState } from "./report.ts";

const BACKOFF_START_S = 5;
const BACKOFF_MAX_S = 300;
/** What the runner prints when GitHub removed it (an unused JIT runner, after a few minutes). */
const GONE_RE = /runner no longer exists on the server|registration has been deleted/i;
/** How long a stopped idle runner gets to exit before SIGKILL. */
const STOP_GRACE_MS = 10_000;
/** A runner younger than this is not a ghost yet: GitHub lists a new runner after a moment. */
const GHOST_GRACE_MS = 120_000;
/** A runner still running this long after its start ends a crash loop's count. */
const HEALTHY_AFTER_MS = 10_000;

export interface PoolDeps {
  runtime: Runtime;
  log: Logger;
  source: RunnerSource;
  events: EventEmitter;
  store: PoolStore;
  host: string;
  user: SystemUser;
  now: () => number;
  /** Asks the pool loop to look again now (a runner exited: its slot is refilled at once). */
  wake: () => void;
}

interface Slot {
  index: number;
  state: SlotState | "empty";
  name: string | null;
  runnerId: number | null;
  dir: string | null;
  child: ServiceChild | null;
  /** A run.sh left by an earlier agent process (after a crash): watched through /proc. */
  orphanPid: number | null;
  startedAt: number;
  sawGone: boolean;
  stopReason: "stopped" | "ghost" | null;
}

export class Pool {
  private readonly slots: Slot[];
  private remembered: RememberedRunner[] = [];
  private consecutiveFailures = 0;
  private backoffUntil = 0;
  private shortSince: number | null = null;
  private draining = false;
  private stopping = false;
  private readonly totals = { jobs: 0, launchFailures: 0, idleExpired: 0, ghosts: 0 };
  private readonly exits = new Set<Promise<void>>();
  private readonly log: Logger;

  constructor(
    readonly config: PoolConfig,
    private readonly where: string,
    private readonly deps: PoolDeps,
  ) {
    this.slots = Array.from({ length: config.size }, (_, index) => this.emptySlot(index));
    this.log = deps.log.child({ pool: config.name });
  }

  private emptySlot(index: number): Slot {
    return { index, state: "empty", name: null, runnerId: null, dir: null, child: null, orphanPid: null, startedAt: 0, sawGone: false, stopReason: null };
  }

  /** Resolves the group, then settles what an earlier agent process left behind. */
  async start(signal: AbortSignal): Promise<void> {
    const c = this.config;
    await this.deps.source.prepare(c, this.where, signal);
    await this.deps.runtime.files.mkdir(join(c.baseDir, c.name), 0o755).catch(async (err: unknown) => {
      // Under the shipped unit (ProtectSystem=strict) only ReadWritePaths= are writable: say
      // which path and the drop-in that adds it, instead of a launch failure on every slot.
      // A recursive mkdir can report ENOENT for what is a read-only parent: ask that parent.
      const code = (await this.unwritableAncestor(c.baseDir)) ?? (err as { code?: string } | null)?.code;
      if (code !== "EROFS" && code !== "EACCES" && code !== "EPERM") throw err;
      throw new ConfigError(
        `${this.where}.baseDir: cannot create ${join(c.baseDir, c.name)} (${code}): make ${c.baseDir} writable for the agent (under systemd, install systemd/runner-token-refresh.service.d/pools.conf or add it to ReadWritePaths=; docs/pools.md)`,
        { cause: err },
      );
    });
    this.remembered = await this.deps.store.load(c.name);
    await this.settleLeftovers(signal);
    this.draining = Boolean(await this.deps.runtime.files.stat(this.deps.store.drainFile(c.name)));
  }

  /** The error code that keeps the nearest existing ancestor of `dir` from being written, if any. */
  private async unwritableAncestor(dir: string): Promise<string | undefined> {
    const { files } = this.deps.runtime;
    let at = dir;
    while (!(await files.stat(at).catch(() => null)) && dirname(at) !== at) at = dirname(at);
    return files.assertWritable(at).then(
      () => undefined,
      (e: unknown) => (e as { code?: string } | null)?.code,
    );
  }

  /**
   * Runners an earlier process created: gone ones are deleted at GitHub (no offline ghosts after
   * a crash or a reboot); live idle ones are deleted and stopped; live busy ones finish their job.
   */
  private async settleLeftovers(signal: AbortSignal): Promise<void> {
    const procs = await this.deps.runtime.processes();
    const busyDirs = jobsInDirs(procs, this.remembered.map((r) => r.slotDir));
    for (const r of [...this.remembered]) {
      const alive = r.pid !== null && procs.some((p) => p.pid === r.pid && (p.cwd === r.slotDir || p.cmdline.some((a) => a.startsWith(`${r.slotDir}/`))));
      if (alive && busyDirs.has(r.slotDir)) {
        const slot = this.slots.find((s) => s.state === "empty");
        if (slot) Object.assign(slot, { state: "busy", name: r.name, runnerId: r.id, dir: r.slotDir, orphanPid: r.pid, startedAt: this.deps.now() });
        this.log.info({ runner: r.name }, `runner ${r.name} from before the restart is running a job: left to finish`);
        continue;
      }
      const outcome = await this.deps.source.delete(this.config.scope, r.id, signal).catch((err) => {
        this.log.warn({ runner: r.name }, `could not delete leftover runner ${r.name} (id ${r.id}) at GitHub: ${errorMessage(err)}; trying again later`);
        return "error" as const;
      });
      if (outcome === "busy") continue;
      if (alive && r.pid !== null) this.deps.runtime.signalGroup(r.pid, "SIGKILL");
      if (outcome === "error") continue;
      // Without credentials (fleet mode) GitHub removes the unused JIT runner itself within minutes.
      if (outcome !== "unsupported") this.log.info({ runner: r.name, runner_id: r.id }, `deleted leftover runner ${r.name} (id ${r.id}) at GitHub (${outcome})`);
      await this.deps.runtime.files.remove(r.slotDir).catch(() => {});
      await this.forget(r.id);
    }
  }

  private async remember(r: RememberedRunner): Promise<void> {
    this.remembered = [...this.remembered.filter((x) => x.id !== r.id), r];
    await this.deps.store.save(this.config.name, this.remembered);
  }

  private async forget(id: number): Promise<void> {
    this.remembered = this.remembered.filter((x) => x.id !== id);
    await this.deps.store.save(this.config.name, this.remembered);
  }

  /** One look at the pool: job states from /proc, drain requests, launches that are due. */
  async tick(signal: AbortSignal): Promise<void> {
    const live = this.slots.filter((s) => s.dir && (s.child || s.orphanPid));
    if (live.length) {
      const dirs = new Map(live.map((s) => [s, s.dir]));
      const procs = await this.deps.runtime.processes();
      const busy = jobsInDirs(procs, live.map((s) => s.dir!));
      for (const s of live) {
        // A runner that exited while /proc was read has an empty slot (or a new runner) by now:
        // marking it idle would keep the slot "idle" with no process, never refilled.
        if (s.dir !== dirs.get(s) || !(s.child || s.orphanPid)) continue;
        if (s.state === "stopping" || s.state === "starting") continue;
        if (s.orphanPid && !procs.some((p) => p.pid === s.orphanPid)) this.track(this.orphanExit(s));
        else s.state = busy.has(s.dir!) ? "busy" : "idle";
      }
      // A runner that has kept running is a launch that worked: the crash loop (if any) is over.
      if (this.consecutiveFailures && live.some((s) => s.child && this.deps.now() - s.startedAt >= HEALTHY_AFTER_MS)) {
        this.log.info({ after_failures: this.consecutiveFailures }, `pool ${this.config.name} launches work again`);
        this.consecutiveFailures = 0;
        this.backoffUntil = 0;
      }
    }
    const drainRequested = Boolean(await this.deps.runtime.files.stat(this.deps.store.drainFile(this.config.name)));
    if (drainRequested !== this.draining) {
      this.draining = drainRequested;
      this.log.info(drainRequested ? "pool drained: idle runners are removed, busy ones finish, none is started" : "pool resumed");
      await this.deps.events.emit(drainRequested ? "pool.drained" : "pool.resumed", null, this.config.scope, { pool: this.config.name });
    }
    if (this.draining || this.stopping) {
      await this.stopIdle(signal);
      return;
    }
    const now = this.deps.now();
    const liveCount = this.slots.filter((s) => s.state !== "empty").length;
    this.shortSince = liveCount < this.config.size ? (this.shortSince ?? now) : null;
    if (now < this.backoffUntil) return;
    for (const slot of this.slots) {
      if (slot.state !== "empty" || signal.aborted) continue;
      this.log.debug({ slot: slot.index }, "launching a runner into an empty slot");
      await this.launch(slot, signal);
      if (this.deps.now() < this.backoffUntil) break;
    }
  }

  private track(p: Promise<void>): void {
    this.exits.add(p);
    void p.finally(() => this.exits.delete(p));
  }

  private async launch(slot: Slot, signal: AbortSignal): Promise<void> {
    const { runtime, source, user } = this.deps;
    const c = this.config;
    slot.state = "starting";
    slot.startedAt = this.deps.now();
    let dir: string | null = null;
    try {
      let jit = null;
      for (let attempt = 0; attempt < 3 && !jit; attempt++) {
        const name = slotName(c.name, this.deps.host, slot.index);
        dir = join(c.baseDir, c.name, name);
        await makeSlotDir(runtime, c.template, dir, user);
        const answer = await source.jit(c, name, signal);
        if (answer === "name_taken") {
          // Never delete a runner this agent did not create: take another name instead.
          this.log.warn({ runner: name }, `GitHub already has a runner named ${name}: trying another name`);
          await runtime.files.remove(dir);
          dir = null;
          continue;
        }
        jit = answer;
      }
      if (!jit || !dir) throw new Error("GitHub answered 409 (name taken) three times in a row");
      const slotDir = dir;
      Object.assign(slot, { name: jit.name, runnerId: jit.id, dir: slotDir, sawGone: false, stopReason: null });
      await this.remember({ id: jit.id, name: jit.name, slotDir, pid: null, createdAt: Math.floor(this.deps.now() / 1000) });
      if (this.stopping || this.draining) {
        // Told to stop while GitHub was minting: this runner never starts.
        await runtime.files.remove(slotDir).catch(() => {});
        Object.assign(slot, this.emptySlot(slot.index));
        await this.deleteAndForget(jit.id, signal);
        return;
      }
      const child = runtime.startServiceChild(join(slotDir, "run.sh"), [], {
        cwd: slotDir,
        // The JIT config only in the environment: argv shows in `ps` (SPEC 14).
        env: runnerEnv(runtime, user, { ACTIONS_RUNNER_INPUT_JITCONFIG: jit.encodedJitConfig }),
        user: switchTo(runtime, user),
        onLine: (line) => {
          if (GONE_RE.test(line)) slot.sawGone = true;
          this.log.info({ runner: jit!.name }, line);
        },
      });
      slot.child = child;
      slot.state = "idle";
      await this.remember({ id: jit.id, name: jit.name, slotDir, pid: child.pid, createdAt: Math.floor(this.deps.now() / 1000) });
      this.log.info({ runner: jit.name, runner_id: jit.id }, `pool runner ${jit.name} started (id ${jit.id})`);
      await this.deps.events.emit("pool.runner_started", jit.name, c.scope, { pool: c.name, runner_id: jit.id });
      this.track(child.exited.then((r) => this.onExit(slot, r.code, r.signal)));
    } catch (err) {
      if (dir) await runtime.files.remove(dir).catch(() => {});
      const id = slot.runnerId;
      Object.assign(slot, this.emptySlot(slot.index));
      if (id !== null) await this.deleteAndForget(id, signal);
      await this.launchFailed(`cannot start a runner: ${errorMessage(err)}`);
    }
  }

  private async launchFailed(error: string): Promise<void> {
    this.totals.launchFailures++;
    this.consecutiveFailures++;
    const delay = Math.min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (this.consecutiveFailures - 1));
    this.backoffUntil = this.deps.now() + delay * 1000;
    this.log.error({ consecutive_failures: this.consecutiveFailures, retry_in_seconds: delay }, `pool ${this.config.name}: ${error}`);
    await this.deps.events.emit("pool.launch_failed", null, this.config.scope, { pool: this.config.name, error, consecutive_failures: this.consecutiveFailures, retry_in_seconds: delay });
  }

  private async deleteAndForget(id: number, signal?: AbortSignal): Promise<void> {
    const outcome = await this.deps.source.delete(this.config.scope, id, signal ?? AbortSignal.timeout(60_000)).catch(() => "error" as const);
    // Kept when GitHub could not say: the next clean-up (start, statusInterval) tries again.
    if (outcome === "deleted" || outcome === "gone" || outcome === "unsupported") await this.forget(id);
  }

  private async hadJob(dir: string): Promise<boolean> {
    // The runner writes one Worker_*.log per job it ran into _diag.
    const names = await this.deps.runtime.files.readdir(join(dir, "_diag")).catch(() => [] as string[]);
    return names.some((n) => /^Worker_.*\.log$/.test(n));
  }

  private async onExit(slot: Slot, code: number | null, signal: string | null): Promise<void> {
    const c = this.config;
    const dir = slot.dir!;
    const job = await this.hadJob(dir);
    const seconds = Math.round((this.deps.now() - slot.startedAt) / 1000);
    const reason = job ? "job" : slot.stopReason ?? (slot.sawGone ? "idle_expired" : "crashed");
    if (reason === "job") this.totals.jobs++;
    if (reason === "idle_expired") this.totals.idleExpired++;
    if (reason === "ghost") this.totals.ghosts++;
    this.log.info({ runner: slot.name, exit_code: code, signal, job, reason, seconds_alive: seconds }, `pool runner ${slot.name} exited (${reason})`);
    await this.deps.events.emit("pool.runner_exited", slot.name, c.scope, { pool: c.name, runner_id: slot.runnerId, job, exit_code: code, reason, seconds_alive: seconds });
    // A runner that ran its job deregistered itself; any other may still be listed: delete it.
    if (slot.runnerId !== null) {
      if (job) await this.forget(slot.runnerId);
      else await this.deleteAndForget(slot.runnerId);
    }
    await this.deps.runtime.files.remove(dir).catch((err) => this.log.warn(`cannot remove slot ${dir}: ${errorMessage(err)}`));
    Object.assign(slot, this.emptySlot(slot.index));
    if (reason === "crashed") await this.launchFailed(`runner exited without a job (exit ${code ?? signal}, after ${seconds}s): see its lines above`);
    else if (reason === "job" || reason === "idle_expired") this.consecutiveFailures = 0;
    this.deps.wake();
  }

  private async orphanExit(slot: Slot): Promise<void> {
    slot.orphanPid = null;
    await this.onExit(slot, null, null);
  }

  /** Idle runners: deleted at GitHub first (GitHub refuses while a job runs), then stopped. */
  private async stopIdle(signal: AbortSignal): Promise<void> {
    for (const slot of this.slots) {
      if (slot.state !== "idle" || slot.runnerId === null) continue;
      // Without credentials only the local look at /proc says busy (checked by tick just before).
      const outcome = await this.deps.source.delete(this.config.scope, slot.runnerId, signal).catch(() => "error" as const);
      if (outcome === "busy") {
        slot.state = "busy";
        continue;
      }
      if (outcome === "error") continue;
      slot.state = "stopping";
      slot.stopReason ??= "stopped";
      this.stopProcess(slot);
    }
  }

  private stopProcess(slot: Slot): void {
    if (slot.child) {
      slot.child.signal("SIGTERM");
      const child = slot.child;
      const timer = setTimeout(() => child.signal("SIGKILL"), STOP_GRACE_MS);
      void child.exited.finally(() => clearTimeout(timer));
    } else if (slot.orphanPid) this.deps.runtime.signalGroup(slot.orphanPid, "SIGKILL");
  }

  /**
   * Ghosts and leftovers (every github.statusInterval): a live idle runner that GitHub no longer
   * lists is replaced; remembered ids without a live slot are deleted at GitHub.
   */
  async cleanUp(signal: AbortSignal): Promise<void> {
    const listed = await this.deps.source.listedIds(this.config.scope, signal);
    if (!listed) return;
    for (const slot of this.slots) {
      if (slot.state !== "idle" || slot.runnerId === null || listed.has(slot.runnerId)) continue;
      if (this.deps.now() - slot.startedAt < GHOST_GRACE_MS) continue;
      this.log.warn({ runner: slot.name }, `GitHub no longer lists pool runner ${slot.name} (id ${slot.runnerId}) while it runs without a job: replacing it`);
      slot.state = "stopping";
      slot.stopReason = "ghost";
      this.stopProcess(slot);
    }
    const inUse = new Set(this.slots.map((s) => s.runnerId).filter((x) => x !== null));
    for (const r of this.remembered) if (!inUse.has(r.id)) await this.deleteAndForget(r.id, signal);
  }

  /** SIGTERM: idle runners go now; busy ones finish their job; none is started again. */
  async stop(signal: AbortSignal): Promise<void> {
    this.stopping = true;
    await this.stopIdle(signal);
    while (this.exits.size) await Promise.race(this.exits);
  }

  get busy(): number {
    return this.slots.filter((s) => s.state === "busy").length;
  }

  report(): PoolReport {
    const count = (state: SlotState) => this.slots.filter((s) => s.state === state).length;
    return {
      name: this.config.name,
      scope: this.config.scope,
      size: this.config.size,
      draining: this.draining,
      runners: { idle: count("idle"), busy: count("busy"), starting: count("starting") + count("stopping") },
      jobs_total: this.totals.jobs,
      launch_failures_total: this.totals.launchFailures,
      idle_expired_total: this.totals.idleExpired,
      ghosts_replaced_total: this.totals.ghosts,
      consecutive_failures: this.consecutiveFailures,
      short_since: this.shortSince === null ? null : Math.floor(this.shortSince / 1000),
      slots: this.slots.filter((s) => s.name).map((s) => ({ name: s.name!, runner_id: s.runnerId, state: s.state as SlotState })),
    };
  }

  get key(): string {
    return `${encodeToken(this.config.name)}@${scopeKey(this.config.scope)}`;
  }
}
