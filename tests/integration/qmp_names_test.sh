#!/usr/bin/env bash
# QMP names QEMU users know, on a real mount with a slow stream:
#   - query-jobs in QEMU's JobInfo shape (id, type, status,
#     current-progress, total-progress);
#   - job-pause / job-resume / job-cancel (argument "id") act on the same
#     jobs as the block-job-* commands; an unknown id is "Job not found";
#   - a second pause of a paused job is QEMU's "Job is already paused", by
#     either name;
#   - job-dismiss refuses a running job and answers "Job not found" once
#     the job has concluded (corfs dismisses concluded jobs itself);
#   - every command refuses an argument it does not know, the queries
#     included;
#   - query-commands lists the new names, and each one it lists exists.
# `quit` is in signals_and_stale_mount_test.sh beside SIGINT and SIGTERM.
source "$(dirname "$0")/lib.sh"

random_file t1.raw 32M
write_yaml names.yaml <<YAML
images:
  slow.img:
    overlay: overlays/slow.img
    backing: [t1.raw]
    stream: {speed: 1M}
YAML
start_mount names.yaml mnt
write_qmp_client

step "query-jobs, job-* aliases, second pause, job-dismiss, unknown arguments"
python3 - <<'PY'
from qmp import *

c = Qmp("mnt.sock")
names = {x["name"] for x in c.ok("query-commands")}
new = {"query-jobs", "job-pause", "job-resume", "job-cancel", "job-dismiss", "quit"}
assert new <= names, names
for name in names - {"qmp_capabilities", "quit"}:
    r = c.cmd(name, {})
    assert r.get("error", {}).get("class") != "CommandNotFound", (name, r)

# Unknown arguments are refused by every command, queries included.
for name in sorted(names - {"qmp_capabilities"}):
    r = c.err(name, {"no-such-argument": 1}, "GenericError")
    assert "no-such-argument" in r["error"]["desc"], (name, r)

assert c.ok("query-jobs") == []
c.err("job-pause", {"id": "nosuchjob"}, "GenericError")
for name in ("job-pause", "job-resume", "job-cancel", "job-dismiss"):
    r = c.err(name, {"id": "nosuchjob"}, "GenericError")
    assert r["error"]["desc"] == "Job not found", (name, r)
    c.err(name, {"device": "slow.img"}, "GenericError")  # QEMU spells it "id" here

job = c.ok("block-stream", {"device": "slow.img"})["job-id"]
jobs = c.ok("query-jobs")
assert len(jobs) == 1, jobs
j = jobs[0]
assert set(j) >= {"id", "type", "status", "current-progress", "total-progress"}, j
assert j["id"] == job and j["type"] == "stream" and j["total-progress"] == 32 << 20, j
assert j["status"] in ("created", "running"), j
assert "error" not in j, j

r = c.err("job-dismiss", {"id": job}, "GenericError")
assert "cannot accept command verb 'dismiss'" in r["error"]["desc"], r

def status():
    return c.ok("query-jobs")[0]["status"]

assert c.ok("job-pause", {"id": job}) == {}
wait_until(lambda: status() == "paused", what="paused by job-pause")
r = c.err("job-pause", {"id": job}, "GenericError")
assert r["error"]["desc"] == "Job is already paused", r
r = c.err("block-job-pause", {"device": job}, "GenericError")
assert r["error"]["desc"] == "Job is already paused", r
paused_at = c.ok("query-jobs")[0]["current-progress"]
assert c.ok("query-block-jobs")[0]["offset"] == paused_at

assert c.ok("job-resume", {"id": job}) == {}
wait_until(lambda: status() == "running", what="running after job-resume")
# block-job-pause after job-resume: the two names share one pause.
assert c.ok("block-job-pause", {"device": job}) == {}
c.err("job-pause", {"id": job}, "GenericError")
assert c.ok("block-job-resume", {"device": job}) == {}

assert c.ok("job-cancel", {"id": job}) == {}
c.event("BLOCK_JOB_CANCELLED", device=job)
assert c.ok("query-jobs") == []
r = c.err("job-dismiss", {"id": job}, "GenericError")
assert r["error"]["desc"] == "Job not found", r
PY
stop_mount mnt
"$CORFS" check overlays/slow.img
