import { test, after, before } from "../../test/helpers/test.ts";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";
import type { SMTPServerOptions } from "smtp-server";
import email, { emailHtml, emailSubject, emailText, escapeHtml } from "./index.ts";
import { closedPort, expectDeliveryError, expectOptionsError, instantiate, sampleNotification, secretHelpers } from "../../test/helpers/plugin-harness.ts";

const USER = "alerts@example.com";
const PASS = "smtp-Pa55word-secret";
const FAST = { connectionTimeout: 2000, greetingTimeout: 2000, socketTimeout: 4000 };

interface Received {
  from: string;
  to: string[];
  raw: string;
}
interface Smtp {
  port: number;
  messages: Received[];
  close(): Promise<void>;
}

/** A real SMTP server: refuses nobody@ (550) and later@ (451), optional auth, STARTTLS or not. */
async function startSmtp(options: SMTPServerOptions = {}): Promise<Smtp> {
  const messages: Received[] = [];
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    hideSTARTTLS: true,
    allowInsecureAuth: true,
    disableReverseLookup: true,
    onAuth(auth, _session, cb) {
      if (auth.username === USER && auth.password === PASS) cb(null, { user: auth.username });
      else cb(Object.assign(new Error("Authentication credentials invalid"), { responseCode: 535 }));
    },
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith("nobody@")) return cb(Object.assign(new Error("5.1.1 no such user here"), { responseCode: 550 }));
      if (address.address.startsWith("later@")) return cb(Object.assign(new Error("4.2.1 mailbox busy, try later"), { responseCode: 451 }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        messages.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "", to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8") });
        cb();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return { port, messages, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The decoded text/plain and text/html parts of a raw message (7bit or quoted-printable). */
function parts(raw: string): { subject: string; text: string; html: string } {
  const [head] = raw.split(/\r?\n\r?\n/);
  const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/im.exec(head)?.[1].replace(/\r?\n[ \t]/g, " ") ?? "";
  const out: Record<string, string> = {};
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(head)?.[1] ?? "\u0000";
  for (const part of raw.split(`--${boundary}`)) {
    const m = /Content-Type: text\/(plain|html)[\s\S]*?\r?\n\r?\n([\s\S]*)$/i.exec(part);
    if (!m) continue;
    let body = m[2];
    if (/Content-Transfer-Encoding: quoted-printable/i.test(part)) {
      const bytes = body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      body = new TextDecoder().decode(Uint8Array.from(bytes, (c) => c.charCodeAt(0)));
    }
    out[m[1].toLowerCase()] = body.replace(/\r\n/g, "\n").replace(/\n$/, "");
  }
  return { subject, text: out.plain ?? "", html: out.html ?? "" };
}

let plain: Smtp;
let authed: Smtp;
let dir: string;
before(async () => {
  plain = await startSmtp();
  authed = await startSmtp({ authOptional: false });
  dir = await mkdtemp(join(tmpdir(), "email-plugin-"));
});
after(async () => {
  await Promise.all([plain.close(), authed.close()]);
  await rm(dir, { recursive: true, force: true });
});

const signal = () => AbortSignal.timeout(8000);
const base = (port: number, more: Record<string, unknown> = {}) => ({ smtp: { host: "127.0.0.1", port }, from: "CI alerts <ci@example.com>", to: ["ops@example.com"], timeouts: FAST, ...more });

test("email plugin - sends subject, text and HTML bodies to every recipient", async () => {
  const { instance } = await instantiate(email, base(plain.port, { to: ["ops@example.com", "dev@example.com"] }));
  await instance.send(sampleNotification(), signal());
  await instance.close?.();
  const m = plain.messages.at(-1)!;
  assert.equal(m.from, "ci@example.com");
  assert.deepEqual(m.to, ["ops@example.com", "dev@example.com"]);
  const p = parts(m.raw);
  assert.equal(p.subject, "[runner-token-refresh] FIRING refresh_failures ci-01/runner-1");
  assert.equal(p.text, emailText(sampleNotification()));
  assert.equal(p.html, emailHtml(sampleNotification()));
  assert.match(p.text, /^\[FIRING\] refresh_failures on ci-01\/runner-1: 3 token refreshes failed in a row\n/);
  assert.match(p.text, /Runner:   runner-1\n/);
  assert.match(p.text, /  lastError: GitHub answered 401 <Bad credentials> & gave up\n/);
  assert.match(p.html, /GitHub answered 401 &lt;Bad credentials&gt; &amp; gave up/);
  assert.ok(!p.html.includes("<Bad credentials>"), "HTML is escaped");
});

test("email plugin - subjects name state, rule, host and runner; group, more and test notifications too", () => {
  const n = sampleNotification();
  assert.equal(emailSubject(n), "[runner-token-refresh] FIRING refresh_failures ci-01/runner-1");
  assert.equal(emailSubject({ ...n, status: "resolved" }, "[ci]"), "[ci] RESOLVED refresh_failures ci-01/runner-1");
  assert.equal(emailSubject({ ...n, test: true, runner: null }), "[runner-token-refresh] TEST FIRING refresh_failures ci-01/org:acme", "no runner: the scope");
  assert.equal(emailSubject({ ...n, test: true, runner: null, scope: null }), "[runner-token-refresh] TEST FIRING refresh_failures ci-01");
  const scopeAlert = { ...n, runner: null, key: "refresh_failures/ci-01/org:acme", details: { runners: ["runner-1", "runner-2"] } };
  assert.equal(emailSubject(scopeAlert), "[runner-token-refresh] FIRING refresh_failures ci-01/org:acme (runner-1, runner-2)");
  assert.match(emailText(scopeAlert), /^\[FIRING\] refresh_failures on ci-01\/org:acme \(runners runner-1, runner-2\): .*\n[\s\S]*Runners:  runner-1, runner-2\n/);
  assert.equal(emailSubject({ ...n, reminder: true }), "[runner-token-refresh] FIRING (reminder) refresh_failures ci-01/runner-1");
  assert.equal(emailSubject({ ...n, more: 4 }), "[runner-token-refresh] FIRING 4 more alerts");
  const group = [n, { ...n, runner: "runner-2" }];
  assert.equal(emailSubject({ ...n, group }), "[runner-token-refresh] FIRING refresh_failures 2 alerts: ci-01/runner-1, ci-01/runner-2");
  assert.ok(emailSubject({ ...n, summary: "x", runner: "r".repeat(500) }).length <= 200);
  assert.ok(!/[\r\n]/.test(emailSubject({ ...n, runner: "a\r\nBcc: evil@example.com" })));
  const text = emailText({ ...n, group, test: true, status: "resolved", endsAt: "2025-01-02T04:00:00.000Z" });
  assert.match(text, /^\[TEST RESOLVED\]/);
  assert.match(text, /Ended:    2025-01-02T04:00:00.000Z/);
  assert.match(text, /Alerts in this group \(2\):\n  - ci-01\/runner-1: .*\n  - ci-01\/runner-2: /);
  assert.match(text, /test notification/);
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  assert.match(emailHtml({ ...n, group: [{ ...n, summary: "<script>" }] }), /<li>ci-01\/runner-1: &lt;script&gt;<\/li>/);
});

test("email plugin - authenticates with user and password from a secret", async () => {
  // requireTLS: false: this test server takes AUTH in clear (the opt-out; the default needs STARTTLS).
  const { instance } = await instantiate(email, base(authed.port, { smtp: { host: "127.0.0.1", port: authed.port, requireTLS: false, auth: { user: USER, pass: { env: "SMTP_PASS" } } } }), { SMTP_PASS: PASS });
  await instance.send(sampleNotification(), signal());
  await instance.close?.();
  assert.equal(authed.messages.length, 1);
});

test("email plugin - 535 authentication failed is permanent and never shows the password", async () => {
  const wrong = "Wr0ng-pa55word-value";
  const { instance } = await instantiate(email, base(authed.port, { smtp: { host: "127.0.0.1", port: authed.port, requireTLS: false, auth: { user: USER, pass: wrong } } }));
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /535.*check smtp\.auth/ }, [wrong, PASS, btoa(wrong), btoa(`\u0000${USER}\u0000${wrong}`)]);
  await instance.close?.();
});

test("email plugin - without credentials a server that requires auth refuses permanently", async () => {
  const { instance } = await instantiate(email, base(authed.port));
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /530 .*check smtp\.auth/ }, [PASS]);
  await instance.close?.();
});

