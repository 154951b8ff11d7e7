/**
 * The runner's service: systemd (`systemctl is-active|start|stop <unit from .service>`), the
 * runner's own svc.sh, custom commands, or none. Default (`auto`): systemd when the dir has a
 * `.service` file, else none.
 */
import { join } from "node:path";
import type { Runtime, SpawnResult } from "../runtime/types.ts";
import type { ServiceSpec } from "../config/types.ts";
import { childEnv } from "./child-env.ts";

export type ServiceState = "active" | "inactive" | "unknown";

export interface ServiceControl {
  readonly kind: "systemd" | "svc.sh" | "custom" | "none";
  status(): Promise<ServiceState>;
  start(): Promise<SpawnResult>;
  stop(): Promise<SpawnResult>;
}

const TIMEOUT_MS = 60_000;
const SVC_STATUS_RE = /Active:\s+active|active \(running\)/;

export function resolveServiceKind(spec: ServiceSpec, serviceUnit: string | null): Exclude<ServiceSpec["kind"], "auto"> {
  if (spec.kind !== "auto") return spec.kind;
  return serviceUnit ? "systemd" : "none";
}

export function createServiceControl(runtime: Runtime, spec: ServiceSpec, dir: string, serviceUnit: string | null): ServiceControl {
  const kind = resolveServiceKind(spec, serviceUnit);
  const run = (cmd: string, args: string[]) => runtime.spawn(cmd, args, { cwd: dir, timeoutMs: TIMEOUT_MS, env: childEnv() });
  const failed = (message: string): SpawnResult => ({ code: 1, signal: null, stdout: "", stderr: message, timedOut: false });
  switch (kind) {
    case "systemd":
      return {
        kind,
        async status() {
          if (!serviceUnit) return "unknown";
          const r = await run("systemctl", ["is-active", serviceUnit]);
          if (r.spawnError) return "unknown";
          // is-active prints one word; anything else (no bus, no unit) is not a reason to act.
          const state = r.stdout.trim();
          if (state === "active" || state === "activating" || state === "reloading") return "active";
          if (state === "inactive" || state === "failed" || state === "deactivating") return "inactive";
          return "unknown";
        },
        start: () => (serviceUnit ? run("systemctl", ["start", serviceUnit]) : Promise.resolve(failed("no .service file: install the service with svc.sh install"))),
        stop: () => (serviceUnit ? run("systemctl", ["stop", serviceUnit]) : Promise.resolve(failed("no .service file"))),
      };
    case "svc.sh":
      return {
        kind,
        async status() {
          const r = await run(join(dir, "svc.sh"), ["status"]);
          if (r.spawnError) return "unknown";
          return SVC_STATUS_RE.test(r.stdout) ? "active" : "inactive";
        },
        start: () => run(join(dir, "svc.sh"), ["start"]),
        stop: () => run(join(dir, "svc.sh"), ["stop"]),
      };
    case "custom": {
      const custom = spec as Extract<ServiceSpec, { kind: "custom" }>;
      return {
        kind,
        async status() {
          const r = await run(custom.status[0], custom.status.slice(1));
          if (r.spawnError) return "unknown";
          // Like `systemctl is-active`: exit 0 means running.
          return r.code === 0 ? "active" : "inactive";
        },
        start: () => run(custom.start[0], custom.start.slice(1)),
        stop: () => run(custom.stop[0], custom.stop.slice(1)),
      };
    }
    default:
      return {
        kind: "none",
        status: async () => "unknown",
        start: async () => ({ code: 0, signal: null, stdout: "", stderr: "", timedOut: false }),
        stop: async () => ({ code: 0, signal: null, stdout: "", stderr: "", timedOut: false }),
      };
  }
}
