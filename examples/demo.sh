#!/bin/sh
# Builds fleet (Release) and runs the main demo, examples/imagestats.
# Arguments go to the demo (try --help).
set -eu
cd "$(dirname "$0")/.."
. .ci/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DFLEET_BUILD_TESTS=OFF \
    >/dev/null
cmake --build build-release -j "$(nproc)" >/dev/null
exec ./build-release/examples/imagestats "$@"
