#!/usr/bin/env bash
# The test command (npm test). Lists test files explicitly: node:test on Node 20 silently runs
# zero tests when given a quoted glob or a directory. Fails when no test ran or when the count
# falls below the floor recorded in .ci/test-count.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing nats-server (Debian package) for the tests..." >&2
    (apt-get install -y nats-server >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y nats-server >/dev/null 2>&1)) \
      || { echo "error: nats-server is missing and could not be installed: run 'sudo apt-get install -y nats-server'" >&2; exit 1; }
  else
    echo "error: the tests need nats-server: run 'sudo apt-get install -y nats-server' (or put nats-server on PATH)" >&2
    exit 1
  fi
fi

mapfile -t files < <(find src plugins test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "error: no test files found" >&2
  exit 1
fi

tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
status=0
npx tsx --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "${files[@]}" || status=$?

count=$(grep -E '^# tests [0-9]+' "$tap" | tail -1 | awk '{print $3}')
count=${count:-0}
floor=$(cat .ci/test-count 2>/dev/null || echo 1)
echo "tests run: $count (floor $floor)"
if [ "$count" -eq 0 ]; then
  echo "error: zero tests ran" >&2
  exit 1
fi
if [ "$count" -lt "$floor" ]; then
  echo "error: $count tests ran, fewer than the floor of $floor in .ci/test-count: a test file stopped being picked up?" >&2
  exit 1
fi
exit "$status"
