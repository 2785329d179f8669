#!/usr/bin/env bash
# deploy/ stays deployable:
#  1. the systemd units keep their sandboxing (each directive's last
#     assignment in the file is checked, so a later line cannot undo it);
#  2. `systemd-analyze verify` finds nothing to say about either unit, with
#     ExecStart pointed at the built binaries, and the offline
#     `systemd-analyze security` exposure stays at most 2.0 (SKIP when
#     systemd-analyze is not installed); deploy/systemd/clavis.sysusers
#     parses (systemd-sysusers --dry-run, when installed);
#  3. clavisd accepts deploy/config/clavisd.json: it gets past parsing and
#     validation to the data directory, and with the example's paths moved
#     into a temporary directory (and openssl to make certificates) it
#     creates its store (createIfMissing turned on, as for a first start),
#     then starts again as shipped, serving TLS on a loopback port, and
#     stops cleanly on SIGTERM;
#  4. clavis-rotator accepts deploy/config/rotator.ini: every name in it is
#     one of its options, and a --once pass against a dead endpoint fails as
#     a pass (exit 1), not as a usage error (exit 2).
# Registered in tests/CMakeLists.txt:
#
#   tests/deploy/deploy_test.sh <clavisd binary> <clavis-rotator binary>
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 <clavisd> <clavis-rotator>" >&2
  exit 2
