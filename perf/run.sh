#!/bin/sh
# The perf suite's one entry point. Builds fleet (Release) into build-perf/
# and, for bench_memory, a second time on the system malloc into
# build-perf-sysmalloc/; runs every benchmark that was built; writes
#   perf/results/<date>-<host>.json  every line every benchmark printed,
#                                    after a header object
#   perf/results/<date>-<host>.md    a report, one table per benchmark
#   perf/results/<date>-<host>-*.png plots (gnuplot)
# (with --quick the names end in -quick). Benchmark logs (stderr) stay in
# build-perf/perf-logs/. bench_stream runs the stream examples
# (examples/wordcount, examples/ysb) against their serial baselines; its
# word-count corpus is written once to build-perf/corpus.txt by
# perf/corpus.sh.
#
# Usage: sh perf/run.sh [--quick] [--runs N] | --report FILE.json
#   --quick   smaller workloads and 3 runs: a few minutes
#   --runs N  runs per benchmark (default 5, or 3 with --quick)
#   --report  only rewrites the report and plots of an earlier results file
# As root on Debian it installs what is missing, like tests/all.sh.
set -eu
cd "$(dirname "$0")/.."

usage() {
    echo "usage: sh perf/run.sh [--quick] [--runs N] | --report FILE.json" >&2
    exit 2
}
quick=0
runs=""
report_only=""
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --runs)
        [ $# -ge 2 ] || usage
        runs=$2
        shift
        ;;
    --report)
        [ $# -ge 2 ] || usage
        report_only=$2
        shift
        ;;
    *) usage ;;
    esac
    shift
done
case $runs in
"") if [ "$quick" = 1 ]; then runs=3; else runs=5; fi ;;
*[!0-9]*) usage ;;
esac
logs=build-perf/perf-logs

# --- report -----------------------------------------------------------------
# report JSON: writes the markdown report and the plots beside JSON.
report() {
    json=$1
    base=$(basename "$json" .json)
    dir=$(dirname "$json")
    md="$dir/$base.md"
    jq -r --arg base "$base" -f perf/report.jq "$json" >"$md"

    # Plots: METG efficiency per grain (one line per implementation, log x),
    # and scaling (items/s per runtime shape, in order of worker threads).
    plots=build-perf/perf-plot
    rm -rf "$plots"
    mkdir -p "$plots" "$logs"
    metg_plot=""
    for impl in $(jq -r '[.[] | select(.bench == "metg") | .impl] | unique[]' \
        "$json"); do
        jq -r --arg i "$impl" '.[] | select(.bench == "metg" and .impl == $i) |
            "\(.grain_ns) \(.efficiency)"' "$json" | sort -g >"$plots/metg-$impl.dat"
        metg_plot="$metg_plot, \"$plots/metg-$impl.dat\" using 1:2 with linespoints lw 2 title \"$impl\""
    done
    jq -r '.[] | select(.bench == "scaling" and .impl == "fleet") |
        "\(.task_managers)x\(.workers_per_tm)/\(.threads) \(.mitems_per_s) \(if .oversubscribed then 1 else 0 end)"' \
        "$json" >"$plots/scaling.dat"
    serial=$(jq -r '[.[] | select(.bench == "scaling" and .impl == "serial") |
        .mitems_per_s][0] // "NaN"' "$json")
    {
        echo 'set terminal pngcairo size 900,560 noenhanced'
        if [ -n "$metg_plot" ]; then
            echo "set output '$dir/$base-metg.png'"
            echo 'set title "Efficiency vs task grain (METG = grain where a line crosses 50%)"'
            echo 'set logscale x'
            echo 'set xlabel "task grain (ns)"'
            echo 'set ylabel "efficiency"'
            echo 'set yrange [0:1.1]'
            echo 'set key bottom right'
            echo 'set grid'
            echo "plot 0.5 with lines dt 2 lc rgb 'gray' title '50%'$metg_plot"
            echo 'unset logscale x'
            echo 'unset yrange'
        fi
        if [ -s "$plots/scaling.dat" ]; then
            echo "set output '$dir/$base-scaling.png'"
            echo 'set title "One balanced reduction: items/s by TaskManagers x workers / worker threads"'
            echo 'set xlabel "TaskManagers x workers / worker threads"'
            echo 'set ylabel "M items/s"'
            echo 'set yrange [0:*]'
            echo 'set style fill solid 0.7'
            echo 'set boxwidth 0.6'
            echo 'set key top left'
            echo 'set grid y'
            echo "plot '$plots/scaling.dat' using 0:(\$3 == 0 ? \$2 : 1/0):xtic(1) with boxes lc rgb '#3060c0' title 'threads <= CPUs', \\"
            echo "     '' using 0:(\$3 == 1 ? \$2 : 1/0) with boxes lc rgb '#e08020' title 'oversubscribed', \\"
            echo "     $serial with lines dt 2 lc rgb 'black' title 'one plain thread'"
        fi
    } >"$plots/plots.gp"
    gnuplot "$plots/plots.gp" 2>"$logs/gnuplot.log" ||
        echo "plots failed (see $logs/gnuplot.log)"
}

if [ -n "$report_only" ]; then
    report "$report_only"
    exit 0
fi

