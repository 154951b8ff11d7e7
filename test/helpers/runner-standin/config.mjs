// Stand-in for the actions runner's config.sh: same flags, environment inputs, messages, exit
// codes and state files, with registration answered by the fake GitHub's /_fake endpoints.
import { chmodSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { randomBytes, randomUUID } from "node:crypto";
import {
  apiBase, at, checkRoot, fail, fakePost, isConfigured, logInvocation, readFake, readRunnerSettings,
  RUNNER_VERSION, trackPid,
} from "./common.mjs";

const ARGS = ["url", "token", "pat", "name", "runnergroup", "labels", "work", "jitconfig"];
const FLAGS = ["unattended", "replace", "ephemeral", "disableupdate", "no-default-labels", "local", "check",
  "help", "version", "commit", "runasservice"];
const BOM = "\uFEFF";

logInvocation("config.sh");
trackPid();
checkRoot();

const argv = process.argv.slice(2);
const command = argv[0] === "remove" ? "remove" : "configure";
const args = new Map();
const flags = new Set();
for (let i = command === "remove" ? 1 : 0; i < argv.length; i++) {
  const name = argv[i].startsWith("--") ? argv[i].slice(2).toLowerCase() : null;
  if (name && FLAGS.includes(name)) flags.add(name);
  else if (name && ARGS.includes(name) && i + 1 < argv.length) args.set(name, argv[++i]);
  else fail(`Unrecognized command-line input arguments: '${argv[i]}'. For usage refer to: .\\config.cmd --help or ./config.sh --help`);
}
// Any input may come as ACTIONS_RUNNER_INPUT_<NAME>, which keeps secrets out of `ps`.
const envInput = (name) => process.env[`ACTIONS_RUNNER_INPUT_${name.toUpperCase().replace(/-/g, "_")}`];
const arg = (name) => args.get(name) ?? envInput(name) ?? "";
const flag = (name) => flags.has(name) || String(envInput(name)).toLowerCase() === "true";
const required = (name, prompt) => {
  const v = arg(name);
  if (v) return v;
  if (!flag("unattended")) console.log(prompt);
  fail(`Invalid configuration provided for ${name}. Terminating unattended configuration.`);
};

if (flag("version")) {
  console.log(RUNNER_VERSION);
  process.exit(0);
}
if (flag("commit")) {
  console.log("0123456789abcdef0123456789abcdef01234567");
  process.exit(0);
}

const notFound = (url) =>
  fail([
    `Http response code: NotFound from 'POST ${apiBase(url)}/actions/runner-registration' (Request Id: 0A1B:2C3D:4E5F:6789AB:CDEF0123)`,
    `{"message":"Not Found","documentation_url":"https://docs.github.com/rest","status":"404"}`,
    "Response status code does not indicate success: 404 (Not Found).",
  ].join("\n"));

async function post(path, body) {
  try {
    return await fakePost(path, body);
  } catch (err) {
    fail(`An error occurred: ${err?.cause?.code ?? err?.message ?? err}`);
  }
}

function removeLocalFiles() {
  for (const f of [".credentials", ".credentials_migrated", ".credentials_rsaparams", ".runner", ".runner_migrated"]) {
    if (existsSync(at(f))) {
      rmSync(at(f), { force: true });
      console.log(`√ Removed ${f}`);
    }
  }
}

async function remove() {
  console.log("\n# Runner removal\n");
  if (existsSync(at(".service"))) fail("Uninstall service first");
  if (flag("local")) return removeLocalFiles();
  const settings = readRunnerSettings();
  if (!settings) return console.log("Runner is not configured.");
  const token = required("token", "Enter runner remove token:");
  const res = await post("/_fake/runner-removal", { token, url: settings.gitHubUrl, agentId: settings.agentId });
  if (res.status === 404) notFound(settings.gitHubUrl);
  if (res.status !== 200) fail(res.body?.message ?? `Http response code: ${res.status}`);
  console.log("√ Runner removed successfully");
  removeLocalFiles();
}

function writeJson(name, value, mode) {
  writeFileSync(at(name), BOM + JSON.stringify(value, null, 2), mode ? { mode } : undefined);
  if (mode) chmodSync(at(name), mode);
}

async function configure() {
  console.log("--------------------------------------------------------------------------------");
  console.log("|        Self-hosted runner registration (test stand-in)                       |");
  console.log("--------------------------------------------------------------------------------\n");
  if (isConfigured()) {
    fail("Cannot configure the runner because it is already configured. To reconfigure the runner, run 'config.sh remove' or './config.sh remove --local' first.");
  }
  const mode = readFake("config-mode", "normal");
  console.log("# Authentication\n");
  if (mode === "hang") {
    setTimeout(() => process.exit(124), 10 * 60_000); // never outlive a forgotten test by much
    return new Promise(() => {});
  }
  if (mode === "slow") {
    // A registration that takes a while (for signal and lock tests): then proceeds normally.
    await new Promise((r) => setTimeout(r, Number(readFake("config-delay-ms", "2000"))));
  }
  if (mode === "fail") notFound(arg("url"));
  const url = required("url", "Enter the URL of your repository, organization or enterprise:");
  const token = required("token", "Enter runner registration token:");
  console.log("√ Connected to GitHub\n");
  console.log("# Runner Registration\n");
  if (mode === "exists") fail("A runner exists with the same name");
  const name = arg("name") || hostname();
  const labels = arg("labels").split(",").map((l) => l.trim()).filter(Boolean);
  if (flag("no-default-labels") && labels.length === 0) {
    fail("--no-default-labels requires at least one label passed with --labels");
  }
  const ephemeral = flag("ephemeral");
  if (mode === "no-runner-file") {
    console.log("√ Runner successfully added\n√ Runner connection is good\n\n# Runner settings\n\n√ Settings Saved.");
    return;
  }
  const res = await post("/_fake/runner-registration", {
    token, url, name, labels, replace: flag("replace"), ephemeral,
    group: arg("runnergroup") || undefined, noDefaultLabels: flag("no-default-labels"),
  });
  if (res.status === 404) notFound(url);
  if (res.status === 409) fail("A runner exists with the same name");
  if (res.status !== 200) fail(`Http response code: ${res.status} from 'POST ${apiBase(url)}/actions/runner-registration'`);
  console.log(res.body.replaced ? "√ Successfully replaced the runner" : "√ Runner successfully added");
  console.log("√ Runner connection is good\n\n# Runner settings\n");

  // Keys with default values are omitted, as the runner does.
  const settings = { agentId: res.body.id, agentName: res.body.name, poolId: res.body.poolId, poolName: res.body.poolName };
  if (ephemeral) settings.ephemeral = true;
  if (flag("disableupdate")) settings.disableUpdate = true;
  Object.assign(settings, {
    serverUrl: "https://pipelines.actions.githubusercontent.com/xyz",
    gitHubUrl: url,
    workFolder: arg("work") || "_work",
  });
  writeJson(".credentials", {
    scheme: "OAuth",
    data: {
      clientId: randomUUID(),
      authorizationUrl: "https://vstoken.actions.githubusercontent.com/_apis/oauth2/token/xyz",
      requireFipsCryptography: "False",
    },
  });
  const b64 = (n) => randomBytes(n).toString("base64");
  writeJson(".credentials_rsaparams", {
    d: b64(256), dp: b64(128), dq: b64(128), exponent: "AQAB", inverseQ: b64(128), modulus: b64(256), p: b64(128), q: b64(128),
  }, 0o600);
  writeJson(".runner", settings);
  if (!existsSync(at(".env"))) writeFileSync(at(".env"), "LANG=C.UTF-8\n");
  if (!existsSync(at(".path"))) writeFileSync(at(".path"), `${process.env.PATH ?? ""}\n`);
  console.log("√ Settings Saved.\n");
}

await (command === "remove" ? remove() : configure());
