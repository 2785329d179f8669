#!/usr/bin/env bash
# Makes a SoftHSM2 token for clavisd's PKCS#11 root key, in a directory of
# its own: for trying the HSM root of trust, and for the tests. Not for
# production (SoftHSM2 keeps its tokens in files; see deploy/README.md).
#
#   deploy/softhsm/setup-token.sh [--label LABEL] [--module PATH] DIR
#
# Creates, in DIR (made 0700 if missing):
#   softhsm2.conf     SoftHSM2 configuration; point SOFTHSM2_CONF at it
#   tokens/           the token store (0700)
#   LABEL.pin         the token's user PIN (0600): give it to clavisd
#   LABEL.so-pin      the security officer's PIN (0600): keep it apart
# and initialises a token labelled LABEL (default clavis-root) in a free
# slot. The PINs are $CLAVIS_PKCS11_PIN and $CLAVIS_PKCS11_SO_PIN when set,
# otherwise random. Run it again with another label to add a token to the
# same store; a label that already exists is refused, never re-initialised
# (that would destroy its keys).
#
# The root key itself is generated inside the token by clavisd on its first
# start with --pkcs11_create_key (non-extractable, sensitive AES-256; see
# docs/clavisd.md); the command to use is printed at the end.
#
# softhsm2-util takes the PINs as arguments, so other users of this host
# may see them in the process list while it runs: fine for a development
# or test token, one more reason not to hold real keys in SoftHSM2.
set -euo pipefail

label=clavis-root
module=/usr/lib/softhsm/libsofthsm2.so
dir=""
while (($#)); do
  case "$1" in
    --label) label="${2:?--label needs a value}"; shift 2 ;;
    --module) module="${2:?--module needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "setup-token: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "setup-token: one directory only" >&2; exit 2; }; dir="$1"; shift ;;
  esac
done
[ -n "$dir" ] || { echo "usage: $0 [--label LABEL] [--module PATH] DIR" >&2; exit 2; }
# The label also names the PIN files: keep it to a safe file name.
if ! [[ "$label" =~ ^[A-Za-z0-9._-]{1,32}$ ]]; then
  echo "setup-token: a token label here is 1 to 32 of A-Z a-z 0-9 . _ -" >&2
  exit 2
fi
if ! command -v softhsm2-util >/dev/null || [ ! -f "$module" ]; then
  echo "setup-token: SoftHSM2 is not installed (softhsm2-util, $module); run scripts/setup," \
    "or apt-get install softhsm2" >&2
  exit 1
fi

umask 077
mkdir -p "$dir/tokens"
chmod 700 "$dir" "$dir/tokens"
dir="$(cd "$dir" && pwd)"
conf="$dir/softhsm2.conf"
if [ ! -f "$conf" ]; then
  cat >"$conf" <<CONF
# SoftHSM2 configuration made by deploy/softhsm/setup-token.sh
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
fi
export SOFTHSM2_CONF="$conf"

existing_labels() {
  softhsm2-util --show-slots 2>/dev/null |
    sed -n 's/^[[:space:]]*Label:[[:space:]]*//p' | sed 's/[[:space:]]*$//'
}
if existing_labels | grep -qxF -- "$label"; then
  echo "setup-token: a token labelled '$label' already exists in $dir/tokens; not touching it" >&2
  exit 1
fi

random_pin() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }
pin="${CLAVIS_PKCS11_PIN:-$(random_pin)}"
so_pin="${CLAVIS_PKCS11_SO_PIN:-$(random_pin)}"
for p in "$pin" "$so_pin"; do
  if ((${#p} < 4 || ${#p} > 255)); then
    echo "setup-token: SoftHSM2 PINs are 4 to 255 characters long" >&2
    exit 2
  fi
done
printf '%s\n' "$pin" >"$dir/$label.pin"
printf '%s\n' "$so_pin" >"$dir/$label.so-pin"

if ! out=$(softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" 2>&1); then
  rm -f "$dir/$label.pin" "$dir/$label.so-pin"
  echo "$out" >&2
  echo "setup-token: softhsm2-util --init-token failed" >&2
  exit 1
fi

cat <<MSG
SoftHSM2 token '$label' is ready in $dir/tokens.
  export SOFTHSM2_CONF=$conf
First start of clavisd (generates the root key inside the token):
  clavisd --root_key pkcs11 --pkcs11_module $module \\
          --pkcs11_token_label $label --pkcs11_key_label clavis-root-key \\
          --pkcs11_pin_file $dir/$label.pin --pkcs11_create_key ...
Later starts: the same without --pkcs11_create_key.
MSG