# --- what the suite needs -------------------------------------------------
# The packages fleet builds with, then the suite's own: oneTBB for
# bench_tbb, gnuplot for the plots (jq, for the report, is among fleet's).
# OpenMP (libgomp) comes with gcc.
fleet_extra="libtbb-dev gnuplot-nox"
. .ci/deps.sh

# --- build ----------------------------------------------------------------
jobs=$(nproc)
mkdir -p "$logs" perf/results

# Runs a command with its output in a log; on failure shows the log's end.
logged() {
    log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "failed: $* (log: $log)" >&2
        exit 1
    fi
}

start=$(date +%s)
echo "building (Release) in build-perf/ and build-perf-sysmalloc/"
logged "$logs/configure.log" cmake -S . -B build-perf \
    -DCMAKE_BUILD_TYPE=Release -DFLEET_BUILD_TESTS=OFF \
    -DFLEET_BUILD_EXAMPLES=ON
logged "$logs/build.log" cmake --build build-perf -j "$jobs" --target \
    bench_loops bench_failures bench_dispatch bench_scaling bench_memory \
    bench_stream wc_serial ysb_serial wordcount ysb
# Optional benchmarks: run only if they build (bench_tbb needs oneTBB).
for opt in bench_metg bench_tbb; do
    rm -f "build-perf/perf/$opt"
    cmake --build build-perf -j "$jobs" --target "$opt" \
        >"$logs/build-$opt.log" 2>&1 ||
        echo "  $opt not built (see $logs/build-$opt.log)"
done
corpus=build-perf/corpus.txt
if [ ! -s "$corpus" ]; then
    echo "writing the word-count corpus to $corpus"
    logged "$logs/corpus.log" sh perf/corpus.sh "$corpus"
fi
logged "$logs/configure-sysmalloc.log" cmake -S . -B build-perf-sysmalloc \
    -DCMAKE_BUILD_TYPE=Release -DFLEET_SYSTEM_MALLOC=ON \
    -DFLEET_BUILD_TESTS=OFF -DFLEET_BUILD_EXAMPLES=OFF
logged "$logs/build-sysmalloc.log" cmake --build build-perf-sysmalloc \
    -j "$jobs" --target bench_memory

# --- run --------------------------------------------------------------------
flags="--runs $runs"
if [ "$quick" = 1 ]; then
    flags="$flags --quick"
fi

# Each step: binary@build directory.
steps=""
for b in bench_loops bench_failures bench_dispatch bench_scaling bench_memory \
    bench_stream; do
    steps="$steps $b@build-perf"
done
steps="$steps bench_memory@build-perf-sysmalloc"
for b in bench_metg bench_tbb; do
    if [ -x "build-perf/perf/$b" ]; then
        steps="$steps $b@build-perf"
    fi
done
# shellcheck disable=SC2086 # one word per step
total=$(echo $steps | wc -w)

day=$(date +%F)
host=$(uname -n)
base="$day-$host"
if [ "$quick" = 1 ]; then
    base="$base-quick"
fi
json="perf/results/$base.json"
md="perf/results/$base.md"
lines=build-perf/perf-lines.jsonl

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo |
    head -n 1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=false
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    dirty=true
fi
jq -n -c --arg date "$day" --arg time "$(date '+%Y-%m-%d %H:%M:%S %z')" \
    --arg host "$host" --arg cpu "${cpu:-unknown}" --arg cores "$(nproc)" \
    --arg commit "$commit" --argjson dirty "$dirty" \
    --argjson quick "$([ "$quick" = 1 ] && echo true || echo false)" \
    --arg runs "$runs" --arg load "$(cut -d ' ' -f 1 /proc/loadavg)" \
    --arg kernel "$(uname -r)" \
    '{bench: "header", date: $date, time: $time, host: $host,
      cpu_model: $cpu, cores: ($cores | tonumber), git_commit: $commit,
      git_dirty: $dirty, quick: $quick, runs: ($runs | tonumber),
      loadavg_1m: ($load | tonumber), kernel: $kernel}' >"$lines"

failed=""
i=0
for step in $steps; do
    i=$((i + 1))
    b=${step%@*}
    dir=${step#*@}
    label=$b
    log="$logs/$b.log"
    if [ "$dir" = build-perf-sysmalloc ]; then
        label="$b (system malloc)"
        log="$logs/$b-sysmalloc.log"
    fi
    extra=""
    if [ "$b" = bench_stream ]; then
        extra="--build-dir $dir --corpus $corpus"
    fi
    printf '[%d/%d] %s ... ' "$i" "$total" "$label"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    if "$dir/perf/$b" $flags $extra >"$log.out" 2>"$log"; then
        echo "$(($(date +%s) - t0)) s"
    else
        echo "FAILED after $(($(date +%s) - t0)) s (see $log)"
        failed="$failed $b"
    fi
    # Every JSON line, tagged with its binary; anything else is dropped.
    jq -c -R --arg b "$b" 'fromjson? | select(type == "object") |
        . + {binary: $b}' "$log.out" >>"$lines"
done

jq -s '.' "$lines" >"$json"
report "$json"
echo "results: $json, $md ($(($(date +%s) - start)) s in all)"
if [ -n "$failed" ]; then
    echo "failed:$failed" >&2
    exit 1
fi
