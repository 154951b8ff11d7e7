/**
 * Fleet mode's JIT broker (SPEC 14): agents without GitHub credentials ask on
 * `<prefix>.jit.<encoded scope>` with `{"v":1,"host","pool","name"}`; the leader collector checks
 * the asker as the token broker does (its reply inbox is its identity, authz.ts), that the pool is
 * one of its own `fleet.pools` for that scope and lists the host, and that the runner name is
 * the host's own (`<pool>-<host>-...`), then calls generate-jitconfig with the labels, group and
 * work folder of its own entry. The reply `{runner_id, name, encoded_jit_config}` carries the
 * runner's credentials: it is never stored, logged or published.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { errorMessage } from "../shared/errors.ts";
import type { Logger } from "../shared/logger.ts";
import { scopeKey } from "../shared/scope.ts";
import { hostOfInbox } from "../nats/subjects.ts";
import type { GitHubClient } from "../github/client.ts";
import type { FileConfig } from "../config/schema.ts";
import { generateJitConfig, resolveGroupId } from "../pool/github.ts";
import { nameBelongsTo } from "../pool/report.ts";
import { hostMatches, type Decision, type RefusalReason } from "./authz.ts";
import { scopeFromSubject } from "./keys.ts";
import { RefusalReporter } from "./refusal.ts";

export type FleetPool = NonNullable<FileConfig["fleet"]["pools"]>[number];

export class JitBroker {
  private sub: Subscription | null = null;
  private readonly groups = new Map<string, number>();
  private readonly refusals: RefusalReporter;
  readonly answered = { runner: 0, error: 0, refused: 0 };

  constructor(
    private readonly options: { nc: NatsConnection; prefix: string; github: GitHubClient; pools: FleetPool[]; log: Logger; collector: { host: string; runtime: string }; now?: () => number },
  ) {
    this.refusals = new RefusalReporter({ nc: options.nc, prefix: options.prefix, log: options.log, collector: options.collector, now: () => (options.now ?? Date.now)() });
  }

  private decide(subject: string, reply: string | undefined, data: Uint8Array): { ok: true; pool: FleetPool; host: string; name: string } | Extract<Decision, { ok: false }> {
    const scope = scopeFromSubject(subject);
    let body: { v?: unknown; host?: unknown; pool?: unknown; name?: unknown } | null = null;
    try {
      body = JSON.parse(new TextDecoder().decode(data));
    } catch {
      body = null;
    }
    const inboxHost = hostOfInbox(reply);
    const claimedHost = typeof body?.host === "string" ? body.host : null;
    const refuse = (reason: RefusalReason, error: string) => ({ ok: false as const, reason, error, host: inboxHost ?? claimedHost, claimedHost, inboxHost, scope });
    if (!scope || body?.v !== 1 || !claimedHost || typeof body.pool !== "string" || typeof body.name !== "string") {
      return refuse("bad_request", 'expected a request on <prefix>.jit.<encoded scope> with body {"v":1,"host":...,"pool":...,"name":...}');
    }
    if (!inboxHost) return refuse("no_inbox", "the reply subject is not a host inbox (_INBOX_<encoded host>.…)");
    if (inboxHost !== claimedHost) return refuse("host_mismatch", `the request names host ${claimedHost} but its reply inbox belongs to host ${inboxHost}`);
    const pool = this.options.pools.find((p) => p.name === body!.pool && scopeKey(p.scope) === scopeKey(scope));
    if (!pool) return refuse("pool_not_brokered", `pool ${body.pool} for ${scopeKey(scope)} is not in this collector's fleet.pools`);
    if (!pool.hosts.some((p) => hostMatches(p, inboxHost))) return refuse("host_not_allowed", `host ${inboxHost} is not in fleet.pools[${pool.name}].hosts of this collector`);
    if (!nameBelongsTo(body.name, pool.name, inboxHost)) return refuse("bad_name", `runner name ${body.name} is not one of host ${inboxHost}'s names for pool ${pool.name} (<pool>-<host>-<slot>-<8 hex>)`);
    return { ok: true, pool, host: inboxHost, name: body.name };
  }

  private async answer(subject: string, reply: string | undefined, data: Uint8Array): Promise<Record<string, unknown>> {
    const d = this.decide(subject, reply, data);
    if (!d.ok) {
      this.answered.refused++;
      this.refusals.report(d);
      return { error: d.error };
    }
    const { pool } = d;
    const signal = AbortSignal.timeout(25_000);
    try {
      let groupId = pool.groupId ?? this.groups.get(pool.name);
      if (groupId === undefined) {
        groupId = pool.group ? await resolveGroupId(this.options.github, pool.scope, pool.group, `fleet.pools[${pool.name}]`, signal) : 1;
        this.groups.set(pool.name, groupId);
      }
      const jit = await generateJitConfig(this.options.github, pool.scope, { name: d.name, runnerGroupId: groupId, labels: pool.labels, workFolder: pool.workFolder }, signal);
      if (jit === "name_taken") return { error: `GitHub already has a runner named ${d.name}`, name_taken: true };
      this.answered.runner++;
      this.options.log.info({ host: d.host, pool: pool.name, runner: jit.name, runner_id: jit.id }, `JIT runner ${jit.name} minted for host ${d.host}`);
      return { runner_id: jit.id, name: jit.name, encoded_jit_config: jit.encodedJitConfig };
    } catch (err) {
      this.answered.error++;
      return { error: errorMessage(err) };
    }
  }

  start(): void {
    if (this.sub) return;
    this.sub = this.options.nc.subscribe(`${this.options.prefix}.jit.*`, {
      callback: (err, msg) => {
        if (err) return;
        void this.answer(msg.subject, msg.reply, msg.data).then((reply) => msg.respond(new TextEncoder().encode(JSON.stringify(reply))));
      },
    });
    this.options.log.info({ pools: this.options.pools.map((p) => p.name) }, "JIT broker answering");
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = null;
  }
}
