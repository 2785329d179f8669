#!/usr/bin/env bash
# A peer, side by side: clavisd against the PyKMIP server (Debian
# python3-pykmip), both on loopback with mutual TLS, driven by the same
# closed-loop load (bench/peer/kmip_peer_driver.py). See bench/peer/README.md.
#
#   bench/peer/kmip_side_by_side.sh --clavisd build/kms/server/clavisd [--quick]
#       [--callers 1,4] [--warmup S] [--duration S] [--ops create,encrypt,decrypt]
#       [--payload BYTES] [--json FILE] [--pin] [--keep_tmp]
#
# Starts both servers itself (ports chosen at run time), stops both on exit,
# including on failure or Ctrl-C. --pin: as clavis-bench (bench/load), the
# servers run on CPU 1 and the callers on CPU 0 (not the default here: the
# Python callers cost more CPU per call than the servers, so on one CPU they
# bound both servers). Prints figures; asserts nothing about speed
# (exit status 0 unless something did not work).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY=/usr/bin/python3   # Debian's python: the Debian packages install there
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree

CLAVISD=""
KEEP_TMP=0
PIN=0
DRIVER_ARGS=()
MODE=full
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --clavisd) CLAVISD="$2"; shift 2 ;;
    --clavisd=*) CLAVISD="${1#*=}"; shift ;;
    --quick) MODE=quick; shift ;;
    --keep_tmp) KEEP_TMP=1; shift ;;
    --pin) PIN=1; shift ;;
    --callers|--warmup|--duration|--ops|--payload|--json)
      DRIVER_ARGS+=("$1" "$2"); shift 2 ;;
    --callers=*|--warmup=*|--duration=*|--ops=*|--payload=*|--json=*)
      DRIVER_ARGS+=("$1"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "kmip_side_by_side: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ -z "$CLAVISD" ]]; then
  for c in "$REPO/build/kms/server/clavisd" "$REPO/build-deny/kms/server/clavisd"; do
    [[ -x "$c" ]] && { CLAVISD="$c"; break; }
  done
fi
[[ -x "$CLAVISD" ]] || { echo "kmip_side_by_side: no clavisd binary; pass --clavisd PATH" >&2; exit 2; }
CLAVISD="$(cd "$(dirname "$CLAVISD")" && pwd)/$(basename "$CLAVISD")"
command -v openssl >/dev/null || { echo "kmip_side_by_side: needs the openssl CLI" >&2; exit 2; }
if ! "$PY" -c 'import kmip.pie.client, kmip.services.server.server, grpc, grpc_tools.protoc, google.protobuf' 2>/dev/null; then
  echo "kmip_side_by_side: $PY lacks PyKMIP/gRPC; install the Debian packages:" >&2
  echo "  apt-get install python3-pykmip python3-grpcio python3-grpc-tools python3-protobuf" >&2
  exit 2
fi

SERVER_CPU=()   # prefix of the server commands
if [[ $PIN -eq 1 && "$(nproc)" -ge 2 ]] && command -v taskset >/dev/null; then
  SERVER_CPU=(taskset -c 1)
  DRIVER_ARGS+=(--pin_callers 0)
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/clavis-peer.XXXXXX")"
CLAVISD_PID=""
KMIP_PID=""
DRIVER_PID=""

stop_pid() {  # stop_pid PID SIGNAL SECONDS: the signal, then SIGKILL to what is left of its group
  local pid="$1" sig="$2" secs="$3" i
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  # The group (each was started with setsid, so its id is the pid): PyKMIP's
  # policy monitor and multiprocessing manager, the driver's callers.
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$DRIVER_PID" TERM 3   # and its caller processes (its process group)
  stop_pid "$CLAVISD_PID" TERM 10
  stop_pid "$KMIP_PID" INT 5
  if [[ $rc -ne 0 ]]; then
    for log in "$TMP/clavisd.log" "$TMP/pykmip.log"; do
      [[ -s "$log" ]] && { echo "--- last lines of $log" >&2; tail -n 20 "$log" >&2; }
    done
  fi
  if [[ $KEEP_TMP -eq 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- throwaway PKI: one CA, one server certificate (localhost, 127.0.0.1), one
# client certificate whose name is a Clavis principal (URI SAN and CN; PyKMIP
# takes the CN as the client identity). ECDSA P-256 everywhere.
PRINCIPAL="tenants/bench/principals/loader"
mkpki() {
  cd "$TMP"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj "/CN=clavis-peer-bench-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost"
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" > server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.crt
  openssl req "${ec[@]}" -keyout client.key -out client.csr -subj "/CN=${PRINCIPAL//\//\\/}"
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" "subjectAltName=URI:clavis:$PRINCIPAL" > client.ext
  openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile client.ext -out client.crt
  chmod 600 ./*.key
}
# (set -e does not apply inside a function called from a || list: check the files.)
(mkpki) > "$TMP/pki.log" 2>&1 || true
for f in ca.crt server.crt server.key client.crt client.key; do
  [[ -s "$TMP/$f" ]] || { echo "kmip_side_by_side: making $f failed:" >&2; cat "$TMP/pki.log" >&2; exit 1; }
done

# --- clavisd: mTLS, the client certificate's principal administers tenant
# "bench"; audit log on (the default); the per-principal rate limit lifted
# (one principal drives the whole load).
"${SERVER_CPU[@]}" setsid "$CLAVISD" --listen_address=127.0.0.1:0 --port_file="$TMP/clavisd.port" \
  --data_dir="$TMP/clavis-data" --log_level=warn \
  --tls_cert_file="$TMP/server.crt" --tls_key_file="$TMP/server.key" \
  --client_ca_file="$TMP/ca.crt" --require_client_certificate \
  --tenant_admin="$PRINCIPAL" --rate_limit_rps=1000000 \
  > "$TMP/clavisd.log" 2>&1 &
CLAVISD_PID=$!

# --- PyKMIP server: TLS 1.2 (its "TLS1.2" auth suite), client certificate
# required, sqlite database and operation policies in the temp dir. Started as
# pykmip-server does (kmip.services.server.server.main).
KMIP_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$TMP/kmip-policies"
cat > "$TMP/pykmip-server.conf" <<EOF
[server]
hostname=127.0.0.1
port=$KMIP_PORT
certificate_path=$TMP/server.crt
key_path=$TMP/server.key
ca_path=$TMP/ca.crt
auth_suite=TLS1.2
policy_path=$TMP/kmip-policies
enable_tls_client_auth=True
logging_level=WARNING
database_path=$TMP/pykmip.sqlite
EOF
(cd "$TMP" && exec "${SERVER_CPU[@]}" setsid "$PY" -c 'import sys; from kmip.services.server.server import main; sys.exit(main())' \
  -f "$TMP/pykmip-server.conf" -l "$TMP/pykmip.log") > "$TMP/pykmip.out" 2>&1 &
KMIP_PID=$!

# --- wait for both: clavisd writes its port; PyKMIP is ready once a TLS
# handshake with the client certificate succeeds (a bare TCP probe would
# leave a handshake error in its log).
kmip_ready() {
  "$PY" - "$KMIP_PORT" "$TMP" <<'EOF' 2>/dev/null
import socket, ssl, sys
port, tmp = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(tmp + "/ca.crt")
ctx.load_cert_chain(tmp + "/client.crt", tmp + "/client.key")
with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
    with ctx.wrap_socket(s, server_hostname="localhost"):
        pass
EOF
}
CLAVIS_PORT=""
KMIP_UP=0
for ((i = 0; i < 300; i++)); do
  kill -0 "$CLAVISD_PID" 2>/dev/null || { echo "clavisd exited during start-up" >&2; exit 1; }
  kill -0 "$KMIP_PID" 2>/dev/null || { echo "PyKMIP server exited during start-up" >&2; cat "$TMP/pykmip.out" >&2; exit 1; }
  [[ -z "$CLAVIS_PORT" && -s "$TMP/clavisd.port" ]] && CLAVIS_PORT="$(tr -d '[:space:]' < "$TMP/clavisd.port")"
  if [[ $KMIP_UP -eq 0 ]] && kmip_ready; then KMIP_UP=1; fi
  [[ -n "$CLAVIS_PORT" && $KMIP_UP -eq 1 ]] && break
  sleep 0.1
done
[[ -n "$CLAVIS_PORT" ]] || { echo "clavisd did not report its port" >&2; exit 1; }
[[ $KMIP_UP -eq 1 ]] || { echo "PyKMIP server did not answer on 127.0.0.1:$KMIP_PORT" >&2; exit 1; }

# In the background and in a process group of its own, so that a signal to
# this script stops it and its callers at once (bash runs traps only between
# commands, and `wait` is one it interrupts).
setsid "$PY" "$HERE/kmip_peer_driver.py" --mode "$MODE" --proto_dir "$REPO/proto" --work_dir "$TMP" \
  --clavis_address "127.0.0.1:$CLAVIS_PORT" --kmip_port "$KMIP_PORT" \
  --ca "$TMP/ca.crt" --cert "$TMP/client.crt" --key "$TMP/client.key" --principal "$PRINCIPAL" \
  --clavisd_binary "$CLAVISD" --clavisd_pgid "$CLAVISD_PID" --kmip_pgid "$KMIP_PID" "${DRIVER_ARGS[@]}" &
DRIVER_PID=$!
wait "$DRIVER_PID"
