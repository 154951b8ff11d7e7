// A template dir for pools (SPEC 14): an "extracted runner package" whose run.sh is the JIT
// stand-in (runner-standin/run.mjs) and whose bin/Runner.Worker is what a job looks like in /proc.
// Owned by root, as an operator installs it; the test checks it is never written.
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { accessSync, constants as fsConstants } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";

export interface PoolTemplate {
  dir: string;
  /** Every file's path, size and mtime: compared before and after to prove the template was not written. */
  snapshot(): Promise<string>;
  setCrash(on: boolean): Promise<void>;
  cleanup(): Promise<void>;
}

function nodePath(): string {
  if (!("Deno" in globalThis)) return process.execPath;
  for (const d of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(d, "node"), fsConstants.X_OK);
      return join(d, "node");
    } catch {
      // keep looking
    }
  }
  return "/usr/bin/node";
}

export async function makePoolTemplate(): Promise<PoolTemplate> {
  const root = await mkdtemp(join(tmpdir(), "rtr-template-"));
  await chmod(root, 0o755);
  const dir = join(root, "actions-runner");
  await mkdir(join(dir, "bin"), { recursive: true, mode: 0o755 });
  await mkdir(join(dir, "externals", "node20", "bin"), { recursive: true, mode: 0o755 });
  await copyFile(new URL("./runner-standin/run.mjs", import.meta.url), join(dir, "bin", "run.mjs"));
  await writeFile(join(dir, "run.sh"), `#!/bin/sh\n# Test stand-in for the runner's run.sh (JIT).\nexec '${nodePath()}' "$(dirname "$0")/bin/run.mjs" "$@"\n`, { mode: 0o755 });
  await chmod(join(dir, "run.sh"), 0o755);
  await writeFile(join(dir, "bin", "Runner.Worker"), "const s = Number(process.argv[2] ?? 1);\nsetTimeout(() => process.exit(0), s * 1000);\n", { mode: 0o755 });
  await writeFile(join(dir, "bin", "Runner.Listener"), "placeholder for the listener binary\n".repeat(100));
  await writeFile(join(dir, "externals", "node20", "bin", "node"), "placeholder\n");
  await writeFile(join(dir, "config.sh"), "#!/bin/sh\necho config.sh is not used by JIT runners\n", { mode: 0o755 });
  await symlink("bin/Runner.Listener", join(dir, "listener-link"));
  const snapshot = async () => {
    const out: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const name of (await readdir(d)).sort()) {
        const p = join(d, name);
        const st = await stat(p).catch(() => null);
        if (!st) continue;
        if (st.isDirectory()) await walk(p);
        else out.push(`${p} ${st.size} ${st.mtimeMs} ${st.uid} ${st.mode}`);
      }
    };
    await walk(dir);
    return out.join("\n");
  };
  return {
    dir,
    snapshot,
    async setCrash(on) {
      if (on) await writeFile(join(dir, ".fake-crash"), "");
      else await rm(join(dir, ".fake-crash"), { force: true });
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
