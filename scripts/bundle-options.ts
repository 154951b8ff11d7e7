// esbuild options of the single-file bundle, shared by `npm run build` and the bundle smoke test.
import type { BuildOptions } from "esbuild";

export function bundleOptions(root: string, outfile: string): BuildOptions {
  return {
    entryPoints: [`${root}/src/main.bundle.ts`],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    // cosmiconfig loads TypeScript only for .ts config files; the bundle reads YAML/JSON/JS configs.
    external: ["typescript"],
    legalComments: "none",
    // CommonJS dependencies expect require, __filename and __dirname; an ES module has none.
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
