/*
 * test_cost: the item-cost table, and the inline path it steers: a
 * blocking job known to be smaller than a hand-off runs on its caller; one
 * that turns out bigger gives what is left to the runtime; results stay
 * exact and refusals stay as documented.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <fleet/metrics.h>

#include "cost.h"
#include "runtime.h"
#include "sum64.h"

static void test_table(void **state)
{
    (void)state;
    static struct fl_cost_table t;
    fl_cost_init(&t);
    uint64_t a = fl_cost_key((const void *)test_table, NULL);
    uint64_t b = fl_cost_key((const void *)test_table, &t);
    assert_true(a != b); /* the context is part of the key */
    assert_int_equal(fl_cost_get(&t, a), 0);
    fl_cost_put(&t, a, 100, 1000); /* 10 ns = 10000 ps per item */
    assert_int_equal(fl_cost_get(&t, a), 10000);
    fl_cost_put(&t, a, 100, 5000); /* 50 000 ps: averaged 3:1 */
    assert_int_equal(fl_cost_get(&t, a), (3 * 10000 + 50000) / 4);
    fl_cost_put(&t, a, 0, 5000); /* nothing learned from no items */
    assert_int_equal(fl_cost_get(&t, a), (3 * 10000 + 50000) / 4);
    fl_cost_put(&t, b, 1000000, 0); /* too cheap to time: 1 ps, known */
    assert_int_equal(fl_cost_get(&t, b), 1);
    uint64_t c = b ^ (1ull << 40); /* same slot, another tag */
    assert_int_equal(fl_cost_get(&t, c), 0);
    fl_cost_put(&t, c, 1, UINT64_MAX); /* saturates, evicts b */
    assert_int_equal(fl_cost_get(&t, c), UINT32_MAX);
    assert_int_equal(fl_cost_get(&t, b), 0);
}

/* --- the inline path ---------------------------------------------------- */

struct work {
    pthread_t caller;
    size_t n;
    unsigned spin_us; /* per item */
    _Atomic unsigned *hits;
    _Atomic size_t elsewhere; /* items run by another thread */
};

static void spin_for(unsigned us)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) <
           (long)us * 1000L);
}

static void run_items(void *ctx, size_t b, size_t e)
{
    struct work *w = ctx;
    for (size_t i = b; i < e; i++) {
        if (w->spin_us != 0)
            spin_for(w->spin_us);
        atomic_fetch_add(&w->hits[i], 1);
    }
    if (!pthread_equal(pthread_self(), w->caller))
        atomic_fetch_add(&w->elsewhere, e - b);
}

static void sum_fold(void *ctx, size_t b, size_t e, void *p)
{
    struct work *w = ctx;
    for (size_t i = b; i < e; i++) {
        if (w->spin_us != 0)
            spin_for(w->spin_us);
        *(uint64_t *)p += i * i;
    }
    if (!pthread_equal(pthread_self(), w->caller))
        atomic_fetch_add(&w->elsewhere, e - b);
}

static const fleet_reducer_t summer = {sizeof(uint64_t), sum64_init, sum_fold,
                                       sum64_combine};

static fleet_runtime_t *make(bool ft)
{
    fleet_config_t c;
    fleet_config_init(&c);
    c.task_managers = 2;
    c.workers_per_tm = 1;
    c.fault_tolerance = ft;
    fleet_runtime_t *rt = NULL;
    assert_int_equal(fleet_runtime_create(&rt, &c), 0);
    return rt;
}

/* Batches handed to the pools so far. */
static uint64_t batches_in(fleet_runtime_t *rt)
{
    fleet_metrics_t m;
    assert_int_equal(fleet_metrics_snapshot(rt, &m), 0);
    uint64_t n = 0;
    for (unsigned i = 0; i < m.task_managers; i++)
        n += m.tm[i].batches_in;
    return n;
}

/* The rest of a job its caller gave up on went to the pools (batches went
 * into their rings since `before`), and their workers ran part of it. */
