#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds corfs,
# lints (scripts/lint.sh), runs the whole suite, then builds and runs it
# again under ASan+UBSan. A lint failure fails the command, after the tests
# have run, so one run reports both.
# CORFS_SKIP_ASAN=1 skips the sanitizer pass, CORFS_SKIP_LINT=1 the lint
# (for a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
lint=0
if [ "${CORFS_SKIP_LINT:-0}" != 1 ]; then
  bash scripts/lint.sh build || lint=$?
fi
(cd build && ctest --output-on-failure --timeout 600 -j 2)
if [ "${CORFS_SKIP_ASAN:-0}" != 1 ]; then
  bash scripts/test-asan.sh
fi
if [ "$lint" -ne 0 ]; then
  echo "test: the tests passed, but scripts/lint.sh failed (see its output above)" >&2
  exit "$lint"
fi
