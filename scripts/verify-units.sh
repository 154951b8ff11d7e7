#!/usr/bin/env bash
# Checks the systemd units with `systemd-analyze verify`: the agent unit and the collector unit.
#
# Fails on any finding, except the two a build machine cannot satisfy and that say nothing about
# the unit itself:
#   - the ExecStart program missing ("<unit>: Command /usr/bin/node is not executable: No such
#     file or directory"; only for the program this unit's ExecStart names);
#   - the unit's User= not existing (rtr-collector). systemd 252 does not check users;
#     the filter is there for versions that do.
# Everything else is printed, and the script exits 1.
#
# UNITS_DIR overrides where the units are read from (default: systemd/ of this repository).
set -euo pipefail
cd "$(dirname "$0")/.."
units_dir=${UNITS_DIR:-systemd}

if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing systemd (Debian package) for systemd-analyze..." >&2
    (apt-get install -y systemd >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y systemd >/dev/null 2>&1)) \
      || { echo "error: could not install systemd-analyze: run 'sudo apt-get install -y systemd'" >&2; exit 1; }
  else
    echo "error: systemd-analyze not found: run 'sudo apt-get install -y systemd' (Debian/Ubuntu) or 'sudo dnf install -y systemd', then run this again" >&2
    exit 1
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Each check gets its own folder: systemd-analyze reads drop-ins (<unit>.d/*.conf) from the folder
# of the unit it verifies.
mkdir -p "$tmp/agent" "$tmp/collector"
cp "$units_dir/runner-token-refresh.service" "$tmp/agent/"
# The agent unit once more with the drop-ins that ship beside it (pools.conf).
if [ -d "$units_dir/runner-token-refresh.service.d" ]; then
  mkdir -p "$tmp/agent-dropins"
  cp "$units_dir/runner-token-refresh.service" "$tmp/agent-dropins/"
  cp -r "$units_dir/runner-token-refresh.service.d" "$tmp/agent-dropins/"
fi
cp "$units_dir/runner-token-refresh-collector.service" "$tmp/collector/"

escape() { printf '%s' "$1" | sed -e 's/[][\.*^$/+?(){}|]/\\&/g'; }

failed=0
check() { # label unit-file
  local label=$1 unit=$2 name program user out status=0 ignored
  name=$(basename "$unit")
  # The program ExecStart runs (prefixes such as "-" or "!" stripped) and the unit's User=.
  local files=("$unit")
  for f in "$unit".d/*.conf; do [ -e "$f" ] && files+=("$f"); done
  program=$(sed -n -E 's/^ExecStart=[-@:+!]*([^ ]+).*/\1/p' "${files[@]}" | tail -1)
  user=$(sed -n -E 's/^User=(.+)$/\1/p' "${files[@]}" | tail -1)
  out=$(systemd-analyze verify "$unit" 2>&1) || status=$?
  local allowed_program allowed_user
  allowed_program="^$(escape "$name"): Command $(escape "$program") is not executable: No such file or directory\$"
  allowed_user="([Uu]ser|User=)[ \"'=]*$(escape "$user")[\"']?.*(not found|does not exist|[Nn]o such|[Uu]nknown|[Ff]ailed to resolve)"
  local rest
  rest=$(printf '%s\n' "$out" | grep -v -E -e "$allowed_program" -e "$allowed_user" | grep -v -E '^\s*$' || true)
  ignored=$(printf '%s\n' "$out" | grep -c -E -e "$allowed_program" -e "$allowed_user" || true)
  if [ -n "$rest" ]; then
    echo "FAIL $label ($name):"
    printf '%s\n' "$rest" | sed 's/^/  /'
    failed=1
  elif [ "$status" -ne 0 ] && [ "$ignored" -eq 0 ]; then
    echo "FAIL $label ($name): systemd-analyze verify exited $status without saying why"
    failed=1
  else
    if [ "$ignored" -gt 0 ]; then
      echo "ok   $label ($name); ignored what a build machine cannot satisfy:"
      printf '%s\n' "$out" | grep -E -e "$allowed_program" -e "$allowed_user" | sed 's/^/  /'
    else
      echo "ok   $label ($name)"
    fi
  fi
}

check "agent" "$tmp/agent/runner-token-refresh.service"
[ -d "$tmp/agent-dropins" ] && check "agent+drop-ins" "$tmp/agent-dropins/runner-token-refresh.service"
check "collector" "$tmp/collector/runner-token-refresh-collector.service"
exit "$failed"
