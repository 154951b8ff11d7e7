/**
 * One process-wide registry of secret values. Every secret the agent learns (PAT, App key,
 * minted registration tokens, installation tokens, webhook URLs, passwords) is added here the
 * moment it is read, and every log line, error message and file the agent writes is passed
 * through `redact`. A registry beats key-name redaction: a token can hide in a URL, an error
 * message from a library or config.sh output.
 *
 * Short-lived tokens (registration tokens, installation tokens) are added with their expiry and
 * forgotten once it is EXPIRY_MARGIN_MS past (and never sooner than that after they were first
 * seen: an expiry is GitHub's clock, which may be behind ours): a daemon mints one per scope per
 * hour, and a registry that kept them all would grow (and slow every log line) for the life of
 * the process. Long-lived secrets (PAT, keys, webhook URLs) are added without an expiry and stay.
 */
const MIN_SECRET_LENGTH = 6;
const MASK = "[REDACTED]";
/**
 * How long an expired token is still masked: it can still turn up after its expiry (an error about
 * the expired token, a runner's config.sh output read later, a clock ahead of GitHub's).
 */
export const EXPIRY_MARGIN_MS = 3600_000;

/** Secret → the time (epoch ms) after which it may be forgotten; Infinity for long-lived ones. */
const secrets = new Map<string, number>();
/** Longest first, rebuilt only when the set changes (not on every log line). */
let ordered: string[] = [];
/** The earliest forget-after time in the registry, so redact() checks the clock, not the map. */
let nextPrune = Infinity;

function rebuild(): void {
  ordered = [...secrets.keys()].sort((a, b) => b.length - a.length);
  nextPrune = Infinity;
  for (const until of secrets.values()) if (until < nextPrune) nextPrune = until;
}

function prune(now: number): void {
  if (now <= nextPrune) return;
  for (const [value, until] of secrets) if (until < now) secrets.delete(value);
  rebuild();
}

/** Forgets what expired before `nowMs` less the margin. Every use of the registry does this; tests look ahead. */
export function pruneExpiredSecrets(nowMs = Date.now()): void {
  prune(nowMs);
}

/**
 * Registers a secret. `expiresAt` marks a short-lived token; a value already known keeps what it
 * had (a PAT seen again in an Authorization header stays long-lived, and a token's known expiry
 * is not pushed back by a later sighting with a guessed one), unless it is now added long-lived.
 */
export function addSecret(value: string | undefined | null, expiresAt?: Date | null): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  const now = Date.now();
  const expiry = expiresAt ? expiresAt.getTime() : NaN;
  const until = Number.isFinite(expiry) ? Math.max(expiry, now) + EXPIRY_MARGIN_MS : Infinity;
  const known = secrets.get(value);
  prune(now);
  if (known !== undefined && (known === Infinity || until !== Infinity)) return;
  secrets.set(value, until);
  // A PEM key is also matched line by line, so a library that prints a slice of it is caught.
  if (value.includes("\n")) {
    for (const line of value.split(/\r?\n/)) if (line.length >= 16 && !line.startsWith("-----")) secrets.set(line, Math.max(until, secrets.get(line) ?? 0));
  }
  rebuild();
}

export function redact(text: string): string {
  prune(Date.now());
  if (secrets.size === 0 || !text) return text;
  let out = text;
  // Longest first, so a secret that contains another is masked whole.
  for (const s of ordered) {
    if (out.includes(s)) out = out.split(s).join(MASK);
  }
  return out;
}

/** Redacts every string inside a JSON-like value. */
export function redactValue<T>(value: T): T {
  prune(Date.now());
  if (secrets.size === 0) return value;
  return JSON.parse(redact(JSON.stringify(value))) as T;
}

export function knownSecretCount(): number {
  prune(Date.now());
  return secrets.size;
}
