// The collector's dashboard in a real browser: headless Chromium (Debian's package) driven by
// playwright-core. Runners, tokens and alerts must be visible; the screenshot goes to docs/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { REPO_ROOT, makeWorld, runInProcess, waitFor } from "./helpers/agent.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createCollectorApp } from "../src/http/collector-app.ts";

const CHROMIUM = "/usr/bin/chromium";

test("dashboard - a real browser shows runners, token time left and firing alerts", async () => {
  const nats = await startNatsServer();
  const ok = await makeWorld();
  const failing = await makeWorld();
  const c = startCollector(collectorConfig(nats.url));
  const server = await createNodeRuntime().serve(createCollectorApp(c.collector, { version: "test" }).fetch, { hostname: "127.0.0.1", port: 0 });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const agent = async (w: typeof ok, host: string, name: string, extra = "") => {
      const path = await w.config(`refresh: { retryBackoff: 0.01, maxRetries: 1 ${extra} }\nnats: { servers: [${nats.url}], name: ${host} }\nrunners:\n  - { dir: ${w.runner.dir}, scope: { org: acme }, name: ${name} }\n`);
      const { RUNNER_NAME: _n, RUNNER_DIR: _d, RUNNER_ORG: _o, ...env } = w.env;
      return runInProcess(["check", "--config", path], env);
    };
    assert.equal((await agent(ok, "ci-01.example.com", "linux-x64-01")).code, 0);
    failing.github.inject("token", { status: 502 }, { status: 502 }, { status: 502 });
    for (let i = 0; i < 3; i++) await agent(failing, "ci-02.example.com", "gpu-runner-07", ", threshold: 3650");
    await waitFor(() => c.collector.runners().length === 2, "both runners in the fleet view");
    await waitFor(async () => (await c.collector.evaluate()).some((a) => a.rule === "consecutive_failures"), "an alert");

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`http://127.0.0.1:${server.port}/`);
    const text = await page.locator("body").innerText();
    assert.match(text, /linux-x64-01/);
    assert.match(text, /gpu-runner-07/);
    assert.match(text, /ci-02\.example\.com/);
    assert.match(text, /consecutive_failures/i, "the firing alert is listed");
    assert.match(text, /\b\d+m\b/, "a token's time left is shown in minutes");
    assert.match(text, /failing/);
    // A coloured tile must not end up white on white (a CSS order bug did exactly that once).
    const tile = page.locator(".tile", { hasText: "firing alerts" });
    // Runs in the page; typed loosely because Deno's type check has no DOM library.
    const colours = await tile.evaluate((el) => {
      const style = (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string; color: string } }).getComputedStyle(el);
      return [style.backgroundColor, style.color];
    });
    assert.notEqual(colours[0], colours[1], `tile readable: ${colours}`);
    assert.notEqual(colours[0], "rgb(255, 255, 255)");
    await page.screenshot({ path: join(REPO_ROOT, "docs/dashboard.png"), fullPage: true });
  } finally {
    await browser.close();
    await server.close();
    await c.close();
    await ok.close();
    await failing.close();
    await nats.close();
  }
});
