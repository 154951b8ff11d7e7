/**
 * Finds and reads the config file: `--config PATH`, else the usual search places in the working
 * directory (cosmiconfig), else /etc/runner-token-refresh/config.{yaml,yml,json}. A YAML file named
 * by path (--config, or the system place) is parsed with js-yaml directly, the parser cosmiconfig
 * uses, so it reads the same; cosmiconfig and its require chain are loaded only to search or to
 * read JSON and code configs (~40 ms of a `check`'s start when loaded from node_modules; issue 18).
 */
import { isAbsolute, relative, resolve } from "node:path";
import { ConfigError, errorMessage } from "../shared/errors.ts";
import type { Runtime } from "../runtime/types.ts";

const MODULE = "runner-token-refresh";
const SEARCH_PLACES = [
  "package.json",
  `.${MODULE}rc`,
  `.${MODULE}rc.json`,
  `.${MODULE}rc.yaml`,
  `.${MODULE}rc.yml`,
  `.${MODULE}rc.js`,
  `.${MODULE}rc.mjs`,
  `.${MODULE}rc.ts`,
  `${MODULE}.config.js`,
  `${MODULE}.config.mjs`,
  `${MODULE}.config.ts`,
];
/**
 * Code the loader would run. As root the working directory may be one a runner's user can write
 * (a job's workspace, a runner dir): there only data formats are looked for, and a code config
 * given with --config must be root's and writable by nobody else (SPEC 15).
 */
const CODE_CONFIG_RE = /\.(c|m)?(js|ts)$/;
const SYSTEM_PLACES = ["/etc/runner-token-refresh/config.yaml", "/etc/runner-token-refresh/config.yml", "/etc/runner-token-refresh/config.json"];

const YAML_RE = /\.ya?ml$/i;

/** As cosmiconfig's YAML loader reads it: an empty file (or one with only comments) is no settings. */
async function readYaml(runtime: Runtime, path: string): Promise<unknown> {
  const text = await runtime.files.readText(path);
  if (text.trim() === "") return {};
  const { load } = await import("js-yaml");
  return load(text) ?? {};
}

export interface LoadedFile {
  /** The path as shown in messages (relative to the working directory when inside it). */
  label: string;
  path: string;
  dir: string;
  raw: unknown;
}

function label(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}

/**
 * Turns a parser's error into one line naming the file and where. cosmiconfig's parsers are
 * js-yaml (a `reason` plus a 0-based `mark`) and parse-json (a multi-line message whose first
 * line is only "JSON Error in <path>:", then a code frame and "... at position N while parsing
 * '<file text>'"). Neither says "at line N", so the line has to come from `mark` or from the
 * position; the code frame and the "while parsing" excerpt quote the file (which may hold an
 * inline token) and are never shown.
 */
async function describeParseError(runtime: Runtime, file: string, path: string | undefined, err: unknown): Promise<string> {
  const e = err as { reason?: unknown; mark?: { line?: unknown; column?: unknown } };
  let reason = "";
  let position = "";
  if (typeof e.reason === "string" && typeof e.mark?.line === "number" && typeof e.mark.column === "number") {
    reason = e.reason;
    position = ` (line ${e.mark.line + 1}, column ${e.mark.column + 1})`;
  } else {
    const lines = errorMessage(err)
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !/^(JSON|YAML) Error in /.test(l) && !/^>?\s*\d*\s*\|/.test(l));
    const jsonLine = lines.find((l) => /JSON/.test(l));
    reason = (jsonLine ?? lines[0] ?? "").replace(/ while parsing.*$/, "");
    const at = /at position (\d+)/.exec(reason);
    if (at && path) {
      const text = await runtime.files.readText(path).catch(() => "");
      const before = text.slice(0, Number(at[1])).split("\n");
      position = ` (line ${before.length}, column ${before[before.length - 1].length + 1})`;
      reason = reason.replace(/ in JSON at position \d+|,? at position \d+/, "");
    }
  }
  return `${file}: cannot parse${position}: ${reason || "not valid YAML/JSON"}: fix the syntax`;
}

export async function locateConfig(runtime: Runtime, explicitPath: string | undefined): Promise<LoadedFile | null> {
  const asRoot = runtime.uid() === 0;
  const searchPlaces = asRoot ? SEARCH_PLACES.filter((p) => !CODE_CONFIG_RE.test(p)) : SEARCH_PLACES;
  const explorer = async () => {
    // A CommonJS package: bundled, its exports may sit on `default` only.
    const mod = (await import("cosmiconfig")) as typeof import("cosmiconfig") & { default?: typeof import("cosmiconfig") };
    return (mod.cosmiconfig ?? mod.default!.cosmiconfig)(MODULE, { searchPlaces, searchStrategy: "none", cache: false });
  };
  const cwd = runtime.cwd;
  if (explicitPath) {
    const path = resolve(cwd, explicitPath);
    const stat = await runtime.files.stat(path);
    if (!stat) throw new ConfigError(`${explicitPath}: config file not found: check --config`);
    if (!stat.isFile) throw new ConfigError(`${explicitPath}: not a file: pass the config file's path to --config`);
    if (asRoot && CODE_CONFIG_RE.test(path) && (stat.uid !== 0 || stat.mode & 0o022)) {
      throw new ConfigError(`${explicitPath}: a JavaScript/TypeScript config runs as code, and the agent runs as root: it must be owned by root and writable by root alone (chown root: and chmod go-w it), or use YAML/JSON`);
    }
    return read(path);
  }
  async function read(path: string): Promise<LoadedFile> {
    const shown = label(path, cwd);
    const loaded = { label: shown, path, dir: resolve(path, "..") };
    let result;
    try {
      if (YAML_RE.test(path)) {
        const raw = await readYaml(runtime, path);
        // cosmiconfig 9 merges the files a `$import` key names: leave those to it.
        if (!(raw && typeof raw === "object" && "$import" in raw)) return { ...loaded, raw };
      }
      result = await (await explorer()).load(path);
    } catch (err) {
      throw new ConfigError(await describeParseError(runtime, shown, path, err), { cause: err });
    }
    return { ...loaded, raw: result?.isEmpty ? {} : (result?.config ?? {}) };
  }
  let found;
  try {
    found = await (await explorer()).search(cwd);
  } catch (err) {
    const filepath = (err as { filepath?: string }).filepath;
    throw new ConfigError(await describeParseError(runtime, filepath ? label(filepath, cwd) : "config file", filepath, err), { cause: err });
  }
  if (found) return { label: label(found.filepath, cwd), path: found.filepath, dir: resolve(found.filepath, ".."), raw: found.isEmpty ? {} : found.config };
  for (const path of SYSTEM_PLACES) {
    if (await runtime.files.stat(path)) return read(path);
  }
  return null;
}
