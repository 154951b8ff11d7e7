// Stand-in for the svc.sh that config.sh generates on Linux (systemd). The unit's state lives in
// .fake/service-state; starting and stopping tell the fake GitHub the runner went on/offline,
// which is what the real listener's session does.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { at, fail, fakePost, fakeDir, logInvocation, readFake, readRunnerSettings, trackPid, unitName, writeFake } from "./common.mjs";
import { join } from "node:path";

logInvocation("svc.sh");
trackPid();

const command = process.argv[2] ?? "";
const settings = readRunnerSettings();
const unit = existsSync(at(".service"))
  ? readFileSync(at(".service"), "utf8").trim()
  : settings ? unitName(settings.gitHubUrl, settings.agentName) : "actions.runner.unconfigured.service";
const unitPath = `/etc/systemd/system/${unit}`;
const state = () => (readFake("service-state", "inactive") === "active" ? "active" : "inactive");

function printStatus() {
  if (!existsSync(at(".service"))) return console.log("\nnot installed\n");
  let since = new Date();
  try {
    since = statSync(join(fakeDir, "service-state")).mtime;
  } catch {
    // never started
  }
  const when = since.toUTCString().replace("GMT", "UTC");
  const label = unit.replace(/^actions\.runner\./, "").replace(/\.service$/, "");
  console.log(`\n${unitPath}\n`);
  console.log(`● ${unit} - GitHub Actions Runner (${label})`);
  console.log(`     Loaded: loaded (${unitPath}; enabled; vendor preset: enabled)`);
  console.log(state() === "active" ? `     Active: active (running) since ${when}` : `     Active: inactive (dead) since ${when}`);
  if (state() === "active") console.log(`   Main PID: ${process.pid} (runsvc.sh)`);
}

async function setOnline(status) {
  try {
    return (await fakePost(`/_fake/runners/${settings.agentId}/status`, { status })).status;
  } catch (err) {
    process.stderr.write(`could not reach GitHub: ${err?.cause?.code ?? err?.message}\n`);
    return 0;
  }
}

async function start() {
  if (!settings) fail("Not configured");
  if (!existsSync(at(".service"))) {
    fail(`Failed to start ${unit}: Unit ${unit} not found.\nfailed to start ${unit}`);
  }
  writeFake("service-state", "active");
  if ((await setOnline("online")) === 404) {
    // The listener exits 1 on a deleted registration and the wrapper exits cleanly, so systemd
    // leaves the unit inactive and does not restart it.
    mkdirSync(at("_diag"), { recursive: true });
    appendFileSync(at("_diag/Runner_fake.log"),
      `[${new Date().toISOString()} ERR  Runner] The runner registration has been deleted from the server, please re-configure.\n`);
    writeFake("service-state", "inactive");
  }
  printStatus();
}

async function stop() {
  if (state() === "active" && settings) await setOnline("offline"); // stopping cancels a running job
  writeFake("service-state", "inactive");
  printStatus();
}

switch (command) {
  case "install":
    if (!settings) fail("Not configured");
    if (existsSync(at(".service"))) fail(`error: exists ${unitPath}`);
    console.log(`Creating launch runner in ${unitPath}\nRun as user: ${process.env.USER ?? "root"}`);
    writeFileSync(at(".service"), `${unit}\n`);
    console.log(`Created symlink /etc/systemd/system/multi-user.target.wants/${unit} → ${unitPath}.`);
    break;
  case "start":
    await start();
    break;
  case "stop":
    await stop();
    break;
  case "status":
    printStatus();
    break;
  case "uninstall":
    await stop();
    if (existsSync(at(".service"))) {
      rmSync(at(".service"));
      console.log(`Removed /etc/systemd/system/multi-user.target.wants/${unit}.`);
    } else console.log("Service not installed");
    break;
  default:
    fail("Usage: ./svc.sh [install, start, stop, status, uninstall]\nCommands:\n   install [user]: Install runner service as Root or specified user.");
}
