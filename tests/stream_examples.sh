#!/bin/sh
# The stream examples against their oracles, with and without failures and
# in several shapes (TaskManagers, batch sizes, epochs, partitions):
#   wordcount  == the coreutils pipeline of its header
#   ysb        == an awk recount of the CSV it writes with --emit-*
#   windowing  == Flink's SessionWindowing output; and its other modes give
#                 the same lines in every shape and under --chaos
#   and every example (imagestats too) takes --help and refuses bad options
# Usage: sh stream_examples.sh BUILD_DIR [SANITIZED]
# (SANITIZED ON: a sanitizer build, ten times slower - shorter streams.)
# Failures are frequent (one every 20 ms), and a failure replays its
# partitions from the last checkpoint: runs under --chaos use small epochs
# and frequent checkpoints, so that the work between failures is small.
set -eu
bin=$1/examples
long=20000000
if [ "${2:-OFF}" = ON ]; then
    long=2000000
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

check() { # name expected actual
    if cmp -s "$2" "$3"; then
        echo "ok: $1"
    else
        echo "FAIL: $1"
        diff "$2" "$3" | head -5
        fail=1
    fi
}

oracle_wc() {
    LC_ALL=C tr -cs 'A-Za-z0-9_' '\n' | tr A-Z a-z | grep -v '^$' |
        LC_ALL=C sort | uniq -c | awk '{print $2" "$1}' || true
}

# --- inputs ---------------------------------------------------------------
cp /usr/share/common-licenses/GPL-3 "$tmp/gpl"
: >"$tmp/empty"
printf 'no_trailing NEWLINE here' >"$tmp/notrail"
# Mixed bytes: CRLF, NUL, UTF-8, digits, underscores, upper case, words
# longer than any buffer (3000 and 100000 bytes), and every byte value.
{
    printf 'Hello, World_42!\r\nfoo\000bar baz\tQUX\n'
    printf 'caf\303\251 na\303\257ve __init__ x86_64 2026-11-25\n'
    head -c 3000 /dev/zero | tr '\0' 'A'
    printf '\n'
    head -c 100000 /dev/zero | tr '\0' 'b'
    printf ' b\n'
    awk 'BEGIN { for (i = 0; i < 256; i++) printf "%c", i; print "" }'
} >"$tmp/mixed"
head -c 300000 /bin/sh >"$tmp/binary"
for i in 1 2 3 4; do cat "$tmp/gpl"; done >"$tmp/gpl4"
printf 'split' >"$tmp/part1"
printf 'word next\n' >"$tmp/part2"

# --- wordcount ------------------------------------------------------------
for f in gpl empty notrail mixed binary; do
    oracle_wc <"$tmp/$f" >"$tmp/want"
    "$bin/wordcount" --quiet "$tmp/$f" >"$tmp/got"
    check "wordcount $f" "$tmp/want" "$tmp/got"
done
cat "$tmp/part1" "$tmp/part2" | oracle_wc >"$tmp/want"
"$bin/wordcount" --quiet "$tmp/part1" "$tmp/part2" >"$tmp/got"
check "wordcount: files are one byte stream" "$tmp/want" "$tmp/got"
oracle_wc <"$tmp/mixed" >"$tmp/want"
"$bin/wordcount" --quiet <"$tmp/mixed" >"$tmp/got"
check "wordcount stdin" "$tmp/want" "$tmp/got"
"$bin/wordcount" --quiet - <"$tmp/mixed" >"$tmp/got"
check "wordcount - (stdin, as for cat)" "$tmp/want" "$tmp/got"

oracle_wc <"$tmp/gpl4" >"$tmp/want"
for shape in "--task-managers 1" "--task-managers 3 --batch 700" \
    "--batch 100 --epoch-batches 1 --partitions 1" \
    "--task-managers 2 --batch 5000 --epoch-batches 3 --partitions 5"; do
    # shellcheck disable=SC2086
    "$bin/wordcount" --quiet $shape "$tmp/gpl4" >"$tmp/got"
    check "wordcount $shape" "$tmp/want" "$tmp/got"
done
for seed in 1 2 3; do
    "$bin/wordcount" --quiet --chaos $seed --batch 2000 --epoch-batches 2 \
        --checkpoint-ms $((seed - 1)) "$tmp/gpl4" >"$tmp/got"
    check "wordcount --chaos $seed" "$tmp/want" "$tmp/got"
done

# --- ysb ------------------------------------------------------------------
"$bin/ysb" --quiet --events 300000 --campaigns 20 --seed 7 \
    --emit-events "$tmp/ev.csv" --emit-campaigns "$tmp/camp.csv" >"$tmp/ysb"
awk -F, 'NR == FNR { c[$1] = $2; next }
         $3 == "view" { n[c[$2] " " int($1 / 10000) * 10000]++ }
         END { for (k in n) print k, n[k] }' "$tmp/camp.csv" "$tmp/ev.csv" |
    sort -k1,1n -k2,2n >"$tmp/want"
