/**
 * HTTP headers as fetch's Headers offers them to a reader, without fetch's globals: touching any
 * of Headers, Request or Response makes Node load and compile its bundled undici (~30 ms of a
 * `check`'s start, a few MiB of a daemon; issue 18). The Node runtime's fetch answers with these.
 */
/** Get, has, iteration in lower-case name order, a repeated header's values joined by ", ". */
export class AnswerHeaders {
  readonly #map = new Map<string, string>();
  constructor(entries: Iterable<[string, string]> = []) {
    for (const [name, value] of entries) this.append(name, value);
  }
  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const had = this.#map.get(key);
    this.#map.set(key, had === undefined ? value : `${had}, ${value}`);
  }
  delete(name: string): void {
    this.#map.delete(name.toLowerCase());
  }
  get(name: string): string | null {
    return this.#map.get(name.toLowerCase()) ?? null;
  }
  has(name: string): boolean {
    return this.#map.has(name.toLowerCase());
  }
  forEach(fn: (value: string, name: string, headers: AnswerHeaders) => void): void {
    for (const [name, value] of this) fn(value, name, this);
  }
  *entries(): IterableIterator<[string, string]> {
    yield* [...this.#map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }
  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

/** Request headers in any form fetch accepts (a plain object, pairs, a Headers or ours). */
export function headersFrom(init: unknown): AnswerHeaders {
  const headers = new AnswerHeaders();
  if (!init) return headers;
  if (typeof (init as { forEach?: unknown }).forEach === "function" && !Array.isArray(init)) {
    (init as { forEach(fn: (value: string, name: string) => void): void }).forEach((value, name) => headers.append(name, value));
  } else if (Array.isArray(init)) {
    for (const [name, value] of init as [string, string][]) headers.append(name, String(value));
  } else {
    for (const [name, value] of Object.entries(init as Record<string, unknown>)) if (value !== undefined) headers.append(name, String(value));
  }
  return headers;
}

