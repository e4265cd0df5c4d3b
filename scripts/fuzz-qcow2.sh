#!/usr/bin/env bash
# Fuzzes the qcow2 header and table parsing (tests/fuzz/qcow2_fuzz.cc) for
# SECONDS seconds (default 600), with libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer:
#
#   scripts/fuzz-qcow2.sh [SECONDS]
#
# Builds into build-fuzz/ with clang (CORFS_FUZZ=ON), makes a seed corpus of
# small qcow2 images with qemu-img and qemu-io (made anew each run, so it
# follows what the installed QEMU writes), and runs one fuzzing process.
# Inputs that find new paths are kept in build-fuzz/qcow2-corpus/, so a
# second run starts where the first stopped. An input that crashes, leaks,
# hangs or allocates too much is written to build-fuzz/qcow2-artifacts/ and
# the script exits non-zero; replay it with
#   build-fuzz/tests/fuzz/qcow2_fuzz FILE
# The machine is shared: run it under `nice -n 19` next to other work.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }

bash scripts/install-deps.sh >/dev/null
dir=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCORFS_FUZZ=ON >/dev/null
cmake --build "$dir" --target qcow2_fuzz
fuzzer=$dir/tests/fuzz/qcow2_fuzz

# --- the seed corpus ------------------------------------------------------
seeds=$dir/qcow2-seeds
scratch=$dir/qcow2-seed-scratch
rm -rf "$seeds" "$scratch"
mkdir -p "$seeds" "$scratch" "$dir/qcow2-corpus" "$dir/qcow2-artifacts"

img() { qemu-img "$@" >/dev/null; }
# io IMAGE COMMAND...: qemu-io with one -c per command.
io() {
  local image=$1 args=()
  shift
  for c in "$@"; do args+=(-c "$c"); done
  qemu-io "${args[@]}" "$image" >/dev/null
}

# Sources for the compressed images: text compresses a little, patterns a
# lot, random bytes not at all (QEMU then stores the cluster uncompressed).
seq 1 140000 > "$scratch/text"   # about 1 MiB of text
truncate -s 4M "$scratch/text"
img convert -f raw -O raw "$scratch/text" "$scratch/src.raw"
qemu-io -f raw -c "write -P 0x11 1M 256k" -c "write -P 0x22 2M 64k" "$scratch/src.raw" >/dev/null
head -c 64k /dev/urandom | dd of="$scratch/src.raw" bs=64k seek=40 conv=notrunc status=none
# A backing file for the images that have one; its name is stored relative.
truncate -s 4M "$scratch/base.raw"

cd "$scratch"
img create -f qcow2 -o compat=0.10 v2.qcow2 4M
io v2.qcow2 "write -P 0x5a 0 64k" "write -P 0x5b 1M 4k" "write -z 2M 64k"
img create -f qcow2 v3.qcow2 4M
io v3.qcow2 "write -P 0x5a 0 64k" "write -P 0x5b 3M 100k"
img create -f qcow2 -o compat=0.10 -b base.raw -F raw v2-backing.qcow2
io v2-backing.qcow2 "write -P 0x33 64k 64k"
img create -f qcow2 -b base.raw -F raw zero-over-backing.qcow2
io zero-over-backing.qcow2 "write -P 0x44 0 64k" "write -z 64k 192k" "write -z 1M 4k" "discard 2M 64k"
img create -f qcow2 zero-alone.qcow2 4M
io zero-alone.qcow2 "write -z 0 1M" "write -P 1 1M 64k"
img convert -c -O qcow2 src.raw zlib.qcow2
img convert -c -O qcow2 -o compression_type=zstd src.raw zstd.qcow2
img convert -c -O qcow2 -o cluster_size=4k src.raw zlib-4k.qcow2
img create -f qcow2 -o cluster_size=512 c512.qcow2 1M
io c512.qcow2 "write -P 0x77 0 4k" "write -P 0x78 300k 1536" "write -z 600k 2k"
img create -f qcow2 -o cluster_size=4k c4k.qcow2 8M
io c4k.qcow2 "write -P 0x12 0 8k" "write -P 0x13 2M 4k" "write -P 0x14 6M 12k"
# 2 MiB clusters put the L1 table at 2 MiB or later: cut to -max_len, such
# a seed exercises the header and its extensions, not the tables.
img create -f qcow2 -o cluster_size=2M c2m.qcow2 8M
io c2m.qcow2 "write -P 0x21 0 4k"
img create -f qcow2 -o extended_l2=on -b base.raw -F raw extl2.qcow2
io extl2.qcow2 "write -P 0x31 0 2k" "write -z 4k 6k" "write -P 0x32 70k 1k" "write -P 0x33 1M 64k"
img convert -c -O qcow2 -o extended_l2=on src.raw extl2-zlib.qcow2
img create -f qcow2 -o extended_l2=on,cluster_size=16k extl2-16k.qcow2 1M
io extl2-16k.qcow2 "write -P 0x34 512 512" "write -z 8k 1k"
img create -f qcow2 sparse-1t.qcow2 1T
io sparse-1t.qcow2 "write -P 0x41 0 4k" "write -P 0x42 900G 4k"
img create -f qcow2 empty.qcow2 1M
# Backing file names of every kind the resolver tells apart: absolute,
# "file:" prefixed, another protocol. -u: the files are not opened.
img create -f qcow2 -b "$PWD/base.raw" -F raw backing-absolute.qcow2
img create -f qcow2 backing-file-prefix.qcow2 4M
img rebase -u -b file:base.raw -F raw backing-file-prefix.qcow2
img create -f qcow2 backing-nbd.qcow2 4M
img rebase -u -b nbd://localhost:10809/export -F raw backing-nbd.qcow2
# Header extensions the reader skips (dirty bitmaps), a compatible feature bit.
img create -f qcow2 -o lazy_refcounts=on bitmap.qcow2 4M
img bitmap --add bitmap.qcow2 b0
io bitmap.qcow2 "write -P 0x51 0 64k"
cd - >/dev/null

for f in "$scratch"/*.qcow2; do
  # A seed larger than -max_len would be cut anyway; cut it here, so the
  # corpus on disk is what the fuzzer sees.
  head -c 1M "$f" > "$seeds/$(basename "$f")"
done
echo "fuzz-qcow2: $(ls "$seeds" | wc -l) seed images in $seeds"

# --- the run --------------------------------------------------------------
# One process. -malloc_limit_mb: the driver never needs more than a few MiB
# at once (an L1 table is at most 32 MiB), so a larger single allocation is
# a bug the fuzzer should report.
log=$dir/qcow2-fuzz.log
set +e
"$fuzzer" "$dir/qcow2-corpus" "$seeds" -dict=tests/fuzz/qcow2.dict \
  -max_total_time="$seconds" -max_len=1048576 -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10 \
  -artifact_prefix="$dir/qcow2-artifacts/" -print_final_stats=1 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
echo "fuzz-qcow2: exit $status; last status line:"
grep -E '^#[0-9]+' "$log" | tail -1
exit "$status"
