# The markdown report of one perf/run.sh results file (a JSON array: a
# header object, then every line every benchmark printed, each tagged with
# the binary that printed it). Usage:
#   jq -r --arg base NAME -f perf/report.jq perf/results/NAME.json
# where NAME-metg.png and NAME-scaling.png are the plots beside the file.

# A number rounded to d decimals, or a dash when missing.
def r(d):
  if . == null then "–"
  else (. * pow(10; d) | round) / pow(10; d) | tostring end;
def row: "| " + (map(tostring) | join(" | ")) + " |";
def head(cols): (cols | row), (cols | map("---") | row);
# A duration given in nanoseconds.
def dur:
  if . >= 1000000 then "\(. / 1000000 | r(1)) ms"
  elif . >= 1000 then "\(. / 1000 | r(1)) µs"
  else "\(. | r(0)) ns" end;
# A difference in ms, signed.
def plus_ms: if . >= 0 then "+\(r(1)) ms" else "\(r(1)) ms" end;
# A loop's time: per loop when it repeats a small one, else in ms.
def loop_time:
  if . == null then "–"
  elif .loops > 1 then "\(.per_loop_us | r(3)) µs/loop"
  else "\(.median_s * 1000 | r(1)) ms" end;
def none(xs): if (xs | length) == 0 then "_not run_" else empty end;

.[0] as $h
| [.[1:][]] as $all
| def of(b): [$all[] | select(.bench == b)];

"# fleet performance: \($h.date), \($h.host)",
"",
head(["date", "host", "CPU", "cores", "commit", "quick", "runs",
      "load (1 min) at start"]),
([$h.time, $h.host, $h.cpu_model, $h.cores,
  $h.git_commit + (if $h.git_dirty then " (modified)" else "" end),
  $h.quick, $h.runs, $h.loadavg_1m] | row),
"",
"Medians of the runs unless said otherwise. The machine may have been",
"shared: latency tails and small differences are noise-prone.",

"",
"## Loops (bench_loops, bench_tbb)",
"",
"fleet against the best peer (OpenMP, oneTBB) at the same thread count;",
"ratio = fleet time / best peer time, lower is better.",
"",
(["balanced", "unbalanced", "small_jobs"] as $loops
 | [$loops[] as $l | of($l) | map(select(.impl != null))] as $sets
 | none([$sets[][]]),
   (if ([$sets[][]] | length) > 0 then
      head(["loop", "fleet", "best peer", "fleet / best peer", "one thread",
            "every peer"]),
      ($sets[] | select(length > 0)
       | (map(select(.impl == "fleet")) | first) as $f
       | map(select(.impl != "fleet" and .impl != "serial")) as $peers
       | ($peers | min_by(.median_s)) as $best
       | ((map(select(.impl == "serial" and .binary == "bench_loops"))
           + map(select(.impl == "serial"))) | first) as $s
       | [.[0].bench, ($f | loop_time),
          (if $best then "\($best | loop_time) (\($best.impl))" else "–" end),
          (if $f and $best then $f.median_s / $best.median_s | r(2)
           else "–" end),
          ($s | loop_time),
          ($peers | map("\(.impl) \(loop_time)") | join(", "))]
       | row)
    else empty end)),

"",
"## METG (bench_metg, bench_tbb)",
"",
"Minimum effective task granularity: the smallest task (grain) at which an",
"implementation still reaches 50% efficiency; lower is better.",
"",
(of("metg_summary") as $m
 | none($m),
   (if ($m | length) > 0 then
      head(["impl", "METG(50%)", "how"]),
      ($m[] | [.impl, (if .metg_ns == null then "–" else (.metg_ns | dur) end),
               .how] | row),
      "",
      "Efficiency per grain:",
      "",
      (of("metg") as $e
       | ($e | map(.impl) | unique) as $impls
       | ($e | map(.grain_ns) | unique) as $grains
       | head(["grain"] + $impls),
         ($grains[] as $g
          | [($g | dur)]
            + [$impls[] as $i
               | ([$e[] | select(.grain_ns == $g and .impl == $i)] | first
                  | if . then .efficiency | r(2) else "–" end)]
          | row))
    else empty end)),

