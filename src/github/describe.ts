/** Turns a failed GitHub answer into a message that names the likely cause and the fix. */
import { scopeKey, scopeKind, type Scope } from "../shared/scope.ts";

const PERMISSION_HINT: Record<"org" | "repo" | "enterprise", string> = {
  org: 'a classic PAT needs admin:org; a fine-grained token or GitHub App needs the organization permission "Self-hosted runners: write"',
  repo: 'a classic PAT needs repo; a fine-grained token or GitHub App needs the repository permission "Administration: write"',
  enterprise: "a classic PAT with manage_runners:enterprise is required (GitHub Apps cannot manage enterprise runners)",
};

export function describeFailure(args: {
  status?: number;
  network: boolean;
  message: string;
  endpoint: string;
  scope?: Scope;
  rateLimited?: boolean;
  gaveUpWaitSeconds?: number;
  attempts: number;
}): string {
  const where = `${args.endpoint}${args.scope ? ` for ${scopeKey(args.scope)}` : ""}`;
  // Error bodies are often empty (a proxy's 502): leave the message out rather than print ": :".
  const said = args.message.trim() ? `: ${args.message.trim()}` : "";
  const tries = args.attempts > 1 ? ` after ${args.attempts} attempts` : "";
  if (args.gaveUpWaitSeconds !== undefined) {
    return `GitHub rate limit on ${where}: it asks to wait ${Math.round(args.gaveUpWaitSeconds)}s, longer than refresh.maxRetryWait: the pass records a failure and the next pass retries (check what else uses this credential)`;
  }
  if (args.network) return `GitHub unreachable on ${where}${tries}: ${args.message}: check the network, proxy and github.apiUrl`;
  const s = args.status;
  const kind = args.scope ? scopeKind(args.scope) : "org";
  if (s === 401) return `GitHub rejected the credentials on ${where} (401 ${args.message}): the token is expired, revoked or wrong: set a valid GITHUB_TOKEN or github.auth`;
  if (s === 403 && args.rateLimited) return `GitHub rate limit on ${where}${tries} (403): the credential's budget is spent: wait, or use fleet mode to share one poll`;
  if (s === 403) return `GitHub refused ${where} (403 ${args.message}): missing permission: ${PERMISSION_HINT[kind]}`;
  if (s === 404) {
    return `GitHub answered 404 on ${where}: the ${kind} name is wrong, or the credential cannot see it (GitHub answers 404 instead of 403): check the scope and ${PERMISSION_HINT[kind]}`;
  }
  if (s === 429) return `GitHub rate limit on ${where}${tries} (429): too many requests: spread the fleet (refresh.splay) or use fleet mode`;
  if (s !== undefined && s >= 500) return `GitHub error ${s} on ${where}${tries}${said}: GitHub is degraded; the cached token stays in use and the next pass retries`;
  return `GitHub answered ${s ?? "?"} on ${where}${said}`;
}
