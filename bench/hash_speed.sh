#!/usr/bin/env bash
# The speed of the full-content identity (`corfs check --full`: XXH3-128 of
# the whole template, read in 8 MiB chunks with read-ahead on a second
# thread) against reading the same template from the page cache with `cat`.
#
#   bench/hash_speed.sh [SIZE]      SIZE of the template, default 1G
#
# Environment: CORFS (default build/cli/corfs), DIR (default /tmp; a folder
# corfs-hash-speed.XXXXXX is made there and removed at the end), REPEATS
# (default 5; the best pass of each is reported). Needs SIZE of disk space
# and of free memory, so the template stays cached.
set -euo pipefail

SIZE=${1:-1G}
CORFS=$(realpath "${CORFS:-build/cli/corfs}")
REPEATS=${REPEATS:-5}
WORK=$(mktemp -d "${DIR:-/tmp}/corfs-hash-speed.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

bytes=$(numfmt --from=iec "$SIZE")
head -c "$bytes" /dev/urandom > template.raw
"$CORFS" create disk.img --backing template.raw --verify-backing full > /dev/null
cat template.raw > /dev/null  # warm: every figure below is a page-cache read

# best_ns COMMAND...: the shortest of REPEATS runs, in nanoseconds.
best_ns() {
  local best=0 start end
  for _ in $(seq "$REPEATS"); do
    start=$(date +%s%N)
    "$@" > /dev/null
    end=$(date +%s%N)
    if [ "$best" = 0 ] || [ $((end - start)) -lt "$best" ]; then best=$((end - start)); fi
  done
  echo "$best"
}

cat_ns=$(best_ns cat template.raw)
hash_ns=$(best_ns "$CORFS" check --full disk.img)
"$CORFS" check --full disk.img | grep -q "no problems found" || { echo "check --full failed" >&2; exit 1; }

python3 - "$bytes" "$cat_ns" "$hash_ns" "$(nproc)" <<'PY'
import sys
size, cat_ns, hash_ns, cpus = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
gib = size / 2**30
cat_rate, hash_rate = gib / (cat_ns / 1e9), gib / (hash_ns / 1e9)
print(f"template: {gib:.2f} GiB, in the page cache; best of the passes; {cpus} CPUs")
print(f"{'cat template > /dev/null':34} {cat_rate:6.2f} GiB/s  ({cat_ns / 1e6:7.1f} ms)")
print(f"{'corfs check --full (XXH3-128)':34} {hash_rate:6.2f} GiB/s  ({hash_ns / 1e6:7.1f} ms)")
print(f"{'ratio hash / cat':34} {hash_rate / cat_rate:6.2f}")
PY
