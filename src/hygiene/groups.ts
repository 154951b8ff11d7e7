/**
 * Runner group drift (issue 17, org scope): the runner sits in another group than runners[].group.
 * `PUT /orgs/{org}/actions/runner-groups/{gid}/runners/{rid}` moves it; no re-registration. The
 * group's name is resolved to its id once (`GET /orgs/{org}/actions/runner-groups`) and cached in
 * the state dir; a move answered 404 drops the cache (the group was renamed or deleted).
 */
import { join } from "node:path";
import { AbortedError, GitHubError, errorMessage } from "../shared/errors.ts";
import { encodeToken } from "../shared/scope.ts";
import type { Logger } from "../shared/logger.ts";
import type { RunnerConfig } from "../config/types.ts";
import type { RunnerApiState } from "../github/client.ts";
import type { AgentContext, PassState } from "../agent/context.ts";
import { mustLock } from "../agent/runner-lock.ts";
import { RunnerGroupNotFoundError } from "./errors.ts";
import { hygieneDir, readJsonFile, writeJsonFile } from "./memory.ts";

const PAGE = 100;

interface GroupCache {
  /** Lower-cased name → id, and id → name as GitHub spells it (for messages and events). */
  ids: Record<string, number>;
  names: Record<string, string>;
}

const cacheFile = (ctx: AgentContext, org: string) => join(hygieneDir(ctx), `groups-${encodeToken(org)}.json`);

async function listGroups(ctx: AgentContext, pass: PassState, org: string): Promise<GroupCache> {
  const cache: GroupCache = { ids: {}, names: {} };
  for (let page = 1; ; page++) {
    const res = await ctx.github!.rest<{ runner_groups?: { id: number; name: string }[] }>("runner-groups", { org }, "GET /orgs/{org}/actions/runner-groups", { org, per_page: PAGE, page }, pass.signal);
    const groups = res.data.runner_groups ?? [];
    for (const g of groups) {
      cache.ids[g.name.toLowerCase()] = g.id;
      cache.names[String(g.id)] = g.name;
    }
    if (groups.length < PAGE) return cache;
  }
}

/** The group's id, from the cache or one listing. Throws RunnerGroupNotFoundError. */
export async function resolveGroupId(ctx: AgentContext, pass: PassState, org: string, name: string): Promise<{ id: number; cache: GroupCache }> {
  const path = cacheFile(ctx, org);
  let cache = await readJsonFile<GroupCache>(ctx, path, () => ({ ids: {}, names: {} }));
  if (cache.ids[name.toLowerCase()] === undefined) {
    cache = await listGroups(ctx, pass, org);
    await writeJsonFile(ctx, path, cache);
  }
  const id = cache.ids[name.toLowerCase()];
  if (id === undefined) throw new RunnerGroupNotFoundError(name, org);
  return { id, cache };
}

/** Older API versions have no runner_group_id: ask the group whether it holds the runner. */
async function groupHolds(ctx: AgentContext, pass: PassState, org: string, gid: number, runnerId: number): Promise<boolean> {
  for (let page = 1; ; page++) {
    const res = await ctx.github!.rest<{ runners?: { id: number }[] }>(
      "runner-group-runners",
      { org },
      "GET /orgs/{org}/actions/runner-groups/{runner_group_id}/runners",
      { org, runner_group_id: gid, per_page: PAGE, page },
      pass.signal,
    );
    const runners = res.data.runners ?? [];
    if (runners.some((r) => r.id === runnerId)) return true;
    if (runners.length < PAGE) return false;
  }
}

export async function repairGroup(ctx: AgentContext, pass: PassState, runner: RunnerConfig, api: RunnerApiState, log: Logger): Promise<void> {
  if (!runner.group || !ctx.github || !("org" in runner.scope)) return;
  const org = runner.scope.org;
  let gid: number;
  let cache: GroupCache;
  try {
    ({ id: gid, cache } = await resolveGroupId(ctx, pass, org, runner.group));
    if (api.groupId === gid) return;
    if (api.groupId === undefined && (await groupHolds(ctx, pass, org, gid, api.id))) return;
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    log.warn(`runner group check skipped: ${errorMessage(err)}`);
    return;
  }
  const before = api.groupId === undefined ? null : { id: api.groupId, name: cache.names[String(api.groupId)] ?? null };
  const after = { id: gid, name: cache.names[String(gid)] ?? runner.group };
  if (ctx.config.dryRun) {
    log.info({ before, after }, `dry run: would move runner id ${api.id} to runner group "${after.name}"`);
    return;
  }
  await mustLock(pass);
  try {
    await ctx.github.rest("runner-group-move", { org }, "PUT /orgs/{org}/actions/runner-groups/{runner_group_id}/runners/{runner_id}", { org, runner_group_id: gid, runner_id: api.id }, pass.signal);
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    // The cached id may name a group deleted or renamed since: list again next time.
    if (err instanceof GitHubError && err.status === 404) await writeJsonFile(ctx, cacheFile(ctx, org), { ids: {}, names: {} });
    ctx.telemetry.hygiene.repair(runner.name, "group", false);
    log.warn({ before, after }, `could not move the runner to group "${after.name}": ${errorMessage(err)}`);
    return;
  }
  ctx.telemetry.hygiene.repair(runner.name, "group", true);
  log.info({ before, after }, `runner was in another group than runners[].group: moved it to "${after.name}" (no re-registration)`);
  await ctx.events.emit("runner.group_repaired", runner.name, runner.scope, { agent_id: api.id, before, after });
}
