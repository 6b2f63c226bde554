/*
 * bench.h: what every C benchmark of perf/ shares — a monotonic clock in
 * seconds, a pause that lets another runtime's spinning threads go to
 * sleep, and medians.
 */
#ifndef FLEET_PERF_BENCH_H
#define FLEET_PERF_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline void pause_ms(unsigned ms)
{
    struct timespec t = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    nanosleep(&t, NULL);
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v (n >= 1) and returns its median. */
static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* init and combine of the benchmarks' uint64_t sum reductions. */
static inline void bench_sum_init(void *ctx, void *p)
{
    (void)ctx;
    *(uint64_t *)p = 0;
}

static inline void bench_sum_combine(void *ctx, void *into, const void *p)
{
    (void)ctx;
    *(uint64_t *)into += *(const uint64_t *)p;
}

/* Parses `[--runs N] [--quick]` into *runs (1..max_runs, else the default
 * 5) and *quick; false (after printing the usage) on anything else. */
static inline bool bench_args(int argc, char **argv, int max_runs, int *runs,
                              bool *quick)
{
    *runs = 5;
    *quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            *runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0)
            *quick = true;
        else {
            fprintf(stderr, "usage: %s [--runs N] [--quick]\n", argv[0]);
            return false;
        }
    }
    if (*runs < 1 || *runs > max_runs)
        *runs = 5;
    return true;
}

#endif /* FLEET_PERF_BENCH_H */
