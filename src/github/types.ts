/** What the GitHub client hands out and reports: runner states, tokens, and the observer it feeds. */

export interface RateLimitInfo {
  limit: number;
  remaining: number;
  reset: number;
  used: number;
  resource: string;
}

/** Why a credential was set aside and the call went on through the next one. */
export type FailoverReason = "rate_limit" | "revoked";

export interface GitHubObserver {
  request(endpoint: string, status: string): void;
  rateLimit(info: RateLimitInfo): void;
  /** Local clock minus the server's `Date`, when more than 60 s apart. */
  clockSkew(seconds: number): void;
  credentialExpiry(at: Date): void;
  /** A retry is about to wait (for logging). */
  retrying(endpoint: string, attempt: number, waitSeconds: number, reason: string): void;
  /** The configured App ids, once (metrics start their counters at 0). */
  appsConfigured?(appIds: number[]): void;
  /** An App's budget as its installation's last answer told it (`github.auth.app`/`apps`). */
  appRateLimit?(appId: number, info: RateLimitInfo): void;
  /** With several Apps: `appId` was set aside and the same request goes on through `nextAppId`. */
  failover?(appId: number, nextAppId: number, endpoint: string, reason: FailoverReason): void;
}

export interface RunnerApiState {
  id: number;
  name: string;
  status: "online" | "offline";
  busy: boolean;
  labels: string[];
  /** Labels of type "custom" (hygiene compares them with runners[].labels); absent when not known. */
  customLabels?: string[];
  /** Labels of type "read-only" (set by config.sh: self-hosted, OS, architecture). */
  readOnlyLabels?: string[];
  /** `runner_group_id`, in newer API versions only. */
  groupId?: number;
}

/** A conditional status read: unchanged (304), or the runner (null: 404) with its ETag. */
export type ConditionalRunner = { notModified: true } | { notModified: false; runner: RunnerApiState | null; etag: string | null };

export interface RegistrationToken {
  token: string;
  expiresAt: Date;
}

export type RawRunner = { id: number; name: string; status: string; busy: boolean; labels?: { name: string; type?: string }[]; runner_group_id?: number };

export function toRunner(raw: RawRunner): RunnerApiState {
  const labels = raw.labels ?? [];
  const typed = labels.every((l) => l.type === "custom" || l.type === "read-only");
  return {
    id: raw.id,
    name: raw.name,
    status: raw.status === "online" ? "online" : "offline",
    busy: raw.busy,
    labels: labels.map((l) => l.name),
    // Only when every label says its type: an untyped answer must never look like "no custom labels".
    ...(typed ? { customLabels: labels.filter((l) => l.type === "custom").map((l) => l.name), readOnlyLabels: labels.filter((l) => l.type === "read-only").map((l) => l.name) } : {}),
    ...(typeof raw.runner_group_id === "number" ? { groupId: raw.runner_group_id } : {}),
  };
}
