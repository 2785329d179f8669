#!/usr/bin/env bash
# Stops what run-local.sh DIR started: the clavisd replicas first (SIGTERM:
# in-flight calls finish and each audit log gets its closing checkpoint),
# then the etcd members. Only processes whose pid file is in DIR/run and
# whose command line names DIR are signalled. Data stays; remove DIR to
# start over.
#
#   deploy/etcd-ha/stop-local.sh DIR
set -uo pipefail

if (($# != 1)); then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$(cd "$1" && pwd) || exit 1
status=0

# stop NAME: SIGTERM, up to 20 s, then SIGKILL.
stop() {
  local file=$dir/run/$1.pid pid
  pid=$(cat "$file" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/"; then
    kill -TERM "$pid"
    for _ in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop-local.sh: $1 (pid $pid) ignored SIGTERM for 20 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
      status=1
    fi
    echo "stopped $1 (pid $pid)"
  fi
  rm -f "$file"
}

for file in "$dir"/run/clavisd-*.pid; do
  [[ -e $file ]] && stop "$(basename "$file" .pid)"
done
for file in "$dir"/run/etcd-*.pid; do
  [[ -e $file ]] && stop "$(basename "$file" .pid)"
done
exit "$status"
