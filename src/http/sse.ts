/**
 * Live pages (issue 19): `GET /live?page=<path and query>` is a Server-Sent Events stream of the
 * page's live part, pushed when something changed (the view's change counter) and at least every
 * REFRESH_MS so "ago" columns move. Nothing is sent that a reload would not show, and a page
 * carries no secret (the agents publish none, SPEC 8). The number of streams is capped: each one
 * re-renders its page on every change.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { CollectorView } from "../collector/types.ts";
import { renderLivePage } from "./pages/render.ts";

export const MAX_STREAMS = 100;
/** How often a stream looks for a change, and how often it re-renders regardless. */
const POLL_MS = 1000;
const REFRESH_MS = 10_000;
/** Distinct pages whose last render is kept for other streams on the same page. */
const SHARED_RENDERS = 50;

export interface LiveOptions {
  now: () => number;
  version: string;
  pollMs?: number;
}

export function liveHandler(view: CollectorView, options: LiveOptions): (c: Context) => Response | Promise<Response> {
  let open = 0;
  // Streams on the same page at the same change share one render: a hundred people on the fleet
  // page cost one render per change, not a hundred.
  const shared = new Map<string, { change: number; at: number; live: Promise<string> }>();
  const render = (url: URL, change: number): Promise<string> => {
    const key = url.pathname + url.search;
    const hit = shared.get(key);
    if (hit && hit.change === change && options.now() - hit.at < POLL_MS) return hit.live;
    const live = renderLivePage(view, url.pathname, url.searchParams, options.now(), options.version).then((r) => r.live);
    const entry = { change, at: options.now(), live };
    shared.delete(key);
    shared.set(key, entry);
    // A failed render is not shared: the next stream tries again.
    live.catch(() => shared.get(key) === entry && shared.delete(key));
    if (shared.size > SHARED_RENDERS) shared.delete(shared.keys().next().value as string);
    return live;
  };
  return (c) => {
    const page = c.req.query("page") ?? "/";
    // Only our own paths: the page parameter is a path and query, never a URL elsewhere.
    if (!page.startsWith("/") || page.startsWith("//")) return c.json({ error: "invalid query parameter page: a path such as /hosts/ci-01" }, 400);
    if (open >= MAX_STREAMS) return c.json({ error: `too many live pages open (at most ${MAX_STREAMS}): reload later` }, 503);
    const url = new URL(page, "http://collector.invalid");
    open++;
    return streamSSE(c, async (stream) => {
      let last = "";
      let lastChange = -1;
      let lastSent = 0;
      try {
        while (!stream.aborted && !stream.closed) {
          const change = view.changes?.() ?? 0;
          const due = options.now() - lastSent >= REFRESH_MS;
          if (change !== lastChange || due) {
            lastChange = change;
            const live = await render(url, change);
            if (live !== last || due) {
              last = live;
              lastSent = options.now();
              await stream.writeSSE({ event: "update", data: JSON.stringify({ html: live }) });
            }
          }
          await stream.sleep(options.pollMs ?? POLL_MS);
        }
      } finally {
        open--;
      }
    });
  };
}
