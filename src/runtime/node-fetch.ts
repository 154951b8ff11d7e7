/**
 * The Node runtime's HTTP client: `fetch` over node:http/https (issue #18). Node's own fetch
 * (undici) compiles its HTTP parser, llhttp, from WebAssembly on the first request; that compile
 * runs on V8's worker threads and leaves ~10-20 MiB in their malloc arenas for the life of the
 * process, which is most of what an idle agent daemon held beyond a bare process. node:http
 * parses with the llhttp built into node. Only what the GitHub client asks of fetch is here: a
 * method, headers, a string or bytes body, a signal and redirects; the answer is read whole
 * (GitHub's answers are small JSON documents) into an object with a fetch Response's reading
 * methods, without fetch's globals (see AnswerHeaders).
 */
import http from "node:http";
import https from "node:https";
import { AnswerHeaders, headersFrom } from "../shared/headers.ts";

/** One keep-alive pool per protocol, as fetch keeps connections; made on first use. */
let agents: { "http:": http.Agent; "https:": https.Agent } | null = null;
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const REDIRECT = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;

interface Answer {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function send(url: URL, method: string, headers: AnswerHeaders, body: Buffer | undefined, signal: AbortSignal | undefined): Promise<Answer> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const client = url.protocol === "https:" ? https : url.protocol === "http:" ? http : null;
    if (!client) return reject(new TypeError("fetch failed", { cause: new Error(`unsupported protocol ${url.protocol}`) }));
    const outgoing: Record<string, string> = {};
    headers.forEach((value, name) => (outgoing[name] = value));
    if (body && outgoing["content-length"] === undefined) outgoing["content-length"] = String(body.length);
    agents ??= { "http:": new http.Agent({ keepAlive: true }), "https:": new https.Agent({ keepAlive: true }) };
    const req = client.request(url, { method, headers: outgoing, agent: agents[url.protocol as "http:" | "https:"] });
    const onAbort = () => req.destroy(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => signal?.removeEventListener("abort", onAbort);
    req.on("error", (err) => {
      done();
      reject(signal?.aborted ? signal.reason : new TypeError("fetch failed", { cause: err }));
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", (err) => {
        done();
        reject(signal?.aborted ? signal.reason : new TypeError("fetch failed", { cause: err }));
      });
      res.on("end", () => {
        done();
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? "", headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    req.end(body);
  });
}

function answerHeaders(raw: http.IncomingHttpHeaders): AnswerHeaders {
  const headers = new AnswerHeaders();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}

/** The answer, read whole: what a fetch Response offers a reader of a small JSON document. */
class NodeFetchResponse {
  readonly ok: boolean;
  readonly type = "basic";
  #used = false;
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly headers: AnswerHeaders,
    readonly url: string,
    readonly redirected: boolean,
    readonly bytes: Buffer | null,
  ) {
    this.ok = status >= 200 && status < 300;
  }
  get bodyUsed(): boolean {
    return this.#used;
  }
  /** No stream: the body was read whole (the GitHub client never asks for one). */
  get body(): null {
    return null;
  }
  #take(): Buffer {
    if (this.#used) throw new TypeError("Body is unusable: Body has already been read");
    this.#used = true;
    return this.bytes ?? Buffer.alloc(0);
  }
  async text(): Promise<string> {
    return this.#take().toString("utf8");
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = this.#take();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  clone(): NodeFetchResponse {
    if (this.#used) throw new TypeError("Response.clone: Body has already been consumed");
    return new NodeFetchResponse(this.status, this.statusText, new AnswerHeaders(this.headers), this.url, this.redirected, this.bytes);
  }
}

async function bodyBytes(body: RequestInit["body"]): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // Streams, blobs, forms: nothing the agent sends; fetch's own Response reads them.
  return Buffer.from(await new Response(body).arrayBuffer());
}

interface RequestLike {
  url: string;
  method?: string;
  headers?: unknown;
  signal?: AbortSignal;
  redirect?: RequestRedirect;
  arrayBuffer?: () => Promise<ArrayBuffer>;
  body?: unknown;
}

export const nodeFetch: typeof fetch = (async (input: string | URL | RequestLike, init: RequestInit = {}) => {
  // A Request is recognised by shape: `instanceof Request` would load undici (see AnswerHeaders).
  const request = typeof input === "object" && !(input instanceof URL) ? input : null;
  let url = new URL(request ? request.url : String(input));
  let method = (init.method ?? request?.method ?? "GET").toUpperCase();
  const headers = headersFrom(init.headers ?? request?.headers);
  let body = await bodyBytes(init.body ?? (request?.body && request.arrayBuffer ? await request.arrayBuffer() : undefined));
  const signal = init.signal ?? request?.signal ?? undefined;
  const redirect = init.redirect ?? request?.redirect ?? "follow";
  for (let hops = 0; ; hops++) {
    const answer = await send(url, method, headers, body, signal);
    const location = answer.headers.location;
    if (REDIRECT.has(answer.status) && location && redirect !== "manual") {
      if (redirect === "error") throw new TypeError("fetch failed", { cause: new Error(`redirect to ${location} with redirect: "error"`) });
      if (hops >= MAX_REDIRECTS) throw new TypeError("fetch failed", { cause: new Error("too many redirects") });
      const next = new URL(location, url);
      // As fetch does: the credentials stay with the origin they were given for.
      if (next.origin !== url.origin) headers.delete("authorization");
      if (answer.status === 303 || ((answer.status === 301 || answer.status === 302) && method === "POST")) {
        method = "GET";
        body = undefined;
        headers.delete("content-type");
        headers.delete("content-length");
      }
      url = next;
      continue;
    }
    const bytes = NULL_BODY.has(answer.status) || method === "HEAD" ? null : answer.body;
    return new NodeFetchResponse(answer.status, answer.statusText, answerHeaders(answer.headers), url.href, hops > 0, bytes);
  }
}) as unknown as typeof fetch;
