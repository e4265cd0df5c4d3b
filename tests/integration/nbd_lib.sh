# NBD servers for the nbd_*_test.sh tests: nbdkit and qemu-nbd, started on
# 127.0.0.1 (a free port) or a Unix socket in $WORK, stopped by pid. Source
# it after lib.sh.


# start_nbdkit NAME ARGS...: `nbdkit -f -P NAME.pid ARGS...` (its output in
# nbdkit.log); returns once it accepts connections. Sets SERVER_PID.
start_nbdkit() {
  local pidfile="$WORK/$1.pid"
  shift
  rm -f "$pidfile"
  start_bg nbdkit -f -P "$pidfile" "$@" 2>>"$WORK/nbdkit.log"
  SERVER_PID=$BG_PID
  for _ in $(seq 1 100); do [ -s "$pidfile" ] && return 0; sleep 0.1; done
  fail "nbdkit did not start: $(cat "$WORK/nbdkit.log")"
}

# start_qemu_nbd NAME ARGS...: `qemu-nbd -t --pid-file NAME.pid ARGS...`;
# returns once it accepts connections. Sets SERVER_PID.
start_qemu_nbd() {
  local pidfile="$WORK/$1.pid"
  shift
  rm -f "$pidfile"
  start_bg qemu-nbd -t --pid-file "$pidfile" "$@" 2>>"$WORK/qemu-nbd.log"
  SERVER_PID=$BG_PID
  for _ in $(seq 1 100); do [ -s "$pidfile" ] && return 0; sleep 0.1; done
  fail "qemu-nbd did not start: $(cat "$WORK/qemu-nbd.log")"
}

# kill_server PID: the server dies at once (SIGKILL), as on a crash.
kill_server() {
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# stats_read_mib STATSFILE: the MiB nbdkit's stats filter counted as read.
stats_read_mib() {
  python3 - "$1" <<'PY'
import re, sys
units = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}
for line in open(sys.argv[1]):
    m = re.match(r"read: .*?, ([0-9.]+) (B|KiB|MiB|GiB),", line)
    if m:
        print(f"{float(m.group(1)) * units[m.group(2)]:.2f}")
        break
else:
    print("0")
PY
}