"",
"## Dispatch (bench_dispatch)",
"",
(of("dispatch_config") | first
 | if . then "Runtime: \(.task_managers) TaskManagers x \(.workers_per_tm) workers, spin_us \(.spin_us), \(.cpus) CPUs (load \(.loadavg_1m) at start)."
   else "_not run_" end),
"",
(of("dispatch_submit") as $s
 | if ($s | length) > 0 then
     "Submit throughput: 1-item jobs, fleet_submit + fleet_job_release, timed until all ran.",
     "",
     head(["submitting threads", "jobs", "M jobs/s"]),
     ($s[] | [.submitters, .jobs, (.mjobs_per_s | r(3))] | row)
   else empty end),
"",
((of("dispatch_latency") + of("futex_wake")) as $l
 | if ($l | length) > 0 then
     "Latency of an empty job, from just before fleet_submit to the first instruction of its body; futex_wake is FUTEX_WAKE to the woken thread running, sampled alternately with \"sleeping\".",
     "",
     head(["condition", "gap", "samples", "p50", "p99", "max", "> 100 µs"]),
     ($l[] | [(if .bench == "futex_wake" then "futex wake" else .condition end),
              (.gap_us * 1000 | dur),
              .samples, "\(.p50_us | r(2)) µs", "\(.p99_us | r(2)) µs",
              "\(.max_us | r(0)) µs", .over_100us] | row)
   else empty end),
"",
(of("dispatch_vs_futex") | first
 | if . then "Sleeping dispatch / futex wake: p50 \(.ratio_p50 | r(2))x, p99 \(.ratio_p99 | r(2))x."
   else empty end),
"",
(of("ring") as $rg
 | ($rg | map(select(.impl != null))) as $ri
 | if ($ri | length) > 0 then
     "Rings, one producer and one consumer thread: the runtime's wrapper (fl_ring) against raw ck_ring; ratio = wrapper / raw items per second.",
     "",
     head(["mode", "fl_ring M items/s", "ck_ring M items/s", "ratio"]),
     ($ri | map(.mode) | unique[] as $m
      | [$m,
         ([$ri[] | select(.mode == $m and .impl == "fl_ring")] | first
          | .mitems_per_s | r(1)),
         ([$ri[] | select(.mode == $m and .impl == "ck_ring")] | first
          | .mitems_per_s | r(1)),
         ([$rg[] | select(.mode == $m and .ratio_wrapper_over_raw != null)]
          | first | .ratio_wrapper_over_raw | r(2))] | row)
   else empty end),
(of("dispatch_health") | first
 | if . then "", "TaskManagers suspected failed during the run (heartbeat starved): \(.suspected_failures)."
   else empty end),

"",
"## Scaling (bench_scaling)",
"",
(of("scaling") as $s
 | none($s),
   (if ($s | length) > 0 then
      (of("scaling_config") | first
       | if . then "One balanced fleet_parallel_reduce of \(.items) cheap items on \(.cpus) CPUs; the caller helps, so 1x1 has two threads working."
         else empty end),
      "",
      head(["TaskManagers x workers", "worker threads", "oversubscribed",
            "M items/s", "vs one thread", "vs 1x1"]),
      ($s[] | [(if .impl == "serial" then "one plain thread"
                else "\(.task_managers)x\(.workers_per_tm)" end),
               .threads, .oversubscribed, (.mitems_per_s | r(0)),
               (.speedup_vs_serial | r(2)), (.speedup_vs_1x1 | r(2))] | row)
    else empty end)),

