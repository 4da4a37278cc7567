#!/usr/bin/env bash
# Coverage-guided fuzzing on a stable toolchain: the SanitizerCoverage passes
# cargo-fuzz enables are plain -C flags; only AddressSanitizer needs nightly,
# and corral-fastcgi has no unsafe code for it to check. An explicit --target
# keeps RUSTFLAGS off build scripts (they would not link with sancov).
#   fuzz/run-stable.sh [seconds]   (default 60)
set -euo pipefail
cd "$(dirname "$0")"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
TARGET="$(rustc -vV | sed -n "s/^host: //p")"
cargo build --release --bin fastcgi_server --target-dir target/stable-fuzz --target "$TARGET"
mkdir -p corpus/fastcgi_server artifacts/fastcgi_server
cp -n seeds/* corpus/fastcgi_server/ 2>/dev/null || true
target/stable-fuzz/"$TARGET"/release/fastcgi_server -max_total_time="${1:-60}" \
  -artifact_prefix=artifacts/fastcgi_server/ corpus/fastcgi_server
