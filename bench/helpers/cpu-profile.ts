// Reads a V8 .cpuprofile (node --cpu-prof): where the main thread's busy time went, attributed to
// the nearest product function on the stack (what in src/ caused it), and the hottest functions by
// self time. Frames of a bundle are mapped back to src/ lines through its source map.
import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Share {
  name: string;
  share: number;
}

export interface ProfileSummary {
  /** Busy (non-idle) main-thread time in the counted part of the profile, ms. */
  busyMs: number;
  /** Busy time by the nearest product function on the stack (src/…), largest first. */
  byProductFunction: Share[];
  /** Functions by self time, any code, largest first. */
  bySelf: Share[];
}

/** `src/…` or `plugins/…` for product files, the package name for dependencies, else the URL. */
function shortFile(path: string): { name: string; product: boolean } {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return { name: pkg[1], product: false };
  const product = /(?:^|\/)((?:src|plugins)\/.*)$/.exec(path);
  if (product) return { name: product[1], product: true };
  return { name: path.replace(/^file:\/\//, ""), product: false };
}

export interface SummaryOptions {
  /** Count only samples taken this long after the profile started (leaves start-up out), ms. */
  fromMs?: number;
  /** …and before this (leaves shutdown out), ms. */
  toMs?: number;
  top?: number;
  /** The bundle the process ran and its source map, to name src/ files and lines. */
  sourceMap?: { bundle: string; map: string };
}

export function summariseProfile(path: string, options: SummaryOptions = {}): ProfileSummary {
  const { fromMs = 0, toMs = Infinity, top = 10, sourceMap } = options;
  const p = JSON.parse(readFileSync(path, "utf8")) as Profile;
  const map = sourceMap ? new SourceMap(JSON.parse(readFileSync(sourceMap.map, "utf8"))) : null;
  const frames = new Map<number, { label: string; product: boolean }>();
  const frame = (n: ProfileNode) => {
    let f = frames.get(n.id);
    if (f) return f;
    const c = n.callFrame;
    let file = c.url;
    let line = c.lineNumber + 1;
    if (map && sourceMap && c.url.endsWith(sourceMap.bundle)) {
      const entry = map.findEntry(c.lineNumber, c.columnNumber) as { originalSource?: string; originalLine?: number };
      if (entry.originalSource) {
        file = entry.originalSource;
        line = (entry.originalLine ?? 0) + 1;
      }
    }
    const s = shortFile(file);
    f = { label: `${c.functionName || "(anonymous)"}${file ? ` (${s.name}${s.product ? `:${line}` : ""})` : ""}`, product: s.product && file !== "" };
    frames.set(n.id, f);
    return f;
  };
  const label = (n: ProfileNode) => frame(n).label;
  const isProduct = (n: ProfileNode) => frame(n).product;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const nearestProduct = new Map<number, string>();
  const productOf = (id: number): string => {
    const cached = nearestProduct.get(id);
    if (cached !== undefined) return cached;
    let at: number | undefined = id;
    let found = "";
    while (at !== undefined) {
      const n = byId.get(at)!;
      if (isProduct(n)) {
        found = label(n);
        break;
      }
      at = parent.get(at);
    }
    const name = found || "(no product code on the stack: GC, event loop, library callbacks)";
    nearestProduct.set(id, name);
    return name;
  };
  const byProduct = new Map<string, number>();
  const bySelf = new Map<string, number>();
  let at = 0;
  let busy = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (at < fromMs * 1000 || at > toMs * 1000) return;
    const n = byId.get(id)!;
    if (n.callFrame.functionName === "(idle)") return;
    busy += dt;
    byProduct.set(productOf(id), (byProduct.get(productOf(id)) ?? 0) + dt);
    bySelf.set(label(n), (bySelf.get(label(n)) ?? 0) + dt);
  });
  const rank = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, t]) => ({ name, share: busy > 0 ? t / busy : 0 }));
  return { busyMs: busy / 1000, byProductFunction: rank(byProduct), bySelf: rank(bySelf) };
}
