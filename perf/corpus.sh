#!/bin/sh
# Writes the word-count benchmark's corpus to OUT: CORPUS_BYTES (24 MB) of
# real English-ish text from what every Debian machine has, in this order:
# /usr/share/common-licenses/*, /usr/share/doc/*/copyright, the decompressed
# /usr/share/doc/*/changelog*.gz, then the man pages of section 1 (troff
# source). Files in byte order (LC_ALL=C), so the corpus is the same on
# every run on one machine; cut at exactly CORPUS_BYTES, and the whole
# stream repeated when there is less text than that.
#
# Usage: sh perf/corpus.sh OUT [BYTES]    (BYTES default 24000000)
set -eu
export LC_ALL=C

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: sh perf/corpus.sh OUT [BYTES]" >&2
    exit 2
fi
out=$1
bytes=${2:-24000000}
case $bytes in
"" | *[!0-9]*)
    echo "corpus.sh: BYTES must be a number" >&2
    exit 2
    ;;
esac

# Every source once, to stdout. A zcat stopped by the reader's exit (head
# has all it needs) is fine: the loop then ends at the next file.
sources() {
    for f in /usr/share/common-licenses/* /usr/share/doc/*/copyright; do
        [ -f "$f" ] && cat "$f"
    done
    for f in /usr/share/doc/*/changelog*.gz /usr/share/man/man1/*.gz; do
        [ -f "$f" ] && { zcat "$f" 2>/dev/null || return 0; }
    done
    return 0
}

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
sources | head -c "$bytes" >"$tmp"
have=$(wc -c <"$tmp")
if [ "$have" -eq 0 ]; then
    echo "corpus.sh: no text found under /usr/share" >&2
    exit 1
fi
# Too little text: repeat what there is up to the size.
if [ "$have" -lt "$bytes" ]; then
    n=$((bytes / have + 1))
    while [ "$n" -gt 0 ]; do
        cat "$tmp"
        n=$((n - 1))
    done | head -c "$bytes" >"$tmp.rep"
    mv "$tmp.rep" "$tmp"
fi
mv "$tmp" "$out"
trap - EXIT
echo "corpus: $out, $(wc -c <"$out") bytes"
