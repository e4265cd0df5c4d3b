# Shared helpers for the integration tests on real mounts. Source it; the
# test script gets CORFS (the binary) from the environment (ctest sets it).
#
# Every test works in its own temporary folder, and an EXIT trap stops the
# daemons *this test* started (by pid), unmounts what it mounted and removes
# the folder, whether the test passed or failed.

set -euo pipefail

: "${CORFS:?CORFS must name the corfs binary}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/corfs-it.XXXXXX")
STARTED_PIDS=()
MOUNTED=()

cleanup() {
  local status=$?
  for pid in "${STARTED_PIDS[@]}"; do
    kill -INT "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for m in "${MOUNTED[@]}"; do
    if is_mounted "$m"; then fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; fi
  done
  rm -rf "$WORK"
  if [ $status -eq 0 ]; then echo "PASS: $(basename "$0")"; else echo "FAIL: $(basename "$0") (exit $status)"; fi
  exit $status
}
trap cleanup EXIT
cd "$WORK"

fail() { echo "FAILED: $*" >&2; exit 1; }
step() { echo "--- $*"; }

is_mounted() { grep -q " $(realpath -m "$1") " /proc/self/mountinfo; }

# start_mount CONFIG MOUNTPOINT [extra args]: runs `corfs mount` in the
# background and waits until the mount is there. Sets MOUNT_PID.
start_mount() {
  local config=$1 mnt=$2
  shift 2
  mkdir -p "$mnt"
  "$CORFS" mount "$config" "$mnt" "$@" 2>>"$WORK/corfs.log" &
  MOUNT_PID=$!
  STARTED_PIDS+=("$MOUNT_PID")
  MOUNTED+=("$(realpath -m "$mnt")")
  for _ in $(seq 1 200); do
    is_mounted "$mnt" && return 0
    kill -0 "$MOUNT_PID" 2>/dev/null || { cat "$WORK/corfs.log" >&2; fail "corfs mount exited early"; }
    sleep 0.05
  done
  fail "mount at $mnt did not appear"
}

# stop_mount MOUNTPOINT: SIGINT to the daemon; it commits and unmounts.
stop_mount() {
  local mnt=$1
  kill -INT "$MOUNT_PID"
  wait "$MOUNT_PID" || fail "corfs mount exited with an error"
  is_mounted "$mnt" && fail "$mnt is still mounted after SIGINT"
  return 0
}

# random_file PATH SIZE: a file of random bytes.
random_file() { head -c "$(numfmt --from=iec "$2")" /dev/urandom > "$1"; }

# write_yaml PATH <<YAML ... : a YAML file from standard input.
write_yaml() { cat > "$1"; }

# info_field OVERLAY FIELD: one field of `corfs info --json`.
info_field() {
  "$CORFS" info --json "$1" | python3 -c "import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(json.dumps(v) if isinstance(v,(list,dict)) else v)" "$2"
}

# wait_for TIMEOUT_SECONDS COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local limit=$1
  shift
  for _ in $(seq 1 $((limit * 10))); do "$@" && return 0; sleep 0.1; done
  fail "timed out waiting for: $*"
}

# job_field MOUNTPOINT JOB FIELD: a field of the job in `corfs jobs --json`
# (empty when there is no such job).
job_field() {
  "$CORFS" jobs --json -m "$1" | python3 -c "
import json,sys
for j in json.load(sys.stdin):
    if j['device'] == sys.argv[1]: print(j[sys.argv[2]])" "$2" "$3"
}

# Predicates for wait_for (re-evaluated on every try).
job_is() { [ "$(job_field "$1" "$2" status)" = "$3" ]; }          # MNT JOB STATUS
job_gone() { [ -z "$(job_field "$1" "$2" status)" ]; }           # MNT JOB
job_offset_above() { [ "$(job_field "$1" "$2" offset)" -gt "$3" ]; }  # MNT JOB BYTES
overlay_is() { [ "$(info_field "$1" state)" = "$2" ]; }          # OVERLAY STATE