test("email plugin - 550 recipient refused is permanent; 451 is retryable", async () => {
  const { instance } = await instantiate(email, base(plain.port, { to: ["nobody@example.com"] }));
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /^SMTP server 127\.0\.0\.1:\d+ answered to RCPT: 550 5\.1\.1 no such user here: check from and to/ }, []);
  const later = await instantiate(email, base(plain.port, { to: ["later@example.com"] }));
  await expectDeliveryError(later.instance.send(sampleNotification(), signal()), { retryable: true, message: /451/ }, []);
});

test("email plugin - one refused recipient among several delivers to the rest and warns", async () => {
  const before = plain.messages.length;
  const { instance, ctx } = await instantiate(email, base(plain.port, { to: ["ops@example.com", "nobody@example.com"] }));
  await instance.send(sampleNotification(), signal());
  assert.equal(plain.messages.length, before + 1);
  assert.deepEqual(plain.messages.at(-1)!.to, ["ops@example.com"]);
  const warn = ctx.lines.find((l) => l.level === "warn");
  assert.match(warn?.msg ?? "", /refused 1 of 2 recipients/);
});

test("email plugin - a refused connection is retryable", async () => {
  const port = await closedPort();
  const { instance } = await instantiate(email, base(port, { smtp: { host: "127.0.0.1", port, auth: { user: USER, pass: PASS } } }));
  await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, message: /ECONNREFUSED/ }, [PASS]);
});

