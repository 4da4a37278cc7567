#!/usr/bin/env bash
# Builds the workspace and runs every test. Tests that need root, nginx or
# php-fpm8.2 print "SKIPPED: …" and pass when those are unavailable, so run
# this as root to run them all:
#
#   sudo scripts/test.sh
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
  scripts/setup.sh
else
  echo "test.sh: not root, skipping scripts/setup.sh (root-only tests will be skipped)"
fi

cargo build --workspace
# --no-fail-fast: one run reports every failing test binary, not just the first.
cargo test --workspace --no-fail-fast "$@"
