#!/usr/bin/env bash
# Builds corfs into build/ (or build-asan/ with --asan: AddressSanitizer +
# UndefinedBehaviorSanitizer). Prints the build folder on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
flags=()
if [ "${1:-}" = "--asan" ]; then
  dir=build-asan
  flags=(-DCORFS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
echo "$dir"
