/** Deno entry: inject the Deno runtime and run (`deno run -A src/main.deno.ts check`). */
import { createDenoRuntime } from "./runtime/deno.ts";
import { main } from "./cli/main.ts";

const runtime = createDenoRuntime();
runtime.exit(await main(runtime));
