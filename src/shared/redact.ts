/**
 * One process-wide registry of secret values. Every secret the agent learns (PAT, App key,
 * minted registration tokens, installation tokens, webhook URLs, passwords) is added here the
 * moment it is read, and every log line, error message and file the agent writes is passed
 * through `redact`. A registry beats key-name redaction: a token can hide in a URL, an error
 * message from a library or config.sh output.
 */
const secrets = new Set<string>();
/** Longest first, rebuilt only when a secret is added (not on every log line). */
let ordered: string[] = [];
const MIN_SECRET_LENGTH = 6;
const MASK = "[REDACTED]";

export function addSecret(value: string | undefined | null): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  if (secrets.has(value)) return;
  secrets.add(value);
  // A PEM key is also matched line by line, so a library that prints a slice of it is caught.
  if (value.includes("\n")) {
    for (const line of value.split(/\r?\n/)) if (line.length >= 16 && !line.startsWith("-----")) secrets.add(line);
  }
  ordered = [...secrets].sort((a, b) => b.length - a.length);
}

export function redact(text: string): string {
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
  if (secrets.size === 0) return value;
  return JSON.parse(redact(JSON.stringify(value))) as T;
}

export function knownSecretCount(): number {
  return secrets.size;
}
