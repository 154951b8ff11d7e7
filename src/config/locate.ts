/**
 * Finds and reads the config file with cosmiconfig: `--config PATH`, else the usual search places
 * in the working directory, else /etc/runner-token-refresh/config.{yaml,yml,json}.
 */
import { cosmiconfig } from "cosmiconfig";
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
const SYSTEM_PLACES = ["/etc/runner-token-refresh/config.yaml", "/etc/runner-token-refresh/config.yml", "/etc/runner-token-refresh/config.json"];

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

/** Turns a parser's error into one line naming the file and where. */
function describeParseError(file: string, err: unknown): string {
  const msg = errorMessage(err).split("\n")[0];
  const where = /at line (\d+), column (\d+)/.exec(errorMessage(err));
  const position = where ? ` (line ${where[1]}, column ${where[2]})` : "";
  return `${file}: cannot parse${position}: ${msg.replace(/^.*?:\s*/, "")}: fix the syntax`;
}

export async function locateConfig(runtime: Runtime, explicitPath: string | undefined): Promise<LoadedFile | null> {
  const explorer = cosmiconfig(MODULE, { searchPlaces: SEARCH_PLACES, searchStrategy: "none", cache: false });
  const cwd = runtime.cwd;
  if (explicitPath) {
    const path = resolve(cwd, explicitPath);
    const stat = await runtime.files.stat(path);
    if (!stat) throw new ConfigError(`${explicitPath}: config file not found: check --config`);
    if (!stat.isFile) throw new ConfigError(`${explicitPath}: not a file: pass the config file's path to --config`);
    return read(path);
  }
  async function read(path: string): Promise<LoadedFile> {
    const shown = label(path, cwd);
    let result;
    try {
      result = await explorer.load(path);
    } catch (err) {
      throw new ConfigError(describeParseError(shown, err), { cause: err });
    }
    return { label: shown, path, dir: resolve(path, ".."), raw: result?.isEmpty ? {} : (result?.config ?? {}) };
  }
  let found;
  try {
    found = await explorer.search(cwd);
  } catch (err) {
    const filepath = (err as { filepath?: string }).filepath ?? "config file";
    throw new ConfigError(describeParseError(label(filepath, cwd), err), { cause: err });
  }
  if (found) return { label: label(found.filepath, cwd), path: found.filepath, dir: resolve(found.filepath, ".."), raw: found.isEmpty ? {} : found.config };
  for (const path of SYSTEM_PLACES) {
    if (await runtime.files.stat(path)) return read(path);
  }
  return null;
}
