// The three ways the agent runs, as command lines: from source through tsx, the bundle under node
// (as shipped: the entry and its chunks/), and from source under Deno. The bundle (and a bundled
// baseline) is built into a temp dir by the bench itself, with the same esbuild options as
// `npm run build`.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { build } from "esbuild";
import { bundleOptions } from "../../scripts/bundle-options.ts";

export const REPO_ROOT = new URL("../..", import.meta.url).pathname;
export const RUNTIMES = ["tsx", "bundle", "deno"] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

/** docs/deno.md's permissions for the agent. */
export const DENO_PERMISSIONS = ["--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-run", "--allow-sys=hostname,homedir,uid"];

export const RUNTIME_LABEL: Record<RuntimeName, string> = {
  tsx: "node + tsx (source)",
  bundle: "node, bundle (as shipped)",
  deno: "deno (source)",
};

export interface Builds {
  dir: string;
  /** The product bundle's entry (dist/runner-token-refresh.mjs as `npm run build` writes it, chunks/ beside it). */
  agent: string;
  /** bench/helpers/baseline-process.ts bundled the same way. */
  baseline: string;
  /** The product bundle again as one file (no chunks) with an external source map beside it, for profiles that name src/ lines. */
  agentMapped: string;
  /** bench/helpers/kv-watcher.ts bundled the same way. */
  kvWatcher: string;
  /** bench/helpers/loaded-process.ts (the baseline plus the product's code, not run) bundled the same way. */
  loaded: string;
  /** Bytes of JavaScript an agent reads at start: the entry and the chunks it imports statically. */
  agentBytes: number;
  /** Bytes of the whole bundle, the chunks loaded on demand included. */
  agentTotalBytes: number;
  /** What the agent reads at start is made of: bytes by npm package (and "src" for the product), largest first. */
  composition: { name: string; bytes: number }[];
  close(): Promise<void>;
}

export async function buildBundles(): Promise<Builds> {
  const dir = await mkdtemp(join(tmpdir(), "rtr-bench-bundle-"));
  const agent = join(dir, "runner-token-refresh.mjs");
  const { metafile } = await build({ ...bundleOptions(REPO_ROOT, agent), logLevel: "error", metafile: true });
  const outputs = metafile!.outputs;
  const atStart = new Set<string>();
  const walk = (file: string) => {
    if (atStart.has(file)) return;
    atStart.add(file);
    for (const i of outputs[file].imports) if (i.kind === "import-statement" && !i.external) walk(i.path);
  };
  walk(Object.keys(outputs).find((o) => o.endsWith("/runner-token-refresh.mjs"))!);
  const byPackage = new Map<string, number>();
  for (const file of atStart) {
    for (const [path, input] of Object.entries(outputs[file].inputs)) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
      const name = m ? m[1] : path.startsWith("plugins/") ? "plugins (built-in alert plugins)" : "src (the product)";
      byPackage.set(name, (byPackage.get(name) ?? 0) + input.bytesInOutput);
    }
  }
  const agentMapped = join(dir, "mapped", "runner-token-refresh.mjs");
  // One file, so that one source map names every src/ line of a profile.
  await build({ ...bundleOptions(REPO_ROOT, agentMapped), splitting: false, outdir: undefined, outfile: agentMapped, entryPoints: [join(REPO_ROOT, "src/main.bundle.ts")], logLevel: "error", sourcemap: "external" });
  const helper = async (name: string) => {
    const outfile = join(dir, `${name}.mjs`);
    await build({ ...bundleOptions(REPO_ROOT, outfile), entryPoints: [join(REPO_ROOT, `bench/helpers/${name}.ts`)], logLevel: "error" });
    return outfile;
  };
  return {
    dir,
    agent,
    agentMapped,
    baseline: await helper("baseline-process"),
    kvWatcher: await helper("kv-watcher"),
    loaded: await helper("loaded-process"),
    agentBytes: [...atStart].reduce((n, f) => n + outputs[f].bytes, 0),
    agentTotalBytes: Object.values(outputs).reduce((n, o) => n + o.bytes, 0),
    composition: [...byPackage.entries()].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes),
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The command line that runs the agent CLI on `runtime`. */
export function agentArgv(runtime: RuntimeName, builds: Builds): string[] {
  switch (runtime) {
    case "tsx":
      return [process.execPath, "--import", "tsx", join(REPO_ROOT, "src/main.node.ts")];
    case "bundle":
      return [process.execPath, builds.agent];
    case "deno":
      return ["deno", "run", ...DENO_PERMISSIONS, join(REPO_ROOT, "src/main.deno.ts")];
  }
}

/** A bench helper process on `runtime`: the bare baseline, or the baseline with the product's code loaded. */
export function helperArgv(runtime: RuntimeName, builds: Builds, helper: "baseline" | "loaded" = "baseline"): string[] {
  const source = join(REPO_ROOT, `bench/helpers/${helper === "baseline" ? "baseline-process" : "loaded-process"}.ts`);
  switch (runtime) {
    case "tsx":
      return [process.execPath, "--import", "tsx", source];
    case "bundle":
      return [process.execPath, builds[helper]];
    case "deno":
      return ["deno", "run", ...DENO_PERMISSIONS, source];
  }
}
