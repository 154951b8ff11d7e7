// The collector's pages in a real browser: headless Chromium (Debian's package) driven by
// playwright-core, against a collector fed by real agents over a real nats-server. Runners,
// tokens and alerts must be visible; filters narrow the table; a runner page tells its events in
// sentences; charts have points; updates arrive over SSE without a reload; the page says "NATS
// unavailable" when the server stops; no secret reaches a page, an API answer or the SSE stream.
// Screenshots go to docs/.
import { test } from "./helpers/test.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import { chromium, type Page } from "playwright-core";
import { REPO_ROOT, makeWorld, runInProcess, waitFor, type World } from "./helpers/agent.ts";
import { startNatsServer } from "./helpers/nats-server.ts";
import { collectorConfig, startCollector } from "./helpers/collector.ts";
import { assertNoSecrets, type Output } from "./helpers/no-secrets.ts";
import { createNodeRuntime } from "../src/runtime/node.ts";
import { createCollectorApp } from "../src/http/collector-app.ts";

// The screenshots in docs/ are refreshed on purpose (RTR_UPDATE_SCREENSHOTS=1 npm test), never as
// a side effect of a test run: a run leaves the working tree as it found it.
const SHOTS = process.env.RTR_UPDATE_SCREENSHOTS ? join(REPO_ROOT, "docs") : tmpdir();

const CHROMIUM = "/usr/bin/chromium";
const API_TOKEN = "collector-api-bearer-5e3c9a";

/** Text of the page body; typed loosely because Deno's type check has no DOM library. */
const bodyText = (page: Page) => page.locator("body").innerText();

