#!/usr/bin/env bash
# System packages the test suite needs, installed idempotently (.ci/run calls this when present).
# chromium: Debian's build, driven by Playwright in the `browser` tests (never a downloaded browser).
# wrk: the loopback load generator of `forewarn bench api` (without it the bench falls back to httpx).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(chromium wrk)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "system packages present: ${PACKAGES[*]}"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}"
for attempt in 1 2 3; do  # mirrors fail now and then
    if $SUDO apt-get install -y --no-install-recommends "${missing[@]}" \
        || { $SUDO apt-get update -q && $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; }; then
        break
    fi
    [ "$attempt" -eq 3 ] && { echo "could not install ${missing[*]}" >&2; exit 1; }
    sleep $((attempt * 5))
done
/usr/bin/chromium --version
