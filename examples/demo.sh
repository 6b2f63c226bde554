#!/bin/sh
# Builds fleet (Release) and runs the main demo, examples/imagestats
# (arguments go to it; try --help), then the stream example
# examples/wordcount on the licence texts every Debian machine has.
set -eu
cd "$(dirname "$0")/.."
. .ci/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DFLEET_BUILD_TESTS=OFF \
    >/dev/null
cmake --build build-release -j "$(nproc)" >/dev/null
./build-release/examples/imagestats "$@"
echo
echo "wordcount --top 10 /usr/share/common-licenses/*"
./build-release/examples/wordcount --top 10 /usr/share/common-licenses/*
