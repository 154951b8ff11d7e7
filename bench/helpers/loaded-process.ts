// The baseline process plus the product's code loaded but not run (the CLI's whole module graph,
// built-in alert plugins included): separates what the agent's code costs in memory from what its
// running state costs.
import { main } from "../../src/cli/main.ts";
import { BUILTIN_PLUGINS } from "../../src/builtin-plugins.ts";
import "./baseline-process.ts";

// Referenced, so a bundler keeps the whole graph.
(globalThis as { __rtrMain?: unknown }).__rtrMain = main;
// The entry points hand the built-in plugins to main; the engine no longer imports them itself.
(globalThis as { __rtrPlugins?: unknown }).__rtrPlugins = BUILTIN_PLUGINS;
