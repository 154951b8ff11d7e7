import { test } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { EXPIRY_MARGIN_MS, addSecret, knownSecretCount, pruneExpiredSecrets, redact } from "./redact.ts";

const HOUR = 3600_000;
const MINUTE = 60_000;

/** A value no other test in this process registers (the registry is process-wide). */
function unique(label: string): string {
  return `${label}-${crypto.randomUUID()}`;
}

test("redaction registry - many tokens past their expiry and the margin are pruned, so the registry shrinks", () => {
  const before = knownSecretCount();
  const expired = Array.from({ length: 500 }, () => unique("AEXPIRED"));
  for (const t of expired) addSecret(t, new Date(Date.now() - 2 * HOUR));
  assert.equal(knownSecretCount(), before + 500);
  // As a long-running daemon sees it a margin later (every use of the registry prunes).
  pruneExpiredSecrets(Date.now() + EXPIRY_MARGIN_MS + MINUTE);
  assert.ok(knownSecretCount() <= before, `registry grew from ${before} to ${knownSecretCount()} with only expired tokens`);
  assert.equal(redact(`old ${expired[0]}`), `old ${expired[0]}`, "an expired token is no longer tracked");
});

test("redaction registry - a token still valid is redacted, and still is once the margin after now has passed", () => {
  const valid = unique("AVALID");
  addSecret(valid, new Date(Date.now() + 3 * HOUR));
  assert.equal(redact(`token=${valid}`), "token=[REDACTED]");
  pruneExpiredSecrets(Date.now() + EXPIRY_MARGIN_MS + MINUTE);
  assert.equal(redact(`token=${valid}`), "token=[REDACTED]");
});

test("redaction registry - a token expired but within the margin is still redacted", () => {
  const recentlyExpired = unique("ARECENT");
  addSecret(recentlyExpired, new Date(Date.now() + 10 * MINUTE));
  // Its expiry passed 20 minutes ago, as seen from half an hour ahead: within the margin.
  pruneExpiredSecrets(Date.now() + 30 * MINUTE);
  assert.equal(redact(`a ${recentlyExpired} b`), "a [REDACTED] b");
});

test("redaction registry - a token is kept at least the margin after it was learned, whatever GitHub's clock says", () => {
  const skewed = unique("ASKEWED");
  // A GitHub clock hours behind ours: the expiry is already far in our past when the token arrives.
  addSecret(skewed, new Date(Date.now() - 5 * HOUR));
  pruneExpiredSecrets(Date.now() + EXPIRY_MARGIN_MS / 2);
  assert.equal(redact(`t ${skewed}`), "t [REDACTED]");
});

test("redaction registry - long-lived secrets stay, even when the same value is later seen with an expiry", () => {
  const pat = unique("ghp_longlived");
  const key = `-----BEGIN PRIVATE KEY-----\n${unique("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")}\n-----END PRIVATE KEY-----`;
  addSecret(pat);
  addSecret(key);
  // The PAT appears again in an Authorization header, registered as short-lived: it stays long-lived.
  addSecret(pat, new Date(Date.now() - 2 * HOUR));
  pruneExpiredSecrets(Date.now() + 10 * 365 * 24 * HOUR);
  assert.equal(redact(`auth ${pat}`), "auth [REDACTED]");
  assert.equal(redact(`pem ${key.split("\n")[1]}`), "pem [REDACTED]", "a PEM line alone is still caught");
});

test("redaction registry - a short-lived token seen again keeps its first, known expiry", () => {
  const token = unique("ghs_installation");
  addSecret(token, new Date(Date.now() - 2 * HOUR));
  // A later sighting with a guessed, later expiry (an Authorization header) does not extend it.
  addSecret(token, new Date(Date.now() + 5 * HOUR));
  pruneExpiredSecrets(Date.now() + EXPIRY_MARGIN_MS + MINUTE);
  assert.equal(redact(`t ${token}`), `t ${token}`, "forgotten a margin after its first known expiry");
});
