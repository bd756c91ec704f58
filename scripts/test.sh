#!/usr/bin/env bash
# Installs what is missing, builds (preset "ci": optimised, ASan + UBSan) and runs every CTest
# test: unit, integration and package. Extra arguments go to ctest (e.g. -L unit). Then the GGUF
# header parser, which reads files admins bring in, the engine's model loader and the license
# file reader each get a
# bounded coverage-guided run with libFuzzer (preset "fuzz", clang): FUZZ_SECONDS each
# (default 60; 0 skips them).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/install-deps.sh
cmake --preset ci >/dev/null
cmake --build --preset ci
# The browser tests' playwright-core (no browser download: they drive Debian's chromium).
webui_tests=tests/webui
if [ ! "$webui_tests/node_modules/.package-lock.json" -nt "$webui_tests/package-lock.json" ]; then
  npm ci --prefix "$webui_tests" --no-audit --no-fund
fi
# node-llama-cpp for the agreement test: its CPU build only (the GPU builds are optional
# packages; the CPU one is a direct dependency).
llamacpp_tests=tests/runtime/llamacpp
if [ ! "$llamacpp_tests/node_modules/.package-lock.json" -nt "$llamacpp_tests/package-lock.json" ]; then
  npm ci --prefix "$llamacpp_tests" --omit=optional --no-audit --no-fund
fi
# The official OpenAI client, for the gateway's client test.
client_tests=tests/runtime/gateway/client
if [ ! "$client_tests/node_modules/.package-lock.json" -nt "$client_tests/package-lock.json" ]; then
  npm ci --prefix "$client_tests" --no-audit --no-fund
fi
ctest --preset ci -j "$(nproc)" "$@"

fuzz_seconds=${FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz --target fuzz_gguf_header fuzz_gguf_model fuzz_license_file
  # New inputs go to a scratch directory; the committed seeds are only read.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  for target in fuzz_gguf_header fuzz_gguf_model fuzz_license_file; do
    mkdir -p "$scratch/$target"
    build/fuzz/tests/fuzz/$target -max_total_time="$fuzz_seconds" -print_final_stats=1 \
      "$scratch/$target" "tests/fuzz/corpus/$target" 2>&1 | tail -n 15
    status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] || exit "$status"
  done
fi
