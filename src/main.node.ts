/** Node entry: inject the Node runtime and run. */
import { createNodeRuntime } from "./runtime/node.ts";
import { main } from "./cli/main.ts";

const runtime = createNodeRuntime();
runtime.exit(await main(runtime));
