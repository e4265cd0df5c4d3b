#!/usr/bin/env bash
# The lint pass (scripts/test.sh runs it after the build, so CI does too):
#  1. clang-format 14 (.clang-format): every tracked .cc/.h is formatted;
#  2. clang-tidy 14 (.clang-tidy; tests/ and bench/ have their own): over
#     every translation unit of the build's compile_commands.json except the
#     fuzz targets (clang-only flags), LINT_JOBS at a time (default 2).
# Exits non-zero on any finding of either; both always run.
#
#   scripts/lint.sh [BUILD_DIR]     (default: build; configured if needed)
#
# To fix the formatting:  git ls-files '*.cc' '*.h' | xargs clang-format-14 -i
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=${LINT_JOBS:-2}
clang_format=${CLANG_FORMAT:-clang-format-14}
clang_tidy=${CLANG_TIDY:-clang-tidy-14}
run_clang_tidy=${RUN_CLANG_TIDY:-run-clang-tidy-14}
failed=0
start=$SECONDS

# --- formatting ------------------------------------------------------------
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t sources < <(git ls-files '*.cc' '*.h')
else
  mapfile -t sources < <(find . -path './build*' -prune -o \( -name '*.cc' -o -name '*.h' \) -print | sort)
fi
echo "lint: $("$clang_format" --version | head -1): ${#sources[@]} files"
unformatted=0
for f in "${sources[@]}"; do
  if ! out=$("$clang_format" --dry-run -Werror "$f" 2>&1); then
    echo "  $f ($(grep -c 'clang-format-violations' <<<"$out") violations; $clang_format --dry-run $f shows them)"
    unformatted=$((unformatted + 1))
  fi
done
if [ "$unformatted" -ne 0 ]; then
  echo "lint: FAILED: $unformatted files are not formatted as .clang-format says" >&2
  failed=1
fi

# --- clang-tidy ------------------------------------------------------------
# compile_commands.json comes from configuring (CMAKE_EXPORT_COMPILE_COMMANDS).
if [ ! -f "$build/compile_commands.json" ]; then
  cmake -S . -B "$build" -G Ninja >/dev/null
fi
echo "lint: $("$clang_tidy" --version | grep -m1 -i version) over $build/compile_commands.json, $jobs at a time"
# run-clang-tidy takes Python regexes on the path: everything but tests/fuzz.
# -Wno-unknown-warning-option: the flags are GCC's (e.g. -Wno-error=restrict).
tidy=("$run_clang_tidy" -clang-tidy-binary "$clang_tidy" -p "$build" -j "$jobs" -quiet
      -extra-arg=-Wno-unknown-warning-option '^(?!.*/tests/fuzz/)')
# Drop clang's "N warnings generated." (counts of the suppressed warnings in
# system headers) and, in a CI log, the colour codes run-clang-tidy asks for.
filter='/^(\x1b\[[0-9;]*m)*[0-9]+ (warnings?|errors?)( and [0-9]+ errors?)? generated\.$/d'
[ -t 1 ] || filter+=';s/\x1b\[[0-9;]*m//g'
status=0
"${tidy[@]}" 2>&1 | sed -E "$filter" || status=$?
if [ "$status" -ne 0 ]; then
  echo "lint: FAILED: clang-tidy findings above" >&2
  failed=1
fi

echo "lint: $([ "$failed" = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
exit "$failed"
