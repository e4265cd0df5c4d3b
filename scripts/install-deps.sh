#!/usr/bin/env bash
# Installs every Debian 12 package that corfs needs to build, test, demo and
# benchmark. Safe to run again: apt-get skips what is already installed.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config
  # the fuzz targets (scripts/fuzz-qcow2.sh): clang with libFuzzer and the sanitizers
  clang
  # scripts/lint.sh: clang-format 14 and clang-tidy 14 (with run-clang-tidy-14)
  clang-format clang-tidy
  # libraries
  libfuse3-dev fuse3 libtbb-dev libyaml-cpp-dev nlohmann-json3-dev
  libcli11-dev libspdlog-dev zlib1g-dev libzstd-dev libxxhash-dev
  libgtest-dev libgmock-dev
  # peer tools that verify what corfs presents, and the demo's tools
  qemu-utils qemu-system-common fio e2fsprogs xfsprogs socat
  # the integration tests' JSON clients and checks
  python3
  # migration tests: two network namespaces joined by a veth pair (ip netns,
  # nsenter)
  iproute2 util-linux
  # tests/integration/guest_boot_test.sh and bench/run.sh's boot figure: a
  # guest under qemu (TCG), its initramfs built from a static busybox (the
  # kernel is fetched on first use with apt-get download, see
  # tests/integration/guest_lib.sh); fio's libaio engine is in fio
  qemu-system-x86 busybox-static
  # packaging (scripts/package.sh): readiness for systemd (sd_notify), man
  # pages, and what its tests check with: systemd-analyze, man, bash-completion
  libsystemd-dev help2man systemd man-db bash-completion
  # metrics_test.sh reads the metrics file with Prometheus' own parser
  python3-prometheus-client
  # remote templates: NBD through libnbd, HTTP(S) through libcurl; the
  # servers and the copy limits their tests and bench measure against
  # (qemu-nbd is in qemu-utils; nbdcopy in libnbd-bin)
  libnbd-dev libcurl4-openssl-dev libnbd-bin nbdkit nginx-light openssl curl
  # bench/remote_http.sh: qemu-storage-daemon's http blockdev (block-curl.so)
  qemu-block-extra
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
