/**
 * The GitHub calls a pool makes (SPEC 14): generate-jitconfig (never retried by the client: a
 * retried success answers 409), runner groups by name, delete, and the scope's listing for ghosts.
 */
import { ConfigError, GitHubError } from "../shared/errors.ts";
import { addSecret } from "../shared/redact.ts";
import { scopeKey, scopeKind, scopeName, type Scope } from "../shared/scope.ts";
import type { GitHubClient } from "../github/client.ts";

export interface JitRunner {
  id: number;
  name: string;
  encodedJitConfig: string;
}

/** A JIT config outlives no job: jobs on self-hosted runners are cut off after 5 days. */
const JIT_SECRET_LIFETIME_MS = 6 * 24 * 3600_000;

/** The runner and its config, or "name_taken" (409) so the caller tries another name. */
export async function generateJitConfig(
  github: GitHubClient,
  scope: Scope,
  body: { name: string; runnerGroupId: number; labels: string[]; workFolder: string },
  signal: AbortSignal,
): Promise<JitRunner | "name_taken"> {
  const res = await github.scopedRequest<{ runner?: { id?: number; name?: string }; encoded_jit_config?: string }>(
    "generate-jitconfig",
    scope,
    "POST {scope}/actions/runners/generate-jitconfig",
    { name: body.name, runner_group_id: body.runnerGroupId, labels: body.labels, work_folder: body.workFolder },
    signal,
    { accept: [409], retry: false },
  );
  if (res.status === 409) return "name_taken";
  const config = res.data?.encoded_jit_config;
  const id = res.data?.runner?.id;
  // The config holds the runner's credentials: never logged, stored or published.
  if (config) addSecret(config, new Date(Date.now() + JIT_SECRET_LIFETIME_MS));
  if (typeof config !== "string" || !config || typeof id !== "number") {
    throw new GitHubError(`GitHub's generate-jitconfig answer for ${scopeKey(scope)} has no runner id or encoded_jit_config`, { status: res.status, endpoint: "generate-jitconfig", retryable: false });
  }
  return { id, name: res.data.runner?.name ?? body.name, encodedJitConfig: config };
}

/** A runner group's id by name (org and enterprise scopes; a repository has only Default, id 1). */
export async function resolveGroupId(github: GitHubClient, scope: Scope, name: string, where: string, signal: AbortSignal): Promise<number> {
  if (scopeKind(scope) === "repo") {
    if (name.toLowerCase() === "default") return 1;
    throw new ConfigError(`${where}.group: repository runners have no groups but Default: remove group or use an org scope`);
  }
  for (let page = 1; page <= 20; page++) {
    const res = await github.scopedRequest<{ total_count?: number; runner_groups?: { id: number; name: string }[] }>(
      "runner-groups",
      scope,
      "GET {scope}/actions/runner-groups",
      { per_page: 100, page },
      signal,
    );
    const groups = res.data?.runner_groups ?? [];
    const found = groups.find((g) => g.name.toLowerCase() === name.toLowerCase());
    if (found) return found.id;
    if (groups.length < 100) break;
  }
  throw new ConfigError(`${where}.group: ${scopeName(scope)} has no runner group "${name}": create it (Settings → Actions → Runner groups) or fix the name`);
}

/** "deleted", "gone" (already), or "busy" (GitHub refuses while a job runs: 422). */
export async function deleteRunner(github: GitHubClient, scope: Scope, id: number, signal: AbortSignal): Promise<"deleted" | "gone" | "busy"> {
  const res = await github.scopedRequest<unknown>("runner-delete", scope, "DELETE {scope}/actions/runners/{runner_id}", { runner_id: id }, signal, { accept: [404, 422] });
  return res.status === 404 ? "gone" : res.status === 422 ? "busy" : "deleted";
}