static void assert_handed_over(fleet_runtime_t *rt, uint64_t before,
                               const struct work *w)
{
    assert_true(batches_in(rt) > before);
    assert_true(atomic_load(&w->elsewhere) > 0);
}

/* Teaches rt that items of (fn, ctx) cost ps_per_item, whatever it knew. */
static void prime(fleet_runtime_t *rt, const void *fn, void *ctx,
                  uint32_t ps_per_item)
{
    uint64_t key = fl_cost_key(fn, ctx);
    atomic_store(&rt->costs.slot[key & (FL_COST_SLOTS - 1)],
                 (key >> 32) << 32 | ps_per_item);
    assert_int_equal(fl_cost_get(&rt->costs, key), ps_per_item);
}

static void reset(struct work *w)
{
    memset((void *)w->hits, 0, w->n * sizeof(*w->hits));
    atomic_store(&w->elsewhere, 0);
}

/* Items [0, n) ran once, the others not at all. */
static void check_once(const struct work *w, size_t n)
{
    for (size_t i = 0; i < w->n; i++)
        assert_int_equal(atomic_load(&w->hits[i]), i < n ? 1 : 0);
}

/* A job shorter than the first inline chunk (2000 ns / 8 at 10 ns an item:
 * 25 items) cannot give up part-way, however slow this build is. */
#define SHORT 8

static void test_inline_for(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(true);
    struct work w = {pthread_self(), 64, 0, NULL, 0};
    w.hits = calloc(w.n, sizeof(*w.hits));
    assert_non_null(w.hits);

    /* Known cheap (10 ns an item): all on the caller. */
    prime(rt, (const void *)run_items, &w, 10000);
    reset(&w);
    assert_int_equal(fleet_parallel_for(rt, run_items, &w, 0, SHORT), 0);
    check_once(&w, SHORT);
    assert_int_equal(atomic_load(&w.elsewhere), 0);
    assert_int_equal(atomic_load(&rt->inlined), 1);

    /* The same pair, now 200 us an item: the caller gives up after its
     * first chunk (25 items) and the rest goes to the workers. */
    prime(rt, (const void *)run_items, &w, 10000);
    w.spin_us = 200;
    reset(&w);
    uint64_t in = batches_in(rt);
    assert_int_equal(fleet_parallel_for(rt, run_items, &w, 0, w.n), 0);
    check_once(&w, w.n);
    assert_int_equal(atomic_load(&rt->inlined), 1);
    assert_handed_over(rt, in, &w);
    /* ... and the table learned it: no longer inline. */
    uint32_t ps =
        fl_cost_get(&rt->costs, fl_cost_key((const void *)run_items, &w));
    assert_true((uint64_t)ps * w.n > (uint64_t)FL_INLINE_NS * 1000u);

    /* Unknown pairs and large jobs take the normal path (which may still
     * run all on the caller, so only exactness is checked). */
    struct work w2 = w;
    w2.spin_us = 0;
    reset(&w2);
    assert_int_equal(fleet_parallel_for(rt, run_items, &w2, 0, w2.n), 0);
    check_once(&w2, w2.n);
    free((void *)w.hits);
    fleet_runtime_destroy(rt);
}

