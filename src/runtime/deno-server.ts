/**
 * The Deno HTTP server of the runtime seam: Deno.serve with the fetch handler, prepared routes
 * answered before it from their bytes (the same answers as src/runtime/node-server.ts gives).
 */
import { conditional, preparedFor, routeMap } from "./prepared.ts";
import type { FetchHandler, HttpServer, ServeOptions } from "./types.ts";

// Declared here, not from lib.deno: the same sources type-check with tsc for Node.
declare const Deno: {
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { port: number }) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): { shutdown(): Promise<void>; finished: Promise<void> };
};

export function serveDeno(handler: FetchHandler, options: ServeOptions): Promise<HttpServer> {
  const routes = routeMap(options.prepared);
  const handle = async (request: Request): Promise<Response> => {
    const route = routes.size ? preparedFor(routes, request.method, new URL(request.url).pathname) : undefined;
    if (!route) return handler(request);
    let ready;
    try {
      ready = await route.respond();
    } catch {
      return handler(request);
    }
    const answer = conditional(ready, request.headers.get("if-none-match"));
    // Deno sends no body for HEAD; a 304 must have none.
    return new Response(answer.status === 304 ? null : (answer.body as Uint8Array<ArrayBuffer>), { status: answer.status, headers: answer.headers });
  };
  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({ hostname: options.hostname, port: options.port, onListen: (addr) => resolve({ port: addr.port, close: () => server.shutdown() }) }, handle);
    } catch (err) {
      reject(err);
    }
  });
}
