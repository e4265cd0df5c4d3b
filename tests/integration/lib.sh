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
# A test that mounts more than FUSE (loop devices and the file systems on
# them) names a function here that undoes that; cleanup calls it once the
# daemons have stopped and their FUSE mounts are gone, before the folder is
# removed.
CLEANUP_HOOK=""

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
  if [ -n "$CLEANUP_HOOK" ]; then "$CLEANUP_HOOK" || true; fi
  rm -rf "$WORK"
  if [ $status -eq 0 ]; then
    echo "PASS: $(basename "$0")"
  elif [ $status -eq 77 ]; then
    echo "SKIPPED: $(basename "$0")"  # tests/CMakeLists.txt: SKIP_RETURN_CODE 77
  else
    echo "FAIL: $(basename "$0") (exit $status)"
  fi
  exit $status
}
trap cleanup EXIT
cd "$WORK"
# The folder most tests put their overlays in (a mount makes no folder
# unless an image says `create_dirs: true`).
mkdir overlays

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

# disk_yaml PATH [KEY: VALUE...]: the most common mount of these tests, one
# image disk.img (overlay overlays/disk.img) over template.raw, with the
# extra image keys given.
disk_yaml() {
  local path=$1
  shift
  {
    printf 'images:\n  disk.img:\n    overlay: overlays/disk.img\n    backing: [template.raw]\n'
    for key in "$@"; do printf '    %s\n' "$key"; done
  } > "$path"
}

# info_field OVERLAY FIELD: one field of `corfs info --json`.
info_field() {
  "$CORFS" info --json "$1" | python3 -c "import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(json.dumps(v) if isinstance(v,(list,dict)) else v)" "$2"
}

# free_port: a TCP port on 127.0.0.1 that nothing uses just now (below the
# ephemeral range; scripts/free_port.py says why).
free_port() { python3 "$(dirname "${BASH_SOURCE[0]}")/../../scripts/free_port.py"; }

# wait_for TIMEOUT_SECONDS COMMAND...: polls until COMMAND succeeds. The
# limit is wall time, not a count of tries: on a loaded machine each try
# (a corfs call and a python parse) may take longer than the pause between.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while [ "$SECONDS" -lt "$deadline" ]; do "$@" && return 0; sleep 0.1; done
  "$@" && return 0
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

# write_qmp_client: writes $WORK/qmp.py, a plain QMP client (Python stdlib
# only, not the corfs CLI) for tests that talk to a control socket directly.
# A `python3 - <<'PY'` script run from $WORK does `from qmp import *`.
write_qmp_client() {
  cat > "$WORK/qmp.py" <<'PY'
import json, socket, time

class Qmp:
    """One connection. Events met while waiting for a reply are kept in
    .events; replies are returned whole ({"return": ...} or {"error": ...})."""

    def __init__(self, path, negotiate=True, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()
        if negotiate:
            self.ok("qmp_capabilities")

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def send(self, execute, arguments=None, id=None):
        message = {"execute": execute}
        if arguments is not None:
            message["arguments"] = arguments
        if id is not None:
            message["id"] = id
        self.send_raw(json.dumps(message) + "\n")

    def recv(self, timeout=None):
        """The next message, whatever it is; None on timeout (if given)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                if deadline is not None:
                    return None
                raise
            finally:
                if deadline is not None:
                    self.sock.settimeout(10)
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def reply(self):
        while True:
            message = self.recv()
            if "event" in message:
                self.events.append(message)
            else:
                return message

    def cmd(self, execute, arguments=None, id=None):
        self.send(execute, arguments, id)
        return self.reply()

    def ok(self, execute, arguments=None):
        r = self.cmd(execute, arguments)
        assert "return" in r, f"{execute} {arguments}: {r}"
        return r["return"]

    def err(self, execute, arguments, error_class, id=None):
        r = self.cmd(execute, arguments, id)
        assert "error" in r and r["error"]["class"] == error_class, f"{execute} {arguments}: wanted {error_class}, got {r}"
        assert isinstance(r["error"].get("desc"), str) and r["error"]["desc"], r
        return r

    def event(self, name, timeout=30, **match):
        """The first event `name` whose data has the `match` members (kept
        ones first), or AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name and all(e["data"].get(k) == v for k, v in match.items()):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            assert left > 0, f"no {name} {match} within {timeout}s; saw {self.events}"
            message = self.recv(timeout=left)
            if message is not None:
                assert "event" in message, f"unexpected reply while waiting for {name}: {message}"
                self.events.append(message)

def wait_until(predicate, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
PY
}

# start_bg COMMAND...: runs COMMAND in the background (redirect the call as
# needed) and has cleanup stop it; sets BG_PID. SIGINT is put back to its
# default first: a non-interactive shell makes background commands ignore
# it, and cleanup stops its pids with SIGINT before it waits 10 s and kills.
start_bg() {
  ( trap - INT; exec "$@" ) &
  BG_PID=$!
  STARTED_PIDS+=("$BG_PID")
}

# stop_bg PID: stops a start_bg command now (SIGTERM) and reaps it.
stop_bg() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# build_dir: the CMake build folder $CORFS was built in (the first folder
# above it with a CMakeCache.txt), for tests that use the build itself.
build_dir() {
  local dir
  dir=$(dirname "$(realpath "$CORFS")")
  while [ ! -f "$dir/CMakeCache.txt" ]; do
    [ "$dir" != / ] || fail "no CMake build folder above $CORFS"
    dir=$(dirname "$dir")
  done
  echo "$dir"
}
