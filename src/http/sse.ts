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
const POLL_MS = 500;
const REFRESH_MS = 10_000;

export interface LiveOptions {
  now: () => number;
  version: string;
  pollMs?: number;
}

export function liveHandler(view: CollectorView, options: LiveOptions): (c: Context) => Response | Promise<Response> {
  let open = 0;
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
            const rendered = await renderLivePage(view, url.pathname, url.searchParams, options.now(), options.version);
            if (rendered.live !== last || due) {
              last = rendered.live;
              lastSent = options.now();
              await stream.writeSSE({ event: "update", data: JSON.stringify({ html: rendered.live }) });
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
