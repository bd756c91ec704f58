#!/usr/bin/env bash
# Builds the aibox-agent, aibox-gateway, aibox-provision and aibox-license-tool .debs (debhelper, from packaging/debian) into OUTDIR
# (default packaging/out/). Usage: scripts/build-deb.sh [OUTDIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$top/packaging/out}")

version=$(sed -n 's/^project(aibox VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
changelog=$(sed -n '1s/^aibox (\([^)]*\)).*/\1/p' "$top/packaging/debian/changelog")
if [ "$version" != "$changelog" ]; then
  echo "build-deb: CMakeLists.txt says $version but packaging/debian/changelog says $changelog: add a changelog entry" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/aibox-$version"
mkdir -p "$src"
tar -C "$top" --exclude=./build --exclude=./demo-root --exclude=./packaging/out --exclude=./.git \
    --exclude=./node_modules -cf - . | tar -C "$src" -xf -
cp -r "$src/packaging/debian" "$src/debian"

# dh points HOME at a scratch dir; keep ccache's cache where repeated builds find it.
export CCACHE_DIR="${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ccache}"
echo "build-deb: building aibox-agent $version"
(cd "$src" && dpkg-buildpackage -b -us -uc -j"$(nproc)" >"$work/build.log" 2>&1) || {
  tail -n 60 "$work/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed (log above)" >&2
  exit 1
}
mkdir -p "$out"
mv "$work"/*.deb "$out"/
ls "$out"/*.deb
