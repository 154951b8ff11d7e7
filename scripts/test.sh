#!/usr/bin/env bash
# The test command (npm test): the whole suite on Node, then type-check and the same suite on Deno.
# Test files are listed explicitly: node:test on Node 20 silently runs zero tests when given a
# quoted glob or a directory. Fails when no test ran or when a count falls below its floor in
# .ci/test-count (node) and .ci/test-count-deno.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { echo "error: the tests need $1: $2" >&2; exit 1; }
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing nats-server (Debian package) for the tests..." >&2
    (apt-get install -y nats-server >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y nats-server >/dev/null 2>&1)) \
      || need nats-server "run 'sudo apt-get install -y nats-server'"
  else
    need nats-server "run 'sudo apt-get install -y nats-server' (or put nats-server on PATH)"
  fi
fi
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the dashboard's browser test..." >&2
    (apt-get install -y chromium >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1)) \
      || need chromium "run 'sudo apt-get install -y chromium'"
  else
    need chromium "run 'sudo apt-get install -y chromium' (the dashboard is tested in a real browser)"
  fi
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing systemd (Debian package, for systemd-analyze verify of the units)..." >&2
    (apt-get install -y systemd >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y systemd >/dev/null 2>&1)) \
      || need systemd-analyze "run 'sudo apt-get install -y systemd'"
  else
    need systemd-analyze "run 'sudo apt-get install -y systemd'"
  fi
fi
if ! command -v deno >/dev/null 2>&1; then
  echo "installing Deno 2 (npm install -g deno@2) for the Deno half of the suite..." >&2
  npm install -g deno@2 >/dev/null 2>&1 || need "Deno 2" "run 'npm install -g deno@2'"
fi

node scripts/check-seam.mjs

mapfile -t files < <(find src plugins test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
[ "${#files[@]}" -gt 0 ] || need "test files" "none found under src, plugins, test"

check_count() { # label count floor-file
  local floor
  floor=$(cat "$3" 2>/dev/null || echo 1)
  echo "$1 tests run: $2 (floor $floor)"
  [ "$2" -gt 0 ] || { echo "error: zero $1 tests ran" >&2; exit 1; }
  [ "$2" -ge "$floor" ] || { echo "error: $2 $1 tests ran, fewer than the floor of $floor in $3: did a test file stop being picked up?" >&2; exit 1; }
}

speclog=$(mktemp)
denolog=$(mktemp)
trap 'rm -f "$speclog" "$denolog"' EXIT

status=0
# A test that hangs fails after 10 minutes instead of holding CI until its 90-minute limit.
# --test-force-exit ends the run even when a test leaves a handle open; it can also end it before
# a file reporter's last write lands, so the count is read from the spec reporter's summary on
# stdout (copied by tee), which is written before the exit.
npx tsx --test --test-force-exit --test-timeout=600000 --test-reporter=spec --test-reporter-destination=stdout "${files[@]}" \
  | tee "$speclog" || status=$?
node_count=$( (grep -E '^ℹ tests [0-9]+' "$speclog" || true) | tail -1 | awk '{print $3}')
check_count node "${node_count:-0}" .ci/test-count
[ "$status" -eq 0 ] || { echo "error: the Node suite failed" >&2; exit "$status"; }

echo "deno check..."
deno check src test scripts
deno_status=0
NO_COLOR=1 deno test -A "${files[@]}" 2>&1 | tee "$denolog" || deno_status=$?
deno_count=$( (grep -E '^(ok|FAILED) \| [0-9]+ passed' "$denolog" || true) | tail -1 | sed -E 's/^[A-Za-z]+ \| ([0-9]+) passed.*\| ([0-9]+) failed.*/\1 \2/' | awk '{print $1+$2}')
check_count deno "${deno_count:-0}" .ci/test-count-deno
[ "$deno_status" -eq 0 ] || { echo "error: the Deno suite failed" >&2; exit "$deno_status"; }
echo "node: $node_count tests, deno: $deno_count tests: all passed"
