/**
 * The alert state machine (SPEC 10), shared by the agent (local alerts) and the collector
 * (central ones). Per key `<rule>/<host>/<runner>`: ok → pending → firing (one notification per
 * plugin) → reminders every repeatInterval → resolved (one notification, only to plugins that
 * delivered the firing one) → ok. Every change is persisted before the process can forget it, so
 * a restart never loses or repeats a resolve. New firing alerts of one rule within groupWait go
 * out as one notification to grouping plugins; PagerDuty-like plugins always get one per key.
 */
import type { Logger } from "../shared/logger.ts";
import type { AlertScope, Notification, Severity } from "./sdk.ts";
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
}

export interface AlertStore {
  load(): Promise<Record<string, AlertRecord>>;
  save(records: Record<string, AlertRecord>, changedKey: string): Promise<void>;
}

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
  private records: Record<string, AlertRecord> = {};
  private readonly groups = new Map<string, { keys: string[]; timer: ReturnType<typeof setTimeout> }>();
  private saving: Promise<unknown> = Promise.resolve();
  /** Resolves handed to the plugins by this process (each is sent once). */
  private readonly resolving = new Set<string>();
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
    this.records = await this.options.store.load();
    this.resolving.clear();
  }

  list(): AlertRecord[] {
    return Object.values(this.records);
  }

  private persist(key: string): Promise<void> {
    const snapshot = structuredClone(this.records);
    const next = this.saving.then(() => this.options.store.save(snapshot, key));
    this.saving = next.catch((err) => this.options.log.error(`cannot save alert state: ${String(err)}`));
    return next.catch(() => {});
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
    };
  }

  /** Applies what the rules see now; never waits for a plugin. */
  async evaluate(conditions: AlertCondition[]): Promise<void> {
    // Resolves owed from before a restart or a change of leader go out first, exactly once.
    for (const rec of Object.values(this.records)) if (rec.state === "resolved" && !this.resolving.has(rec.key)) this.sendResolve(rec);
    const seen = new Set<string>();
    const changed = new Set<string>();
    const nowIso = new Date(this.now()).toISOString();
    for (const c of conditions) {
      seen.add(c.key);
      let rec = this.records[c.key];
      if (!rec || rec.state === "resolved") {
        // A resolved alert that fires again is a new incident; its old resolve stays owed.
        if (rec?.state === "resolved" && rec.resolvePending.length) continue;
        rec = { ...c, state: c.state, startsAt: nowIso, firedTo: [], deliveredTo: [], resolvePending: [] };
        this.records[c.key] = rec;
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
    for (const rec of Object.values(this.records)) {
      if (seen.has(rec.key) || rec.state === "resolved") continue;
      changed.add(rec.key);
      if (rec.state === "pending") {
        delete this.records[rec.key];
        continue;
      }
      rec.state = "resolved";
      rec.endsAt = nowIso;
      rec.resolvePending = this.options.sendResolved ? [...rec.firedTo] : [];
      this.options.log.info({ alert: rec.key }, `alert resolved: ${rec.key}`);
      this.sendResolve(rec);
    }
    for (const key of changed) await this.persist(key);
  }

  private fire(rec: AlertRecord): void {
    rec.lastSentAt = this.now();
    rec.firedTo = this.options.targets.map((t) => t.name);
    this.options.log.warn({ alert: rec.key, severity: rec.severity }, `alert firing: ${rec.summary}`);
    for (const t of this.options.targets) {
      if (t.groups && this.options.groupWait > 0) continue;
      t.enqueue({ notification: this.notification(rec, "firing"), onResult: (ok) => ok && this.markDelivered(rec.key, t.name) });
    }
    if (this.options.groupWait > 0) this.addToGroup(rec);
  }

  private markDelivered(key: string, plugin: string): void {
    const current = this.records[key];
    if (current && !current.deliveredTo.includes(plugin)) {
      current.deliveredTo.push(plugin);
      void this.persist(key);
    }
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
        if (!members.length) return;
        const notifications = members.map((m) => this.notification(m, "firing"));
        const notification: Notification =
          notifications.length === 1
            ? notifications[0]
            : { ...notifications[0], key: `${rec.rule}/group`, summary: `${notifications.length} alerts: ${rec.rule}`, group: notifications };
        for (const t of this.options.targets) {
          if (!t.groups) continue;
          t.enqueue({ notification, onResult: (ok) => ok && members.forEach((m) => this.markDelivered(m.key, t.name)) });
        }
      }, this.options.groupWait * 1000),
    };
    this.groups.set(rec.rule, group);
  }

  private sendResolve(rec: AlertRecord): void {
    this.resolving.add(rec.key);
    if (!rec.resolvePending.length) {
      delete this.records[rec.key];
      return;
    }
    for (const t of this.options.targets) {
      if (!rec.resolvePending.includes(t.name)) continue;
      t.enqueue({
        notification: this.notification(rec, "resolved"),
        // Decided when its turn comes: a firing still being retried ahead of it may yet land.
        shouldSend: () => (this.records[rec.key]?.deliveredTo ?? rec.deliveredTo).includes(t.name),
        onResult: () => {
          const current = this.records[rec.key];
          if (!current || current.state !== "resolved") return;
          // Delivered or not, this resolve is settled: a repeat would be a duplicate.
          current.resolvePending = current.resolvePending.filter((p) => p !== t.name);
          if (!current.resolvePending.length) {
            delete this.records[rec.key];
            this.resolving.delete(rec.key);
          }
          void this.persist(rec.key);
        },
      });
    }
  }

  /** Waits until every queued delivery was attempted and the state saved (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all(this.options.targets.map((t) => t.idle()));
    await this.saving;
  }

  stop(): void {
    for (const g of this.groups.values()) clearTimeout(g.timer);
  }
}
