import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { runDemo } from "../src/demo/demo.ts";
import { BUILTIN_PLUGINS } from "../src/builtin-plugins.ts";

test("demo - shows a registration, refreshes, a failure streak with its alert and resolve, and a repaired deletion; then cleans up", async () => {
  const lines: string[] = [];
  const stop = new AbortController();
  const code = await runDemo(createNodeRuntime(), stop.signal, {
    // The default timeline, ten times faster where the agent's one-second interval allows.
    timeline: { tokenTtl: 24, threshold: 20, interval: 1, outageFrom: 8, outageTo: 14, deleteRunnerAt: 18, statusInterval: 3, stopAfter: 26 },
    print: (l) => lines.push(l),
    dashboardPort: 0,
    plugins: BUILTIN_PLUGINS,
  });
  const out = lines.join("\n");
  assert.equal(code, 0);
  assert.match(out, /dashboard: http:\/\/127\.0\.0\.1:\d+\//, "the dashboard URL is printed (nats-server is installed here)");
  assert.match(out, /demo-runner-1 registered as runner id \d+ \(first registration: it was not configured yet\)/);
  assert.ok((out.match(/Registration token for org:demo-org refreshed/g) ?? []).length >= 3, out);
  assert.match(out, /token\.refresh_failed +Token refresh for org:demo-org failed \(3 in a row\)/);
  const firing = lines.findIndex((l) => /ALERT FIRING/.test(l));
  const resolved = lines.findIndex((l) => /ALERT RESOLVED/.test(l));
  assert.ok(firing > 0 && resolved > firing, `an alert fired, then resolved:\n${out}`);
  assert.equal(lines.filter((l) => /ALERT FIRING/.test(l)).length, 1, "paged once");
  assert.match(lines[resolved], /recovered after \d+(s|m)/, "the resolve says after how long");
  assert.match(out, /registered as runner id \d+ \(GitHub no longer had it\)/);
  assert.match(out, /demo stopped/);
  const dir = /sandbox runner (\S+)\/runner/.exec(out)![1];
  assert.equal(existsSync(dir), false, "the demo removed its directory");
  assert.doesNotMatch(out, /demo-token-for-the-simulated-github/);
});
