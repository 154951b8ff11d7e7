/**
 * Fleet mode, agent side (SPEC 9): runner status from KV bucket RTR_GITHUB instead of GitHub
 * calls, and registration tokens from the collector's broker over NATS request/reply. Uses the
 * agent's NATS connection (the publisher's); every call is bounded.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { listKeys } from "../nats/kv-keys.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { addSecret } from "../shared/redact.ts";
import type { Scope } from "../shared/scope.ts";
import type { RegistrationToken } from "../github/client.ts";
import type { NatsNames } from "../nats/subjects.ts";
import { jitSubject, brokerSubject, pollMarkerKey, runnerKey, scopeToken, type FleetRunnerEntry, type PollMarker } from "./keys.ts";

const REQUEST_TIMEOUT_MS = 5000;
/** generate-jitconfig is one GitHub call behind the broker: give it GitHub's time. */
const JIT_TIMEOUT_MS = 30_000;

export class FleetAgentClient {
  private kv: Promise<KV> | null = null;

  constructor(
    private readonly connection: () => Promise<NatsConnection | null>,
    private readonly names: NatsNames,
    private readonly who: { host: string },
  ) {}

  private async nc(): Promise<NatsConnection> {
    const nc = await this.connection();
    if (!nc) throw new Error("NATS is not connected");
    return nc;
  }

  private async bucket(): Promise<KV> {
    // Direct gets name the key in the subject, so NATS permissions can limit a host to its own
    // scopes' keys (docs/nats.md); the collector creates the bucket with allow_direct.
    this.kv ??= this.nc().then((nc) => new Kvm(nc).open(this.names.githubBucket, { allow_direct: true }));
    try {
      return await this.kv;
    } catch (err) {
      this.kv = null;
      throw err;
    }
  }

  /** A token from the broker; throws when it is unreachable or answers an error. */
  async token(scope: Scope, runner: string | null): Promise<RegistrationToken> {
    const nc = await this.nc();
    const body = JSON.stringify({ v: 1, host: this.who.host, runner });
    const msg = await nc.request(brokerSubject(this.names.prefix, scope), new TextEncoder().encode(body), { timeout: REQUEST_TIMEOUT_MS });
    const reply = msg.json<{ token?: string; expires_at?: string; error?: string }>();
    if (reply.error) throw new Error(`the token broker refused: ${reply.error}`);
    if (!reply.token || !reply.expires_at) throw new Error("the token broker's answer has no token");
    const expiresAt = new Date(reply.expires_at);
    addSecret(reply.token, expiresAt);
    return { token: reply.token, expiresAt };
  }

  /**
   * A JIT runner for one of this host's pools, from the broker (SPEC 14): the collector decides
   * labels, group and work folder. "name_taken" when GitHub already has the name.
   */
  async jit(scope: Scope, pool: string, name: string): Promise<{ id: number; name: string; encodedJitConfig: string } | "name_taken"> {
    const nc = await this.nc();
    const body = JSON.stringify({ v: 1, host: this.who.host, pool, name });
    const msg = await nc.request(jitSubject(this.names.prefix, scope), new TextEncoder().encode(body), { timeout: JIT_TIMEOUT_MS });
    const reply = msg.json<{ runner_id?: number; name?: string; encoded_jit_config?: string; error?: string; name_taken?: boolean }>();
    if (reply.name_taken) return "name_taken";
    if (reply.error) throw new Error(`the broker refused the JIT runner: ${reply.error}`);
    if (!reply.encoded_jit_config || typeof reply.runner_id !== "number") throw new Error("the broker's JIT answer has no runner_id or encoded_jit_config");
    addSecret(reply.encoded_jit_config, new Date(Date.now() + 6 * 24 * 3600_000));
    return { id: reply.runner_id, name: reply.name ?? name, encodedJitConfig: reply.encoded_jit_config };
  }

  async marker(scope: Scope): Promise<PollMarker | null> {
    const entry = await (await this.bucket()).get(pollMarkerKey(scope));
    return entry?.operation === "PUT" ? entry.json<PollMarker>() : null;
  }

  async runner(scope: Scope, id: number): Promise<FleetRunnerEntry | null> {
    const entry = await (await this.bucket()).get(runnerKey(scope, id));
    return entry?.operation === "PUT" ? entry.json<FleetRunnerEntry>() : null;
  }

  async findByName(scope: Scope, name: string): Promise<FleetRunnerEntry[]> {
    const kv = await this.bucket();
    const out: FleetRunnerEntry[] = [];
    for (const key of await listKeys(kv, `${scopeToken(scope)}.*`)) {
      if (key.endsWith("._poll")) continue;
      const e = await kv.get(key);
      if (e?.operation !== "PUT") continue;
      const r = e.json<FleetRunnerEntry>();
      if (r.name === name) out.push(r);
    }
    return out;
  }
}

/** The poll is fresh when it finished within three poll intervals. */
export function markerFresh(marker: PollMarker | null, pollInterval: number, nowMs: number): boolean {
  return marker !== null && nowMs - Date.parse(marker.finished) <= 3 * pollInterval * 1000;
}
