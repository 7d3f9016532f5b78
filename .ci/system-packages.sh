#!/usr/bin/env bash
# The Debian packages the tests start for real: a single-node SLURM cluster (slurm-wlm, munge),
# a PostgreSQL server (postgresql) and headless Chromium (report pages). Installed only where
# it can be (root on Debian/Ubuntu with apt-get); elsewhere the tests that need them skip with
# a one-line reason naming the package. Quiet unless something fails.
set -euo pipefail
packages=(slurm-wlm munge postgresql chromium)
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "system-packages: not root on apt (skipping ${packages[*]}; their tests will skip)" >&2
    exit 0
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$package")
done
if ((${#missing[@]})); then
    # No services are started here: the tests start (and stop) what they use themselves.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
