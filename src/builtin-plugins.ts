/**
 * The built-in alert plugins, as the entry points hand them to the program (SPEC 10). The alert
 * engine (src/alerts) never imports a plugin: it knows them only through this registry, so the
 * dependency runs one way (plugins → the SDK) and a plugin's code, and its libraries (nodemailer
 * for email), are loaded only when the configuration names it. The paths are literal so esbuild
 * bundles every built-in, each as a chunk of its own that is read only when it is named.
 */
import type { PluginRegistry } from "./alerts/load.ts";

export const BUILTIN_PLUGINS: PluginRegistry = {
  slack: () => import("../plugins/slack/index.ts"),
  email: () => import("../plugins/email/index.ts"),
  pagerduty: () => import("../plugins/pagerduty/index.ts"),
  webhook: () => import("../plugins/webhook/index.ts"),
};
