// Fails when runtime-specific code appears outside the runtime seam (src/runtime/, src/main.*.ts):
// `Deno.` or `process` globals, or node: modules that touch the OS. Pure node: modules that Deno
// provides identically (path, util, url) are allowed everywhere.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ROOTS = ["src", "plugins"];
const ALLOWED = [
  /^src\/runtime\//,
  /^src\/main\.[a-z]+\.ts$/,
  // The demo's sandbox writes stand-in runner scripts (text run by node), it does not call these APIs.
  /^src\/demo\/sandbox\.ts$/,
];
const FORBIDDEN = [
  [/\bDeno\./, "Deno API"],
  [/(^|[^.\w])process\.(env|argv|exit|on|cwd|stdout|stderr|kill|pid|platform|getuid)\b/, "process global"],
  [/from\s+["']node:(fs|fs\/promises|child_process|os|net|http|https|process|worker_threads|cluster|tty|dgram)["']/, "OS-level node: module"],
];

function* files(dir) {
  let entries = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (path.endsWith(".ts") && !path.endsWith(".test.ts")) yield path;
  }
}

const problems = [];
for (const root of ROOTS) {
  for (const path of files(root)) {
    const rel = relative(".", path);
    if (ALLOWED.some((re) => re.test(rel))) continue;
    readFileSync(path, "utf8").split("\n").forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line)) return;
      for (const [re, what] of FORBIDDEN) if (re.test(line)) problems.push(`${rel}:${i + 1}: ${what} outside the runtime seam: ${line.trim()}`);
    });
  }
}
if (problems.length) {
  console.error(problems.join("\n"));
  console.error(`error: ${problems.length} runtime-specific line(s) outside src/runtime/: move them behind the Runtime interface`);
  process.exit(1);
}
console.log("runtime seam: clean");
