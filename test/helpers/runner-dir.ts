// A throw-away runner root whose config.sh / svc.sh behave like the real actions runner's (flags,
// environment inputs, messages, exit codes, state files) and talk to a fake GitHub, so the product
// spawns real processes in tests. The stand-ins' logic is in ./runner-standin/*.mjs.
import { accessSync, chmodSync, constants as fsConstants, readFileSync, writeFileSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";
import { chownTree, ensureUser, IS_ROOT, JOB_USER, type TestUser } from "./users.ts";

export type ConfigMode = "normal" | "hang" | "slow" | "exists" | "fail" | "no-runner-file";

export interface Invocation {
  script: "config.sh" | "svc.sh";
  argv: string[];
  env: { ACTIONS_RUNNER_INPUT_TOKEN_present: boolean; RUNNER_ALLOW_RUNASROOT: string | null; inputs: string[]; names: string[] };
  /** The uid the stand-in ran as. */
  uid: number;
  pid: number;
  time: number;
}

export interface FakeRunnerDir {
  dir: string;
  /** The user that owns the dir (and so runs config.sh and the jobs); null when the tests are not root. */
  owner: TestUser | null;
  /** Every invocation with its uid and environment names. */
  invocationLog(): Invocation[];
  argvLog(): string[][];
  invocations(script: "config.sh" | "svc.sh"): { argv: string[]; tokenFromEnv: boolean }[];
  serviceState(): "active" | "inactive";
  setServiceState(s: "active" | "inactive"): void;
  setConfigMode(mode: ConfigMode): void;
  writeRunnerFiles(opts: { agentId: number; name: string; url: string; bom?: boolean; migrated?: boolean }): void;
  cleanup(): Promise<void>;
}

export interface MakeRunnerDirOptions {
  github: { url: string };
  /** Write a `.service` file, as `svc.sh install` would have. */
  serviceFile?: boolean;
  /** Unit name for `serviceFile`; default "actions.runner.acme.runner-1.service". */
  serviceUnit?: string;
  /** Make config.sh refuse to run as root without RUNNER_ALLOW_RUNASROOT (like FAKE_RUNNER_CHECK_ROOT=1). */
  checkRoot?: boolean;
  /**
   * Who owns the dir, as on a real host where the runner has its own user. Default (as root): the
   * test user rtr-job, so config.sh runs as it; "root" leaves it root's (the agent then refuses it
   * unless runAs says root).
   */
  owner?: string | "root";
}

const STANDINS = ["common.mjs", "config.mjs", "svc.mjs"];
const BOM = "\uFEFF";

export async function makeRunnerDir(opts: MakeRunnerDirOptions): Promise<FakeRunnerDir> {
  const dir = await mkdtemp(join(tmpdir(), "fake-runner-"));
  const fake = join(dir, ".fake");
  await mkdir(join(fake, "pids"), { recursive: true });
  for (const f of STANDINS) await copyFile(new URL(`./runner-standin/${f}`, import.meta.url), join(fake, f));
  await writeFile(join(fake, "github-url"), opts.github.url);
  await writeFile(join(fake, "config-mode"), "normal");
  await writeFile(join(fake, "service-state"), "inactive");
  await writeFile(join(fake, "argv.log"), "");
  if (opts.checkRoot) await writeFile(join(fake, "check-root"), "");
  const node = shellQuote(findNode());
  for (const [script, entry] of [["config.sh", "config.mjs"], ["svc.sh", "svc.mjs"]]) {
    // An absolute node path: the product may spawn with a minimal environment (no PATH).
    await writeFile(
      join(dir, script),
      [
        "#!/bin/sh",
        "# Test stand-in for the actions runner script (test/helpers/runner-dir.ts).",
        'FAKE_RUNNER_ROOT="$(cd "$(dirname "$0")" && pwd)"',
        "export FAKE_RUNNER_ROOT",
        `exec ${node} "$FAKE_RUNNER_ROOT/.fake/${entry}" "$@"`,
        "",
      ].join("\n"),
    );
    await chmod(join(dir, script), 0o755);
  }
  if (opts.serviceFile) {
    await writeFile(join(dir, ".service"), `${opts.serviceUnit ?? "actions.runner.acme.runner-1.service"}\n`);
  }
  const owner = IS_ROOT && opts.owner !== "root" ? ensureUser(opts.owner ?? JOB_USER) : null;
  if (owner) chownTree(dir, owner);

  const readLog = (): Invocation[] =>
    readFileSync(join(fake, "argv.log"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as Invocation);

  return {
    dir,
    owner,
    invocationLog: readLog,
    argvLog: () => readLog().map((e) => e.argv),
    invocations: (script) =>
      readLog()
        .filter((e) => e.script === script)
        .map((e) => ({ argv: e.argv, tokenFromEnv: e.env.ACTIONS_RUNNER_INPUT_TOKEN_present })),
    serviceState: () =>
      readFileSync(join(fake, "service-state"), "utf8").trim() === "active" ? "active" : "inactive",
    setServiceState: (s) => writeFileSync(join(fake, "service-state"), s),
    setConfigMode: (mode) => writeFileSync(join(fake, "config-mode"), mode),
    writeRunnerFiles: (o) => writeRunnerFiles(dir, o),
    async cleanup() {
      // Stand-ins the product left behind (a hung config.sh) would otherwise outlive the test.
      for (const pid of await readdir(join(fake, "pids")).catch(() => [] as string[])) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // already gone
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function writeRunnerFiles(
  dir: string,
  o: { agentId: number; name: string; url: string; bom?: boolean; migrated?: boolean },
): void {
  const prefix = o.bom === false ? "" : BOM;
  const write = (name: string, value: unknown, mode?: number) => {
    writeFileSync(join(dir, name), prefix + JSON.stringify(value, null, 2));
    if (mode) chmodSync(join(dir, name), mode);
  };
  const runner = {
    agentId: o.agentId,
    agentName: o.name,
    poolId: 1,
    poolName: "Default",
    serverUrl: "https://pipelines.actions.githubusercontent.com/xyz",
    gitHubUrl: o.url,
    workFolder: "_work",
  };
  const credentials = {
    scheme: "OAuth",
    data: {
      clientId: crypto.randomUUID(),
      authorizationUrl: "https://vstoken.actions.githubusercontent.com/_apis/oauth2/token/xyz",
      requireFipsCryptography: "False",
    },
  };
  write(".runner", runner);
  write(".credentials", credentials);
  write(".credentials_rsaparams", { d: "ZmFrZQ==", exponent: "AQAB", modulus: "ZmFrZQ==" }, 0o600);
  if (o.migrated) {
    // Migrated runners keep the old files and add the v2 ones, which the runner reads first.
    write(".runner_migrated", { ...runner, useV2Flow: true, serverUrlV2: "https://broker.actions.githubusercontent.com/" });
    write(".credentials_migrated", credentials);
  }
}

/** Under Deno, process.execPath is deno itself; the stand-ins need node. */
function findNode(): string {
  if (!("Deno" in globalThis)) return process.execPath;
  for (const d of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(d, "node");
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return "node";
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
