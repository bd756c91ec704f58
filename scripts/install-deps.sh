#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/packages.txt that are not installed yet.
# Idempotent, and quick when everything is there. Needs root (or sudo) only when it installs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$top/scripts/packages.txt")
missing=()
for package in "${wanted[@]}"; do
  # NodeSource's nodejs bundles npm and conflicts with Debian's npm package: any npm will do.
  if [ "$package" = npm ] && command -v npm >/dev/null; then
    continue
  fi
  dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
# Packages such as nginx and prometheus start their services on install; on a build machine
# nothing should start, so deny it for the length of this install (as container images do).
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 0755 "$policy"
  own_policy=1
fi
cleanup() {
  if [ -n "$own_policy" ]; then
    $sudo rm -f "$policy"
  fi
}
trap cleanup EXIT
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
