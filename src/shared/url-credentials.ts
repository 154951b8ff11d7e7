/**
 * Credentials written into server URLs (`nats://user:pass@host:4222`, as NATS_URL often is). They
 * are taken out of the URL before it is shown anywhere (logs, /healthz, the dashboard, error
 * messages) and handed to the client as proper options instead, registered for redaction.
 */
import { addSecret } from "./redact.ts";

/** `scheme://` (optional), then the userinfo up to the last `@` before the host. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)?([^/?#\s]*)@([^@/?#\s]*)(.*)$/i;

/** The URL without its userinfo: `nats://user:pass@host:4222` → `nats://host:4222`. */
export function stripUserinfo(url: string): string {
  const m = USERINFO.exec(url.trim());
  return m ? `${m[1] ?? ""}${m[3]}${m[4]}` : url;
}

/** Free text (an error message quoting a URL) with the userinfo of every `scheme://…@` removed. */
export function scrubUrls(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s@]*@/gi, "$1");
}

export interface ServerCredentials {
  /** The servers with userinfo removed. */
  servers: string[];
  user?: string;
  password?: string;
  /** `nats://TOKEN@host`: a userinfo without a password is a token (the NATS clients' convention). */
  token?: string;
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * Splits the userinfo off every server URL. The first URL that has one supplies the credentials
 * (a client logs in with one user); each password and token is registered for redaction at once.
 */
export function splitServerCredentials(servers: string[]): ServerCredentials {
  const out: ServerCredentials = { servers: servers.map(stripUserinfo) };
  for (const url of servers) {
    const m = USERINFO.exec(url.trim());
    if (!m || !m[2]) continue;
    const colon = m[2].indexOf(":");
    if (colon < 0) {
      out.token = decode(m[2]);
      addSecret(out.token);
    } else {
      out.user = decode(m[2].slice(0, colon));
      out.password = decode(m[2].slice(colon + 1));
      // Both forms: the decoded one is what the client sends, the raw one is what a URL shows.
      addSecret(out.password);
      addSecret(m[2].slice(colon + 1));
    }
    break;
  }
  return out;
}
