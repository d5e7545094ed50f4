#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for Skiff: installs the build and test
# dependencies (apt), then configures and builds into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
echo "setup: built build/skiff"
