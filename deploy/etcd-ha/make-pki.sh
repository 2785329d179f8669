#!/usr/bin/env bash
# The certificates of the etcd-ha example (deploy/etcd-ha/README.md), made
# with openssl in DIR (default ./pki, created mode 0700). Private keys are
# 0600, certificates 0644. Existing files are kept (a CA is never replaced),
# so running it again after adding a member issues only what is missing.
#
#   deploy/etcd-ha/make-pki.sh [DIR]
#
# Two authorities, never mixed:
#   etcd-ca     signs what etcd trusts: each member's server certificate
#               (clients -> etcd) and peer certificate (etcd <-> etcd, both
#               directions), and one client certificate per clavisd replica
#               (etcd runs with client-cert-auth on both ports).
#   clavis-ca   signs what clavisd trusts: each replica's server certificate
#               and the client certificates of the people and services that
#               call clavisd (the admin, clavis-rotator), which name their
#               principal in a URI SAN (docs/ACCESS.md). `clavisctl pki`
#               makes the same; openssl here keeps the script standalone.
#
# Parameters (environment):
#   ETCD_MEMBERS      "NAME=IP ..."  default "etcd-1=127.0.0.1 etcd-2=127.0.0.1 etcd-3=127.0.0.1"
#   CLAVISD_REPLICAS  "NAME=IP ..."  default "a=127.0.0.1 b=127.0.0.1"
#   CLAVIS_SERVICE_NAME  the DNS name every replica's certificate carries, which
#                     clients that know both replicas verify (tls_server_name);
#                     default kms.internal
#   CLAVIS_CLIENTS    "FILE=PRINCIPAL ..." default
#                     "admin=tenants/acme/principals/admin rotator=tenants/acme/principals/rotator
#                      app=tenants/acme/principals/app backup=tenants/ops/principals/backup"
#   ETCD_SERVICE_NAME the DNS name every member's server certificate carries,
#                     which clavisd checks (storage.etcd.serverName): with TLS
#                     and several endpoints gRPC verifies one name for all
#                     members; default etcd.internal
#   PKI_DAYS          validity of the leaf certificates (default 365; CAs: 5 years)
# Each member's certificates name its IP, its NAME and localhost; a member
# that clients reach by another DNS name needs it added (ETCD_EXTRA_DNS="a b").
set -euo pipefail

dir=${1:-pki}
members=${ETCD_MEMBERS:-"etcd-1=127.0.0.1 etcd-2=127.0.0.1 etcd-3=127.0.0.1"}
replicas=${CLAVISD_REPLICAS:-"a=127.0.0.1 b=127.0.0.1"}
service_name=${CLAVIS_SERVICE_NAME:-kms.internal}
etcd_service_name=${ETCD_SERVICE_NAME:-etcd.internal}
clients=${CLAVIS_CLIENTS:-"admin=tenants/acme/principals/admin rotator=tenants/acme/principals/rotator app=tenants/acme/principals/app backup=tenants/ops/principals/backup"}
days=${PKI_DAYS:-365}
extra_dns=${ETCD_EXTRA_DNS:-}

command -v openssl >/dev/null || { echo "make-pki.sh: openssl is not installed" >&2; exit 1; }
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
log=$(mktemp "${TMPDIR:-/tmp}/make-pki.XXXXXX")
trap 'rm -f "$log" ./*.csr ./*.ext' EXIT

run() {
  "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "make-pki.sh: failed: $*" >&2; exit 1; }
}

# new_ca NAME CN
new_ca() {
  [[ -s $1.crt && -s $1.key ]] && return 0
  run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1825 \
    -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$1.key" -out "$1.crt"
  echo "made $dir/$1.crt"
}

# leaf CA OUT CN EXTENSIONS: OUT.key and OUT.crt signed by CA.
leaf() {
  local ca=$1 out=$2 cn=$3 ext=$4
  [[ -s $out.crt && -s $out.key ]] && return 0
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n%s\n' "$ext" >"$out.ext"
  run openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=${cn//\//\\/}" \
    -keyout "$out.key" -out "$out.csr"
  run openssl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$days" -extfile "$out.ext" -out "$out.crt"
  echo "made $dir/$out.crt"
}

new_ca etcd-ca "Clavis etcd CA"
new_ca clavis-ca "Clavis CA"
for member in $members; do
  name=${member%%=*} ip=${member#*=}
  san="subjectAltName=IP:$ip,DNS:$name,DNS:localhost"
  for d in $extra_dns; do san+=",DNS:$d"; done
  # Server: what clients (clavisd, etcdctl) connect to. clientAuth too: etcd
  # 3.4's gRPC gateway dials its own client port with this certificate.
  leaf etcd-ca "$name-server" "$name" "$san,DNS:$etcd_service_name
extendedKeyUsage=serverAuth,clientAuth"
  # Peer: each member is server and client to the others.
  leaf etcd-ca "$name-peer" "$name" "$san
extendedKeyUsage=serverAuth,clientAuth"
done
for replica in $replicas; do
  name=${replica%%=*} ip=${replica#*=}
  # clavisd's client certificate for etcd (one per replica: revoke one alone).
  leaf etcd-ca "clavisd-$name-etcd-client" "clavisd-$name" "extendedKeyUsage=clientAuth"
  # clavisd's own server certificate.
  leaf clavis-ca "clavisd-$name" "clavisd-$name" \
    "subjectAltName=IP:$ip,DNS:$service_name,DNS:localhost
extendedKeyUsage=serverAuth"
done
for client in $clients; do
  name=${client%%=*} principal=${client#*=}
  leaf clavis-ca "$name" "$principal" "subjectAltName=URI:clavis:$principal
extendedKeyUsage=clientAuth"
done
# An etcdctl client certificate for the operator (member list, health, defrag).
leaf etcd-ca etcdctl "etcdctl" "extendedKeyUsage=clientAuth"

chmod 600 ./*.key
chmod 644 ./*.crt
rm -f ./*.srl