async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (srv.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

test("email plugin - a server that never greets honours the abort signal", async () => {
  const silent = await silentServer();
  try {
    const { instance } = await instantiate(email, base(silent.port, { timeouts: undefined }));
    const started = Date.now();
    await expectDeliveryError(instance.send(sampleNotification(), AbortSignal.timeout(200)), { retryable: true, message: /aborted/ }, []);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    await instance.close?.();
  } finally {
    await silent.close();
  }
});

test("email plugin - a greeting timeout is retryable", async () => {
  const silent = await silentServer();
  try {
    const { instance } = await instantiate(email, base(silent.port, { timeouts: { greetingTimeout: 150, connectionTimeout: 150 } }));
    const started = Date.now();
    await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: true, message: /ETIMEDOUT/ }, []);
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  } finally {
    await silent.close();
  }
});

test("email plugin - STARTTLS with an untrusted certificate is permanent; rejectUnauthorized: false gets through", async () => {
  const tlsServer = await startSmtp({ hideSTARTTLS: false, authOptional: false, allowInsecureAuth: false });
  try {
    const smtp = { host: "127.0.0.1", port: tlsServer.port, requireTLS: true, auth: { user: USER, pass: PASS } };
    const strict = await instantiate(email, base(tlsServer.port, { smtp }));
    await expectDeliveryError(strict.instance.send(sampleNotification(), signal()), { retryable: false, message: /TLS certificate not trusted.*smtp\.tls\.ca/ }, [PASS]);
    const lax = await instantiate(email, base(tlsServer.port, { smtp: { ...smtp, tls: { rejectUnauthorized: false } } }));
    await lax.instance.send(sampleNotification(), signal());
    assert.equal(tlsServer.messages.length, 1);
  } finally {
    await tlsServer.close();
  }
});

/** A CA and a server certificate for 127.0.0.1/localhost signed by it, made with the openssl CLI. */
function makeCertificates(at: string): { ca: string; key: string; cert: string } | null {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: at, stdio: "pipe" });
  try {
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA");
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
    const ext = join(at, "ext.cnf");
    execFileSync("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > '${ext}'`]);
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf");
  } catch {
    return null;
  }
  return { ca: join(at, "ca.pem"), key: join(at, "server.key"), cert: join(at, "server.pem") };
}

