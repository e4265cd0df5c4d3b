#!/usr/bin/env bash
# HTTPS templates, with a certificate the test makes (for IP 127.0.0.1) and
# nginx started by the test:
# - without the test's authority the server is not trusted: the mount
#   refuses the image, saying why (TLS verification is always on);
# - with `remote: {ca_file: ...}` it reads the template, cmp-equal, and a
#   stream makes it standalone; with the server stopped it is still served;
# - credentials for /private/ from a netrc file named by
#   `remote: {credentials: ...}` (mode 0600): never in any output nor .cor.
# The `remote:` keys come with the YAML loader's remote settings; a build
# without them skips the rest of the test (exit 77).
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
source "$HERE/http_lib.sh"

PASSWORD='Tls-Pw-93be1c07'
mkdir -p www/private
random_file www/template.raw 8M
cp www/template.raw www/private/template.raw
make_certificate
make_htpasswd alice "$PASSWORD"
PORT=$(free_port)
start_nginx "$WORK/www" "$PORT" tls
URL="https://127.0.0.1:$PORT/template.raw"

step "a server the mount cannot verify is refused"
write_yaml untrusted.yaml <<YAML
images:
  disk.img:
    overlay: overlays/untrusted.img
    backing: [$URL]
YAML
mkdir -p mnt
if "$CORFS" mount untrusted.yaml mnt 2> untrusted.log; then fail "a mount over an untrusted server worked"; fi
is_mounted mnt && fail "mounted over an untrusted server"
grep -q "$URL" untrusted.log || { cat untrusted.log; fail "the refusal does not name the URL"; }
grep -qi "certificate" untrusted.log || { cat untrusted.log; fail "the refusal does not say it is the certificate"; }

have_remote_keys || { echo "SKIP: this build's YAML has no 'remote:' settings"; exit $SKIP; }

step "with the test's authority as ca_file: read, streamed, standalone"
printf 'machine 127.0.0.1 login alice password %s\n' "$PASSWORD" > netrc
chmod 600 netrc
write_yaml tls.yaml <<YAML
remote:
  ca_file: $WORK/tls/cert.pem
  credentials: $WORK/netrc
  connect_timeout: 5
  request_timeout: 20
  retries: 2
  connections: 2
images:
  disk.img:
    overlay: overlays/disk.img
    backing: [$URL]
  private.img:
    overlay: overlays/private.img
    backing: [https://127.0.0.1:$PORT/private/template.raw]
    copy_on_read: false
YAML
start_mount tls.yaml mnt
"$CORFS" events -m mnt --json > events.log &
STARTED_PIDS+=("$!")
cmp www/template.raw mnt/disk.img
"$CORFS" info overlays/private.img > info.txt
"$CORFS" stream private.img -m mnt --wait > stream.log || { cat stream.log; fail "stream over https"; }
[ "$(info_field overlays/private.img state)" = standalone ] || fail "private.img is not standalone"
stop_nginx
cmp www/template.raw mnt/private.img
cmp www/template.raw mnt/disk.img
stop_mount mnt

step "the password is in no output and no .cor"
for file in corfs.log events.log info.txt stream.log; do
  [ "$(grep -c -- "$PASSWORD" "$file")" = 0 ] || fail "the password is in $file"
done
for cor in overlays/*.cor; do
  [ "$(grep -c -a -- "$PASSWORD" "$cor")" = 0 ] || fail "the password is in $cor"
done
