#!/usr/bin/env bash
# Writes the man pages of corfs from its --help texts, with help2man: corfs.1
# (the command and its list of subcommands) and corfs-CMD.1 for each
# subcommand that `corfs --help` lists, gzipped as Debian ships them.
#
#   packaging/man-pages.sh CORFS_BINARY VERSION OUT_DIR
#
# The version is given rather than asked (`--version-string`): the pages do
# not depend on which version flags the binary has. The binary is run as
# plain `corfs` (through PATH), so its usage lines name no build folder.
set -euo pipefail
corfs=$(realpath "$1")
version=$2
out=$3

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
ln -s "$corfs" "$bin/corfs"
export PATH="$bin:$PATH"

# NAME<TAB>DESCRIPTION for each subcommand in the "Subcommands:" section of
# CLI11's help; `help` (if there is one) is no page of its own.
subcommands() {
  corfs --help | awk '
    /^[A-Za-z].*:$/ { on = (tolower($0) == "subcommands:"); next }
    on && /^  [a-z]/ { name = $1; $1 = ""; sub(/^ +/, ""); if (name != "help") print name "\t" $0 }'
}

mkdir -p "$out"
rm -f "$out"/corfs*.1 "$out"/corfs*.1.gz

see_also=""
while IFS=$'\t' read -r name description; do
  see_also+="${see_also:+,\n}.BR corfs-$name (1)"
done < <(subcommands)

# page NAME DESCRIPTION PROGRAM SEE_ALSO: one page from PROGRAM --help.
page() {
  local include="$bin/$1.h2m"
  printf '[SEE ALSO]\n%b\n' "$4" > "$include"
  help2man --no-info --no-discard-stderr --section=1 --version-string="$version" \
    --name="$2" --include="$include" --output="$out/$1.1" "$3"
  gzip -9nf "$out/$1.1"
}

page corfs "disk images as copy-on-read overlays" corfs "$see_also"
while IFS=$'\t' read -r name description; do
  # A subcommand's page is the program `corfs-NAME`, so that is its title.
  printf '#!/bin/sh\nexec corfs %s "$@"\n' "$name" > "$bin/corfs-$name"
  chmod +x "$bin/corfs-$name"
  page "corfs-$name" "$description" "corfs-$name" ".BR corfs (1)"
done < <(subcommands)