fi
clavisd=$(realpath "$1")
rotator=$(realpath "$2")
deploy=$(cd "$(dirname "$0")/../../deploy" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/clavis-deploy-test.XXXXXX")
# shellcheck source=../testing/script_cleanup.sh
source "$(dirname "$0")/../testing/script_cleanup.sh"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The value of the last assignment of KEY in a unit file (systemd keeps the
# last one), or "<unset>".
last_value() {
  awk -v key="$2" '
    /^[ \t]*[#;]/ { next }
    { i = index($0, "=") }
    i > 0 && substr($0, 1, i - 1) == key { value = substr($0, i + 1); found = 1 }
    END { print found ? value : "<unset>" }' "$1"
}

# expect_directives UNIT KEY=VALUE...
expect_directives() {
  local unit=$1 directive key want got
  shift
  for directive in "$@"; do
    key=${directive%%=*}
    want=${directive#*=}
    got=$(last_value "$unit" "$key")
    [[ $got == "$want" ]] ||
      fail "$(basename "$unit"): want $key=$want, found ${key}=${got}"
  done
}

# start_and_stop CONFIG: clavisd with CONFIG on a loopback port until it has
# bound it, then SIGTERM, which must end it with exit 0.
start_and_stop() {
  rm -f "$work/port"
  "$clavisd" --config "$1" --listen_address 127.0.0.1:0 --port_file "$work/port" \
    >"$work/clavisd.log" 2>&1 &
  clavisd_pid=$!
  for _ in $(seq 1 600); do
    [[ -s $work/port ]] && break
    kill -0 "$clavisd_pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -s $work/port ]] || fail "clavisd did not start with $(basename "$1")"
  kill -TERM "$clavisd_pid"
  local status=0
  wait "$clavisd_pid" || status=$?
  clavisd_pid=""
  ((status == 0)) || fail "clavisd exited $status on SIGTERM"
}

clavisd_unit=$deploy/systemd/clavisd.service
rotator_unit=$deploy/systemd/clavis-rotator.service

echo "== sandboxing directives"
sandbox=(
  Type=simple NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes
  PrivateDevices=yes LimitCORE=0 CapabilityBoundingSet= AmbientCapabilities=
  "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" SystemCallArchitectures=native
  LockPersonality=yes RestrictRealtime=yes RestrictNamespaces=yes RestrictSUIDSGID=yes
  MemoryDenyWriteExecute=yes ProtectKernelTunables=yes ProtectKernelModules=yes
  ProtectKernelLogs=yes ProtectControlGroups=yes ProtectClock=yes ProtectHostname=yes
  UMask=0077 ConfigurationDirectory=clavis Restart=on-failure KillSignal=SIGTERM
)
expect_directives "$clavisd_unit" "${sandbox[@]}" \
  User=clavis Group=clavis DynamicUser="<unset>" StateDirectory=clavis StateDirectoryMode=0700 \
  LimitMEMLOCK=64M "ExecStart=/usr/local/bin/clavisd --config /etc/clavis/clavisd.json"
expect_directives "$rotator_unit" "${sandbox[@]}" \
  User=clavis-rotator Requires="<unset>" BindsTo="<unset>" \
  "ExecStart=/usr/local/bin/clavis-rotator --config /etc/clavis/rotator.ini"
grep -qx 'After=clavisd.service' "$rotator_unit" || fail "clavis-rotator.service: no After=clavisd.service"
grep -q '^TimeoutStopSec=' "$clavisd_unit" || fail "clavisd.service: no TimeoutStopSec="
grep -q '^LoadCredential=root-passphrase:' "$clavisd_unit" ||
  fail "clavisd.service: the root passphrase is not a credential"
echo "ok"

echo "== systemd-analyze"
if command -v systemd-analyze >/dev/null; then
  # verify needs the ExecStart binaries to exist: point them at the build.
  mkdir "$work/units"
  sed "s#^ExecStart=/usr/local/bin/clavisd #ExecStart=$clavisd #" "$clavisd_unit" \
    >"$work/units/clavisd.service"
  sed "s#^ExecStart=/usr/local/bin/clavis-rotator #ExecStart=$rotator #" "$rotator_unit" \
    >"$work/units/clavis-rotator.service"
  grep -q "^ExecStart=$clavisd " "$work/units/clavisd.service" || fail "ExecStart not rewritten"
  grep -q "^ExecStart=$rotator " "$work/units/clavis-rotator.service" || fail "ExecStart not rewritten"
  status=0
  systemd-analyze verify "$work/units/clavisd.service" "$work/units/clavis-rotator.service" \
    >"$work/verify.log" 2>&1 || status=$?
  cat "$work/verify.log"
  # Anything said about our units (unknown keys, bad values, missing
  # binaries) fails; complaints about the host's own units do not.
  if ((status != 0)) || grep -qE "clavisd\.service|clavis-rotator\.service|$work" "$work/verify.log"; then
    fail "systemd-analyze verify (exit $status) reports problems in the units"
  fi
  echo "ok: systemd-analyze verify"
  if systemd-analyze --help 2>&1 | grep -q -- '--offline' &&
     systemd-analyze --help 2>&1 | grep -q -- '--threshold'; then
    for unit in clavisd.service clavis-rotator.service; do
      systemd-analyze security --offline=yes --threshold=20 "$work/units/$unit" \
        >"$work/security.log" 2>&1 ||
        { cat "$work/security.log"; fail "$unit: exposure above 2.0 (systemd-analyze security)"; }
      grep 'Overall exposure' "$work/security.log" || true
    done
  else
    echo "SKIP: systemd-analyze security --offline/--threshold not supported by this systemd"
  fi
else
  echo "SKIP: systemd-analyze not installed: unit files not verified (the other checks still run)"
fi
if command -v systemd-sysusers >/dev/null; then
  mkdir -p "$work/sysroot/etc"
  systemd-sysusers --dry-run --root="$work/sysroot" "$deploy/systemd/clavis.sysusers" \
    >"$work/sysusers.log" 2>&1 || { cat "$work/sysusers.log"; fail "clavis.sysusers"; }
  grep -q "Creating user 'clavis'" "$work/sysusers.log" ||
    { cat "$work/sysusers.log"; fail "clavis.sysusers does not create the user clavis"; }
  echo "ok: systemd-sysusers --dry-run"
else
  echo "SKIP: systemd-sysusers not installed: clavis.sysusers not checked"
fi

echo "== clavisd --config deploy/config/clavisd.json"
# Parsing and validation (listen address, TLS, authentication, log level)
# come before the data directory; a missing one with --no_create stops it there.
# A copy with the mode an installed config has (a checkout made under
# umask 002 would be group-writable, which clavisd rightly refuses).
install -m 0644 "$deploy/config/clavisd.json" "$work/clavisd.json"
status=0
"$clavisd" --config "$work/clavisd.json" --data_dir "$work/absent" --no_create \
  >"$work/parse.log" 2>&1 || status=$?
if ((status != 1)) || ! grep -q "data directory $work/absent does not exist" "$work/parse.log"; then
  cat "$work/parse.log"
  fail "clavisd did not get past the example config (exit $status)"
fi
echo "ok: parsed and validated"

# The example itself, with /etc/clavis, the credentials directory and
# /var/lib/clavis moved under $work; only the listen address is overridden.
have_openssl=0
if command -v openssl >/dev/null; then
  have_openssl=1
  mkdir -m 700 "$work/etc" "$work/creds" "$work/data"
  # One self-signed certificate serves as every certificate and CA here.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=clavis-deploy-test -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/test.key" -out "$work/test.crt" >"$work/openssl.log" 2>&1 ||
    { cat "$work/openssl.log"; fail "openssl req"; }
  for name in server.crt clients-ca.crt ca.crt rotator.crt; do cp "$work/test.crt" "$work/etc/$name"; done
  cp "$work/test.key" "$work/creds/server.key"
  cp "$work/test.key" "$work/creds/rotator.key"
  echo "deploy test passphrase, not a secret" >"$work/creds/root-passphrase"
  # clavisd refuses secret files others can read (systemd's credentials are 0400).
  chmod 600 "$work/creds/"*
  sed -e "s#/etc/clavis/#$work/etc/#g" -e "s#/run/credentials/clavisd.service/#$work/creds/#g" \
    -e "s#/var/lib/clavis#$work/data#g" "$deploy/config/clavisd.json" >"$work/clavisd.json"
  if grep -oE '"/[^"]*"' "$work/clavisd.json" | grep -vF "\"$work/"; then
    fail "clavisd.json has a path this test does not move: add it above"
  fi
  # The example refuses to create a store (createIfMissing false); the first
  # start sets it to true (deploy/README.md), the next ones run it as shipped.
  sed 's/"createIfMissing": false/"createIfMissing": true/' "$work/clavisd.json" \
    >"$work/clavisd-first.json"
  grep -q '"createIfMissing": true' "$work/clavisd-first.json" ||
    fail 'clavisd.json: no "createIfMissing": false to turn on for the first start'
  start_and_stop "$work/clavisd-first.json"
  [[ -s $work/data/root-passphrase.params ]] ||
    fail "clavisd did not make the passphrase params in the data directory"
  start_and_stop "$work/clavisd.json"
  echo "ok: created the store, then started as shipped, and stopped"
else
  echo "SKIP: openssl not installed: clavisd not started with the example config"
fi

echo "== clavis-rotator --config deploy/config/rotator.ini"
# CLI11 ignores names it does not know, so a typo would go unnoticed.
"$rotator" --help >"$work/rotator-help.txt"
keys=$(sed -nE 's/^[[:space:]]*([A-Za-z0-9_]+)[[:space:]]*=.*/\1/p' "$deploy/config/rotator.ini")
[[ -n $keys ]] || fail "no options found in rotator.ini"
for key in $keys; do
  grep -qE -- "--$key([^A-Za-z0-9_]|$)" "$work/rotator-help.txt" ||
    fail "rotator.ini: '$key' is not a clavis-rotator option"
done
tenants=$(sed -nE 's/^[[:space:]]*tenant[[:space:]]*=[[:space:]]*(.*)/\1/p' "$deploy/config/rotator.ini" |
  tr -d '[]",' | tr -s ' ' '\n' | sed '/^$/d')
if ((have_openssl)); then
  sed -e "s#/etc/clavis/#$work/etc/#g" -e "s#/run/credentials/clavis-rotator.service/#$work/creds/#g" \
    "$deploy/config/rotator.ini" >"$work/rotator.ini"
  credentials=()
else
  cp "$deploy/config/rotator.ini" "$work/rotator.ini"
  credentials=(--ca_cert "" --cert "" --key "")
fi
status=0
timeout 120 "$rotator" --config "$work/rotator.ini" --endpoint 127.0.0.1:1 --once \
  "${credentials[@]}" >"$work/rotator.log" 2>&1 || status=$?
if ((status != 1)); then
  cat "$work/rotator.log"
  fail "clavis-rotator exited $status, not 1 (a failed pass): the config did not parse"
fi
for tenant in $tenants; do
  grep -q "tenants/$tenant" "$work/rotator.log" ||
    { cat "$work/rotator.log"; fail "clavis-rotator did not look after tenant $tenant"; }
done
echo "ok: options known, tenants $(echo $tenants), a failed pass (exit 1)"

echo "PASS"
