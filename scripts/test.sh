#!/usr/bin/env bash
# Builds Skiff and runs the whole test suite: labels unit, kvm (needs
# /dev/kvm), fuzz (fuzz targets over their corpora) and e2e (full system).
# A test whose requirement is missing on this machine skips with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure --timeout 600 -j2 "$@"
