// npm run build: dist/runner-token-refresh.mjs and dist/chunks/, which run with no node_modules
// under `node` and `deno run` (install the directory as a whole: docs/install.md).
import { build } from "esbuild";
import { chmodSync, rmSync } from "node:fs";
import { bundleOptions } from "./bundle-options.ts";

const outfile = "dist/runner-token-refresh.mjs";
// No chunks of an earlier build left behind (their names carry a content hash).
rmSync("dist", { recursive: true, force: true });
const { metafile } = await build({ ...bundleOptions(process.cwd(), outfile), metafile: true });
chmodSync(outfile, 0o755);
const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
const outputs = Object.entries(metafile!.outputs);
const entry = metafile!.outputs[outfile];
const atStart = [outfile, ...entry.imports.filter((i) => i.kind === "import-statement" && !i.external).map((i) => i.path)];
const startBytes = atStart.reduce((n, f) => n + metafile!.outputs[f].bytes, 0);
const total = outputs.reduce((n, [, o]) => n + o.bytes, 0);
console.log(`${outfile}: ${MiB(startBytes)} loaded at start (${atStart.length} file${atStart.length > 1 ? "s" : ""}), ${MiB(total)} in all with ${outputs.length - atStart.length} chunks loaded on demand`);