test("email plugin - tls.ca from a file trusts a private CA, over STARTTLS and implicit TLS", async (t) => {
  const certs = makeCertificates(dir);
  // openssl ships with every Debian system this runs on; its absence is a broken machine, not a skip.
  assert.ok(certs, "openssl is needed to make a test CA: apt-get install openssl");
  const key = await readFile(certs.key, "utf8");
  const cert = await readFile(certs.cert, "utf8");
  const starttls = await startSmtp({ hideSTARTTLS: false, key, cert });
  const implicit = await startSmtp({ secure: true, key, cert });
  try {
    const a = await instantiate(email, base(starttls.port, { smtp: { host: "127.0.0.1", port: starttls.port, requireTLS: true, tls: { ca: { file: certs.ca } } } }));
    await a.instance.send(sampleNotification(), signal());
    assert.equal(starttls.messages.length, 1);
    const b = await instantiate(email, base(implicit.port, { smtp: { host: "127.0.0.1", port: implicit.port, secure: true, tls: { ca: { file: certs.ca } } } }));
    await b.instance.send(sampleNotification(), signal());
    assert.equal(implicit.messages.length, 1);
  } finally {
    await Promise.all([starttls.close(), implicit.close()]);
  }
});

test("email plugin - requireTLS against a server without STARTTLS is refused, and nothing is sent in clear", async () => {
  const noTls = await startSmtp({ disabledCommands: ["STARTTLS"] });
  try {
    const { instance } = await instantiate(email, base(noTls.port, { smtp: { host: "127.0.0.1", port: noTls.port, requireTLS: true } }));
    const err = await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false }, []);
    assert.match(err.message, /STARTTLS|TLS/i);
    assert.equal(noTls.messages.length, 0);
  } finally {
    await noTls.close();
  }
});

/** A TCP relay in front of `port` that records every byte the client sends (what crossed the wire). */
async function wiretap(port: number): Promise<{ port: number; sent(): string; close(): Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const srv: Server = createServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
    }
    client.on("data", (d: Buffer) => chunks.push(d));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (srv.address() as AddressInfo).port,
    sent: () => Buffer.concat(chunks).toString("latin1"),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

test("email plugin - with auth and no TLS, STARTTLS is required by default: the password never crosses in clear, and the error names requireTLS: false", async () => {
  let auths = 0;
  const noTls = await startSmtp({ disabledCommands: ["STARTTLS"], authOptional: false, onAuth: (_a, _s, cb) => void (auths++, cb(null, { user: USER })) });
  const tap = await wiretap(noTls.port);
  try {
    const options = base(tap.port, { smtp: { host: "127.0.0.1", port: tap.port, auth: { user: USER, pass: PASS } } });
    assert.equal((await email.parseOptions(options, secretHelpers())).smtp.requireTLS, true, "the default with auth and secure: false");
    const { instance } = await instantiate(email, options);
    const err = await expectDeliveryError(instance.send(sampleNotification(), signal()), { retryable: false, message: /does not offer STARTTLS.*smtp\.requireTLS: false/ }, [PASS]);
    assert.match(err.message, /neither the password nor the mail was sent/);
    await instance.close?.();
    const wire = tap.sent();
    assert.match(wire, /^EHLO /m, "the session got as far as EHLO");
    assert.doesNotMatch(wire, /^AUTH /im, "no AUTH command was sent");
    for (const form of [PASS, btoa(PASS), btoa(`\u0000${USER}\u0000${PASS}`)]) assert.ok(!wire.includes(form), "no form of the password on the wire");
    assert.equal(auths, 0);
    assert.equal(noTls.messages.length, 0);

    // The opt-out is explicit, and then does what it says.
    const optOut = await instantiate(email, base(tap.port, { smtp: { host: "127.0.0.1", port: tap.port, requireTLS: false, auth: { user: USER, pass: PASS } } }));
    await optOut.instance.send(sampleNotification(), signal());
    await optOut.instance.close?.();
    assert.equal(auths, 1);
    assert.equal(noTls.messages.length, 1);
  } finally {
    await tap.close();
    await noTls.close();
  }
});

