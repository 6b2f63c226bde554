/*
 * test_stress: seeded random mixes of everything the runtime does, over
 * many rounds and configurations — parallel_for and reductions over random
 * ranges (some ending at SIZE_MAX), asynchronous jobs released before they
 * finish, several submitting threads, nested jobs — each result checked
 * exactly. The seed is fixed; set FLEET_STRESS_SEED to try others.
 *
 * Worker threads only record; every assertion runs on the test thread.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fleet.h"
#include "rng.h"
#include "sum64.h"
#include "ring.h" /* FL_RING_TSAN */

/* Runtimes made, and operations per submitting thread in each. */
#ifdef FL_RING_TSAN
#define RUNTIMES 150
#else
#define RUNTIMES 600
#endif
#define OPS 40

/* Items [base, base + n) are counted in hits[]. */
struct counts {
    size_t base, n;
    _Atomic unsigned *hits;
    _Atomic unsigned stray;
    fleet_runtime_t *rt; /* for nested jobs */
    size_t inner;        /* nested: each item runs a job of this many */
    _Atomic unsigned nested_errors;
};

static void count(void *ctx, size_t b, size_t e)
{
    struct counts *c = ctx;
    for (size_t i = b; i < e; i++) {
        if (i < c->base || i - c->base >= c->n)
            atomic_fetch_add(&c->stray, 1);
        else
            atomic_fetch_add_explicit(&c->hits[i - c->base], 1,
                                      memory_order_relaxed);
    }
}

struct cell {
    _Atomic unsigned *slot;
};

static void bump(void *ctx, size_t b, size_t e)
{
    _Atomic unsigned *slot = ctx;
    atomic_fetch_add(slot, (unsigned)(e - b));
}

static void nested(void *ctx, size_t b, size_t e)
{
    struct counts *c = ctx;
    for (size_t i = b; i < e; i++) {
        /* The item counts the inner job's items: c->inner per item. */
        if (fleet_parallel_for(c->rt, bump, (void *)&c->hits[i - c->base], 0,
                               c->inner) != 0)
            atomic_fetch_add(&c->nested_errors, 1);
    }
}

static void sum_fold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += (uint64_t)i * 2654435761u;
    *(uint64_t *)p += s;
}

static uint64_t sum_serial(size_t b, size_t e)
{
    uint64_t s = 0;
    sum_fold(NULL, b, e, &s);
    return s;
}

/* Runs one random operation; returns the number of problems seen. */
struct op_args {
    fleet_runtime_t *rt;
    uint64_t seed;
    unsigned problems;
    int first_error;
};

static void note_error(struct op_args *a, int err)
{
    if (err != 0) {
        a->problems++;
        if (a->first_error == 0)
            a->first_error = err;
    }
}

static void check_counts(struct op_args *a, struct counts *c, unsigned want)
{
    if (atomic_load(&c->stray) != 0)
        a->problems++;
    for (size_t i = 0; i < c->n; i++)
        if (atomic_load(&c->hits[i]) != want)
            a->problems++;
}

static void one_op(struct op_args *a)
{
    uint64_t *s = &a->seed;
    unsigned kind = (unsigned)rng_below(s, 10);
    size_t n = rng_below(s, 4) == 0 ? rng_below(s, 8) : 1 + rng_below(s, 40000);
    size_t base = rng_below(s, 4) == 0 ? SIZE_MAX - n : rng_below(s, 1u << 30);
    struct counts c = {.base = base, .n = n, .rt = a->rt};
    c.hits = calloc(n ? n : 1, sizeof(*c.hits));
    if (c.hits == NULL) {
        a->problems++;
        return;
    }
    if (kind < 4) { /* parallel_for */
        note_error(a, fleet_parallel_for(a->rt, count, &c, base, base + n));
        check_counts(a, &c, 1);
    } else if (kind < 6) { /* reduce */
        fleet_reducer_t r = {sizeof(uint64_t), sum64_init, sum_fold,
                             sum64_combine};
        uint64_t got = 0;
        note_error(
            a, fleet_parallel_reduce(a->rt, &r, NULL, base, base + n, &got));
        if (got != sum_serial(base, base + n))
            a->problems++;
    } else if (kind < 8) { /* a burst of async jobs, some released early */
        unsigned jobs = 1 + (unsigned)rng_below(s, 12);
        fleet_job_t *h[12];
        for (unsigned j = 0; j < jobs; j++) {
            int err = fleet_submit(a->rt, count, &c, base, base + n, &h[j]);
            note_error(a, err);
            if (err != 0)
                h[j] = NULL;
        }
        for (unsigned j = 0; j < jobs; j++)
            if (h[j] != NULL)
                note_error(a, fleet_job_wait(h[j]));
        for (unsigned j = 0; j < jobs; j++)
            fleet_job_release(h[j]);
        check_counts(a, &c, jobs);
    } else { /* nested */
        c.n = n = n % 64;
        c.base = base = 0;
        c.inner = 1 + rng_below(s, 300);
        note_error(a, fleet_parallel_for(a->rt, nested, &c, 0, n));
        if (atomic_load(&c.nested_errors) != 0)
            a->problems++;
        check_counts(a, &c, (unsigned)c.inner);
    }
    free((void *)c.hits);
}

