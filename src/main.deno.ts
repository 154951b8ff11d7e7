/** Deno entry: inject the Deno runtime and the built-in alert plugins, and run (`deno run -A src/main.deno.ts check`). */
import { createDenoRuntime } from "./runtime/deno.ts";
import { main } from "./cli/main.ts";
import { BUILTIN_PLUGINS } from "./builtin-plugins.ts";

const runtime = createDenoRuntime();
runtime.exit(await main(runtime, runtime.argv, { plugins: BUILTIN_PLUGINS }));