static void test_inline_reduce(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(true);
    struct work w = {pthread_self(), 64, 0, NULL, 0};
    uint64_t want = 0, want_short = 0;
    for (uint64_t i = 0; i < w.n; i++)
        want += i * i;
    for (uint64_t i = 0; i < SHORT; i++)
        want_short += i * i;

    prime(rt, (const void *)sum_fold, &w, 10000);
    uint64_t got = 7;
    assert_int_equal(fleet_parallel_reduce(rt, &summer, &w, 0, SHORT, &got), 0);
    assert_true(got == want_short);
    assert_int_equal(atomic_load(&w.elsewhere), 0);
    assert_int_equal(atomic_load(&rt->inlined), 1);

    /* Gives up part-way: the caller's partial and the runtime's result
     * are combined. */
    prime(rt, (const void *)sum_fold, &w, 10000);
    w.spin_us = 200;
    got = 7;
    uint64_t in = batches_in(rt);
    assert_int_equal(fleet_parallel_reduce(rt, &summer, &w, 0, w.n, &got), 0);
    assert_true(got == want);
    assert_handed_over(rt, in, &w);
    assert_int_equal(atomic_load(&rt->inlined), 1);

    /* A partial larger than the inline path keeps goes the normal way. */
    fleet_reducer_t big = summer;
    big.size = 4096;
    prime(rt, (const void *)sum_fold, &w, 10000);
    w.spin_us = 0;
    static unsigned char out[4096];
    memset(out, 0, sizeof(out));
    assert_int_equal(fleet_parallel_reduce(rt, &big, &w, 0, SHORT, out), 0);
    uint64_t first;
    memcpy(&first, out, sizeof(first));
    assert_true(first == want_short);
    assert_int_equal(atomic_load(&rt->inlined), 1);

    /* Known-tiny, but invalid: refused as always. */
    prime(rt, (const void *)sum_fold, &w, 10000);
    fleet_reducer_t bad = summer;
    bad.size = 0;
    assert_int_equal(fleet_parallel_reduce(rt, &bad, &w, 0, SHORT, &got),
                     -EINVAL);
    bad = summer;
    bad.combine = NULL;
    assert_int_equal(fleet_parallel_reduce(rt, &bad, &w, 0, SHORT, &got),
                     -EINVAL);
    assert_int_equal(fleet_parallel_reduce(rt, &summer, &w, SHORT, 0, &got),
                     -EINVAL);
    assert_int_equal(atomic_load(&rt->inlined), 1);
    fleet_runtime_destroy(rt);
}

/* A known-tiny job is refused like any other when nothing can run it. */
static void test_inline_refusals(void **state)
{
    (void)state;
    fleet_config_t c;
    fleet_config_init(&c);
    c.task_managers = 1;
    c.workers_per_tm = 1;
    c.heartbeat_interval_us = 1000;
    c.heartbeat_timeout_us = 5000;
    c.restart.kind = FLEET_RESTART_NONE;
    fleet_runtime_t *rt = NULL;
    assert_int_equal(fleet_runtime_create(&rt, &c), 0);
    struct work w = {pthread_self(), 64, 0, NULL, 0};
    w.hits = calloc(w.n, sizeof(*w.hits));
    assert_non_null(w.hits);
    assert_int_equal(fleet_tm_fail(rt, 0, FLEET_FAIL_CRASH), 0);
    /* A submitted job keeps the monitor ticking until it is cancelled (a
     * waiting caller would run it). */
    fleet_job_t *job;
    assert_int_equal(fleet_submit(rt, run_items, &w, 0, w.n, &job), 0);
    fleet_failure_stats_t s;
    for (int i = 0; i < 5000; i++) {
        fleet_failure_stats(rt, &s);
        if (s.jobs_cancelled != 0)
            break;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    assert_int_equal(fleet_job_wait(job), -ECANCELED);
    fleet_job_release(job);
    prime(rt, (const void *)run_items, &w, 10000);
    prime(rt, (const void *)sum_fold, &w, 10000);
    reset(&w);
    assert_int_equal(fleet_parallel_for(rt, run_items, &w, 0, w.n), -ECANCELED);
    uint64_t got = 7;
    assert_int_equal(fleet_parallel_reduce(rt, &summer, &w, 0, w.n, &got),
                     -ECANCELED);
    assert_true(got == 7); /* untouched */
    assert_int_equal(atomic_load(&rt->inlined), 0);
    assert_int_equal(fleet_parallel_for(NULL, run_items, &w, 0, w.n), -EINVAL);
    assert_int_equal(fleet_parallel_for(rt, run_items, &w, 5, 4), -EINVAL);
    free((void *)w.hits);
    fleet_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_inline_for),
        cmocka_unit_test(test_inline_reduce),
        cmocka_unit_test(test_inline_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