test("dashboard - a real browser: runners, filters, runner pages in sentences, charts, live updates and NATS loss", async () => {
  const nats = await startNatsServer();
  const worlds: World[] = [await makeWorld(), await makeWorld(), await makeWorld()];
  const [ok, failing, late] = worlds;
  const c = startCollector(collectorConfig(nats.url));
  const app = createCollectorApp(c.collector, { version: "test", authToken: API_TOKEN });
  const server = await createNodeRuntime().serve(app.fetch, { hostname: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${server.port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const seen: Output[] = [];
  try {
    const agent = async (w: World, host: string, name: string, extra = "") => {
      const path = await w.config(`refresh: { retryBackoff: 0.01, maxRetries: 1 ${extra} }\nnats: { servers: [${nats.url}], name: ${host} }\nrunners:\n  - { dir: ${w.runner.dir}, scope: { org: acme }, name: ${name} }\n`);
      const { RUNNER_NAME: _n, RUNNER_DIR: _d, RUNNER_ORG: _o, ...env } = w.env;
      return runInProcess(["check", "--config", path], env);
    };
    assert.equal((await agent(ok, "ci-01.example.com", "linux-x64-01")).code, 0);
    failing.github.inject("token", { status: 502 }, { status: 502 }, { status: 502 });
    for (let i = 0; i < 3; i++) await agent(failing, "ci-02.example.com", "gpu-runner-07", ", threshold: 3650");
    await waitFor(() => c.collector.runners().length === 2, "both runners in the fleet view");
    await waitFor(async () => (await c.collector.evaluate()).some((a) => a.rule === "consecutive_failures"), "an alert");
    await waitFor(() => c.collector.history().points("refreshed", "1h").some((p) => p.v > 0), "the history feed counted a refresh");

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${base}/`);
    let text = await bodyText(page);
    assert.match(text, /linux-x64-01/);
    assert.match(text, /gpu-runner-07/);
    assert.match(text, /ci-02\.example\.com/);
    assert.match(text, /consecutive_failures/i, "the firing alert is listed");
    assert.match(text, /\b\d+m\b/, "a token's time left is shown in minutes");
    assert.match(text, /failing/);
    // A coloured tile must not end up white on white (a CSS order bug did exactly that once).
    const colours = await page.locator(".tile", { hasText: "firing alerts" }).evaluate((el) => {
      const style = (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string; color: string } }).getComputedStyle(el);
      return [style.backgroundColor, style.color];
    });
    assert.notEqual(colours[0], colours[1], `tile readable: ${colours}`);
    assert.notEqual(colours[0], "rgb(255, 255, 255)");
    // The refresh chart has points: its total is what the history feed counted.
    const refreshed = Number(await page.locator('svg[aria-label="Tokens refreshed"]').getAttribute("data-total"));
    assert.ok(refreshed >= 1, `tokens refreshed chart total ${refreshed}`);
    assert.ok(Number(await page.locator('svg[aria-label="Refresh failures"]').getAttribute("data-total")) >= 1, "failures charted");
    await page.screenshot({ path: join(SHOTS, "dashboard.png"), fullPage: true });

    // Filters from the form narrow the table, and the URL carries them (a link to share).
    await page.fill('form.filters input[name="status"]', "failing");
    await Promise.all([page.waitForURL(/status=failing/), page.click('form.filters button[type="submit"]')]);
    const rows = await page.locator("table.runners tbody tr").allInnerTexts();
    assert.equal(rows.length, 1, rows.join("\n"));
    assert.match(rows[0], /gpu-runner-07/);
    assert.match(await bodyText(page), /1 shown of 1 matching/);
    await page.screenshot({ path: join(SHOTS, "dashboard-filtered.png"), fullPage: true });
    await page.goto(`${base}/?q=x64&host=ci-01.example.com`);
    assert.deepEqual((await page.locator("table.runners tbody tr").allInnerTexts()).map((r) => r.split("\t")[1]), ["linux-x64-01"]);

    // A runner page: its events as sentences (JSON behind a disclosure), its registration history.
    await page.goto(`${base}/runners/ci-01.example.com/linux-x64-01`);
    text = await bodyText(page);
    assert.match(text, /linux-x64-01 registered as runner id \d+ \(first registration: it was not configured yet\)\./);
    assert.match(text, /Registration token for org:acme refreshed, valid until \d\d:\d\d:\d\d UTC\./);
    assert.match(text, /Registration history[\s\S]*first registration: it was not configured yet/);
    assert.match(text, /token left\s+\d+m/);
    assert.ok((await page.locator("details summary", { hasText: "JSON" }).count()) >= 2, "the JSON behind each sentence");
    await page.screenshot({ path: join(SHOTS, "dashboard-runner.png"), fullPage: true });
    await page.goto(`${base}/runners/ci-02.example.com/gpu-runner-07`);
    text = await bodyText(page);
    assert.match(text, /Token refresh for org:acme failed \(\d in a row\)/);
    assert.match(text, /Alerts firing[\s\S]*consecutive_failures/);
    await page.goto(`${base}/hosts/ci-02.example.com`);
    assert.match(await bodyText(page), /gpu-runner-07[\s\S]*Pools/);
    // The host's own history: its failed refreshes charted, none of the other host's refreshes.
    assert.ok(Number(await page.locator('svg[aria-label="Refresh failures"]').getAttribute("data-total")) >= 1, "the host's failures charted");

    // Live: a runner that appears later shows up without a reload.
    await page.goto(`${base}/`);
    await page.evaluate(() => ((globalThis as unknown as { __notReloaded: boolean }).__notReloaded = true));
    assert.equal((await agent(late, "ci-03.example.com", "late-runner-09")).code, 0);
    await page.locator("text=late-runner-09").first().waitFor({ timeout: 15_000 });
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __notReloaded?: boolean }).__notReloaded), true, "the update came without a reload");
    const sse = await readSse(`${base}/live?page=${encodeURIComponent("/runners/ci-01.example.com/linux-x64-01")}`);
    assert.match(sse, /^event: update$/m);
    seen.push({ label: "SSE stream", text: sse });
    for (const path of ["/", "/?status=failing", "/runners/ci-01.example.com/linux-x64-01", "/runners/ci-02.example.com/gpu-runner-07", "/hosts/ci-02.example.com"]) {
      seen.push({ label: `page ${path}`, text: await (await fetch(`${base}${path}`)).text() });
    }
    for (const path of ["/api/v1/runners", "/api/v1/runners?status=failing", "/api/v1/hosts/ci-01.example.com", "/api/v1/events", "/api/v1/alerts", "/api/v1/history"]) {
      const res = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${API_TOKEN}` } });
      assert.equal(res.status, 200, path);
      seen.push({ label: `api ${path}`, text: await res.text() });
    }

    // NATS gone: the page keeps showing the fleet, read-only, and says so (pushed, no reload).
    await nats.stop();
    await page.locator("text=NATS unavailable").first().waitFor({ timeout: 20_000 });
    text = await bodyText(page);
    assert.match(text, /linux-x64-01/, "still shows the last known fleet");
    await page.goto(`${base}/runners/ci-01.example.com/linux-x64-01`);
    assert.match(await bodyText(page), /NATS unavailable[\s\S]*linux-x64-01 registered as runner id/);
    seen.push({ label: "page without NATS", text: await page.content() });

    assertNoSecrets([API_TOKEN, ...worlds.flatMap((w) => w.secrets())], seen);
  } finally {
    await browser.close();
    await server.close();
    await c.close();
    for (const w of worlds) await w.close();
    await nats.close();
  }
});

/** The first few seconds of an SSE stream, as text. */
async function readSse(url: string): Promise<string> {
  const stop = new AbortController();
  const res = await fetch(url, { signal: stop.signal });
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const reader = res.body!.getReader();
  let out = "";
  const decoder = new TextDecoder();
  const until = Date.now() + 3000;
  while (Date.now() < until && !/^event: update$/m.test(out)) {
    const { value, done } = await reader.read();
    if (done) break;
    out += decoder.decode(value, { stream: true });
  }
  stop.abort();
  await reader.cancel().catch(() => {});
  return out;
}
