#!/usr/bin/env bash
# Installs what is missing, builds (preset "ci": optimised, ASan + UBSan) and runs every CTest
# test: unit, integration and package. Extra arguments go to ctest (e.g. -L unit). Then the GGUF
# header parser, which reads files admins bring in, gets a bounded coverage-guided run with
# libFuzzer (preset "fuzz", clang): FUZZ_SECONDS (default 60; 0 skips it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/install-deps.sh
cmake --preset ci >/dev/null
cmake --build --preset ci
ctest --preset ci -j "$(nproc)" "$@"

fuzz_seconds=${FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz --target fuzz_gguf_header
  # New inputs go to a scratch directory; the committed seeds are only read.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  build/fuzz/tests/fuzz/fuzz_gguf_header -max_total_time="$fuzz_seconds" -print_final_stats=1 \
    "$scratch" tests/fuzz/corpus/fuzz_gguf_header 2>&1 | tail -n 15
  exit "${PIPESTATUS[0]}"
fi
