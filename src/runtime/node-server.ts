/**
 * The Node HTTP server of the runtime seam: node:http with hono's request listener, and prepared
 * routes answered before it. A prepared answer is written straight from its bytes: no Request or
 * Response object, no router, no header conversion (at 10 connections that adapter work was the
 * gap between the agent's /metrics and a bare node:http server sending the same bytes).
 */
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { conditional, pathOf, preparedFor, routeMap, type PreparedResponse } from "./prepared.ts";
import type { FetchHandler, HttpServer, ServeOptions } from "./types.ts";

/** If-None-Match from the raw headers: `req.headers` builds an object of every header on first use. */
function ifNoneMatch(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 13 && raw[i].toLowerCase() === "if-none-match") return raw[i + 1];
  return undefined;
}

/**
 * Writes prepared answers. Bodies go out as Buffers: a socket turns any other Uint8Array into a new
 * Buffer view on every write, so the view is made once per body instead (it changes with the state).
 */
function writer(): (req: IncomingMessage, res: ServerResponse, prepared: PreparedResponse) => void {
  let lastBody: Uint8Array | null = null;
  let lastBuffer: Buffer = Buffer.alloc(0);
  const asBuffer = (body: Uint8Array): Buffer => {
    if (body !== lastBody) {
      lastBody = body;
      lastBuffer = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    }
    return lastBuffer;
  };
  return (req, res, prepared) => {
    const answer = conditional(prepared, ifNoneMatch(req));
    res.writeHead(answer.status, answer.headers as Record<string, string>);
    // node:http sends no body for HEAD or 304 by itself; the content-length stays that of a GET.
    res.end(asBuffer(answer.body));
  };
}

export function serveNode(handler: FetchHandler, options: ServeOptions): Promise<HttpServer> {
  const app = getRequestListener(handler, { hostname: options.hostname });
  const routes = routeMap(options.prepared);
  const write = writer();
  const server = createServer((req, res) => {
    const route = routes.size ? preparedFor(routes, req.method, pathOf(req.url ?? "/")) : undefined;
    if (!route) return void app(req, res);
    let answer: PreparedResponse | Promise<PreparedResponse>;
    try {
      answer = route.respond();
    } catch {
      return void app(req, res);
    }
    if (!(answer instanceof Promise)) return write(req, res, answer);
    answer.then(
      (ready) => write(req, res, ready),
      () => void app(req, res),
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            // Keep-alive connections would hold close() open until they time out.
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
