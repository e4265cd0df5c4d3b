# Helpers of the http_*_test.sh tests: web servers on 127.0.0.1 that the
# test starts and stops (by pid, through lib.sh's start_bg/stop_bg). Source
# it after lib.sh.
#
#   start_nginx ROOT PORT [tls]    nginx serving ROOT with Range (HTTPS with
#                                  tls: the certificate make_certificate made);
#                                  ROOT/private/ needs the htpasswd user.
#                                  Sets NGINX_PID. Again on the same port
#                                  after stop_nginx: a server that restarts.
#   stop_nginx                     stops it (SIGTERM to the master)
#   make_certificate               $WORK/tls/cert.pem (for IP 127.0.0.1, its
#                                  own authority: the test's ca_file) and key
#   make_htpasswd USER PASSWORD    $WORK/nginx/htpasswd (openssl passwd -apr1)
#   start_liar FILE                the test's range server that can be told
#                                  to lie (tests/http_test_server.py); sets
#                                  LIAR_PORT, LIAR_PID; `liar MODE` tells it
#   have_remote_keys               the YAML file takes a top-level `remote:`
#                                  map (else the caller skips: exit 77)

SKIP=77
HTTP_TEST_SERVER="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/http_test_server.py"

make_certificate() {
  mkdir -p "$WORK/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
}

make_htpasswd() {
  mkdir -p "$WORK/nginx"
  printf '%s:%s\n' "$1" "$(openssl passwd -apr1 "$2")" > "$WORK/nginx/htpasswd"
}

start_nginx() {
  local root=$1 port=$2 tls=${3:-} listen ssl=""
  mkdir -p "$WORK/nginx/tmp"
  listen="127.0.0.1:$port"
  if [ "$tls" = tls ]; then
    listen="$listen ssl"
    ssl="ssl_certificate $WORK/tls/cert.pem; ssl_certificate_key $WORK/tls/key.pem;"
  fi
  cat > "$WORK/nginx/nginx.conf" <<CONF
daemon off;
# The test folder is private to root (mktemp -d): workers read it as root.
user root;
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 256; }
http {
  access_log $WORK/nginx/access.log;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  types { application/octet-stream raw qcow2; }
  server {
    listen $listen;
    $ssl
    root $root;
    location /private/ {
      auth_basic "corfs";
      auth_basic_user_file $WORK/nginx/htpasswd;
    }
  }
}
CONF
  start_bg nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
  NGINX_PID=$BG_PID
  local scheme=http
  [ "$tls" = tls ] && scheme=https
  for _ in $(seq 1 100); do
    curl -s -k -o /dev/null "$scheme://127.0.0.1:$port/" && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx/error.log" >&2; fail "nginx exited"; }
    sleep 0.05
  done
  fail "nginx did not answer on port $port"
}

stop_nginx() { stop_bg "$NGINX_PID"; }

start_liar() {
  rm -f "$WORK/liar.port"
  start_bg python3 "$HTTP_TEST_SERVER" "$1" "$WORK/liar.port" "$WORK/liar.mode" "$WORK/liar.log"
  LIAR_PID=$BG_PID
  for _ in $(seq 1 100); do [ -s "$WORK/liar.port" ] && break; sleep 0.05; done
  [ -s "$WORK/liar.port" ] || fail "the test range server did not start"
  LIAR_PORT=$(cat "$WORK/liar.port")
}

liar() { echo "$*" > "$WORK/liar.mode.tmp" && mv "$WORK/liar.mode.tmp" "$WORK/liar.mode"; }

have_remote_keys() {
  printf 'remote: {retries: 1}\nimages: {}\n' > "$WORK/remote-probe.yaml"
  : > "$WORK/remote-probe.file"
  local said
  said=$("$CORFS" mount "$WORK/remote-probe.yaml" "$WORK/remote-probe.file" 2>&1) || true
  ! grep -q "unknown key 'remote'" <<< "$said"
}
