#!/usr/bin/env bash
# The `remote:` settings and credentials: bad values are refused before
# anything is touched, a credentials file others may read is refused (in the
# YAML file and as CORFS_CREDENTIALS), and a URI's password shows nowhere:
# not in the messages of `corfs create` or `corfs mount` against a server
# that is not there, not in the daemon's log, and no overlay is made.
source "$(dirname "$0")/lib.sh"

random_file template.raw 1M
mkdir -p mnt

expect_refused() {  # NAME PATTERN: as bad_config_test.sh
  local name=$1 pattern=$2 out status
  set +e
  out=$("$CORFS" mount "$name.yaml" mnt 2>&1)
  status=$?
  set -e
  [ $status -ne 0 ] || fail "$name: accepted"
  grep -qiE -- "$pattern" <<<"$out" || fail "$name: message lacks '$pattern': $out"
  grep -qE "$name\.yaml:[0-9]+:[0-9]+:" <<<"$out" || fail "$name: no file:line:column in: $out"
  [ -z "$(ls -A overlays 2>/dev/null)" ] || fail "$name: created $(ls overlays)"
  is_mounted mnt && fail "$name: mounted"
  echo "ok: $name -> $(head -1 <<<"$out")"
}

remote_yaml() {  # NAME REMOTE-MAP
  printf 'remote: %s\nimages:\n  vm1: {overlay: overlays/vm1.img, backing: [template.raw]}\n' "$2" > "$1.yaml"
}

step "bad remote: values"
remote_yaml zero_connections '{connections: 0}'
expect_refused zero_connections "remote.connections: at least 1"
remote_yaml many_retries '{retries: 1000}'
expect_refused many_retries "remote.retries"
remote_yaml zero_timeout '{connect_timeout: 0}'
expect_refused zero_timeout "remote.connect_timeout: 0 is outside"
remote_yaml bad_timeout '{request_timeout: soon}'
expect_refused bad_timeout "remote.request_timeout: expected a duration"
remote_yaml unknown_remote_key '{verify_tls: false}'
expect_refused unknown_remote_key "verify_tls"
remote_yaml missing_ca '{ca_file: nosuch.pem}'
expect_refused missing_ca "CA file .*nosuch.pem"

step "a credentials file others may read is refused"
printf 'machine h login u password secret\n' > open.netrc
chmod 644 open.netrc
remote_yaml open_credentials '{credentials: open.netrc}'
expect_refused open_credentials "mode 0644.*chmod 600"
mkdir -p folder.netrc
remote_yaml folder_credentials '{credentials: folder.netrc}'
expect_refused folder_credentials "not a regular file"
set +e
out=$(CORFS_CREDENTIALS=open.netrc "$CORFS" create -b template.raw overlays/env.img 2>&1)
status=$?
set -e
[ $status -ne 0 ] || fail "CORFS_CREDENTIALS with mode 0644 was accepted"
grep -q "CORFS_CREDENTIALS.*mode 0644" <<<"$out" || fail "no clear message: $out"
chmod 600 open.netrc
CORFS_CREDENTIALS=open.netrc "$CORFS" create -b template.raw overlays/env.img > /dev/null
rm -f overlays/env.img*

step "a URI's password shows nowhere"
set +e
out=$("$CORFS" create -b 'http://user:secret@127.0.0.1:1/x.raw' overlays/vm1.img 2>&1)
set -e
grep -q secret <<<"$out" && fail "create printed the password: $out"
grep -q 'http://127.0.0.1:1/x.raw' <<<"$out" || fail "create's message does not name the URI: $out"
[ -z "$(ls -A overlays)" ] || fail "create made $(ls overlays)"

# mount_refused YAML WHAT: the mount of YAML fails, and says no password;
# what it said is in $out.
mount_refused() {
  local status
  set +e
  out=$("$CORFS" mount "$1" mnt 2>&1)
  status=$?
  set -e
  [ $status -ne 0 ] || fail "$2 was accepted"
  grep -q secret <<<"$out" && fail "mount printed the password: $out"
  return 0
}
printf 'remote: {connect_timeout: 1, retries: 0}\nimages:\n  vm1: {overlay: overlays/vm1.img, backing: "http://user:secret@127.0.0.1:1/x.raw"}\n' > url.yaml
mount_refused url.yaml "a mount over an unreachable server"
grep -q secret "$WORK/corfs.log" 2>/dev/null && fail "the log holds the password"
[ -z "$(ls -A overlays)" ] || fail "mount made $(ls overlays)"
is_mounted mnt && fail "mounted"
echo "ok: $(head -1 <<<"$out")"
# A stream base that is not in the chain is named without its password too.
printf 'images:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [template.raw]\n    stream: {base: "http://user:secret@127.0.0.1:1/y.raw"}\n' > base.yaml
mount_refused base.yaml "a stream base outside the chain"
grep -q 'http://127.0.0.1:1/y.raw' <<<"$out" || fail "the message does not name the stream base: $out"
