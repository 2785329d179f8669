#!/usr/bin/env bash
# The installed SDK works for an application outside the tree:
#  1. `cmake --install <build dir> --prefix <tmp>`;
#  2. the installed headers compile with only the installed include directory;
#  3. tests/install/example builds with find_package(clavis) + clavis::client,
#     and its main.cc builds again with `pkg-config --static clavis-client`;
#  4. both binaries seal and open a record through a real clavisd (development
#     mode, a loopback port chosen at run time) with a key made by clavisctl.
# Any failure fails the test. Registered in tests/CMakeLists.txt:
#
#   tests/install/install_test.sh <build dir> <clavisd binary> <clavisctl binary>
set -euo pipefail

if (($# != 3)); then
  echo "usage: $0 <build dir> <clavisd> <clavisctl>" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
clavisd=$2
clavisctl=$3
example_dir=$(cd "$(dirname "$0")/example" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/clavis-install-test.XXXXXX")
prefix=$work/prefix
# shellcheck source=../testing/script_cleanup.sh
source "$(dirname "$0")/../testing/script_cleanup.sh"

# Compiler cache for the example's builds. Paths under $work are rewritten
# relative to the build directory, so a fresh temporary directory still hits.
launcher=()
ccache=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  ccache=(ccache)
  export CCACHE_BASEDIR=$work CCACHE_NOHASHDIR=true
fi
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
cxx=${CXX:-c++}

echo "== cmake --install $build_dir --prefix $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log" >&2; exit 1; }
pc_file=$(find "$prefix" -name clavis-client.pc)
[[ -n $pc_file ]] || { echo "FAIL: clavis-client.pc not installed" >&2; exit 1; }
PKG_CONFIG_PATH=$(dirname "$pc_file")
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags clavis-client)
read -ra cflags <<<"$flags"
flags=$(pkg-config --static --libs clavis-client)
read -ra libs <<<"$flags"
echo "pkg-config --static --cflags --libs clavis-client: ${cflags[*]} ${libs[*]}"

echo "== installed headers compile on their own include directory"
headers=$(cd "$prefix/include" && find clavis crypto -name '*.h' | sort)
echo "$headers"
for h in $headers; do echo "#include \"$h\""; done >"$work/all_headers.cc"
"$cxx" -std=c++17 -fsyntax-only "${cflags[@]}" "$work/all_headers.cc"

echo "== example with find_package(clavis)"
cmake -S "$example_dir" -B "$work/cmake-build" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" ||
  { cat "$work/configure.log" >&2; exit 1; }
found=$(sed -n 's/^clavis_DIR:PATH=//p' "$work/cmake-build/CMakeCache.txt")
[[ $found == "$prefix"/* ]] ||
  { echo "FAIL: find_package(clavis) found $found, not the test's install" >&2; exit 1; }
cmake --build "$work/cmake-build"

echo "== example with pkg-config --static clavis-client"
mkdir "$work/pc-build"
(cd "$work/pc-build" &&
  "${ccache[@]}" "$cxx" -std=c++17 -O2 "${cflags[@]}" -c "$example_dir/main.cc" -o main.o &&
  "$cxx" main.o "${libs[@]}" -o app)

echo "== clavisd (development mode) and a key"
"$clavisd" --insecure_dev_no_auth --listen_address=127.0.0.1:0 --port_file="$work/port" \
  --data_dir="$work/data" --root_key=key_file --root_key_file="$work/root.key" \
  --log_level=warn >"$work/clavisd.log" 2>&1 &
clavisd_pid=$!
for _ in $(seq 300); do
  [[ -s $work/port ]] && break
  kill -0 "$clavisd_pid" 2>/dev/null || { echo "FAIL: clavisd exited" >&2; exit 1; }
  sleep 0.1
done
[[ -s $work/port ]] || { echo "FAIL: clavisd did not report its port" >&2; exit 1; }
endpoint=127.0.0.1:$(<"$work/port")
key=tenants/install/keys/example
"$clavisctl" --endpoint "$endpoint" key create "$key" --description "install test"

for app in "$work/cmake-build/app" "$work/pc-build/app"; do
  echo "== $app $endpoint $key"
  if ! out=$("$app" "$endpoint" "$key"); then
    echo "FAIL: $out" >&2
    exit 1
  fi
  echo "$out"
  [[ $out == "round trip ok" ]] || { echo "FAIL: unexpected output" >&2; exit 1; }
done
echo "PASS"
