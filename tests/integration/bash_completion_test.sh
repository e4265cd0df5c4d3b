#!/usr/bin/env bash
# The bash completion (packaging/corfs.bash-completion, installed as
# share/bash-completion/completions/corfs) completes subcommands, their
# options and option values from the binary's own --help, loaded the way
# bash-completion loads it.
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/integration/lib.sh"
[ -f /usr/share/bash-completion/bash_completion ] || fail "bash-completion is not installed (scripts/install-deps.sh)"

mkdir files && cd files
touch a.yaml b.yml c.raw
mkdir dir

# complete WORD...: what TAB offers for the last WORD (the cursor at the end
# of the line), one per line, sorted; the first WORD is the corfs binary.
# A fresh interactive-like bash without errexit, as completions run in.
complete() {
  bash --norc --noprofile -c '
    source /usr/share/bash-completion/bash_completion
    source "$1"
    shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _corfs corfs "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}" | sort' \
    completion "$root/packaging/corfs.bash-completion" "$CORFS" "$@"
}

# expect "WANTED" WORD...: the completion of WORD... is exactly WANTED.
expect() {
  local wanted=$1 got
  shift
  got=$(complete "$@" | paste -sd ' ')
  [ "$got" = "$wanted" ] || fail "corfs ${*} <TAB>: wanted '$wanted', got '$got'"
}

step "subcommands"
expect "mount" mo
expect "set-speed" se
expect "stream" str
all=$(complete "")
for cmd in create info check mount stream jobs pause resume cancel set-speed threshold events status; do
  grep -qx "$cmd" <<<"$all" || fail "corfs <TAB> does not offer $cmd"
done

step "options of a subcommand"
expect "--allow-other" mount --al
expect "--watch" jobs --wa
expect "--mountpoint" stream vm1.img --mou
expect "--full" check --fu

step "values and files"
expect "ignore" stream vm1.img --on-error ig
expect "full sampled" create o.img --verify-backing ""
expect "a.yaml b.yml dir" mount ""     # a YAML file (or a folder on the way to one)
expect "dir" mount a.yaml ""           # then the mountpoint: a folder
expect "dir" jobs -m ""
