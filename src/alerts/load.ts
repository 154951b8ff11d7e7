/**
 * Loads `alerts.plugins` entries `[name, options]` when the config loads (SPEC 10): a built-in
 * (slack, email, pagerduty, webhook: from the registry the entry point gives), an npm package
 * resolved from the config file's folder, or a path relative to it. Each plugin's parseOptions runs now, so a bad option stops the start with
 * the plugin's name, the config file and the dotted path.
 */
import { createRequire } from "node:module";
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError, errorMessage } from "../shared/errors.ts";
import type { Runtime } from "../runtime/types.ts";
import type { AgentConfig } from "../config/types.ts";
import { resolveSecret } from "../config/secrets.ts";
import { secretRef } from "../config/schema.ts";
import type { PluginDefinition } from "./sdk.ts";

/**
 * Plugins known by name (the built-ins), each loaded only when the config names it. The entry
 * point hands it in (src/builtin-plugins.ts): this layer never imports a plugin itself.
 */
export type PluginRegistry = Readonly<Record<string, () => Promise<{ default: unknown }>>>;

export interface LoadedPlugin {
  /** The name as written in the config (built-in name, package name or path). */
  name: string;
  definition: PluginDefinition<unknown>;
  options: unknown;
  /** `alerts.plugins[i]` for messages. */
  where: string;
}

function isPath(name: string): boolean {
  return name.startsWith(".") || isAbsolute(name);
}

async function importPlugin(name: string, configDir: string, label: string, registry: PluginRegistry): Promise<unknown> {
  // Own properties only: a plugin named "constructor" or "toString" is not a built-in.
  if (registry && Object.hasOwn(registry, name)) return (await registry[name]()).default;
  let specifier: string;
  if (isPath(name)) {
    specifier = pathToFileURL(resolve(configDir, name)).href;
  } else {
    try {
      specifier = pathToFileURL(createRequire(resolve(configDir, "package.json")).resolve(name)).href;
    } catch {
      // ESM-only packages without a "require" export: let the runtime resolve it.
      specifier = name;
    }
  }
  let mod: { default?: unknown };
  try {
    mod = await import(specifier);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND" || /Cannot find module|Module not found/i.test(errorMessage(err))) {
      throw new ConfigError(`${label}: plugin "${name}" not found${isPath(name) ? ` at ${resolve(configDir, name)}` : ` (npm package, resolved from ${configDir})`}: check the name, or npm install it next to the config`);
    }
    throw new ConfigError(`${label}: plugin "${name}" failed to load: ${errorMessage(err).split("\n")[0]}`, { cause: err });
  }
  if (mod.default === undefined) throw new ConfigError(`${label}: plugin "${name}" has no default export: export default definePlugin({ name, parseOptions, create })`);
  return mod.default;
}

function asDefinition(value: unknown, name: string, label: string): PluginDefinition<unknown> {
  const d = value as Partial<PluginDefinition<unknown>>;
  if (!d || typeof d !== "object" || typeof d.name !== "string" || typeof d.parseOptions !== "function" || typeof d.create !== "function") {
    throw new ConfigError(`${label}: plugin "${name}" is not a plugin: its default export must be definePlugin({ name, parseOptions, create })`);
  }
  return d as PluginDefinition<unknown>;
}

export async function loadPlugins(runtime: Runtime, config: AgentConfig, registry: PluginRegistry): Promise<LoadedPlugin[]> {
  const file = config.configFile ?? "configuration";
  const out: LoadedPlugin[] = [];
  for (const [i, entry] of config.alerts.plugins.entries()) {
    const [name, raw] = entry;
    const where = `alerts.plugins[${i}]`;
    const label = `${file}: ${where}`;
    const definition = asDefinition(await importPlugin(name, config.configDir, label, registry), name, label);
    const helpers = {
      secret: async (value: unknown, path: string) => {
        const parsed = secretRef.safeParse(value);
        if (!parsed.success) throw new ConfigError(`${label}[1].${path}: expected a string, { env: NAME } or { file: PATH } (plugin ${definition.name})`);
        return resolveSecret(runtime, parsed.data, { file, path: `${where}[1].${path}`, baseDir: config.configDir });
      },
    };
    let options: unknown;
    try {
      options = await definition.parseOptions(raw, helpers);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      const path = (err as { path?: string }).path;
      const message = path ? errorMessage(err).replace(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\s*`), "") : errorMessage(err);
      throw new ConfigError(`${label}[1]${path ? `.${path}` : ""}: ${message} (plugin ${definition.name})`, { cause: err });
    }
    out.push({ name, definition, options, where });
  }
  return out;
}

