#!/bin/sh
# Builds fleet three times - plain, ASan+UBSan, TSan - and runs every test in
# each. Exits non-zero on the first failing build, test or sanitizer report.
set -eu
cd "$(dirname "$0")/.."
. .ci/deps.sh
jobs=$(nproc)
start=$(date +%s)
for kind in plain asan tsan; do
    case $kind in
    plain) opts="" ;;
    asan) opts="-DFLEET_ENABLE_ASAN=ON" ;;
    tsan) opts="-DFLEET_ENABLE_TSAN=ON" ;;
    esac
    dir=build-test-$kind
    echo "== $kind: build"
    # shellcheck disable=SC2086
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DFLEET_BUILD_PERF=OFF -DFLEET_BUILD_EXAMPLES=ON $opts >/dev/null
    cmake --build "$dir" -j "$jobs" >/dev/null
    echo "== $kind: test"
    ctest --test-dir "$dir" --output-on-failure
done
echo "== all tests passed in plain, asan and tsan builds ($(($(date +%s) - start)) s)"
