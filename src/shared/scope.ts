/** Scopes (org, repo, enterprise): their keys, API paths, runner URLs and subject encodings. */
export type Scope = { org: string } | { repo: string } | { enterprise: string };

export function scopeKind(scope: Scope): "org" | "repo" | "enterprise" {
  if ("org" in scope) return "org";
  if ("repo" in scope) return "repo";
  return "enterprise";
}

export function scopeName(scope: Scope): string {
  if ("org" in scope) return scope.org;
  if ("repo" in scope) return scope.repo;
  return scope.enterprise;
}

/** `org:NAME`, `repo:OWNER/NAME`, `enterprise:SLUG` (SPEC 9). */
export function scopeKey(scope: Scope): string {
  return `${scopeKind(scope)}:${scopeName(scope)}`;
}

/** The REST path prefix: `/orgs/x`, `/repos/o/n`, `/enterprises/e`. */
export function scopeApiPath(scope: Scope): string {
  if ("org" in scope) return `/orgs/${encodeURIComponent(scope.org)}`;
  if ("repo" in scope) {
    const [owner, repo] = scope.repo.split("/");
    return `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`;
  }
  return `/enterprises/${encodeURIComponent(scope.enterprise)}`;
}

/** The URL config.sh registers against: `https://HOST/ORG`, `https://HOST/OWNER/REPO`, `https://HOST/enterprises/SLUG`. */
export function scopeRunnerUrl(githubUrl: string, scope: Scope): string {
  const base = githubUrl.replace(/\/+$/, "");
  if ("enterprise" in scope) return `${base}/enterprises/${scope.enterprise}`;
  return `${base}/${scopeName(scope)}`;
}

/** The API base for a web URL: github.com, `*.ghe.com` (api.HOST) or GHES (HOST/api/v3). */
export function deriveApiUrl(githubUrl: string): string {
  const url = new URL(githubUrl);
  if (url.hostname === "github.com") return "https://api.github.com";
  if (url.hostname.endsWith(".ghe.com")) return `${url.protocol}//api.${url.host}`;
  return `${url.protocol}//${url.host}/api/v3`;
}

/**
 * Encodes a name as one NATS subject token or file-name part: each byte outside
 * `[A-Za-z0-9_-]` becomes `=XX` (SPEC 8), so `ci.example.com` → `ci=2Eexample=2Ecom`.
 */
const encoder = new TextEncoder();
/** The same few names (runner dirs, scopes, hosts) are encoded several times in every pass. */
const encoded = new Map<string, string>();
const MAX_ENCODED = 4096;

export function encodeToken(name: string): string {
  const known = encoded.get(name);
  if (known !== undefined) return known;
  let out = "";
  for (const byte of encoder.encode(name)) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(ch) ? ch : `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  if (encoded.size >= MAX_ENCODED) encoded.clear();
  encoded.set(name, out);
  return out;
}

export function decodeToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === "=" && i + 2 < token.length + 0 && /^[0-9A-F]{2}$/.test(token.slice(i + 1, i + 3))) {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
