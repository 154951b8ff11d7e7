/** The resolved configuration the rest of the program works with. */
import type { Scope } from "../shared/scope.ts";
import type { FileConfig } from "./schema.ts";

export type ServiceSpec =
  | { kind: "systemd" }
  | { kind: "svc.sh" }
  | { kind: "none" }
  | { kind: "custom"; start: string[]; stop: string[]; status: string[] }
  /** Not set in config: systemd when the dir has a `.service` file, else none (decided per pass). */
  | { kind: "auto" };

export interface RunnerConfig {
  dir: string;
  scope: Scope;
  name: string;
  url: string;
  labels: string[];
  /** runners[].labels was given (even []): the agent keeps the custom labels at GitHub equal to it. Absent: left alone. */
  manageLabels?: boolean;
  group?: string;
  ephemeral: boolean;
  work?: string;
  service: ServiceSpec;
  offlineGrace: number;
  offlineWarnAfter: number;
  runAs?: string;
}

/** A pool of ephemeral JIT runners (SPEC 14), paths resolved. */
export interface PoolConfig {
  name: string;
  scope: Scope;
  size: number;
  labels: string[];
  /** The runner group: by name (resolved once per scope) or by id; neither = Default (id 1). */
  group?: string;
  groupId?: number;
  template: string;
  baseDir: string;
  runAs: string;
  workFolder: string;
}

export type GitHubAuth =
  | { kind: "token"; token: string }
  | { kind: "app"; appId: number; privateKey: string; installationId?: number }
  /** Several Apps (`github.auth.apps`), in the configured order (src/github/credentials.ts). */
  | { kind: "apps"; apps: { appId: number; privateKey: string; installationId?: number }[] };

export interface NatsConfig {
  servers: string[];
  credsFile?: string;
  user?: string;
  password?: string;
  token?: string;
  tls?: { ca?: string; cert?: string; key?: string };
  prefix: string;
  name: string;
  /** Set in the config; unset, agents use `_INBOX_<encoded name>` and the collector nats.js's `_INBOX`. */
  inboxPrefix?: string;
  /** Replicas of the stream and buckets this process creates (the loader's default is 1). */
  replicas?: number;
}

export interface AgentConfig {
  /** The config file's path as shown in messages, or null for an env/flags-only setup. */
  configFile: string | null;
  configDir: string;
  host: string;
  github: { url: string; apiUrl: string; auth: GitHubAuth | null; statusInterval: number; requestTimeout: number };
  runners: RunnerConfig[];
  pools: PoolConfig[];
  refresh: FileConfig["refresh"];
  state: { dir: string; metricsFile: string };
  nats: NatsConfig | null;
  http: { listen?: string; authToken?: string };
  collector: FileConfig["collector"];
  fleet: FileConfig["fleet"];
  alerts: FileConfig["alerts"];
  log: { level: string; file?: string };
  dryRun: boolean;
  json: boolean;
}
