// One shared check that no secret (PAT, registration token, App key…) reaches logs, files, argv,
// events or alert payloads. Failures name where the leak is, never the secret itself.
import { AssertionError } from "node:assert";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";

export interface Output {
  label: string;
  text: string;
}

const MIN_SECRET_LENGTH = 6; // shorter values (ids, "true") would match by accident

export function assertNoSecrets(secrets: string[], outputs: Output[]): void {
  const found: string[] = [];
  for (const secret of new Set(secrets)) {
    if (typeof secret !== "string" || secret.length < MIN_SECRET_LENGTH) continue;
    // URL-encoding is how a secret usually slips into a logged URL or form body unnoticed.
    const forms = [...new Set([secret, encodeURIComponent(secret)])];
    for (const { label, text } of outputs) {
      const at = forms.map((f) => text.indexOf(f)).filter((i) => i >= 0);
      if (at.length > 0) found.push(`${label} contains secret ${secret.slice(0, 4)}… at offset ${Math.min(...at)}`);
    }
  }
  if (found.length > 0) {
    throw new AssertionError({ message: `secret leaked:\n  ${found.join("\n  ")}`, operator: "assertNoSecrets" });
  }
}

/**
 * Every regular file under `dir`, read as text. Labels and the paths given to `exclude` are
 * relative to `dir` with "/" separators; excluding a directory skips everything below it.
 */
export async function collectFiles(
  dir: string,
  opts: { exclude?: (path: string) => boolean } = {},
): Promise<Output[]> {
  const out: Output[] = [];
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const full = join(current, entry.name);
      const rel = relative(dir, full).split(sep).join("/");
      if (opts.exclude?.(rel)) continue;
      const info = await lstat(full); // symlinks are not followed: they may point anywhere
      if (info.isDirectory()) await walk(full);
      else if (info.isFile()) out.push({ label: rel, text: await readFile(full, "utf8") });
    }
  };
  await walk(dir);
  return out;
}