static void *submitter(void *arg)
{
    struct op_args *a = arg;
    for (int i = 0; i < OPS; i++)
        one_op(a);
    return NULL;
}

/* Jobs released without waiting, left for destroy to drain. */
static void release_some(fleet_runtime_t *rt, uint64_t *s,
                         _Atomic unsigned *slot, unsigned *expected)
{
    unsigned jobs = (unsigned)rng_below(s, 6);
    for (unsigned j = 0; j < jobs; j++) {
        fleet_job_t *h;
        size_t n = 1 + rng_below(s, 5000);
        if (fleet_submit(rt, bump, (void *)slot, 0, n, &h) == 0) {
            *expected += (unsigned)n;
            fleet_job_release(h);
        }
    }
}

static void test_random_mixes(void **state)
{
    (void)state;
    uint64_t seed = 20261125;
    const char *env = getenv("FLEET_STRESS_SEED");
    if (env != NULL)
        seed = strtoull(env, NULL, 0);
    print_message("seed %llu\n", (unsigned long long)seed);
    for (int k = 0; k < RUNTIMES; k++) {
        fleet_config_t cfg;
        fleet_config_init(&cfg);
        cfg.task_managers = 1 + (unsigned)rng_below(&seed, 3);
        cfg.workers_per_tm = 1 + (unsigned)rng_below(&seed, 3);
        cfg.ring_size = 4u << rng_below(&seed, 5);
        cfg.grain = rng_below(&seed, 3) == 0 ? 1 + rng_below(&seed, 2000) : 0;
        cfg.spin_us = rng_below(&seed, 3) == 0 ? 0 : 50;
        fleet_runtime_t *rt;
        assert_int_equal(fleet_runtime_create(&rt, &cfg), 0);

        unsigned nthreads = 1 + (unsigned)rng_below(&seed, 3);
        struct op_args args[3];
        pthread_t th[3];
        for (unsigned t = 0; t < nthreads; t++) {
            args[t] = (struct op_args){rt, rng_next(&seed), 0, 0};
            assert_int_equal(pthread_create(&th[t], NULL, submitter, &args[t]),
                             0);
        }
        _Atomic unsigned drained = 0;
        unsigned expected = 0;
        release_some(rt, &seed, &drained, &expected);
        for (unsigned t = 0; t < nthreads; t++) {
            pthread_join(th[t], NULL);
            if (args[t].problems != 0) {
                fleet_failure_stats_t fs;
                fleet_failure_stats(rt, &fs);
                fail_msg("runtime %d (%u TMs x %u workers, ring %u, grain "
                         "%zu, spin %u), thread %u: %u problems, first "
                         "error %d; failures suspected %llu, fenced %llu",
                         k, cfg.task_managers, cfg.workers_per_tm,
                         cfg.ring_size, cfg.grain, cfg.spin_us, t,
                         args[t].problems, args[t].first_error,
                         (unsigned long long)fs.suspected,
                         (unsigned long long)fs.attempts_fenced);
            }
        }
        release_some(rt, &seed, &drained, &expected);
        /* Nothing failed here: a TaskManager declared failed would be a
         * false suspicion (and would rerun items). */
        fleet_failure_stats_t fs;
        assert_int_equal(fleet_failure_stats(rt, &fs), 0);
        assert_int_equal(fs.suspected, 0);
        assert_int_equal(fs.attempts_fenced, 0);
        fleet_runtime_destroy(rt); /* drains the released jobs */
        assert_int_equal(atomic_load(&drained), expected);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_mixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
