/*
 * busy.h: the work of the METG benchmarks (bench_metg, bench_tbb), shared
 * so that every implementation runs exactly the same tasks.
 *
 *   busy_work(iters, seed)  - `iters` rounds of a dependent multiply-add
 *                             chain, hidden from the optimiser at every
 *                             round: it cannot be vectorised, folded or
 *                             removed;
 *   busy_calibrate()        - rounds per nanosecond of busy_work on one
 *                             thread (the best of several timings);
 *   busy_grains_ns[]        - the task grains, 100 ns .. 1 ms;
 *   busy_tasks(...)         - how many tasks of a grain make the fixed total;
 *   busy_metg(...)          - the METG at 50% efficiency from a sweep.
 *
 * Plain C11 and C++17; C includers must define _GNU_SOURCE first.
 */
#ifndef FLEET_PERF_BUSY_H
#define FLEET_PERF_BUSY_H

#if !defined(__cplusplus) && !defined(_GNU_SOURCE)
#error "define _GNU_SOURCE before including busy.h"
#endif

#include <math.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

static inline double busy_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The CPUs this process may run on: the thread count of every peer. */
static inline int busy_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

#ifdef __cplusplus
#define BUSY_THREAD_LOCAL thread_local
#else
#define BUSY_THREAD_LOCAL _Thread_local
#endif

/* The last chain value of this thread (see busy_work). */
static BUSY_THREAD_LOCAL uint64_t busy_last;

/*
 * Each chain starts from the end of the previous chain run on the same
 * thread (through an opaque zero), so a core cannot overlap the tail of
 * one task's chain with the next one's: a task of n rounds costs n rounds
 * however tightly tasks are packed, as in the one long chain calibrated.
 */
static inline uint64_t busy_work(uint64_t iters, uint64_t seed)
{
    uint64_t zero = 0;
    __asm__("" : "+r"(zero));
    uint64_t x = (seed | 1) + (busy_last & zero);
    for (uint64_t k = 0; k < iters; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        /* The compiler must assume x is read and changed here. */
        __asm__ volatile("" : "+r"(x));
    }
    busy_last = x;
    return x;
}

/*
 * Rounds of busy_work per nanosecond: the round count is doubled until one
 * call takes at least 20 ms, then the fastest of 5 timings of it counts
 * (interruptions only ever make a timing slower).
 */
static inline double busy_calibrate(void)
{
    uint64_t n = 1u << 16;
    double t0, t;
    for (;;) {
        t0 = busy_now();
        busy_work(n, 1);
        t = busy_now() - t0;
        if (t >= 0.02)
            break;
        n *= 2;
    }
    double best = t;
    for (int r = 0; r < 5; r++) {
        t0 = busy_now();
        busy_work(n, 1);
        t = busy_now() - t0;
        if (t < best)
            best = t;
    }
    return (double)n / (best * 1e9);
}

static const double busy_grains_ns[] = {100,    200,    500,    1000,  2000,
                                        5000,   10000,  20000,  50000, 100000,
                                        200000, 500000, 1000000};
#define BUSY_NGRAINS (sizeof(busy_grains_ns) / sizeof(busy_grains_ns[0]))

/* Rounds of busy_work that make one task of grain_ns. */
static inline uint64_t busy_iters(double iters_per_ns, double grain_ns)
{
    double it = floor(iters_per_ns * grain_ns + 0.5);
    return it >= 1 ? (uint64_t)it : 1;
}

/*
 * Tasks of grain_ns that would take ideal_ms on nthreads with no overhead
 * (the same total work at every grain), at least 4 per thread.
 */
static inline size_t busy_tasks(double ideal_ms, int nthreads, double grain_ns)
{
    double t = floor(ideal_ms * 1e6 * nthreads / grain_ns + 0.5);
    double least = 4.0 * nthreads;
    return (size_t)(t > least ? t : least);
}

/* How busy_metg found its value. */
enum busy_metg_how {
    BUSY_METG_INTERPOLATED, /* between the two grains around 0.5 */
    BUSY_METG_AT_MOST,      /* >= 0.5 everywhere: at most the smallest grain */
    BUSY_METG_ABOVE         /* < 0.5 at the largest grain: no value */
};

/*
 * METG(50%) from efficiencies eff[] at the ascending busy_grains_ns[]:
 * going down from the largest grain, the first grain whose efficiency is
 * below 0.5 and the grain above it (>= 0.5) bracket the METG, found by
 * linear interpolation of efficiency against log(grain). Returns the METG
 * in ns (0 with BUSY_METG_ABOVE) and sets *how.
 */
static inline double busy_metg(const double *eff, enum busy_metg_how *how)
{
    const int n = (int)BUSY_NGRAINS;
    if (eff[n - 1] < 0.5) {
        *how = BUSY_METG_ABOVE;
        return 0;
    }
    for (int k = n - 2; k >= 0; k--) {
        if (eff[k] >= 0.5)
            continue;
        double lo = log(busy_grains_ns[k]), hi = log(busy_grains_ns[k + 1]);
        double f = (0.5 - eff[k]) / (eff[k + 1] - eff[k]);
        *how = BUSY_METG_INTERPOLATED;
        return exp(lo + f * (hi - lo));
    }
    *how = BUSY_METG_AT_MOST;
    return busy_grains_ns[0];
}

static inline const char *busy_metg_how_name(enum busy_metg_how how)
{
    return how == BUSY_METG_INTERPOLATED ? "interpolated"
           : how == BUSY_METG_AT_MOST    ? "at_most_smallest_grain"
                                         : "above_largest_grain";
}

#endif /* FLEET_PERF_BUSY_H */
