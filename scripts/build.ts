// npm run build: one ESM file that runs with no node_modules under `node` and `deno run`.
import { build } from "esbuild";
import { chmodSync, statSync } from "node:fs";
import { bundleOptions } from "./bundle-options.ts";

const outfile = "dist/runner-token-refresh.mjs";
await build(bundleOptions(process.cwd(), outfile));
chmodSync(outfile, 0o755);
const bytes = statSync(outfile).size;
console.log(`${outfile}: ${(bytes / 1024 / 1024).toFixed(2)} MiB (${bytes} bytes)`);
