# shellcheck shell=bash disable=SC2154,SC2034  # root: the script's; qmp, took, MiB: for it
# Helpers shared by the bench scripts (bench/run.sh, remote.sh, mirror.sh...):
# sourced, not run, before the script parses its options:
#
#   source "$root/bench/lib.sh"
#
# It sets the shared options' defaults (parent=/tmp, keep=0, corfs="") and
# otherwise only defines functions (and the empty lists pids and mounts);
# nothing runs until the script calls them:
#   bench_option "$@"     the options every script takes (--dir, --keep,
#                         --corfs): sets them and took (the words used);
#                         any other word calls the script's usage
#   bench_usage           their lines, for the script's usage text
#   build_unless_corfs    without --corfs: install the packages and build,
#                         corfs= the built binary; sets qmp (bench/qmp.py)
#   require_tools T...    exit 1 naming the first tool that is missing
#   make_work_folder NAME a fresh folder NAME.XXXXXX inside $parent, made the
#                         current one: sets dir and results (an empty
#                         results.txt of "key value" lines) and sets the
#                         EXIT/INT/TERM traps that run cleanup
#   stop_pid PID SIGNAL   signal, wait up to 30 s, then SIGKILL; drops PID
#                         from pids
#   is_mounted PATH, wait_mounted PATH PID
#   now, elapsed START, record KEY VALUE, say MESSAGE, fail MESSAGE; MiB
#   require_rounds N      exit 2 unless N is 1 to 9 (a --rounds value)
#   median_rounds KEY...  records KEY as the median of its KEY@ROUND values
#   free_port             a TCP port on 127.0.0.1 for a server
#
# The script sets root (the checkout) first and defines usage. It adds
# to pids every process it starts in the background and to mounts every
# mountpoint it makes; cleanup stops the first by pid and unmounts the
# others, then removes the work folder unless keep=1 or a mount is left.
# For more to undo on exit, the script defines bench_cleanup_hook: cleanup
# calls it first, before stopping anything.

# --- the shared options --------------------------------------------------------
parent=/tmp   # --dir: the work folder is made inside it
keep=0        # --keep: keep the work folder
corfs=""      # --corfs: this binary; no packages installed, no build
bench_usage='  --dir DIR            make the work folder inside DIR (default /tmp)
  --keep               keep the work folder
  --corfs BINARY       use this corfs binary; do not install packages or build'
bench_option() {  # "$@" of the script's option loop; sets took
  case "$1" in
    --dir) parent=${2:?}; took=2 ;;
    --keep) keep=1; took=1 ;;
    --corfs) corfs=$(realpath "${2:?}"); took=2 ;;
    *) echo "bench: unknown option $1" >&2; usage ;;
  esac
}

# --- build and tools ---------------------------------------------------------
build_unless_corfs() {
  if [ -z "$corfs" ]; then
    bash scripts/install-deps.sh >/dev/null
    bash scripts/build.sh >/dev/null
    corfs="$root/build/cli/corfs"
  fi
  qmp="$root/bench/qmp.py"
}
require_tools() {  # tool...
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
  done
}

# --- cleanup: everything the script starts is stopped by pid -----------------
pids=()      # daemons and helper loops still running
mounts=()    # mountpoints the script made
stop_pid() {  # pid signal: signal, wait up to 30 s, then SIGKILL
  local pid=$1 sig=$2
  kill -"$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local rest=()
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || rest+=("$p"); done
  pids=("${rest[@]}")
}
is_mounted() { grep -q " $1 " /proc/self/mountinfo; }
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if declare -F bench_cleanup_hook >/dev/null; then bench_cleanup_hook || true; fi
  for pid in "${pids[@]}"; do stop_pid "$pid" TERM; done
  local left=0
  for m in "${mounts[@]}"; do
    if is_mounted "$m"; then
      fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    fi
    is_mounted "$m" && left=1
  done
  if [ "$keep" = 1 ] || [ $left = 1 ]; then
    echo "bench: work folder kept: $dir" >&2
  else
    rm -rf "$dir"
  fi
  [ $status -eq 0 ] || echo "bench: FAILED (exit $status); logs were in $dir" >&2
  exit $status
}
make_work_folder() {  # name: the folder $parent/name.XXXXXX
  mkdir -p "$parent"
  dir=$(mktemp -d "$(realpath "$parent")/$1.XXXXXX")
  cd "$dir" || exit
  results="$dir/results.txt"   # "key value" lines, turned into the table at the end
  : > "$results"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# --- helpers -----------------------------------------------------------------
MiB=$((1 << 20))
now() { date +%s%N; }
free_port() { python3 "$root/scripts/free_port.py"; }  # a TCP port on 127.0.0.1 for a server
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
record() { echo "$1 $2" >> "$results"; }
# require_rounds N: exit 2 unless N is a round count the benches take (1 to 9).
require_rounds() {
  [[ "$1" =~ ^[1-9]$ ]] || { echo "bench: --rounds must be a whole number from 1 to 9" >&2; exit 2; }
}
# median_rounds KEY...: records each KEY as the median of its KEY@ROUND values.
median_rounds() {
  local key median
  for key in "$@"; do
    median=$(awk -v key="$key" '{ i = index($1, "@"); if (i && substr($1, 1, i - 1) == key) print $2 }' "$results" |
      sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else if (NR) print (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    [ -z "$median" ] || record "$key" "$median"
  done
}
say() { echo "bench: $*" >&2; }
fail() { echo "bench: $*" >&2; exit 1; }
wait_mounted() {  # path pid
  for _ in $(seq 1 400); do
    is_mounted "$1" && return 0
    kill -0 "$2" 2>/dev/null || fail "the daemon serving $1 exited early (see its log in $dir)"
    sleep 0.05
  done
  fail "$1 did not appear"
}
