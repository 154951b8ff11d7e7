/**
 * The NATS permissions of one agent host and of the collector (docs/nats.md, "Permissions"), as
 * nats-server configuration. An agent may publish only its own events and state keys, ask the
 * broker only for its own scopes, read only its scopes' runner keys in RTR_GITHUB, and receive
 * only on its own inbox prefix, which is what lets the broker trust a reply subject as identity.
 * Every JetStream API subject here was found by running the real agent and collector against a
 * nats-server with exactly these permissions (test/nats-permissions.test.ts).
 */
import type { Scope } from "../shared/scope.ts";
import { encodeToken, scopeKey } from "../shared/scope.ts";
import { inboxPrefixFor, natsNames } from "./subjects.ts";

export interface Permissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (the broker's replies go to the asker's inbox). */
  allowResponses?: boolean;
}

export interface AgentGrant {
  host: string;
  prefix: string;
  /** Default `_INBOX_<encoded host>` (what the agent uses unless nats.inboxPrefix is set). */
  inboxPrefix?: string;
  /** Fleet mode: the broker's token subjects and RTR_GITHUB reads for these scopes. */
  tokenScopes: Scope[];
  /** Pools' scopes (SPEC 14): the broker's JIT subjects. */
  jitScopes: Scope[];
}

function scopeToken(scope: Scope): string {
  return encodeToken(scopeKey(scope));
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

export function agentPermissions(grant: AgentGrant): Permissions {
  const n = natsNames(grant.prefix);
  const host = encodeToken(grant.host);
  const github = `KV_${n.githubBucket}`;
  const publish = [
    `${grant.prefix}.events.${host}.>`,
    `$KV.${n.stateBucket}.${host}.>`,
    // Read-only checks the agent makes when it connects (it creates nothing it may not).
    "$JS.API.INFO",
    `$JS.API.STREAM.INFO.${n.eventsStream}`,
    `$JS.API.STREAM.INFO.KV_${n.stateBucket}`,
  ];
  if (grant.tokenScopes.length) {
    // The bucket, and the ordered consumers that list a scope's keys (random names).
    publish.push(`$JS.API.STREAM.INFO.${github}`, `$JS.API.CONSUMER.INFO.${github}.*`);
  }
  for (const scope of grant.tokenScopes) {
    const t = scopeToken(scope);
    publish.push(
      `${grant.prefix}.token.${t}`,
      // One runner's entry and the poll marker (direct get, by subject)...
      `$JS.API.DIRECT.GET.${github}.$KV.${n.githubBucket}.${t}.>`,
      // ...and the scope's keys (an ordered consumer filtered on the scope, for a name lookup).
      `$JS.API.CONSUMER.CREATE.${github}.*.$KV.${n.githubBucket}.${t}.*`,
    );
  }
  for (const scope of grant.jitScopes) publish.push(`${grant.prefix}.jit.${scopeToken(scope)}`);
  return { publish: unique(publish), subscribe: [`${grant.inboxPrefix ?? inboxPrefixFor(grant.host)}.>`] };
}

export interface CollectorGrant {
  prefix: string;
  /** The collector's inbox prefix: nats.js's `_INBOX` unless its nats.inboxPrefix is set. */
  inboxPrefix?: string;
}

export function collectorPermissions(grant: CollectorGrant): Permissions {
  const n = natsNames(grant.prefix);
  const streams = [n.eventsStream, ...[n.stateBucket, n.githubBucket, n.leaderBucket, n.alertsBucket].map((b) => `KV_${b}`)];
  const api = "$JS.API";
  const publish = [
    `${api}.INFO`,
    // What the collector does to its own stream and buckets, verb by verb: it creates them when
    // missing and reads them, it never updates, purges or deletes them.
    ...streams.flatMap((s) => [
      `${api}.STREAM.INFO.${s}`,
      `${api}.STREAM.CREATE.${s}`,
      `${api}.STREAM.MSG.GET.${s}`,
      `${api}.DIRECT.GET.${s}`,
      `${api}.DIRECT.GET.${s}.>`,
      `${api}.CONSUMER.CREATE.${s}`,
      `${api}.CONSUMER.CREATE.${s}.>`,
      `${api}.CONSUMER.DURABLE.CREATE.${s}.*`,
      `${api}.CONSUMER.INFO.${s}.*`,
      `${api}.CONSUMER.DELETE.${s}.*`,
      `${api}.CONSUMER.MSG.NEXT.${s}.*`,
    ]),
    `$JS.ACK.${n.eventsStream}.>`,
    ...[n.githubBucket, n.leaderBucket, n.alertsBucket].map((b) => `$KV.${b}.>`),
    // broker.refused events, on the refused host's subject.
    `${grant.prefix}.events.>`,
  ];
  return {
    publish,
    // Its own inbox, and the broker's request subjects (it answers through allow_responses).
    subscribe: [`${grant.inboxPrefix ?? "_INBOX"}.>`, `${grant.prefix}.token.*`, `${grant.prefix}.jit.*`],
    allowResponses: true,
  };
}

export interface UserAuth {
  user: string;
  /** An environment variable nats-server reads the password from (`password: $VAR`). */
  passwordVar?: string;
  /** An nkey user's public key (U...): then no user/password. */
  nkey?: string;
}

/** `ci-01.example.com` → `RTR_CI_01_EXAMPLE_COM_PASSWORD`: a name nats-server can substitute. */
export function defaultPasswordVar(user: string): string {
  return `RTR_${user.toUpperCase().replace(/[^A-Z0-9]+/g, "_").replace(/^_|_$/g, "")}_PASSWORD`;
}

function list(subjects: string[], indent: string): string {
  return `[\n${subjects.map((s) => `${indent}  ${JSON.stringify(s)}`).join("\n")}\n${indent}]`;
}

/** One entry of `users = [...]` in nats-server syntax, with comment lines above it. */
export function renderUser(auth: UserAuth, perms: Permissions, comments: string[]): string {
  const who = auth.nkey ? [`  nkey: ${JSON.stringify(auth.nkey)}`] : [`  user: ${JSON.stringify(auth.user)}`, `  password: $${auth.passwordVar ?? defaultPasswordVar(auth.user)}`];
  return [
    ...comments.map((c) => `# ${c}`),
    "{",
    ...who,
    "  permissions: {",
    `    publish: { allow: ${list(perms.publish, "    ")} }`,
    `    subscribe: { allow: ${list(perms.subscribe, "    ")} }`,
    ...(perms.allowResponses ? ["    allow_responses: true"] : []),
    "  }",
    "}",
    "",
  ].join("\n");
}
