# Sourced by the shell tests (tests/install, tests/deploy) after they set
# $work (a temporary directory): on exit, stops the clavisd in $clavisd_pid
# if any, prints $work/clavisd.log when the test failed, removes $work, and
# names the failing line.
clavisd_pid=""
cleanup() {
  local status=$?
  if [[ -n $clavisd_pid ]]; then
    kill "$clavisd_pid" 2>/dev/null || true
    wait "$clavisd_pid" 2>/dev/null || true
  fi
  if ((status != 0)) && [[ -s $work/clavisd.log ]]; then
    echo "== clavisd log" >&2
    cat "$work/clavisd.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
