#!/usr/bin/env bash
# Brings the etcd-ha example up on this machine, on loopback: three etcd
# members (mTLS to clients and between members) and clavisd replicas a and b
# (mTLS to etcd and to their clients), run from the example's own files with
# their paths moved under DIR and their ports replaced by the ones below.
# Nothing is installed; stop it with stop-local.sh DIR.
#
#   deploy/etcd-ha/run-local.sh DIR
#
# DIR (created, mode 0700) gets pki/ (make-pki.sh, and the root passphrase),
# etcd-N.conf.yml and clavisd-X.json (the rewritten examples), etcd/ and
# clavisd-X/ (data directories), clavisd-X-etc/ and clavisd-X-creds/ (what
# /etc/clavis and the credentials directory would hold on X's host), logs/, run/ (pid and port files) and env.sh,
# which sets CLAVIS_A, CLAVIS_B and CLAVIS_ETCD_ENDPOINTS for a shell. Run it
# again on the same DIR to start what was stopped: the PKI, the data and the
# root passphrase are kept.
#
# Environment:
#   CLAVISD  the clavisd binary (default: clavisd on PATH, else build/kms/server/clavisd)
#   ETCD     the etcd binary (default /usr/bin/etcd, Debian's etcd-server)
#   ETCD_CLIENT_PORTS   default "2379 22379 32379"   (members 1, 2, 3)
#   ETCD_PEER_PORTS     default "2380 22380 32380"
#   ETCD_METRICS_PORTS  default "2381 22381 32381"   (plain HTTP /health, /metrics)
#   CLAVISD_PORTS       default "7370 7371"          (replicas a, b)
#   START_TIMEOUT_S     per process, default 60
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if (($# != 1)); then
  echo "usage: $0 DIR" >&2
  exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
chmod 700 "$dir"
etcd_bin=${ETCD:-/usr/bin/etcd}
clavisd_bin=${CLAVISD:-$(command -v clavisd || echo "$here/../../build/kms/server/clavisd")}
read -r -a client_ports <<<"${ETCD_CLIENT_PORTS:-2379 22379 32379}"
read -r -a peer_ports <<<"${ETCD_PEER_PORTS:-2380 22380 32380}"
read -r -a metrics_ports <<<"${ETCD_METRICS_PORTS:-2381 22381 32381}"
read -r -a clavisd_ports <<<"${CLAVISD_PORTS:-7370 7371}"
timeout_s=${START_TIMEOUT_S:-60}
replicas=(a b)

die() {
  echo "run-local.sh: $*" >&2
  exit 1
}
[[ -x $etcd_bin ]] || die "no etcd at $etcd_bin (Debian: apt-get install etcd-server)"
[[ -x $clavisd_bin ]] || die "no clavisd at $clavisd_bin (set CLAVISD)"
((${#client_ports[@]} == 3 && ${#peer_ports[@]} == 3 && ${#metrics_ports[@]} == 3)) ||
  die "ETCD_*_PORTS need three ports each"
((${#clavisd_ports[@]} == 2)) || die "CLAVISD_PORTS needs two ports"

# The last lines of a log, to say why something did not start.
tail_log() {
  echo "---- last lines of $1" >&2
  tail -n 40 "$1" >&2 || true
  echo "----" >&2
}

# alive NAME: the process this run started for NAME has not exited.
alive() {
  kill -0 "$(cat "$dir/run/$1.pid")" 2>/dev/null
}

# running NAME: the process of run/NAME.pid from an earlier run is alive
# and is ours (its command line names DIR, so a recycled pid is not
# mistaken for it).
running() {
  local pid
  pid=$(cat "$dir/run/$1.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/"
}

# healthy PORT: etcd's /health on its metrics port says true (bash's
# /dev/tcp, so no curl needed).
healthy() {
  local reply
  reply=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 &&
    printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && cat <&3" 2>/dev/null) || return 1
  [[ $reply == *'"health":"true"'* ]]
}

mkdir -p "$dir/logs" "$dir/run" "$dir/etcd"
chmod 700 "$dir/logs" "$dir/run" "$dir/etcd"

echo "== PKI in $dir/pki"
"$here/make-pki.sh" "$dir/pki" >"$dir/logs/make-pki.log" 2>&1 ||
  { tail_log "$dir/logs/make-pki.log"; die "make-pki.sh failed"; }
# The root passphrase, shared by every replica (a systemd credential in a
# real deployment: deploy/README.md).
if [[ ! -s $dir/pki/root-passphrase ]]; then
  (umask 077 && openssl rand -base64 32 >"$dir/pki/root-passphrase")
fi

# The ports of the example (defaults above) -> the ones asked for.
port_sed=()
defaults=(2379 22379 32379 2380 22380 32380 2381 22381 32381)
wanted=("${client_ports[@]}" "${peer_ports[@]}" "${metrics_ports[@]}")
for i in "${!defaults[@]}"; do
  port_sed+=(-e "s#127\.0\.0\.1:${defaults[i]}\([^0-9]\|\$\)#127.0.0.1:${wanted[i]}\1#g")
done
port_sed+=(-e "s#127\.0\.0\.1:7370\([^0-9]\|\$\)#127.0.0.1:${clavisd_ports[0]}\1#g"
           -e "s#127\.0\.0\.1:7371\([^0-9]\|\$\)#127.0.0.1:${clavisd_ports[1]}\1#g")

# check_paths FILE: every absolute path in FILE was moved under DIR.
check_paths() {
  if grep -v '^[[:space:]]*#' "$1" | grep -oE '(^|[ "])/(etc|var|run)/[^" ]*'; then
    die "$1 has a path this script does not move"
  fi
}

echo "== etcd members"
for n in 1 2 3; do
  conf=$dir/etcd-$n.conf.yml
  sed -e "s#/var/lib/etcd/#$dir/etcd/#g" -e "s#/etc/etcd/pki/#$dir/pki/#g" \
    -e "s#^initial-cluster-token: .*#initial-cluster-token: clavis-etcd-$$#" \
    "${port_sed[@]}" "$here/etcd-$n.conf.yml" >"$conf"
  check_paths "$conf"
  if running "etcd-$n"; then
    echo "etcd-$n already running"
    continue
  fi
  # Only the config file: no ETCD_* variables from the caller's environment.
  env -i PATH=/usr/bin:/bin "$etcd_bin" --config-file "$conf" >>"$dir/logs/etcd-$n.log" 2>&1 &
  echo $! >"$dir/run/etcd-$n.pid"
done
for n in 1 2 3; do
  port=${metrics_ports[n - 1]}
  for ((i = 0; i < timeout_s * 5; i++)); do
    healthy "$port" && break
    alive "etcd-$n" || { tail_log "$dir/logs/etcd-$n.log"; die "etcd-$n exited"; }
    sleep 0.2
  done
  healthy "$port" || { tail_log "$dir/logs/etcd-$n.log"; die "etcd-$n not healthy after ${timeout_s}s"; }
  echo "etcd-$n healthy: https://127.0.0.1:${client_ports[n - 1]} (pid $(cat "$dir/run/etcd-$n.pid"))"
done

# start_replica X CONFIG: clavisd with CONFIG, until it listens.
start_replica() {
  local r=$1 conf=$2
  rm -f "$dir/run/clavisd-$r.port"
  "$clavisd_bin" --config "$conf" --port_file "$dir/run/clavisd-$r.port" \
    >>"$dir/logs/clavisd-$r.log" 2>&1 &
  echo $! >"$dir/run/clavisd-$r.pid"
  for ((i = 0; i < timeout_s * 10; i++)); do
    [[ -s $dir/run/clavisd-$r.port ]] && break
    alive "clavisd-$r" || { tail_log "$dir/logs/clavisd-$r.log"; die "clavisd-$r exited"; }
    sleep 0.1
  done
  [[ -s $dir/run/clavisd-$r.port ]] ||
    { tail_log "$dir/logs/clavisd-$r.log"; die "clavisd-$r not listening after ${timeout_s}s"; }
}

echo "== clavisd replicas"
for r in "${replicas[@]}"; do
  # What the replica's host would have in /etc/clavis (certificates) and
  # /run/credentials/clavisd.service (secrets, from LoadCredential=).
  etc=$dir/clavisd-$r-etc creds=$dir/clavisd-$r-creds
  mkdir -p "$etc" "$creds"
  chmod 700 "$creds"
  install -m 0644 "$dir/pki/clavisd-$r.crt" "$etc/server.crt"
  install -m 0644 "$dir/pki/clavis-ca.crt" "$etc/clients-ca.crt"
  install -m 0644 "$dir/pki/etcd-ca.crt" "$etc/etcd-ca.crt"
  install -m 0644 "$dir/pki/clavisd-$r-etcd-client.crt" "$etc/etcd-client.crt"
  install -m 0600 "$dir/pki/clavisd-$r.key" "$creds/server.key"
  install -m 0600 "$dir/pki/clavisd-$r-etcd-client.key" "$creds/etcd-client.key"
  install -m 0600 "$dir/pki/root-passphrase" "$creds/root-passphrase"
  conf=$dir/clavisd-$r.json
  sed -e "s#/etc/clavis/#$etc/#g" -e "s#/run/credentials/clavisd.service/#$creds/#g" \
    -e "s#/var/lib/clavis#$dir/clavisd-$r#g" "${port_sed[@]}" "$here/clavisd-$r.json" >"$conf"
  check_paths "$conf"
  # clavisd refuses a data directory others can read.
  mkdir -p "$dir/clavisd-$r"
  chmod 700 "$dir/clavisd-$r"
done
for r in "${replicas[@]}"; do
  if running "clavisd-$r"; then
    echo "clavisd-$r already running"
    continue
  fi
  conf=$dir/clavisd-$r.json
  params=$dir/clavisd-$r/root-passphrase.params
  if [[ ! -s $params && $r != a ]]; then
    # Every replica needs the same root key: a copy of the first one's
    # passphrase parameters (the passphrase itself is shared above).
    install -m 0600 "$dir/clavisd-a/root-passphrase.params" "$params"
  fi
  if [[ ! -s $params ]]; then
    # The very first start creates the root key (deploy/README.md, "The
    # first start"); every later one runs the config as shipped.
    sed 's/"createIfMissing": false/"createIfMissing": true/' "$conf" >"$dir/clavisd-$r-first.json"
    start_replica "$r" "$dir/clavisd-$r-first.json"
  else
    start_replica "$r" "$conf"
  fi
  echo "clavisd-$r listening: 127.0.0.1:$(cat "$dir/run/clavisd-$r.port") (pid $(cat "$dir/run/clavisd-$r.pid"))"
done

etcd_endpoints=$(printf 'https://127.0.0.1:%s,' "${client_ports[@]}")
cat >"$dir/env.sh" <<ENV
# source $dir/env.sh
export CLAVIS_A=127.0.0.1:${clavisd_ports[0]} CLAVIS_B=127.0.0.1:${clavisd_ports[1]}
export CLAVIS_CA_CERT=$dir/pki/clavis-ca.crt CLAVIS_CLIENT_CERT=$dir/pki/admin.crt CLAVIS_CLIENT_KEY=$dir/pki/admin.key
export CLAVIS_ETCD_ENDPOINTS=${etcd_endpoints%,}
export ETCDCTL_API=3 ETCDCTL_CACERT=$dir/pki/etcd-ca.crt ETCDCTL_CERT=$dir/pki/etcdctl.crt ETCDCTL_KEY=$dir/pki/etcdctl.key
ENV
echo "== up. Try:"
echo "  source $dir/env.sh"
echo "  clavisctl --endpoint \$CLAVIS_A key create tenants/acme/keys/demo"
echo "  clavisctl --endpoint \$CLAVIS_B key get tenants/acme/keys/demo"
echo "  etcdctl --endpoints \$CLAVIS_ETCD_ENDPOINTS endpoint status -w table"
echo "  $here/stop-local.sh $dir"
