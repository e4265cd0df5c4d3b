#!/usr/bin/env bash
# The Prometheus metrics file (`metrics: {textfile, interval}`): written at
# mount, rewritten atomically while serving and at unmount, in the text
# exposition format (checked line by line here, and parsed with the
# prometheus_client library, which we did not write), with the images'
# sizes, I/O counters and the jobs' progress. Bad `metrics:` keys are
# refused with their position.
source "$(dirname "$0")/lib.sh"

random_file template.raw 8M
mkdir metrics
write_yaml metrics.yaml <<YAML
metrics:
  textfile: metrics/corfs.prom
  interval: 200ms
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [template.raw]
    cluster_size: 64K
YAML
PROM=metrics/corfs.prom

# check_format FILE: every line is # HELP, # TYPE or a sample of a metric
# whose TYPE came before; counters end in _total; no name has two TYPEs.
check_format() {
  python3 - "$1" <<'PY'
import re, sys
types = {}
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(rf"^({name_re})(\{{{label}(?:,{label})*\}})? (-?[0-9.e+-]+|NaN|[+-]Inf)$")
for number, line in enumerate(open(sys.argv[1]).read().split("\n")[:-1], 1):
    where = f"line {number}: {line!r}"
    if line.startswith("# HELP "):
        assert re.match(rf"^# HELP {name_re} \S", line), where
    elif line.startswith("# TYPE "):
        m = re.match(rf"^# TYPE ({name_re}) (gauge|counter)$", line)
        assert m and m.group(1) not in types, where
        types[m.group(1)] = m.group(2)
        assert m.group(2) != "counter" or m.group(1).endswith("_total"), where
    else:
        m = sample.match(line)
        assert m and m.group(1) in types, where
        float(m.group(3))
PY
}

# metric FILE NAME LABELS: the value of one sample, parsed by prometheus_client
# (Debian's python3-prometheus-client, in the system's python3).
metric() {
  /usr/bin/python3 - "$@" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
path, name, labels = sys.argv[1], sys.argv[2], dict(kv.split("=", 1) for kv in sys.argv[3:])
for family in text_string_to_metric_families(open(path).read()):
    for s in family.samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            print(int(s.value) if s.value == int(s.value) else s.value)
            sys.exit(0)
sys.exit(1)
PY
}
metric_is() { [ "$(metric "$PROM" "$2" "${@:3}")" = "$1" ]; }  # VALUE NAME LABEL=VALUE...

start_mount metrics.yaml mnt

step "written at mount, in the exposition format"
[ -f $PROM ] || fail "no metrics file after the mount started"
check_format $PROM || { cat $PROM; fail "not the exposition format"; }
metric_is 1 corfs_up || fail "corfs_up is not 1"
metric_is 1 corfs_images || fail "corfs_images is not 1"
metric_is $((8 << 20)) corfs_image_virtual_bytes image=disk.img || fail "wrong virtual size"
metric_is 0 corfs_image_local_bytes image=disk.img || fail "local bytes before any I/O"

step "rewritten while serving: local bytes, I/O counters, copy-on-read"
dd if=/dev/urandom of=mnt/disk.img bs=64K count=4 conv=notrunc oflag=direct status=none
dd if=mnt/disk.img of=/dev/null bs=64K skip=16 count=2 iflag=direct status=none
wait_for 10 metric_is $((6 * 64 * 1024)) corfs_image_local_bytes image=disk.img
wait_for 10 metric_is 2 corfs_image_cor_faults_total image=disk.img
metric_is 4 corfs_image_io_operations_total image=disk.img op=write || fail "writes not counted"
metric_is $((256 * 1024)) corfs_image_io_bytes_total image=disk.img op=write || fail "written bytes"
metric_is 2 corfs_image_io_operations_total image=disk.img op=read || fail "reads not counted"
metric_is 0 corfs_image_io_errors_total image=disk.img op=read || fail "errors counted"
check_format $PROM || { cat $PROM; fail "not the exposition format"; }

step "a job shows with its progress"
"$CORFS" stream disk.img -m mnt --speed 64K >/dev/null
wait_for 10 metric $PROM corfs_job_length_bytes job=disk.img image=disk.img type=stream >/dev/null
metric_is $((64 * 1024)) corfs_job_speed_limit_bytes_per_second job=disk.img || fail "job speed"
metric_is 1 corfs_jobs || fail "corfs_jobs is not 1"
check_format $PROM || { cat $PROM; fail "not the exposition format"; }

step "replaced by rename (a scrape never sees a half-written file), no temporary file left"
inode=$(stat -c %i $PROM)
wait_for 10 bash -c "[ \"\$(stat -c %i $PROM)\" != $inode ]"

step "at unmount: the last state, corfs_up 0"
stop_mount mnt
metric_is 0 corfs_up || { cat $PROM; fail "corfs_up is not 0 after unmount"; }
metric_is 0 corfs_jobs || fail "jobs listed after unmount"
[ "$(ls metrics)" = "corfs.prom" ] || fail "stray files after unmount: $(ls metrics)"
check_format $PROM || { cat $PROM; fail "not the exposition format"; }

step "bad metrics keys are refused with their position"
write_yaml bad.yaml <<YAML
metrics:
  textfile: metrics/corfs.txt
  interval: 5 seconds
images:
  disk.img: {overlay: overlays/disk.img, backing: [template.raw]}
YAML
"$CORFS" mount bad.yaml mnt 2> err.txt && fail "bad metrics keys accepted"
grep -q "bad.yaml:2:13: metrics.textfile: .*does not end in .prom" err.txt || fail "textfile: $(cat err.txt)"
grep -q "bad.yaml:3:13: metrics.interval: expected a duration" err.txt || fail "interval: $(cat err.txt)"
write_yaml bad.yaml <<YAML
metrics: {interval: 5s}
images:
  disk.img: {overlay: overlays/disk.img, backing: [template.raw]}
YAML
"$CORFS" mount bad.yaml mnt 2> err.txt && fail "metrics without textfile accepted"
grep -q "metrics: missing .textfile:" err.txt || fail "no textfile: $(cat err.txt)"
write_yaml bad.yaml <<YAML
metrics: {textfile: nowhere/corfs.prom}
images:
  disk.img: {overlay: overlays/disk.img, backing: [template.raw]}
YAML
mkdir -p mnt3
"$CORFS" mount bad.yaml mnt3 2> err.txt && fail "a metrics file in a missing folder accepted"
grep -q "metrics file: .*nowhere/corfs.prom.tmp" err.txt || fail "missing folder: $(cat err.txt)"
is_mounted mnt3 && fail "mounted anyway"
true
