#!/usr/bin/env bash
# Builds the Debian package corfs_VERSION_ARCH.deb with CPack from a build
# folder (the binary, man pages, bash completion, the systemd unit
# corfs@.service), and prints its path on its last line.
#
#   scripts/package.sh [BUILD_DIR]     (default: $CORFS_BUILD_DIR, else build)
#
# An existing build folder is reused as it is (only what is out of date is
# built); a missing one is configured first.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${CORFS_BUILD_DIR:-build}}
command -v help2man >/dev/null || { echo "package: help2man is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
[ -f "$dir/CMakeCache.txt" ] || cmake -S . -B "$dir" -G Ninja >/dev/null
# Configured before help2man was there: configure again to get the man pages.
grep -q '^HELP2MAN:FILEPATH=/' "$dir/CMakeCache.txt" || cmake "$dir" >/dev/null
cmake --build "$dir" --target corfs man-pages >&2
rm -f "$dir"/packages/corfs_*.deb
(cd "$dir" && cpack -G DEB --config CPackConfig.cmake >&2)
dir=$(cd "$dir" && pwd)
ls -t "$dir"/packages/corfs_*.deb | head -n 1