"",
"## Memory (bench_memory)",
"",
(of("memory") as $m
 | none($m),
   (if ($m | length) > 0 then
      "Each case in a fresh process: peak RSS (ru_maxrss) and current RSS (VmRSS) at the measuring point; \"baseline\" is the process without a runtime.",
      "",
      head(["malloc", "case", "peak RSS", "RSS", "peak over baseline",
            "program's malloc from"]),
      ($m[] | [.malloc, .case, "\(.peak_rss_kib) KiB", "\(.rss_kib) KiB",
               "\(.peak_over_baseline_kib) KiB", .malloc_symbol_from] | row)
    else empty end)),

"",
"## Failures (bench_failures)",
"",
(of("steady") | first
 | if . then "- Steady state, fault tolerance on vs off: \(.overhead * 100 | r(1))% (\(.ft_on_s * 1000 | r(1)) ms vs \(.ft_off_s * 1000 | r(1)) ms)."
   else "_not run_" end),
(of("crash") | first
 | if . then "- CRASH at 5 ms: \(.extra_ms | plus_ms) for the job; detection \(.detection_ms | r(1)) ms (timeout \(.timeout_ms) ms); recovery \(.recovery_ms | r(1)) ms."
   else empty end),
(of("late_crash") | first
 | if . then "- CRASH at \(.crash_at_ms | r(0)) ms (80% of the job): \(.extra_ms | plus_ms); detection \(.detection_ms | r(1)) ms; recovery \(.recovery_ms | r(1)) ms."
   else empty end),
([$all[] | select(.bench | startswith("chaos_"))] as $c
 | if ($c | length) > 0 then
     "",
     head(["crash every", "throughput vs failure-free", "crashes",
           "fenced attempts", "fencing µs / attempt"]),
     ($c[] | [(.bench | ltrimstr("chaos_")),
              (.throughput_vs_no_failure | r(2)), .crashes,
              .fenced_attempts, (.fencing_us_per_attempt | r(1))] | row)
   else empty end),

"",
"## Stream examples vs one plain thread (bench_stream)",
"",
(of("stream_config") | first
 | if . then "COST: each fleet example against a plain one-thread C program doing the same job (perf/wc_serial.c, perf/ysb_serial.c), run interleaved with it, on \(.cpus) CPUs; ratio = serial time / fleet time, the goal is >= \(.goal_ratio). Each command runs once first with its output checked against the baseline's: a wrong output is an error and is not timed. wordcount: \(.corpus_bytes / 1000000 | r(1)) MB corpus (perf/corpus.sh), \(.words) words; ysb: \(.events) events, \(.campaigns) campaigns, seed \(.seed)."
   else "_not run_" end),
"",
(of("stream") as $s
 | def cell:
     if .skipped then "skipped (\(.skipped))"
     elif .error then "**error**: \(.error | gsub("\\|"; "\\|"))"
     else "\(.median_s * 1000 | r(1)) ms (\(.mitems_per_s | r(1)) M \(.unit)/s)"
     end;
 if ($s | length) > 0 then
   head(["example", "serial", "fleet", "ratio", "command"]),
   ($s | map(.example) | unique[] as $x
    | ([$s[] | select(.example == $x and .impl == "serial")] | first) as $b
    | $s[] | select(.example == $x and .impl == "fleet")
    | [.label, ($b | cell), cell,
       (if .ratio then "\(.ratio | r(2))" + (if .goal_met then " ✓" else "" end)
        else "–" end),
       "`\(.command)`"] | row),
   "",
   ($s[] | select(.impl == "serial")
    | "- \(.example) baseline: `\(.command)`" +
      (if .median_s then ": \(.mitems_per_s | r(1)) M \(.unit)/s, CPU \(.cpu_s | r(3)) s, peak RSS \(.max_rss_kib / 1024 | r(1)) MiB."
       else " (\(.skipped // .error))." end))
 else empty end),

"",
"## Plots",
"",
"![METG efficiency per grain](\($base)-metg.png)",
"",
"![Scaling](\($base)-scaling.png)"
