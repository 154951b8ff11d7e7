// Hosts for the benchmarks: runner dirs already registered at the fake GitHub (so a steady pass is
// what is measured, not a first registration), and the agent config file that points at them.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FakeGitHub } from "../../test/helpers/fake-github.ts";
import { makeRunnerDir, type FakeRunnerDir } from "../../test/helpers/runner-dir.ts";

export interface BenchHost {
  name: string;
  dir: string;
  configPath: string;
  stateDir: string;
  runners: { name: string; dir: string; id: number }[];
}

export interface HostOptions {
  github: FakeGitHub;
  natsUrl?: string;
  runners: number;
  /** GitHub org of every runner of this host. */
  org?: string;
  /** Keys under `refresh:` and `github:` (e.g. { interval: 1 }). */
  refresh?: Record<string, number | string>;
  githubOptions?: Record<string, number | string>;
  /** More top-level YAML lines (e.g. "fleet: { enabled: true }"). */
  extra?: string;
  logLevel?: string;
  /** Serve /metrics on this HOST:PORT (default 127.0.0.1:0, any free port). */
  listen?: string;
  /**
   * "command" (default): a status command per runner per pass (`/bin/true`); "systemd": a `.service`
   * unit per runner and `service: systemd`, answered by the stand-in systemctl in `binDir` (put it
   * first on the daemon's PATH); "none": no service.
   */
  service?: "command" | "none" | "systemd";
}

/**
 * Each runner's service is a custom command (`/bin/true`), so every pass spawns one status process
 * per runner as `systemctl is-active` would, without needing systemd on the bench machine.
 */
const SERVICE = '{ status: ["/bin/true"], start: ["/bin/true"], stop: ["/bin/true"] }';

/**
 * A stand-in `systemctl` (no systemd on the bench machine): every unit is active; `show` prints one
 * Id/ActiveState/MainPID block per unit, as systemctl does. The main process is a `sleep` the
 * factory keeps running (one for every unit: a real unit's is its own runsvc.sh, which costs the
 * agent the same one /proc read).
 */
const systemctl = (mainPid: number) => `#!/bin/sh
case "$1" in
  show) shift; shift; sep=""; for u in "$@"; do printf '%sId=%s\nActiveState=active\nMainPID=${mainPid}\n' "$sep" "$u"; sep="
"; done ;;
  is-active) echo active ;;
esac
`;

export class HostFactory {
  private readonly made: FakeRunnerDir[] = [];
  private root = "";
  private count = 0;
  private main: ChildProcess | null = null;

  async init(): Promise<this> {
    this.root = await mkdtemp(join(tmpdir(), "rtr-bench-hosts-"));
    await mkdir(this.binDir, { recursive: true });
    this.main = spawn("sleep", ["86400"], { stdio: "ignore" });
    await writeFile(join(this.binDir, "systemctl"), systemctl(this.main.pid ?? 0), { mode: 0o755 });
    return this;
  }

  /** Holds the stand-in systemctl for `service: "systemd"` hosts. */
  get binDir(): string {
    return join(this.root, "bin");
  }

  async host(name: string, o: HostOptions): Promise<BenchHost> {
    const org = o.org ?? "acme";
    const base = join(this.root, `${this.count++}-${name}`);
    await mkdir(base, { recursive: true });
    const runners: BenchHost["runners"] = [];
    for (let i = 1; i <= o.runners; i++) {
      const runnerName = `${name}-r${i}`;
      const dir = await makeRunnerDir({ github: o.github, ...(o.service === "systemd" ? { serviceFile: true, serviceUnit: `actions.runner.${org}.${runnerName}.service` } : {}) });
      this.made.push(dir);
      const gh = o.github.addRunner({ name: runnerName, scope: `org:${org}`, status: "online" });
      dir.writeRunnerFiles({ agentId: gh.id, name: runnerName, url: `https://github.com/${org}` });
      runners.push({ name: runnerName, dir: dir.dir, id: gh.id });
    }
    const stateDir = join(base, "state");
    const kv = (o2: Record<string, number | string> | undefined) =>
      Object.entries(o2 ?? {})
        .map(([k, v]) => `${k}: ${v}`)
        .join(", ");
    const yaml = [
      `github: { apiUrl: "${o.github.url}"${o.githubOptions ? `, ${kv(o.githubOptions)}` : ""} }`,
      o.refresh ? `refresh: { ${kv(o.refresh)} }` : "",
      `state: { dir: ${stateDir} }`,
      o.natsUrl ? `nats: { servers: [${o.natsUrl}], name: ${name} }` : "",
      `http: { listen: "${o.listen ?? "127.0.0.1:0"}" }`,
      `log: { level: ${o.logLevel ?? "info"} }`,
      o.extra ?? "",
      "runners:",
      ...runners.map((r) => `  - { dir: ${r.dir}, scope: { org: ${org} }, name: ${r.name}, service: ${o.service === "none" ? "none" : o.service === "systemd" ? "systemd" : SERVICE} }`),
      "",
    ].filter((l) => l !== "");
    const configPath = join(base, "config.yaml");
    await writeFile(configPath, yaml.join("\n") + "\n");
    return { name, dir: base, configPath, stateDir, runners };
  }

  async close(): Promise<void> {
    this.main?.kill("SIGKILL");
    for (const d of this.made) await d.cleanup();
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}
