#!/usr/bin/env bash
# `cmake --install` lays out the binary, a man page per command, the bash
# completion and the systemd template unit corfs@.service; the unit passes
# `systemd-analyze verify`; and the unit's own ExecStart command, run with
# NOTIFY_SOCKET as systemd would (these machines have no systemd as PID 1),
# sends READY=1 only once the mount is up and its control socket answers,
# then on SIGTERM (what stopping the unit sends) STOPPING=1, commits and
# unmounts, exiting 0.
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/integration/lib.sh"

build=$(build_dir)

step "cmake --install into a prefix"
prefix=$WORK/prefix
cmake --install "$build" --prefix "$prefix" >install.log || { cat install.log >&2; fail "cmake --install failed"; }
unit=$prefix/lib/systemd/system/corfs@.service
for f in bin/corfs share/bash-completion/completions/corfs lib/systemd/system/corfs@.service share/man/man1/corfs.1.gz; do
  [ -f "$prefix/$f" ] || fail "cmake --install did not install $f (help2man missing? scripts/install-deps.sh)"
done
# A page for every subcommand the binary lists.
subcommands=$("$CORFS" --help | awk '/^[A-Za-z].*:$/ { on = (tolower($0) == "subcommands:"); next } on && /^  [a-z]/ { print $1 }')
[ -n "$subcommands" ] || fail "no subcommands in corfs --help"
for cmd in $subcommands; do
  [ "$cmd" = help ] && continue
  [ -f "$prefix/share/man/man1/corfs-$cmd.1.gz" ] || fail "no man page corfs-$cmd.1"
  MANPATH=$prefix/share/man man -w "corfs-$cmd" >/dev/null || fail "man does not find corfs-$cmd"
done
zcat "$prefix/share/man/man1/corfs-mount.1.gz" | grep -qF 'allow\-other' || fail "corfs-mount(1) lacks the mount options"
zcat "$prefix/share/man/man1/corfs-mount.1.gz" | grep -q "$build" && fail "corfs-mount(1) names the build folder"

step "the unit"
grep -qx "ExecStart=$prefix/bin/corfs mount /etc/corfs/%i.yaml" "$unit" || fail "ExecStart does not name the installed binary: $(grep ExecStart "$unit")"
grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"
grep -qx 'Restart=on-failure' "$unit" || fail "the unit does not restart on failure"
grep -qx 'KillSignal=SIGTERM' "$unit" || fail "the unit does not stop corfs with SIGTERM"
grep -q '^Documentation=man:corfs-mount(1)' "$unit" || fail "the unit does not name corfs-mount(1)"
# verify checks the unit's keys, that ExecStart is executable and that its
# Documentation= pages exist; it warns (exit 0) about unknown keys, so any
# output is a failure.
cp "$unit" "$WORK/corfs@demo.service"
for u in "$unit" "$WORK/corfs@demo.service"; do
  MANPATH=$prefix/share/man systemd-analyze verify "$u" >verify.log 2>&1 || { cat verify.log >&2; fail "systemd-analyze verify $u failed"; }
  [ ! -s verify.log ] || { cat verify.log >&2; fail "systemd-analyze verify $u warned"; }
done

step "readiness through NOTIFY_SOCKET"
cat > listen.py <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as log:
    while True:
        log.write(s.recv(4096).rstrip(b"\n") + b"\n")
PY
start_bg python3 listen.py "$WORK/notify.sock" "$WORK/notify.log"
listener=$BG_PID
wait_for 10 test -S "$WORK/notify.sock"
: >>notify.log

random_file template.raw 8M
mkdir -p etc/corfs mnt
write_yaml etc/corfs/demo.yaml <<YAML
mountpoint: $WORK/mnt
images:
  disk.img:
    overlay: $WORK/overlays/disk.img
    backing: [$WORK/template.raw]
YAML
# The unit's command for instance "demo", reading its YAML from here rather
# than from /etc/corfs.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
exec_start=${exec_start//%i/demo}
exec_start=${exec_start//\/etc\/corfs\//$WORK\/etc\/corfs\/}
read -r -a command <<<"$exec_start"
MOUNTED+=("$WORK/mnt")
NOTIFY_SOCKET=$WORK/notify.sock start_bg "${command[@]}" 2>>corfs.log
daemon=$BG_PID

ready() { grep -qx 'READY=1' notify.log; }
for _ in $(seq 1 200); do
  ready && break
  kill -0 "$daemon" 2>/dev/null || { cat corfs.log >&2; fail "corfs mount exited before READY=1"; }
  sleep 0.05
done
ready || fail "no READY=1 within 10 s"
# READY=1 came: the mount and the control socket must be there already.
is_mounted mnt || fail "READY=1 before the mount was up"
"$CORFS" status -m mnt >/dev/null || fail "READY=1 before the control socket answered"
grep -q '^STATUS=serving 1 image(s) at ' notify.log || fail "no STATUS with READY: $(cat notify.log)"
grep -qx 'STOPPING=1' notify.log && fail "STOPPING=1 while serving"
cmp mnt/disk.img template.raw || fail "the mount does not serve the template's bytes"

step "SIGTERM (systemctl stop) commits and unmounts"
kill -TERM "$daemon"
wait "$daemon" || fail "corfs mount exited with $? on SIGTERM"
is_mounted mnt && fail "still mounted after SIGTERM"
grep -qx 'STOPPING=1' notify.log || fail "no STOPPING=1 on the way down: $(cat notify.log)"
"$CORFS" check overlays/disk.img >/dev/null || fail "the overlay is not sound after SIGTERM"
stop_bg "$listener"
