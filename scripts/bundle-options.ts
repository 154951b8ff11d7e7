// esbuild options of the bundle, shared by `npm run build`, the benchmarks and the bundle tests.
//
// The bundle is a directory: the entry (`runner-token-refresh.mjs`, named after `outfile`) holds
// what every command needs, and `chunks/` beside it holds what only some commands or some
// configurations need, loaded on first use by a relative `import()` (issue #18): the collector,
// the demo, `health` and `nats-permissions`; each alert plugin (nodemailer only with email); App
// authentication (@octokit/auth-app). A daemon never reads those files, so their code is neither
// parsed nor kept in its memory. Install the directory as a whole; the entry finds its chunks next
// to itself, with no node_modules, under `node` and `deno run`.
import { basename, dirname } from "node:path";
import type { BuildOptions } from "esbuild";

/** Where the chunks go, relative to the entry. */
export const CHUNK_DIR = "chunks";

export function bundleOptions(root: string, outfile: string): BuildOptions {
  return {
    // The entry is written as `outfile`; a caller that passes its own entry points gets each as [name].mjs.
    entryPoints: [{ in: `${root}/src/main.bundle.ts`, out: basename(outfile).replace(/\.mjs$/, "") }],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    splitting: true,
    outdir: dirname(outfile),
    entryNames: "[name]",
    chunkNames: `${CHUNK_DIR}/[name]-[hash]`,
    outExtension: { ".js": ".mjs" },
    // cosmiconfig loads TypeScript only for .ts config files; the bundle reads YAML/JSON/JS configs.
    external: ["typescript"],
    legalComments: "none",
    // Whitespace and syntax only (names are kept, so are stack traces' function names): a third fewer bytes to read,
    // decode and keep in memory as source text at start.
    minifyWhitespace: true,
    minifySyntax: true,
    // CommonJS dependencies expect require, __filename and __dirname; an ES module has none. Each
    // chunk gets its own (the banner is written at the top of every output file).
    banner: {
      js: [
        "#!/usr/bin/env node",
        "import { createRequire as __rtrRequire } from 'node:module';",
        "import { fileURLToPath as __rtrPath } from 'node:url';",
        "const require = __rtrRequire(import.meta.url);",
        "const __filename = __rtrPath(import.meta.url);",
        "const __dirname = __filename.replace(/[\\\\/][^\\\\/]*$/, '');",
      ].join("\n"),
    },
    logLevel: "warning",
  };
}
