/**
 * The alert state machine (SPEC 10), shared by the agent (local alerts) and the collector
 * (central ones). Per key `<rule>/<host>/<runner>`: ok → pending → firing (one notification per
 * plugin) → reminders every repeatInterval → resolved (one notification, only to plugins that
 * delivered the firing one) → ok. Every change is persisted before the process can forget it, so
 * a restart never loses or repeats a resolve. New firing alerts of one rule within groupWait go
 * out as one notification to grouping plugins; PagerDuty-like plugins always get one per key.
 *
 * A store shared by processes (the agent's alerts.json, used by a cron `check` and the daemon on
 * one host) is changed only under its lock, on records read under it, so neither process fires
 * what the other already fired nor overwrites the other's changes. An alert whose notifications
 * one process has in flight is claimed by it: the other leaves the next notification (the
 * resolve) to it, since only the process that sent the firing knows when it landed.
 */
import { errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { recoveredText, type AlertScope, type Notification, type Severity } from "./sdk.ts";

/** What a resolve says about the recovery: how long the alert lasted, in seconds and in words. */
function recovery(startsAt: string, endsAt: string | undefined): Pick<Notification, "resolvedAfterSeconds" | "recovered"> {
  const seconds = endsAt ? Math.max(0, Math.round((Date.parse(endsAt) - Date.parse(startsAt)) / 1000)) : NaN;
  if (!Number.isFinite(seconds)) return {};
  return { resolvedAfterSeconds: seconds, recovered: recoveredText({ status: "resolved", startsAt, resolvedAfterSeconds: seconds }) ?? undefined };
}
import type { PluginTarget } from "./delivery.ts";

export interface AlertCondition {
  key: string;
  rule: string;
  host: string;
  runner: string | null;
  scope: AlertScope | null;
  severity: Severity;
  summary: string;
  details: Record<string, unknown>;
  /** Below the threshold (pending) or at it (firing). */
  state: "pending" | "firing";
}

export interface AlertRecord extends Omit<AlertCondition, "state"> {
  state: "pending" | "firing" | "resolved";
  startsAt: string;
  endsAt?: string;
  lastSentAt?: number;
  /** Plugins a firing notification was handed to, and those that delivered it. */
  firedTo: string[];
  deliveredTo: string[];
  /** Plugins still owed a resolve. */
  resolvePending: string[];
  /** The process (SharedAlertStore.owner) with notifications of this alert in flight. */
  claim?: string;
}

export interface AlertStore {
  load(): Promise<Record<string, AlertRecord>>;
  /** After a change; `changedKeys` say what changed (a KV store writes only those). */
  save(records: Record<string, AlertRecord>, changedKeys: string[]): Promise<void>;
  /** Present when several processes change the store. */
  readonly shared?: SharedAlertStore;
}

/** A store several processes change: the engine locks, reloads, changes and saves. */
export interface SharedAlertStore {
  /** This process's id in claims. */
  readonly owner: string;
  /** Exclusive across processes; resolves to the release. */
  lock(): Promise<() => Promise<void>>;
  /** Whether a claim's owner still runs; a dead one's claims are taken over. */
  alive(owner: string): Promise<boolean>;
  close(): Promise<void>;
}

type Records = Record<string, AlertRecord>;

export interface EngineOptions {
  targets: PluginTarget[];
  store: AlertStore;
  repeatInterval: number;
  groupWait: number;
  sendResolved: boolean;
  log: Logger;
  now?: () => number;
}

export class AlertEngine {
  private records: Records = {};
  private readonly groups = new Map<string, { keys: string[]; timer: ReturnType<typeof setTimeout> }>();
  /** Changes of the state, one after another (and on a shared store under its lock). */
  private chain: Promise<unknown> = Promise.resolve();
  private changes = 0;
  /** Resolves handed to the plugins by this process (each is sent once). */
  private readonly resolving = new Set<string>();
  /** Notifications this process has handed to plugins and not yet seen settle, per alert key. */
  private readonly inflight = new Map<string, number>();
  /**
   * Firings this process saw delivered (`key\0plugin`), known at once: the resolve queued right
   * behind a firing asks before the change that records the delivery has run.
   */
  private readonly landed = new Set<string>();
  private closing = false;
  private readonly now: () => number;

  constructor(private readonly options: EngineOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * (Re)loads the state: at start, and when a collector becomes the leader (another one may have
   * changed it). Owed resolves are sent by the next evaluate(), so only a process that evaluates
   * (the agent, the leading collector) ever sends them.
   */
  async start(): Promise<void> {
    const next = this.chain.then(async () => {
      this.records = await this.options.store.load();
      this.resolving.clear();
    });
    this.chain = next.catch(() => {});
    await next;
  }

  list(): AlertRecord[] {
    return Object.values(this.records);
  }

  /**
   * Runs one change of the alert state and saves what `fn` says changed. On a shared store: under
   * its lock, on the records as saved by whichever process changed them last. Never throws: the
   * refresh loop must not stop over alert state (the problem is logged; the change is not made).
   */
  private change(what: string, fn: (records: Records) => Set<string> | Promise<Set<string>>): Promise<void> {
    this.changes++;
    const run = async () => {
      const shared = this.options.store.shared;
      const release = shared ? await shared.lock() : null;
      try {
        if (shared) this.records = await this.options.store.load();
        const changed = await fn(this.records);
        if (changed.size) await this.options.store.save(this.records, [...changed]);
      } finally {
        await release?.();
      }
    };
    const next = this.chain.then(run).catch((err) => this.options.log.error(`cannot ${what}: ${errorMessage(err)}`));
    this.chain = next;
    return next;
  }

  /** Whether this process may send the alert's next notification (no other live process has it). */
  private async mayNotify(rec: AlertRecord): Promise<boolean> {
    const shared = this.options.store.shared;
    if (!shared || !rec.claim || rec.claim === shared.owner) return true;
    if (await shared.alive(rec.claim)) return false;
    delete rec.claim;
    return true;
  }

  /** Counts `n` notifications of `rec` handed to plugins by this process, and claims the alert. */
  private claim(rec: AlertRecord, n: number): void {
    if (n === 0) return;
    this.inflight.set(rec.key, (this.inflight.get(rec.key) ?? 0) + n);
    const shared = this.options.store.shared;
    if (shared) rec.claim = shared.owner;
  }

  private notification(rec: AlertRecord, status: "firing" | "resolved", reminder = false): Notification {
    return {
      status,
      rule: rec.rule,
      key: rec.key,
      host: rec.host,
      runner: rec.runner,
      scope: rec.scope,
      severity: rec.severity,
      summary: rec.summary,
      startsAt: rec.startsAt,
      endsAt: rec.endsAt,
      details: rec.details,
      ...(reminder ? { reminder: true } : {}),
      ...(status === "resolved" ? recovery(rec.startsAt, rec.endsAt) : {}),
    };
  }

  /** Applies what the rules see now; never waits for a plugin. */
  evaluate(conditions: AlertCondition[]): Promise<void> {
    return this.change("evaluate alerts", (records) => this.apply(records, conditions));
  }

  private async apply(records: Records, conditions: AlertCondition[]): Promise<Set<string>> {
    const changed = new Set<string>();
    // Resolves owed from before a restart, a change of leader or by a process that died go out
    // first, exactly once.
    for (const rec of Object.values(records)) {
      if (rec.state !== "resolved" || this.resolving.has(rec.key) || !(await this.mayNotify(rec))) continue;
      this.sendResolve(rec);
      changed.add(rec.key);
    }
    const seen = new Set<string>();
    const nowIso = new Date(this.now()).toISOString();
    for (const c of conditions) {
      seen.add(c.key);
      let rec = records[c.key];
      if (!rec || rec.state === "resolved") {
        // A resolved alert that fires again is a new incident; its old resolve stays owed.
        if (rec?.state === "resolved" && rec.resolvePending.length) continue;
        rec = { ...c, state: c.state, startsAt: nowIso, firedTo: [], deliveredTo: [], resolvePending: [] };
        records[c.key] = rec;
        changed.add(c.key);
        if (c.state === "firing") this.fire(rec);
        continue;
      }
      Object.assign(rec, { severity: c.severity, summary: c.summary, details: c.details });
      if (rec.state === "pending" && c.state === "firing") {
        rec.state = "firing";
        changed.add(c.key);
        this.fire(rec);
      } else if (rec.state === "firing" && rec.lastSentAt !== undefined && this.now() - rec.lastSentAt >= this.options.repeatInterval * 1000) {
        rec.lastSentAt = this.now();
        changed.add(c.key);
        this.options.log.info({ alert: rec.key }, `alert still firing: reminder (${rec.summary})`);
        for (const t of this.options.targets) t.enqueue({ notification: this.notification(rec, "firing", true) });
      }
    }
    for (const rec of Object.values(records)) {
      if (seen.has(rec.key) || rec.state === "resolved") continue;
      changed.add(rec.key);
      if (rec.state === "pending") {
        delete records[rec.key];
        continue;
      }
      rec.state = "resolved";
      rec.endsAt = nowIso;
      rec.resolvePending = this.options.sendResolved ? [...rec.firedTo] : [];
      this.options.log.info({ alert: rec.key }, `alert resolved: ${rec.key}`);
      // Else the process whose firing is still out sends it once that settled.
      if (await this.mayNotify(rec)) this.sendResolve(rec);
    }
    return changed;
  }

  private fire(rec: AlertRecord): void {
    rec.lastSentAt = this.now();
    rec.firedTo = this.options.targets.map((t) => t.name);
    this.options.log.warn({ alert: rec.key, severity: rec.severity }, `alert firing: ${rec.summary}`);
    for (const t of this.options.targets) this.landed.delete(`${rec.key}\0${t.name}`);
    // A notification waiting for its group counts as in flight too.
    this.claim(rec, this.options.targets.length);
    for (const t of this.options.targets) {
      if (t.groups && this.options.groupWait > 0) continue;
      t.enqueue({ notification: this.notification(rec, "firing"), onResult: (ok) => this.settled(rec.key, t.name, "firing", ok) });
    }
    if (this.options.groupWait > 0) this.addToGroup(rec);
  }

  /**
   * A notification this process handed to a plugin settled: record the delivery, and once none of
   * the alert's is left, release the claim, or send the resolve another process decided meanwhile.
   */
  private settled(key: string, plugin: string, kind: "firing" | "resolve", delivered: boolean): void {
    if (kind === "firing" && delivered) this.landed.add(`${key}\0${plugin}`);
    const left = (this.inflight.get(key) ?? 1) - 1;
    if (left > 0) this.inflight.set(key, left);
    else this.inflight.delete(key);
    void this.change("save alert state", (records) => {
      const changed = new Set<string>();
      const rec = records[key];
      if (!rec) return changed;
      if (kind === "firing" && delivered && !rec.deliveredTo.includes(plugin)) {
        rec.deliveredTo.push(plugin);
        changed.add(key);
      }
      // A resolve cut off by shutdown stays owed (the next process sends it); any other outcome,
      // delivered or not, settles it: a repeat would be a duplicate.
      if (kind === "resolve" && rec.state === "resolved" && (delivered || !this.closing)) {
        rec.resolvePending = rec.resolvePending.filter((p) => p !== plugin);
        changed.add(key);
        if (!rec.resolvePending.length) {
          delete records[key];
          this.resolving.delete(key);
          for (const t of this.options.targets) this.landed.delete(`${key}\0${t.name}`);
          return changed;
        }
      }
      const shared = this.options.store.shared;
      // Asked when the change runs: a notification handed out since keeps the claim.
      if (!this.inflight.has(key) && shared && rec.claim === shared.owner) {
        if (rec.state === "resolved" && !this.resolving.has(key) && !this.closing) this.sendResolve(rec);
        else delete rec.claim;
        changed.add(key);
      }
      return changed;
    });
  }

  /** Collects firing alerts of one rule for groupWait, then sends them as one notification. */
  private addToGroup(rec: AlertRecord): void {
    const existing = this.groups.get(rec.rule);
    if (existing) {
      existing.keys.push(rec.key);
      return;
    }
    const group = {
      keys: [rec.key],
      timer: setTimeout(() => {
        this.groups.delete(rec.rule);
        const members = group.keys.map((k) => this.records[k]).filter((r): r is AlertRecord => r?.state === "firing");
        const grouping = this.options.targets.filter((t) => t.groups);
        // Keys no longer firing: the notifications counted for them at fire() will never go.
        for (const key of group.keys) if (!members.some((m) => m.key === key)) for (const t of grouping) this.settled(key, t.name, "firing", false);
        if (!members.length) return;
        const notifications = members.map((m) => this.notification(m, "firing"));
        const notification: Notification =
          notifications.length === 1
            ? notifications[0]
            : { ...notifications[0], key: `${rec.rule}/group`, summary: `${notifications.length} alerts: ${rec.rule}`, group: notifications };
        for (const t of grouping) t.enqueue({ notification, onResult: (ok) => members.forEach((m) => this.settled(m.key, t.name, "firing", ok)) });
      }, this.options.groupWait * 1000),
    };
    this.groups.set(rec.rule, group);
  }

  /** Called inside a change, on `this.records`. */
  private sendResolve(rec: AlertRecord): void {
    this.resolving.add(rec.key);
    if (!rec.resolvePending.length) {
      delete this.records[rec.key];
      return;
    }
    const targets = this.options.targets.filter((t) => rec.resolvePending.includes(t.name));
    this.claim(rec, targets.length);
    for (const t of targets) {
      t.enqueue({
        notification: this.notification(rec, "resolved"),
        // Decided when its turn comes: a firing still being retried ahead of it may yet land.
        shouldSend: () => this.landed.has(`${rec.key}\0${t.name}`) || (this.records[rec.key]?.deliveredTo ?? rec.deliveredTo).includes(t.name),
        onResult: (ok) => this.settled(rec.key, t.name, "resolve", ok),
      });
    }
  }

  /** Waits until every queued delivery was attempted and the state saved (tests, shutdown). */
  async idle(): Promise<void> {
    // A settled delivery may start another (a resolve owed once a firing landed): until quiet.
    for (let seen = -1; seen !== this.changes; ) {
      seen = this.changes;
      await Promise.all(this.options.targets.map((t) => t.idle()));
      await this.chain;
    }
  }

  stop(): void {
    this.closing = true;
    for (const g of this.groups.values()) clearTimeout(g.timer);
  }

  /** After the plugins were stopped: records what settled and lets other processes take over. */
  async close(): Promise<void> {
    this.stop();
    await this.idle();
    await this.options.store.shared?.close();
  }
}
