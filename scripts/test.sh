#!/usr/bin/env bash
# Installs what is missing, builds (preset "ci": optimised, ASan + UBSan) and runs every CTest
# test: unit, integration and package. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/install-deps.sh
cmake --preset ci >/dev/null
cmake --build --preset ci
ctest --preset ci -j "$(nproc)" "$@"
