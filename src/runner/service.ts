/**
 * The runner's service: systemd (`systemctl is-active|start|stop <unit from .service>`), the
 * runner's own svc.sh, custom commands, or none. Default (`auto`): systemd when the dir has a
 * `.service` file, else none.
 *
 * The agent may run as root, and the runner dir belongs to the runner's user (and so to its
 * jobs): svc.sh and custom commands run as that user with a clean environment, and the unit
 * name read from `.service` is used only when it is an actions runner unit, so a job cannot make
 * the agent start `debug-shell.service` (SPEC 15).
 */
import { join } from "node:path";
import type { Runtime, SpawnResult } from "../runtime/types.ts";
import type { ServiceSpec } from "../config/types.ts";
import { runnerEnv, switchTo, type SystemUser } from "../privsep/index.ts";
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

/**
 * What svc.sh installs: actions.runner.<owner-repo | org | enterprises-slug>.<name>.service, in
 * systemd's unit-name alphabet (no "/", no leading "-" that systemctl would read as a flag).
 */
const RUNNER_UNIT_RE = /^actions\.runner\.[A-Za-z0-9_.\\:-]+\.service$/;

export function isRunnerUnitName(unit: string): boolean {
  return RUNNER_UNIT_RE.test(unit) && unit.length <= 255;
}

/** What `systemctl is-active` prints, or a unit's ActiveState, as the agent acts on it. */
function activeState(state: string): ServiceState {
  if (state === "active" || state === "activating" || state === "reloading") return "active";
  if (state === "inactive" || state === "failed" || state === "deactivating") return "inactive";
  // Anything else (no bus, no unit) is not a reason to act.
  return "unknown";
}

/** A unit as `systemctl show` describes it: its state, and its main process while it runs (0: none). */
export interface UnitInfo {
  state: ServiceState;
  mainPid: number;
}

/**
 * Many runner units from one `systemctl show --property=Id,ActiveState,MainPID u1 u2 …` (one
 * process per pass instead of one `is-active` per runner). Only actions runner unit names are
 * asked about; a unit missing from the answer (systemctl failed, output not understood) is
 * missing from the map, and its control falls back to `is-active`.
 */
export async function systemdUnits(runtime: Runtime, units: string[]): Promise<Map<string, UnitInfo>> {
  const asked = [...new Set(units.filter(isRunnerUnitName))];
  const infos = new Map<string, UnitInfo>();
  if (asked.length === 0) return infos;
  const r = await runtime.spawn("systemctl", ["show", "--property=Id,ActiveState,MainPID", ...asked], { timeoutMs: TIMEOUT_MS, env: childEnv() });
  if (r.spawnError || r.code !== 0) return infos;
  // One block per unit, in the order asked, separated by an empty line.
  const blocks = r.stdout.split(/\n[ \t]*\n/).map((b) => b.trim()).filter(Boolean);
  if (blocks.length !== asked.length) return infos;
  asked.forEach((unit, i) => {
    const state = /^ActiveState=(.*)$/m.exec(blocks[i]);
    const pid = /^MainPID=(\d+)$/m.exec(blocks[i]);
    if (state) infos.set(unit, { state: activeState(state[1].trim()), mainPid: pid ? Number(pid[1]) : 0 });
  });
  return infos;
}

/** The states alone (see systemdUnits). */
export async function systemdUnitStates(runtime: Runtime, units: string[]): Promise<Map<string, ServiceState>> {
  return new Map([...(await systemdUnits(runtime, units))].map(([unit, info]) => [unit, info.state]));
}

export function resolveServiceKind(spec: ServiceSpec, serviceUnit: string | null): Exclude<ServiceSpec["kind"], "auto"> {
  if (spec.kind !== "auto") return spec.kind;
  return serviceUnit ? "systemd" : "none";
}

/**
 * `known`: the unit's state from this pass's systemdUnitStates, answered by the first `status()`
 * (a start or stop forgets it; later calls ask systemctl).
 */
export function createServiceControl(runtime: Runtime, spec: ServiceSpec, dir: string, serviceUnit: string | null, runAs: SystemUser, known?: ServiceState): ServiceControl {
  const kind = resolveServiceKind(spec, serviceUnit);
  // systemctl is the agent's own tool (and the unit name is checked); anything from the runner
  // dir or the config's custom commands runs as the runner's user.
  const asAgent = (cmd: string, args: string[]) => runtime.spawn(cmd, args, { cwd: dir, timeoutMs: TIMEOUT_MS, env: childEnv() });
  const asRunner = (cmd: string, args: string[]) =>
    runtime.spawn(cmd, args, { cwd: dir, timeoutMs: TIMEOUT_MS, inheritEnv: false, env: runnerEnv(runtime, runAs), user: switchTo(runtime, runAs) });
  const failed = (message: string): SpawnResult => ({ code: 1, signal: null, stdout: "", stderr: message, timedOut: false });
  switch (kind) {
    case "systemd": {
      const unit = serviceUnit && isRunnerUnitName(serviceUnit) ? serviceUnit : null;
      let prefetched = unit && known !== "unknown" ? known : undefined;
      const refuse = () =>
        failed(serviceUnit ? `refusing unit "${serviceUnit.slice(0, 80)}" from ${dir}/.service: not an actions.runner.*.service name (reinstall the service with svc.sh install)` : "no .service file: install the service with svc.sh install");
      return {
        kind,
        async status() {
          if (!unit) return "unknown";
          if (prefetched !== undefined) {
            const state = prefetched;
            prefetched = undefined;
            return state;
          }
          const r = await asAgent("systemctl", ["is-active", unit]);
          if (r.spawnError) return "unknown";
          // is-active prints one word.
          return activeState(r.stdout.trim());
        },
        start: () => ((prefetched = undefined), unit ? asAgent("systemctl", ["start", unit]) : Promise.resolve(refuse())),
        stop: () => ((prefetched = undefined), unit ? asAgent("systemctl", ["stop", unit]) : Promise.resolve(refuse())),
      };
    }
    case "svc.sh":
      return {
        kind,
        async status() {
          const r = await asRunner(join(dir, "svc.sh"), ["status"]);
          if (r.spawnError) return "unknown";
          return SVC_STATUS_RE.test(r.stdout) ? "active" : "inactive";
        },
        start: () => asRunner(join(dir, "svc.sh"), ["start"]),
        stop: () => asRunner(join(dir, "svc.sh"), ["stop"]),
      };
    case "custom": {
      const custom = spec as Extract<ServiceSpec, { kind: "custom" }>;
      return {
        kind,
        async status() {
          const r = await asRunner(custom.status[0], custom.status.slice(1));
          if (r.spawnError) return "unknown";
          // Like `systemctl is-active`: exit 0 means running.
          return r.code === 0 ? "active" : "inactive";
        },
        start: () => asRunner(custom.start[0], custom.start.slice(1)),
        stop: () => asRunner(custom.stop[0], custom.stop.slice(1)),
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
