/*
 * bench_loops: fleet against OpenMP (libgomp, the same number of threads)
 * and a plain one-thread loop, on three loops:
 *   balanced  - a reduction over 10^8 cheap items;
 *   unbalanced - item i costs time proportional to i (OpenMP with
 *                schedule(dynamic,1) and schedule(guided));
 *   small     - 20 000 back-to-back loops of 512 items.
 * Runs are interleaved (fleet, OpenMP, serial, ...) and the median of each
 * is reported, with the ratios fleet / best OpenMP and fleet / serial.
 *
 * Output: one JSON object per line. Usage: bench_loops [--runs N] [--quick]
 */
#define _GNU_SOURCE
#include <fleet.h>
#include <omp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "loops_work.h"

/* --- the work: items in loops_work.h -------------------------------- */

/* --- one measurement per implementation ------------------------------- */

enum impl { FLEET, OMP_A, OMP_B, SERIAL, NIMPL };

struct bench {
    const char *name;
    const char *impl_names[NIMPL];
    size_t n;
    int reps; /* loops per measurement (small jobs) */
};

static uint64_t run_balanced(enum impl im, fleet_runtime_t *rt, size_t n)
{
    uint64_t s = 0;
    if (im == FLEET) {
        fleet_reducer_t r = {sizeof(uint64_t), bench_sum_init, cheap_fold,
                             bench_sum_combine};
        if (fleet_parallel_reduce(rt, &r, NULL, 0, n, &s) != 0)
            abort();
    } else if (im == SERIAL) {
        cheap_fold(NULL, 0, n, &s);
    } else {
#pragma omp parallel for schedule(static) reduction(+ : s)
        for (size_t i = 0; i < n; i++)
            s += cheap(i);
    }
    return s;
}

static uint64_t run_unbalanced(enum impl im, fleet_runtime_t *rt, size_t n)
{
    uint64_t s = 0;
    if (im == FLEET) {
        fleet_reducer_t r = {sizeof(uint64_t), bench_sum_init, costly_fold,
                             bench_sum_combine};
        if (fleet_parallel_reduce(rt, &r, NULL, 0, n, &s) != 0)
            abort();
    } else if (im == SERIAL) {
        costly_fold(NULL, 0, n, &s);
    } else if (im == OMP_A) {
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : s)
        for (size_t i = 0; i < n; i++)
            s += costly(i);
    } else {
#pragma omp parallel for schedule(guided) reduction(+ : s)
        for (size_t i = 0; i < n; i++)
            s += costly(i);
    }
    return s;
}

static uint64_t run_small(enum impl im, fleet_runtime_t *rt, size_t n, int reps,
                          uint32_t *a)
{
    for (int r = 0; r < reps; r++) {
        if (im == FLEET) {
            if (fleet_parallel_for(rt, small_body, a, 0, n) != 0)
                abort();
        } else if (im == SERIAL) {
            small_body(a, 0, n);
        } else {
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++)
                a[i] = small_item(a[i]);
        }
    }
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i];
    return s;
}

int main(int argc, char **argv)
{
    int runs;
    bool quick;
    if (!bench_args(argc, argv, 101, &runs, &quick))
        return 2;

    fleet_config_t cfg;
    fleet_config_init(&cfg);
    fleet_runtime_t *rt;
    int err = fleet_runtime_create(&rt, &cfg);
    if (err != 0) {
        fprintf(stderr, "fleet_runtime_create: %s\n", fleet_strerror(err));
        return 1;
    }
    /* Same thread count: OpenMP's team is fleet's worker count. */
    int threads = (int)(cfg.task_managers *
                        (cfg.workers_per_tm ? cfg.workers_per_tm : 0));
    if (threads == 0) {
        cpu_set_t set;
        sched_getaffinity(0, sizeof(set), &set);
        int cpus = CPU_COUNT(&set);
        int per = cpus / (int)cfg.task_managers;
        threads = (int)cfg.task_managers * (per > 0 ? per : 1);
    }
    omp_set_num_threads(threads);

    struct bench benches[] = {
        {"balanced",
         {"fleet", "omp_static", NULL, "serial"},
         quick ? LOOPS_BALANCED_N_QUICK : LOOPS_BALANCED_N,
         1},
        {"unbalanced",
         {"fleet", "omp_dynamic1", "omp_guided", "serial"},
         quick ? LOOPS_UNBALANCED_N_QUICK : LOOPS_UNBALANCED_N,
         1},
        {"small_jobs",
         {"fleet", "omp_static", NULL, "serial"},
         LOOPS_SMALL_N,
         quick ? LOOPS_SMALL_REPS_QUICK : LOOPS_SMALL_REPS},
    };
    uint32_t *a = calloc(LOOPS_SMALL_N, sizeof(*a));
    if (a == NULL)
        return 1;
    printf("{\"bench\":\"config\",\"threads\":%d,\"task_managers\":%u,"
           "\"runs\":%d}\n",
           threads, cfg.task_managers, runs);
    for (size_t k = 0; k < sizeof(benches) / sizeof(benches[0]); k++) {
        struct bench *b = &benches[k];
        double t[NIMPL][101];
        uint64_t check[NIMPL] = {0};
        for (int r = 0; r < runs; r++) {
            for (int im = 0; im < NIMPL; im++) {
                if (b->impl_names[im] == NULL)
                    continue;
                if (k == 2)
                    memset(a, 0, LOOPS_SMALL_N * sizeof(*a));
                pause_ms(150); /* longer than fleet's dispatcher linger */
                double t0 = now();
                uint64_t s = k == 0   ? run_balanced(im, rt, b->n)
                             : k == 1 ? run_unbalanced(im, rt, b->n)
                                      : run_small(im, rt, b->n, b->reps, a);
                t[im][r] = now() - t0;
                if (r == 0)
                    check[im] = s;
                else if (check[im] != s)
                    fprintf(stderr, "%s/%s: result changed\n", b->name,
                            b->impl_names[im]);
            }
            fprintf(stderr, "[%s] run %d/%d\n", b->name, r + 1, runs);
        }
        double med[NIMPL], best_omp = 0;
        for (int im = 0; im < NIMPL; im++) {
            if (b->impl_names[im] == NULL)
                continue;
            med[im] = median(t[im], runs);
            if ((im == OMP_A || im == OMP_B) &&
                (best_omp == 0 || med[im] < best_omp))
                best_omp = med[im];
            if (check[im] != check[SERIAL])
                fprintf(stderr, "%s/%s: wrong result\n", b->name,
                        b->impl_names[im]);
            printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"items\":%zu,"
                   "\"loops\":%d,\"median_s\":%.6f,\"per_loop_us\":%.3f}\n",
                   b->name, b->impl_names[im], b->n, b->reps, med[im],
                   med[im] / b->reps * 1e6);
        }
        printf("{\"bench\":\"%s\",\"ratio_fleet_over_best_omp\":%.3f,"
               "\"ratio_fleet_over_serial\":%.3f}\n",
               b->name, med[FLEET] / best_omp, med[FLEET] / med[SERIAL]);
        fflush(stdout);
    }
    free(a);
    fleet_runtime_destroy(rt);
    return 0;
}