check "ysb == awk recount" "$tmp/want" "$tmp/ysb"
for opts in "--chaos 5 --batch 4096 --epoch-batches 2 --checkpoint-ms 2" \
    "--chaos 6 --batch 500 --checkpoint-ms 1" \
    "--task-managers 3 --batch 999 --partitions 7"; do
    # shellcheck disable=SC2086
    "$bin/ysb" --quiet --events 300000 --campaigns 20 --seed 7 $opts \
        >"$tmp/got"
    check "ysb $opts" "$tmp/want" "$tmp/got"
done

# A longer run, so that failures surely happen during it.
"$bin/ysb" --events $long --campaigns 20 --seed 7 >"$tmp/want" 2>/dev/null
"$bin/ysb" --events $long --campaigns 20 --seed 7 --chaos 9 --batch 4096 \
    --epoch-batches 2 --checkpoint-ms 5 >"$tmp/got" 2>"$tmp/err"
check "ysb --chaos 9, $long events" "$tmp/want" "$tmp/got"
if grep -q 'failures injected [1-9]' "$tmp/err"; then
    echo "ok: failures were injected: $(grep -o 'restores [0-9]*; failures.*' "$tmp/err")"
else
    echo "FAIL: no failure injected during a chaos run"
    fail=1
fi

# --- windowing ------------------------------------------------------------
printf '%s\n' '(a,1,1)' '(a,10,1)' '(b,1,3)' '(c,11,1)' '(c,6,1)' >"$tmp/want"
"$bin/windowing" session --quiet >"$tmp/got"
check "windowing session == Flink's SessionWindowing" "$tmp/want" "$tmp/got"
"$bin/windowing" session --quiet --chaos 2 --batch 1 >"$tmp/got"
check "windowing session --chaos" "$tmp/want" "$tmp/got"
# Failures spaced by --chaos-mtbf-ms: still some, output the same.
"$bin/windowing" sliding --events $((long / 30)) --lateness 100 --quiet \
    >"$tmp/want"
"$bin/windowing" sliding --events $((long / 30)) --lateness 100 --chaos 3 \
    --chaos-mtbf-ms 50 >"$tmp/got" 2>"$tmp/err"
check "windowing sliding --chaos 3 --chaos-mtbf-ms 50" "$tmp/want" "$tmp/got"
if ! grep -q 'failures injected [1-9]' "$tmp/err"; then
    echo "FAIL: no failure injected with --chaos-mtbf-ms 50"
    fail=1
fi
# A word longer than a line buffer keeps its whole line (the counts were
# cut off past 511 bytes).
long_word=$(printf '%600s' '' | tr ' ' x)
printf '%s y\n' "$long_word" >"$tmp/longword"
printf '%s 0 1 1\ny 0 1 1\n' "$long_word" >"$tmp/want"
"$bin/windowing" count --quiet "$tmp/longword" >"$tmp/got"
check "windowing count, a 600-byte word" "$tmp/want" "$tmp/got"
"$bin/windowing" count --quiet - <"$tmp/longword" >"$tmp/got"
check "windowing count - (stdin)" "$tmp/want" "$tmp/got"
for mode in "count $tmp/gpl4" "tumbling --events 200000 --lateness 0" \
    "sliding --events 200000 --lateness 100" \
    "tumbling --events 200000 --disorder 2000 --delay 100"; do
    # shellcheck disable=SC2086
    "$bin/windowing" $mode --quiet >"$tmp/want"
    for opts in "--chaos 4 --checkpoint-ms 1 --batch 2000 --epoch-batches 2" \
        "--task-managers 3 --batch 77"; do
        # shellcheck disable=SC2086
        "$bin/windowing" $mode --quiet $opts >"$tmp/got"
        check "windowing $mode $opts" "$tmp/want" "$tmp/got"
    done
done

# --- command lines --------------------------------------------------------
for ex in wordcount ysb "windowing session"; do
    # shellcheck disable=SC2086
    if $bin/$ex --help >/dev/null 2>&1 && ! $bin/$ex --bogus >/dev/null 2>&1 &&
        ! $bin/$ex --task-managers x >/dev/null 2>&1 &&
        ! $bin/$ex --chaos 1 --chaos-mtbf-ms 0 >/dev/null 2>&1; then
        echo "ok: $ex --help / bad options"
    else
        echo "FAIL: $ex --help / bad options"
        fail=1
    fi
done
# imagestats (the main demo) answers --help like the others.
if $bin/imagestats --help >/dev/null 2>&1 &&
    ! $bin/imagestats --bogus >/dev/null 2>&1 &&
    ! $bin/imagestats --size 0 >/dev/null 2>&1; then
    echo "ok: imagestats --help / bad options"
else
    echo "FAIL: imagestats --help / bad options"
    fail=1
fi
# Standard input cannot be read with files; --top takes N >= 1.
for args in "- $tmp/gpl" "--top 0 $tmp/gpl"; do
    # shellcheck disable=SC2086
    if "$bin/wordcount" $args </dev/null >/dev/null 2>&1; then
        echo "FAIL: wordcount $args succeeded"
        fail=1
    else
        echo "ok: wordcount $args refused"
    fi
done
if "$bin/wordcount" /nonexistent/input >/dev/null 2>&1; then
    echo "FAIL: wordcount on a missing file succeeded"
    fail=1
fi
exit $fail
