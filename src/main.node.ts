/** Node entry: inject the Node runtime and the built-in alert plugins, and run. */
import { createNodeRuntime } from "./runtime/node.ts";
import { main } from "./cli/main.ts";
import { BUILTIN_PLUGINS } from "./builtin-plugins.ts";

const runtime = createNodeRuntime();
runtime.exit(await main(runtime, runtime.argv, { plugins: BUILTIN_PLUGINS }));
