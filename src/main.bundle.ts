/**
 * Entry of the bundle (dist/runner-token-refresh.mjs, with the chunks it loads on demand in
 * dist/chunks/), which runs under both `node` and `deno run`: the one place that picks the
 * runtime at run time.
 */
import { createDenoRuntime } from "./runtime/deno.ts";
import { createNodeRuntime } from "./runtime/node.ts";
import { main } from "./cli/main.ts";
import { BUILTIN_PLUGINS } from "./builtin-plugins.ts";

const runtime = "Deno" in globalThis ? createDenoRuntime() : createNodeRuntime();
runtime.exit(await main(runtime, runtime.argv, { plugins: BUILTIN_PLUGINS }));
