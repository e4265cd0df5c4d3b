#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds corfs,
# runs the whole suite, then builds and runs it again under ASan+UBSan.
# CORFS_SKIP_ASAN=1 skips the sanitizer pass (for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
(cd build && ctest --output-on-failure --timeout 600 -j 2)
if [ "${CORFS_SKIP_ASAN:-0}" != 1 ]; then
  bash scripts/test-asan.sh
fi
