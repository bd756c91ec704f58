#!/usr/bin/env bash
# The aibox-agent, aibox-gateway, aibox-provision and aibox-license-tool .debs build, have no lintian errors or warnings, hold what they must, and their binaries
# and systemd unit are sound. Usage: deb_test.sh OUTDIR
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
rm -rf "$out"
"$top/scripts/build-deb.sh" "$out"
deb=$(ls "$out"/aibox-agent_*.deb)

echo "== lintian"
lintian --fail-on error,warning "$deb"

echo "== contents"
contents=$(dpkg-deb -c "$deb")
# (dh_compress gzips the larger docs.)
for path in ./usr/sbin/aibox-agent ./usr/bin/aiboxctl ./lib/systemd/system/aibox-agent.service \
            ./etc/aibox/aibox.conf ./usr/share/doc/aibox-agent/api.md ./usr/share/doc/aibox-agent/security.md \
            ./usr/share/man/man8/aibox-agent.8 ./usr/share/man/man1/aiboxctl.1 \
            ./usr/bin/aibox-runtime ./usr/share/man/man1/aibox-runtime.1 ./usr/share/doc/aibox-agent/engine.md \
            ./usr/share/doc/aibox-agent/gateway.md ./usr/share/doc/aibox-agent/runtimes.md \
            ./usr/share/doc/aibox-agent/models.md ./usr/share/doc/aibox-agent/hardware.md; do
  grep -Eq " $path(\.gz)?\$" <<<"$contents" || { echo "missing from the package: $path" >&2; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q adduser
# The vendor's license tool holds no key but is the vendor's alone: never on a box.
if grep -q 'aibox-license' <<<"$contents"; then echo "the box's package holds aibox-license" >&2; exit 1; fi

echo "== unit"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
unit="$root/lib/systemd/system/aibox-agent.service"
for line in Type=notify WatchdogSec=30 Restart=on-failure ProtectSystem=strict NoNewPrivileges=yes \
            PrivateTmp=yes ProtectHome=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
            "ReadWritePaths=/var/lib/aibox /run/aibox" User=aibox; do
  grep -qx "$line" "$unit" || { echo "unit lacks $line" >&2; exit 1; }
done
grep -q '^RestrictAddressFamilies=' "$unit"

echo "== binaries"
"$root/usr/sbin/aibox-agent" --version | grep -q '^aibox-agent '
"$root/usr/bin/aiboxctl" --version | grep -q '^aiboxctl '
"$root/usr/bin/aibox-runtime" --version | grep -q '^aibox-runtime '
"$root/usr/sbin/aibox-agent" --root "$root/box" --config "$root/etc/aibox/aibox.conf" --version >/dev/null

echo "== the vendor's license tool, in its own package"
tool=$(ls "$out"/aibox-license-tool_*.deb)
lintian --fail-on error,warning "$tool"
tool_contents=$(dpkg-deb -c "$tool")
for path in ./usr/bin/aibox-license ./usr/share/man/man1/aibox-license.1; do
  grep -Eq " $path(\.gz)?\$" <<<"$tool_contents" || { echo "missing from the tool's package: $path" >&2; exit 1; }
done
dpkg-deb -x "$tool" "$root/tool"
"$root/tool/usr/bin/aibox-license" --version | grep -q '^aibox-license '

echo "== the gateway, in its own package"
gateway=$(ls "$out"/aibox-gateway_*.deb)
lintian --fail-on error,warning "$gateway"
gateway_contents=$(dpkg-deb -c "$gateway")
for path in ./usr/sbin/aibox-gateway ./lib/systemd/system/aibox-gateway.service \
            ./usr/share/man/man8/aibox-gateway.8; do
  grep -Eq " $path(\.gz)?\$" <<<"$gateway_contents" || { echo "missing from the gateway's package: $path" >&2; exit 1; }
done
dpkg-deb -f "$gateway" Depends | grep -q 'aibox-agent (= '
dpkg-deb -x "$gateway" "$root/gateway"
"$root/gateway/usr/sbin/aibox-gateway" --version | grep -q '^aibox-gateway '
# The shipped configuration file, with the agent's sections, is one the gateway takes.
"$root/gateway/usr/sbin/aibox-gateway" --root "$root/box" --config "$root/etc/aibox/aibox.conf" --version >/dev/null
gateway_unit="$root/gateway/lib/systemd/system/aibox-gateway.service"
for line in Type=notify User=aibox Restart=on-failure ProtectSystem=strict NoNewPrivileges=yes \
            "ReadWritePaths=/var/lib/aibox/gateway /run/aibox" RuntimeDirectoryPreserve=yes \
            CapabilityBoundingSet= "Wants=network-online.target aibox-agent.service"; do
  grep -qx "$line" "$gateway_unit" || { echo "gateway unit lacks $line" >&2; exit 1; }
done
if grep -q '^Requires=\|^BindsTo=' "$gateway_unit"; then echo "an agent restart would stop the gateway" >&2; exit 1; fi
grep -qx RuntimeDirectoryPreserve=yes "$unit" || { echo "an agent stop would remove /run/aibox" >&2; exit 1; }
dpkg-deb -I "$gateway" postinst | grep -qF -- "-m 0750 /var/lib/aibox/gateway"

echo "== the factory station tool, in its own package"
station=$(ls "$out"/aibox-provision_*.deb)
lintian --fail-on error,warning "$station"
station_contents=$(dpkg-deb -c "$station")
for path in ./usr/sbin/aibox-provision ./usr/share/man/man8/aibox-provision.8; do
  grep -Eq " $path(\.gz)?\$" <<<"$station_contents" || { echo "missing from the station's package: $path" >&2; exit 1; }
done
if grep -q 'aibox-provision' <<<"$contents"; then echo "the box's package holds aibox-provision" >&2; exit 1; fi
dpkg-deb -f "$station" Depends | grep -q 'aibox-agent (= '
dpkg-deb -x "$station" "$root/station"
"$root/station/usr/sbin/aibox-provision" --version | grep -q '^aibox-provision '
"$root/station/usr/sbin/aibox-provision" --help | grep -q 'reset --keep-identity'

echo "== maintainer scripts"
postinst=$(dpkg-deb -I "$deb" postinst)
for word in "addgroup --system --quiet aibox-admin" "adduser --system" "-m 0700 /var/lib/aibox/identity"; do
  grep -qF -- "$word" <<<"$postinst" || { echo "postinst lacks: $word" >&2; exit 1; }
done
echo "package ok: $deb"
