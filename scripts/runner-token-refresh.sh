#!/usr/bin/env bash
# Thin wrapper for the seed's invocation style. Every argument goes to runner-token-refresh
# unchanged; the CLI itself understands the seed's flags:
#
#   runner-token-refresh.sh --check-and-refresh --org my-org [--dry-run] [--threshold 600]
#   runner-token-refresh.sh --daemon
#
# (the same as `runner-token-refresh check ...` and `runner-token-refresh daemon`). Exit codes
# are the CLI's: 0 ok, 1 failed, 64 usage, 75 locked, 78 configuration.
#
# Which program runs, first found:
#   1. the installed bundle, /usr/local/lib/runner-token-refresh/runner-token-refresh.mjs (and its chunks/),
#      under node (fastest start; RUNNER_TOKEN_REFRESH_BUNDLE names another path);
#   2. runner-token-refresh on PATH (the npm package's bin);
#   3. this repository's bin/runner-token-refresh.mjs under node, which loads the TypeScript
#      sources through tsx (needs `npm ci` in the repository).
set -euo pipefail

bundle=${RUNNER_TOKEN_REFRESH_BUNDLE:-/usr/local/lib/runner-token-refresh/runner-token-refresh.mjs}
if [ -f "$bundle" ] && command -v node >/dev/null 2>&1; then
  exec node "$bundle" "$@"
fi

if command -v runner-token-refresh >/dev/null 2>&1; then
  exec runner-token-refresh "$@"
fi

here=${BASH_SOURCE[0]}
case $here in */*) here=${here%/*} ;; *) here=. ;; esac
repo=$(cd "$here/.." && pwd)
if [ -f "$repo/bin/runner-token-refresh.mjs" ] && [ -d "$repo/node_modules/tsx" ] && command -v node >/dev/null 2>&1; then
  exec node "$repo/bin/runner-token-refresh.mjs" "$@"
fi

echo "error: runner-token-refresh not found: install the bundle at $bundle (docs/install.md), or npm install -g the package, or run npm ci in $repo" >&2
exit 127
