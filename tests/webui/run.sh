#!/bin/sh
# Runs one browser test file with Node's test runner. Chromium (Debian's) and playwright-core
# (npm ci --prefix tests/webui) must be there: a missing one fails the test, unless
# AIBOX_BROWSER_TESTS_OPTIONAL=1 says this machine may skip them (exit 77, CTest's SKIPPED).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
chromium=${AIBOX_CHROMIUM:-/usr/bin/chromium}

missing=""
command -v node >/dev/null 2>&1 || missing="$missing node (apt-get install nodejs);"
[ -x "$chromium" ] || missing="$missing $chromium (apt-get install chromium);"
[ -f "$here/node_modules/playwright-core/package.json" ] ||
  missing="$missing playwright-core (npm ci --prefix tests/webui);"
if [ -n "$missing" ]; then
  if [ "${AIBOX_BROWSER_TESTS_OPTIONAL:-0}" = 1 ]; then
    echo "browser tests skipped, missing:$missing"
    exit 77
  fi
  echo "browser tests cannot run, missing:$missing (scripts/test.sh installs them;" \
    "AIBOX_BROWSER_TESTS_OPTIONAL=1 skips instead)" >&2
  exit 1
fi

cd "$here"
exec node --test --test-reporter=spec "$@"
