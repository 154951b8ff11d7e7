/** Resolves `{ env: NAME }` / `{ file: PATH }` secret references and registers every value for redaction. */
import { resolve } from "node:path";
import { ConfigError } from "../shared/errors.ts";
import { addSecret } from "../shared/redact.ts";
import type { Runtime } from "../runtime/types.ts";
import type { SecretRef } from "./schema.ts";

/** Environment variables a secret was read from: children of the agent never inherit them. */
export const secretEnvNames = new Set<string>();

/**
 * Files that hold a secret, by absolute path → the option that named it: `{ file }` secrets, and
 * config files with a secret written inline. The agent refuses to start when a runner's user can
 * read one (SPEC 15, src/privsep).
 */
export const secretFiles = new Map<string, string>();

export async function resolveSecret(
  runtime: Runtime,
  ref: SecretRef,
  /** `key`: the option's exact dotted path when it names a file itself (`apps[0].privateKeyFile`). */
  where: { file: string; path: string; baseDir: string; key?: string },
): Promise<string> {
  // An environment variable that names a file (GITHUB_APP_PRIVATE_KEY_FILE) has no dotted path.
  const at = (suffix: string) => (where.key ? `${where.file}: ${where.key}` : where.path ? `${where.file}: ${where.path}.${suffix}` : where.file);
  let value: string;
  if (typeof ref === "string") {
    value = ref;
    if (where.path) secretFiles.set(resolve(runtime.cwd, where.file), `${where.file} (${where.path} is written inline)`);
  } else if ("env" in ref) {
    secretEnvNames.add(ref.env);
    const v = runtime.env[ref.env];
    if (!v) throw new ConfigError(`${at("env")}: environment variable ${ref.env} is not set: export it or give the secret another way`);
    value = v;
  } else {
    const path = resolve(where.baseDir, ref.file);
    secretFiles.set(path, at("file"));
    try {
      value = (await runtime.files.readText(path)).replace(/\r?\n$/, "");
    } catch (err) {
      throw new ConfigError(`${at("file")}: cannot read ${path} (${(err as { code?: string }).code ?? "error"}): check the path and that this user may read it`, { cause: err });
    }
    if (!value) throw new ConfigError(`${at("file")}: ${path} is empty: put the secret in it`);
  }
  addSecret(value);
  return value;
}
