#!/usr/bin/env bash
# clavisctl's bash completion, in bash: sources `clavisctl completion bash`,
# sets COMP_WORDS/COMP_CWORD as bash does on <TAB>, calls the completion
# function and checks COMPREPLY. Runs offline: no clavisd, no credentials
# (HOME and XDG_CONFIG_HOME point at an empty directory; a credential
# variable names a file that does not exist, which a local command ignores).
#
#   completion_test.sh path/to/clavisctl
set -uo pipefail
clavisctl=${1:?usage: completion_test.sh path/to/clavisctl}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/dir/sub" && touch "$scratch/dir/ca.crt"

script=$(HOME=$scratch XDG_CONFIG_HOME=$scratch CLAVIS_CA_CERT=$scratch/missing.crt \
  "$clavisctl" completion bash) || { echo "FAIL: clavisctl completion bash exited $?"; exit 1; }
# shellcheck source=/dev/null
source <(printf '%s\n' "$script")
complete -p clavisctl >/dev/null || { echo "FAIL: no completion registered for clavisctl"; exit 1; }

failures=0
# expect "<expected COMPREPLY, sorted, space-separated>" word...  (the last
# word is the one under the cursor)
expect() {
  local want=$1
  shift
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _clavisctl clavisctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  local got
  got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//')
  if [[ $got != "$want" ]]; then
    echo "FAIL: [$*] completes to [$got], want [$want]"
    failures=$((failures + 1))
  fi
}
# expect_has "<word>" word...: COMPREPLY contains <word> (long lists).
expect_has() {
  local want=$1
  shift
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _clavisctl clavisctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  local w
  for w in "${COMPREPLY[@]}"; do [[ $w == "$want" ]] && return; done
  echo "FAIL: [$*] completes to [${COMPREPLY[*]}], which lacks $want"
  failures=$((failures + 1))
}

# Nouns, verbs, options.
expect "key" clavisctl ke
expect "rotate" clavisctl key ro
expect "--json" clavisctl key get --js
expect "disable" clavisctl key version dis
expect "revoke rotate" clavisctl segment r
# Global options anywhere, also before the command words.
expect "--profile --profile-file" clavisctl key list --prof
expect "--ca-cert --cert" clavisctl --c
expect "rotate" clavisctl --endpoint kms.internal:7370 --json key ro
expect "rotate" clavisctl --endpoint = kms.internal:7370 key ro
expect "--timeout --token-file" clavisctl --profile prod key get tenants/acme/keys/main --t
# Aliases: certs = pki, bootstrap = init-ca, with init-ca's options.
expect "certs" clavisctl ce
expect "bootstrap" clavisctl certs boo
expect "--out" clavisctl certs bootstrap --ou
expect "status" clavisctl sta
expect "bash" clavisctl completion ""
expect_has "whoami" clavisctl ""
# A command without arguments offers its options; a resource name nothing.
expect_has "--json" clavisctl status ""
expect "" clavisctl key get ""
# Option values: files for FILE options, directories for DIR, nothing for
# names; decrypt's own --key takes a key name, the global --key a file.
expect "$scratch/dir/ca.crt" clavisctl --ca-cert "$scratch/dir/ca"
expect "$scratch/dir/ca.crt" clavisctl key list --ca-cert = "$scratch/dir/ca"
expect "$scratch/dir/sub" clavisctl pki init-ca --out "$scratch/dir/s"
expect "" clavisctl decrypt --key "$scratch/dir/ca"
expect "--base64" clavisctl decrypt --key tenants/acme/keys/main --bas
expect "" clavisctl --endpoint ""
# After "--" everything is an argument.
expect "" clavisctl key get -- --js

if ((failures)); then
  echo "$failures completion check(s) failed"
  exit 1
fi
echo "OK: bash completion"
