// Many agent daemons in one process, each through the real CLI (main) with its own config, state
// dir and environment, as separate hosts would run them: `tsx bench/helpers/host-pool.ts
// <config>...`. SIGTERM stops them all the way a signal stops one daemon; then it prints
// {"msg":"pool stopped","passes":[...]} (passes per host) and exits.
import process from "node:process";
import { createNodeRuntime } from "../../src/runtime/node.ts";
import { main } from "../../src/cli/main.ts";
import { BUILTIN_PLUGINS } from "../../src/builtin-plugins.ts";

const configs = process.argv.slice(2);
const env = JSON.parse(process.env.POOL_ENV ?? "{}") as Record<string, string>;
const stoppers: (() => void)[] = [];
const passes = configs.map(() => 0);

const runs = configs.map((config, i) => {
  const argv = ["daemon", "--config", config];
  const base = createNodeRuntime();
  const runtime = {
    ...base,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...env },
    argv,
    writeStdout: (line: string) => {
      if (line.includes('"msg":"pass finished"')) passes[i]++;
    },
    writeStderr: (text: string) => void process.stderr.write(`host ${i}: ${text}`),
    onSignal: (signal: string, handler: () => void) => {
      if (signal === "SIGTERM") stoppers.push(handler);
      return () => {};
    },
  };
  return main(runtime, argv, { plugins: BUILTIN_PLUGINS });
});

process.on("SIGTERM", () => {
  for (const stop of stoppers) stop();
});
console.log(JSON.stringify({ msg: "pool started", hosts: configs.length }));
const codes = await Promise.all(runs);
console.log(JSON.stringify({ msg: "pool stopped", passes, codes }));
process.exit(0);
