#!/usr/bin/env bash
# Make sure Debian's `prometheus` package (the `prometheus` server and `promtool`) is installed:
# tests/integration/test_prometheus.py starts the real server against Ledgerflow's processes
# and runs `promtool` on the alert rules. As root it installs the package without letting
# its post-install script start a system service; otherwise it says what to install.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "prometheus and promtool are missing: run as root" \
        "'apt-get install -y --no-install-recommends prometheus' (Debian's package)" >&2
    exit 1
fi
# A policy-rc.d answering 101 keeps invoke-rc.d from starting the packaged service.
policy=/usr/sbin/policy-rc.d
had_policy=0
if [ -e "$policy" ]; then had_policy=1; cp -p "$policy" "$policy.ledgerflow-saved"; fi
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod +x "$policy"
restore() {
    if [ "$had_policy" = 1 ]; then mv -f "$policy.ledgerflow-saved" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends prometheus >/dev/null ||
    { apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends prometheus >/dev/null; }
command -v prometheus >/dev/null && command -v promtool >/dev/null || {
    echo "installed Debian's prometheus package but prometheus/promtool are not on PATH" >&2
    exit 1
}
