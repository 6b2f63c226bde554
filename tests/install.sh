#!/bin/sh
# usage: install.sh BUILD_DIR HELLO_C - installs the build into a temporary
# prefix, compiles HELLO_C with `pkg-config --cflags --libs fleet` and runs it.
set -eu
build=$1
hello=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name fleet.pc)
test -n "$pc"
export PKG_CONFIG_PATH="$(dirname "$pc")"
libdir=$(pkg-config --variable=libdir fleet)
test -e "$libdir/libfleet.so"
test -e "$(pkg-config --variable=includedir fleet)/fleet.h"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$prefix/hello" "$hello" \
    $(pkg-config --cflags --libs fleet) -Wl,-rpath,"$libdir"
"$prefix/hello"
