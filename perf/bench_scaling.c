/*
 * bench_scaling: one long balanced reduction (cheap items, about 100 ms on
 * two threads) on runtimes of growing shape, TaskManagers x workers:
 * 1x1, 1x2, 2x1, 2x2, 4x1, 1x4, 4x2, and one plain thread for reference.
 * Shapes with more workers than CPUs are marked "oversubscribed". The
 * caller of fleet_parallel_reduce helps run the job, so a 1x1 runtime
 * already has two threads working.
 *
 * Each run creates a fresh runtime per shape (creation not timed; one small
 * reduction warms it up), the shapes interleaved; medians of the runs.
 * One JSON object per line. Usage: bench_scaling [--runs N] [--quick]
 */
#define _GNU_SOURCE
#include <fleet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_RUNS 101

/* A few nanoseconds per item, not vectorised into nothing. */
static inline uint64_t cheap(size_t i)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return (x ^ (x >> 32)) & 0xffff;
}

static void sum_fold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += cheap(i);
    *(uint64_t *)p += s;
}

static const fleet_reducer_t summer = {sizeof(uint64_t), bench_sum_init,
                                       sum_fold, bench_sum_combine};

struct shape {
    unsigned tms, workers;
};

/* Seconds for one reduction of n items on a fresh tms x workers runtime. */
static double run_shape(struct shape sh, size_t n, uint64_t want)
{
    fleet_config_t c;
    fleet_config_init(&c);
    c.task_managers = sh.tms;
    c.workers_per_tm = sh.workers;
    fleet_runtime_t *rt;
    int err = fleet_runtime_create(&rt, &c);
    if (err != 0) {
        fprintf(stderr, "fleet_runtime_create: %s\n", fleet_strerror(err));
        exit(1);
    }
    uint64_t got = 0;
    if (fleet_parallel_reduce(rt, &summer, NULL, 0, 100000, &got) != 0)
        abort();
    pause_ms(20);
    double t0 = now();
    err = fleet_parallel_reduce(rt, &summer, NULL, 0, n, &got);
    double t = now() - t0;
    if (err != 0 || got != want) {
        fprintf(stderr, "%ux%u: wrong result\n", sh.tms, sh.workers);
        exit(1);
    }
    fleet_runtime_destroy(rt);
    return t;
}

int main(int argc, char **argv)
{
    int runs;
    bool quick;
    if (!bench_args(argc, argv, MAX_RUNS, &runs, &quick))
        return 2;

    static const struct shape shapes[] = {{1, 1}, {1, 2}, {2, 1}, {2, 2},
                                          {4, 1}, {1, 4}, {4, 2}};
    enum { NSHAPES = sizeof(shapes) / sizeof(shapes[0]) };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = quick ? 100000000 : 300000000;

    uint64_t want = 0;
    double t_serial[MAX_RUNS], t[NSHAPES][MAX_RUNS];
    printf("{\"bench\":\"scaling_config\",\"items\":%zu,\"cpus\":%ld,"
           "\"runs\":%d}\n",
           n, cpus, runs);
    fflush(stdout);
    for (int r = 0; r < runs; r++) {
        uint64_t s = 0;
        double t0 = now();
        sum_fold(NULL, 0, n, &s);
        t_serial[r] = now() - t0;
        want = s;
        pause_ms(50);
        for (int k = 0; k < NSHAPES; k++) {
            t[k][r] = run_shape(shapes[k], n, want);
            pause_ms(50);
        }
        fprintf(stderr, "[scaling] run %d/%d\n", r + 1, runs);
    }
    double serial = median(t_serial, runs), base = 0;
    printf("{\"bench\":\"scaling\",\"impl\":\"serial\",\"task_managers\":0,"
           "\"workers_per_tm\":0,\"threads\":1,\"oversubscribed\":false,"
           "\"items\":%zu,\"median_s\":%.6f,\"mitems_per_s\":%.2f,"
           "\"speedup_vs_serial\":1.000}\n",
           n, serial, (double)n / serial / 1e6);
    for (int k = 0; k < NSHAPES; k++) {
        unsigned threads = shapes[k].tms * shapes[k].workers;
        double m = median(t[k], runs);
        if (k == 0)
            base = m;
        printf("{\"bench\":\"scaling\",\"impl\":\"fleet\","
               "\"task_managers\":%u,\"workers_per_tm\":%u,\"threads\":%u,"
               "\"oversubscribed\":%s,\"items\":%zu,\"median_s\":%.6f,"
               "\"mitems_per_s\":%.2f,\"speedup_vs_serial\":%.3f,"
               "\"speedup_vs_1x1\":%.3f}\n",
               shapes[k].tms, shapes[k].workers, threads,
               (long)threads > cpus ? "true" : "false", n, m,
               (double)n / m / 1e6, serial / m, base / m);
    }
    return 0;
}