test("email plugin - options: requireTLS defaults to true only for auth without implicit TLS", async () => {
  const h = secretHelpers();
  const parse = (smtp: Record<string, unknown>) => email.parseOptions({ smtp: { host: "h", ...smtp }, from: "a@b", to: ["c@d"] }, h);
  const auth = { user: USER, pass: PASS };
  assert.equal((await parse({ auth })).smtp.requireTLS, true);
  assert.equal((await parse({ auth, secure: true })).smtp.requireTLS, false, "implicit TLS needs no STARTTLS");
  assert.equal((await parse({ auth, requireTLS: false })).smtp.requireTLS, false, "the explicit opt-out");
  assert.equal((await parse({})).smtp.requireTLS, false, "no password, nothing to protect");
  assert.equal((await parse({ requireTLS: true })).smtp.requireTLS, true);
});

test("email plugin - options: defaults, ports and nested paths", async () => {
  const h = secretHelpers({ P: PASS });
  const p = await email.parseOptions({ smtp: { host: "smtp.example.com" }, from: "ci@example.com", to: "ops@example.com" }, h);
  assert.deepEqual(p, {
    smtp: { host: "smtp.example.com", port: 587, secure: false, requireTLS: false },
    from: "ci@example.com",
    to: ["ops@example.com"],
    subjectPrefix: "[runner-token-refresh]",
    timeouts: { connectionTimeout: 10000, greetingTimeout: 10000, socketTimeout: 20000 },
  });
  assert.equal((await email.parseOptions({ smtp: { host: "h", secure: true }, from: "a@b", to: ["c@d"] }, h)).smtp.port, 465);
  assert.equal((await email.parseOptions({ smtp: { host: "h", secure: true, port: 2465 }, from: "a@b", to: ["c@d"] }, h)).smtp.port, 2465);
  const ok = { from: "a@b", to: ["c@d"] };
  await expectOptionsError(() => email.parseOptions({ ...ok }, h), "smtp", /required/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: {} }, h), "smtp.host", /required/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h", port: "25" } }, h), "smtp.port", /number/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h", port: 70000 } }, h), "smtp.port", /at most/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h", hots: "x" } }, h), "smtp.hots", /unknown option/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h", secure: "yes" } }, h), "smtp.secure", /true or false/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h", auth: { user: "u" } } }, h), "smtp.auth.pass", /required/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h", auth: { user: "u", pass: PASS, method: "x" } } }, h), "smtp.auth.method", /unknown/, [PASS]);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h", tls: { rejectUnauthorized: "no" } } }, h), "smtp.tls.rejectUnauthorized");
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h", tls: { ca: "/etc/ssl/ca.pem" } } }, h), "smtp.tls.ca", /\{ file: /);
  await expectOptionsError(() => email.parseOptions({ smtp: { host: "h" }, from: "a@b", to: [] }, h), "to", /at least 1/);
  await expectOptionsError(() => email.parseOptions({ smtp: { host: "h" }, from: "a@b", to: ["c@d", "not an address"] }, h), "to[1]", /email address/);
  await expectOptionsError(() => email.parseOptions({ smtp: { host: "h" }, to: ["c@d"] }, h), "from", /required/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h" }, timeouts: { socketTimeout: 60000 } }, h), "timeouts.socketTimeout", /at most 20000/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h" }, timeouts: { idle: 1 } }, h), "timeouts.idle", /unknown/);
  await expectOptionsError(() => email.parseOptions({ ...ok, smtp: { host: "h" }, subject: "x" }, h), "subject", /unknown/);
  const withPass = await email.parseOptions({ ...ok, smtp: { host: "h", auth: { user: "u", pass: { env: "P" } } } }, h);
  assert.equal(withPass.smtp.auth?.pass, PASS);
});

test("email plugin - options: tls.ca takes PEM text or { file }", async () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const path = join(dir, "inline-ca.pem");
  await writeFile(path, pem);
  const h = secretHelpers();
  const ok = { from: "a@b", to: ["c@d"] };
  const fromFile = await email.parseOptions({ ...ok, smtp: { host: "h", tls: { ca: { file: path }, rejectUnauthorized: true } } }, h);
  assert.deepEqual(fromFile.smtp.tls, { ca: pem.trimEnd(), rejectUnauthorized: true });
  const inline = await email.parseOptions({ ...ok, smtp: { host: "h", tls: { ca: pem } } }, h);
  assert.equal(inline.smtp.tls?.ca, pem);
});
