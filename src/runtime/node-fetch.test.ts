// The Node runtime's fetch over node:http (node-fetch.ts): what the GitHub client asks of fetch,
// against a local server, without the global fetch (undici) ever being called.
import { test, after, before } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { nodeFetch } from "./node-fetch.ts";
import { createNodeRuntime } from "./node.ts";

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function server(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const srv = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (d: string) => (body += d));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body);
    });
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () =>
      resolve({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen, close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }) }),
    ),
  );
}

const realFetch = globalThis.fetch;
before(() => {
  globalThis.fetch = (() => Promise.reject(new Error("the global fetch was called"))) as typeof fetch;
});
after(() => {
  globalThis.fetch = realFetch;
});

test("node fetch - the Node runtime hands it to the GitHub client instead of the global fetch", () => {
  assert.equal(createNodeRuntime().fetch, nodeFetch);
});

test("node fetch - sends method, headers and body; answers status, headers, url and a JSON body", async () => {
  const s = await server((_req, res) => {
    res.writeHead(201, { "content-type": "application/json", "x-ratelimit-remaining": "4999", etag: '"abc"' });
    res.end(JSON.stringify({ token: "t", expires_at: "2026-01-01T00:00:00Z" }));
  });
  try {
    const res = await nodeFetch(`${s.url}/orgs/acme/actions/runners/registration-token?x=1`, { method: "post", headers: { authorization: "token abc", accept: "application/vnd.github+json" }, body: '{"a":1}' });
    assert.equal(res.status, 201);
    assert.equal(res.ok, true);
    assert.equal(res.url, `${s.url}/orgs/acme/actions/runners/registration-token?x=1`);
    assert.equal(res.headers.get("x-ratelimit-remaining"), "4999");
    assert.equal(res.headers.get("etag"), '"abc"');
    assert.deepEqual(await res.clone().json(), { token: "t", expires_at: "2026-01-01T00:00:00Z" });
    assert.equal((await res.text()).length > 0, true);
    assert.deepEqual(s.seen.map((x) => [x.method, x.url, x.headers.authorization, x.headers["content-length"], x.body]), [["POST", "/orgs/acme/actions/runners/registration-token?x=1", "token abc", "7", '{"a":1}']]);
  } finally {
    await s.close();
  }
});

test("node fetch - 204 and 304 answer with no body, as fetch does", async () => {
  const s = await server((req, res) => {
    res.writeHead(req.url === "/gone" ? 204 : 304, { etag: '"e"' });
    res.end();
  });
  try {
    const deleted = await nodeFetch(`${s.url}/gone`, { method: "DELETE" });
    assert.equal(deleted.status, 204);
    assert.equal(deleted.body, null);
    const same = await nodeFetch(`${s.url}/runner`, { headers: { "if-none-match": '"e"' } });
    assert.equal(same.status, 304);
    assert.equal(await same.text(), "");
    assert.equal(s.seen[1].headers["if-none-match"], '"e"');
  } finally {
    await s.close();
  }
});

test("node fetch - follows redirects, and keeps the authorization header on its own origin only", async () => {
  const other = await server((_req, res) => res.end("elsewhere"));
  const s = await server((req, res) => {
    if (req.url === "/moved") res.writeHead(301, { location: "/here" }).end();
    else if (req.url === "/away") res.writeHead(302, { location: `${other.url}/there` }).end();
    else res.end("here");
  });
  try {
    const same = await nodeFetch(`${s.url}/moved`, { headers: { authorization: "token abc" } });
    assert.equal(await same.text(), "here");
    assert.equal(same.url, `${s.url}/here`);
    assert.equal(same.redirected, true);
    assert.equal(s.seen[1].headers.authorization, "token abc");
    const away = await nodeFetch(`${s.url}/away`, { headers: { authorization: "token abc" } });
    assert.equal(await away.text(), "elsewhere");
    assert.equal(other.seen[0].headers.authorization, undefined);
    const manual = await nodeFetch(`${s.url}/moved`, { redirect: "manual" });
    assert.equal(manual.status, 301);
    assert.equal(manual.headers.get("location"), "/here");
  } finally {
    await s.close();
    await other.close();
  }
});

test("node fetch - an aborted request rejects with the signal's reason; a refused connection with TypeError fetch failed", async () => {
  const s = await server(() => {
    // Never answers.
  });
  try {
    const controller = new AbortController();
    const pending = nodeFetch(`${s.url}/slow`, { signal: controller.signal });
    const reason = new DOMException("took too long", "TimeoutError");
    setImmediate(() => controller.abort(reason));
    await assert.rejects(pending, (err) => err === reason);
    await assert.rejects(nodeFetch(`${s.url}/x`, { signal: AbortSignal.abort(reason) }), (err) => err === reason);
  } finally {
    await s.close();
  }
  await assert.rejects(nodeFetch(s.url), (err: Error) => err instanceof TypeError && err.message === "fetch failed" && (err.cause as { code?: string }).code === "ECONNREFUSED");
});
