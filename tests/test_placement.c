/*
 * test_placement: jobs pinned to a TaskManager (fleet_submit_on) and the
 * TaskManager status (fleet_tm_status).
 *
 * Every item of a pinned job runs on a worker of its TaskManager — with 2
 * and 3 TaskManagers of several workers, while the others are idle and
 * would steal, with many submitters at once, from task bodies of other
 * TaskManagers that wait for it (crosswise too), while its TaskManager is
 * busy — unless that TaskManager was declared failed meanwhile (failover),
 * which its failure count then shows: that is the contract the stream
 * layer relies on, and what every check here allows. After a CRASH or a
 * HANG of the pinned TaskManager every item still runs, and pinned work
 * goes back to it once it has restarted; the counts add up across
 * restarts.
 *
 * Items record the TaskManager of the thread that runs them
 * (fl_current_tm, an internal helper for tests). Worker threads only
 * record; every assertion runs on the test thread.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "fleet.h"
#include "ring.h"    /* FL_RING_TSAN */
#include "runtime.h" /* fl_current_tm */
#include "rng.h"
#include "sum64.h"
#include "waiter.h"

#ifdef FL_RING_TSAN
#define STRESS_OPS 50
#define CHAOS_JOBS 60
#else
#define STRESS_OPS 250
#define CHAOS_JOBS 250
#endif

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void sleep_us(unsigned us)
{
    struct timespec t = {us / 1000000, (long)(us % 1000000) * 1000L};
    nanosleep(&t, NULL);
}

/* Defaults, but with `tms` pools of `workers`. */
static fleet_config_t config(unsigned tms, unsigned workers)
{
    fleet_config_t c;
    fleet_config_init(&c);
    c.task_managers = tms;
    c.workers_per_tm = workers;
    return c;
}

/* For failures: detected after 30 ms of silence, restarted after 3 s
 * (in effect, only by hand; but a TaskManager suspected for want of CPU
 * comes back, so that jobs are not cancelled). */
static fleet_config_t ft_config(unsigned tms, unsigned workers)
{
    fleet_config_t c = config(tms, workers);
    c.heartbeat_interval_us = 2000;
    c.heartbeat_timeout_us = 30000;
    c.restart.kind = FLEET_RESTART_FIXED_DELAY;
    c.restart.delay_ms = 3000;
    return c;
}

static fleet_runtime_t *make(const fleet_config_t *c)
{
    fleet_runtime_t *rt = NULL;
    assert_int_equal(fleet_runtime_create(&rt, c), 0);
    return rt;
}

static fleet_tm_status_t status(fleet_runtime_t *rt, unsigned tm)
{
    fleet_tm_status_t s;
    assert_int_equal(fleet_tm_status(rt, tm, &s), 0);
    return s;
}

/* --- the work ------------------------------------------------------------ */

/* A job pinned to `want`: each item counts its runs, and items run by a
 * thread that is not a worker of `want` are counted in `off`. */
struct placed {
    fleet_runtime_t *rt;
    int want;
    size_t n;
    _Atomic unsigned *hits;
    _Atomic size_t off;
    _Atomic int off_tm;       /* where the last of those ran; -1: outside */
    _Atomic size_t entered;   /* items begun, all attempts */
    _Atomic bool *gate;       /* if set, items wait until it is true */
    unsigned sleep_us;        /* per item, besides the work */
    fleet_tm_status_t before; /* of `want`, read just before the submit */
};

static void placed_init(struct placed *p, fleet_runtime_t *rt, int want,
                        size_t n)
{
    memset(p, 0, sizeof(*p));
    p->rt = rt;
    p->want = want;
    p->n = n;
    p->hits = calloc(n ? n : 1, sizeof(*p->hits));
    assert_non_null(p->hits);
    atomic_init(&p->off, 0);
    atomic_init(&p->off_tm, 0);
    atomic_init(&p->entered, 0);
}

static void placed_free(struct placed *p)
{
    free((void *)p->hits);
    p->hits = NULL;
}

static void placed_run(void *ctx, size_t b, size_t e)
{
    struct placed *p = ctx;
    int tm = fl_current_tm(p->rt);
    for (size_t i = b; i < e; i++) {
        atomic_fetch_add_explicit(&p->entered, 1, memory_order_relaxed);
        if (p->gate != NULL)
            while (!atomic_load_explicit(p->gate, memory_order_acquire))
                sleep_us(50);
        if (p->sleep_us != 0)
            sleep_us(p->sleep_us);
        uint64_t v = sum64_item(i);
        __asm__ volatile("" : : "r"(v)); /* keep the work: v is unused */
        atomic_fetch_add_explicit(&p->hits[i], 1, memory_order_relaxed);
    }
    if (tm != p->want) {
        atomic_fetch_add_explicit(&p->off, e - b, memory_order_relaxed);
        atomic_store_explicit(&p->off_tm, tm, memory_order_relaxed);
    }
}

/* Checks a finished job: every item ran, exactly once unless `failed`;
 * none ran off its TaskManager unless `failed`. Returns how many did. */
static size_t placed_check(struct placed *p, bool failed)
{
    for (size_t i = 0; i < p->n; i++) {
        unsigned c = atomic_load(&p->hits[i]);
        if (c == 0)
            fail_msg("item %zu of a job pinned to %d never ran", i, p->want);
        if (!failed && c != 1)
            fail_msg("item %zu of a job pinned to %d ran %u times", i, p->want,
                     c);
    }
    size_t off = atomic_load(&p->off);
    if (!failed && off != 0)
        fail_msg("%zu of %zu items of a job pinned to TaskManager %d ran "
                 "on %d, with no failure",
                 off, p->n, p->want, atomic_load(&p->off_tm));
    return off;
}

/* The contract of fleet_tm_status: a job may run off its TaskManager only
 * if that was not live at its submit, or declared failed since. */
static bool failed_between(const fleet_tm_status_t *before,
                           const fleet_tm_status_t *after)
{
    return !before->live || after->failures != before->failures;
}

/* Submits n items pinned to tm, waits and checks them. Returns whether tm
 * stayed up throughout (then the check was strict). */
static bool run_pinned(fleet_runtime_t *rt, unsigned tm, size_t n)
{
    struct placed p;
    placed_init(&p, rt, (int)tm, n);
    fleet_tm_status_t s0 = status(rt, tm);
    fleet_job_t *job;
    assert_int_equal(fleet_submit_on(rt, tm, placed_run, &p, 0, n, &job), 0);
    assert_int_equal(fleet_job_wait(job), 0);
    fleet_job_release(job);
    fleet_tm_status_t s1 = status(rt, tm);
    bool failed = failed_between(&s0, &s1);
    placed_check(&p, failed);
    placed_free(&p);
    return !failed;
}

/* Small jobs until cond holds or ms pass: the monitor ticks only while the
 * runtime is in use. */
static bool pump_until(fleet_runtime_t *rt,
                       bool (*cond)(fleet_runtime_t *, unsigned, uint64_t),
                       unsigned tm, uint64_t arg, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    struct placed p;
    placed_init(&p, rt, -1, 256);
    bool ok;
    while (!(ok = cond(rt, tm, arg)) && now_ms() < end) {
        int err = fleet_parallel_for(rt, placed_run, &p, 0, p.n);
        if (err != 0)
            fail_msg("a pump job failed: %d", err);
        sleep_us(500);
    }
    placed_free(&p);
    return ok;
}

static bool failures_at_least(fleet_runtime_t *rt, unsigned tm, uint64_t n)
{
    fleet_tm_status_t s;
    return fleet_tm_status(rt, tm, &s) == 0 && s.failures >= n;
}

static bool is_live(fleet_runtime_t *rt, unsigned tm, uint64_t unused)
{
    (void)unused;
    fleet_tm_status_t s;
    return fleet_tm_status(rt, tm, &s) == 0 && s.live;
}

/* --- tests ------------------------------------------------------------- */

static void test_api_errors(void **state)
{
    (void)state;
    fleet_config_t c = config(2, 1);
    fleet_runtime_t *rt = make(&c);
    struct placed p;
    placed_init(&p, rt, 0, 10);
    fleet_job_t *job = NULL;
    assert_int_equal(fleet_submit_on(NULL, 0, placed_run, &p, 0, 10, &job),
                     -EINVAL);
    assert_int_equal(fleet_submit_on(rt, 2, placed_run, &p, 0, 10, &job),
                     -EINVAL);
    assert_int_equal(
        fleet_submit_on(rt, UINT32_MAX, placed_run, &p, 0, 10, &job), -EINVAL);
    assert_int_equal(fleet_submit_on(rt, 0, NULL, &p, 0, 10, &job), -EINVAL);
    assert_int_equal(fleet_submit_on(rt, 0, placed_run, &p, 0, 10, NULL),
                     -EINVAL);
    assert_int_equal(fleet_submit_on(rt, 0, placed_run, &p, 5, 4, &job),
                     -EINVAL);
    assert_null(job);

    fleet_tm_status_t s = {true, 7, 7};
    assert_int_equal(fleet_tm_status(NULL, 0, &s), -EINVAL);
    assert_int_equal(fleet_tm_status(rt, 2, &s), -EINVAL);
    assert_int_equal(fleet_tm_status(rt, 0, NULL), -EINVAL);
    assert_int_equal(fleet_tm_status(rt, 1, &s), 0);
    assert_true(s.live);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.restarts, 0);

    /* An empty range completes at once and runs nothing. */
    assert_int_equal(fleet_submit_on(rt, 1, placed_run, &p, 3, 3, &job), 0);
    assert_int_equal(fleet_job_poll(job), 0);
    assert_int_equal(fleet_job_wait(job), 0);
    fleet_job_release(job);
    assert_int_equal(atomic_load(&p.entered), 0); /* no callback ran */

    /* The last TaskManager is a valid one. */
    p.want = 1;
    assert_int_equal(fleet_submit_on(rt, 1, placed_run, &p, 0, 10, &job), 0);
    assert_int_equal(fleet_job_wait(job), 0);
    fleet_job_release(job);
    placed_check(&p, status(rt, 1).failures != 0);
    placed_free(&p);
    fleet_runtime_destroy(rt);

    /* Without fault tolerance: always live, nothing counted. */
    c.fault_tolerance = false;
    rt = make(&c);
    s = status(rt, 0);
    assert_true(s.live);
    assert_int_equal(s.failures + s.restarts, 0);
    fleet_runtime_destroy(rt);
}

/* Pinned jobs of every size on every TaskManager, with 2 and 3 of them of
 * 1-3 workers: each item once, all on the pinned one. */
static void test_every_item_on_its_tm(void **state)
{
    (void)state;
    static const unsigned shapes[][2] = {{2, 2}, {2, 3}, {3, 2}, {3, 1}};
    static const size_t sizes[] = {1, 7, 1000, 30000, 300000};
    unsigned strict = 0, runs = 0;
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        fleet_config_t c = config(shapes[k][0], shapes[k][1]);
        fleet_runtime_t *rt = make(&c);
        for (int round = 0; round < 2; round++)
            for (unsigned tm = 0; tm < shapes[k][0]; tm++)
                for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                    strict += run_pinned(rt, tm, sizes[i]);
                    runs++;
                }
        fleet_runtime_destroy(rt);
    }
    print_message("%u of %u pinned jobs ran with their TaskManager up\n",
                  strict, runs);
    /* A TaskManager is declared failed here only if its heartbeat thread
     * got no CPU for a timeout: rare, so most checks were strict. */
    assert_true(strict >= runs / 2);
}

/* A long pinned job while every other TaskManager is idle: they would take
 * half of it (a control job, not pinned, shows how much) and steal tails
 * of it, but may not. One worker per pool leaves a CPU free, so an idle
 * pool is woken to steal on every dispatcher tick. */
static void test_idle_tms_do_not_steal(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        fleet_config_t c = config(2, workers);
        c.spin_us = 500; /* idle workers spin longer: thieves at hand */
        fleet_runtime_t *rt = make(&c);
        size_t n = 400000;
        for (unsigned tm = 0; tm < 2; tm++) {
            struct placed p;
            placed_init(&p, rt, (int)tm, n);
            fleet_tm_status_t s0 = status(rt, tm);
            fleet_job_t *job;
            assert_int_equal(
                fleet_submit_on(rt, tm, placed_run, &p, 0, n, &job), 0);
            assert_int_equal(fleet_job_wait(job), 0);
            fleet_job_release(job);
            fleet_tm_status_t s1 = status(rt, tm);
            placed_check(&p, failed_between(&s0, &s1));
            placed_free(&p);

            /* The control: the same job, not pinned. */
            placed_init(&p, rt, (int)tm, n);
            assert_int_equal(fleet_submit(rt, placed_run, &p, 0, n, &job), 0);
            assert_int_equal(fleet_job_wait(job), 0);
            fleet_job_release(job);
            print_message("%u worker(s) per pool: unpinned, %zu of %zu items "
                          "ran off TaskManager %u\n",
                          workers, atomic_load(&p.off), n, tm);
            placed_free(&p);
        }
        fleet_runtime_destroy(rt);
    }
}

/* --- many submitters ------------------------------------------------------ */

struct submitter {
    fleet_runtime_t *rt;
    unsigned ntm;
    uint64_t seed;
    unsigned ops;
    /* Recorded for the test thread. */
    int err;            /* first error returned */
    unsigned lost;      /* items never run */
    unsigned twice;     /* items run twice with no failure */
    unsigned misplaced; /* jobs partly run elsewhere with no failure */
    unsigned failovers; /* jobs that ran elsewhere after a failure */
    unsigned bad_sums;
};

static void note_err(struct submitter *s, int err)
{
    if (err != 0 && s->err == 0)
        s->err = err;
}

static void rfold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += i;
    *(uint64_t *)p += s;
}

/* Records what placed_check would assert. */
static void note_job(struct submitter *s, struct placed *p,
                     const fleet_tm_status_t *before)
{
    fleet_tm_status_t after;
    note_err(s, fleet_tm_status(s->rt, (unsigned)p->want, &after));
    bool failed = failed_between(before, &after);
    for (size_t i = 0; i < p->n; i++) {
        unsigned c = atomic_load(&p->hits[i]);
        s->lost += c == 0;
        s->twice += c > 1 && !failed;
    }
    if (atomic_load(&p->off) != 0) {
        if (failed)
            s->failovers++;
        else
            s->misplaced++;
    }
}

/* Up to three pinned jobs in flight on random TaskManagers, waited for in
 * random order, and now and then a reduction that may run anywhere. */
static void *submit_loop(void *arg)
{
    struct submitter *s = arg;
    fleet_reducer_t r = {sizeof(uint64_t), sum64_init, rfold, sum64_combine};
    for (unsigned op = 0; op < s->ops && s->err == 0; op++) {
        unsigned k = 1 + (unsigned)rng_below(&s->seed, 3);
        struct placed p[3];
        fleet_tm_status_t before[3];
        fleet_job_t *job[3];
        for (unsigned j = 0; j < k; j++) {
            unsigned tm = (unsigned)rng_below(&s->seed, s->ntm);
            size_t n = 1 + rng_below(&s->seed, op % 8 == 0 ? 100000 : 5000);
            memset(&p[j], 0, sizeof(p[j]));
            p[j].rt = s->rt;
            p[j].want = (int)tm;
            p[j].n = n;
            p[j].hits = calloc(n, sizeof(*p[j].hits));
            if (p[j].hits == NULL) {
                note_err(s, -ENOMEM);
                return NULL;
            }
            note_err(s, fleet_tm_status(s->rt, tm, &before[j]));
            note_err(s, fleet_submit_on(s->rt, tm, placed_run, &p[j], 0, n,
                                        &job[j]));
            if (s->err != 0)
                return NULL; /* leaks: the test fails anyway */
        }
        if (op % 4 == 0) {
            uint64_t n = 1 + rng_below(&s->seed, 50000), sum = 0;
            note_err(s, fleet_parallel_reduce(s->rt, &r, NULL, 0, n, &sum));
            s->bad_sums += sum != n * (n - 1) / 2;
        }
        unsigned first = (unsigned)rng_below(&s->seed, k);
        for (unsigned j = 0; j < k; j++) {
            unsigned i = (first + j) % k;
            note_err(s, fleet_job_wait(job[i]));
            fleet_job_release(job[i]);
            note_job(s, &p[i], &before[i]);
            free((void *)p[i].hits);
        }
    }
    return NULL;
}

static void run_submitters(fleet_runtime_t *rt, unsigned ntm, unsigned ops,
                           unsigned *failovers)
{
    enum { SUBMITTERS = 4 };
    pthread_t th[SUBMITTERS];
    struct submitter s[SUBMITTERS];
    for (unsigned i = 0; i < SUBMITTERS; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        s[i].rt = rt;
        s[i].ntm = ntm;
        s[i].seed = 1000 + i;
        s[i].ops = ops;
        assert_int_equal(pthread_create(&th[i], NULL, submit_loop, &s[i]), 0);
    }
    for (unsigned i = 0; i < SUBMITTERS; i++)
        pthread_join(th[i], NULL);
    *failovers = 0;
    for (unsigned i = 0; i < SUBMITTERS; i++) {
        assert_int_equal(s[i].err, 0);
        assert_int_equal(s[i].lost, 0);
        assert_int_equal(s[i].twice, 0);
        assert_int_equal(s[i].misplaced, 0);
        assert_int_equal(s[i].bad_sums, 0);
        *failovers += s[i].failovers;
    }
}

/* Four threads, each with up to three pinned jobs in flight on random
 * TaskManagers, plus reductions anywhere. */
static void test_concurrent_submitters(void **state)
{
    (void)state;
    static const unsigned shapes[][2] = {{3, 2}, {2, 1}};
    for (size_t k = 0; k < 2; k++) {
        fleet_config_t c = config(shapes[k][0], shapes[k][1]);
        fleet_runtime_t *rt = make(&c);
        unsigned failovers;
        run_submitters(rt, shapes[k][0], STRESS_OPS, &failovers);
        print_message("%u x %u: %u jobs failed over (suspected failures)\n",
                      shapes[k][0], shapes[k][1], failovers);
        fleet_runtime_destroy(rt);
    }
}

/* Seeded chaos (crashes, hangs, slow pools, restarts) under the same
 * submitters: every item runs, no job waits forever, and a job runs off
 * its TaskManager only after that one's failure was counted. */
static void test_chaos(void **state)
{
    (void)state;
    fleet_config_t c = config(3, 1);
    c.chaos_seed = 0x91AC3;
    c.chaos_mtbf_us = 2000;
    c.chaos_fault_us = 3000;
    c.heartbeat_interval_us = 500;
    c.heartbeat_timeout_us = 4000;
    c.restart.kind = FLEET_RESTART_FIXED_DELAY;
    c.restart.delay_ms = 3;
    c.speculation_floor_us = 1000;
    fleet_runtime_t *rt = make(&c);
    unsigned failovers;
    run_submitters(rt, 3, CHAOS_JOBS / 4, &failovers);
    fleet_failure_stats_t fs;
    assert_int_equal(fleet_failure_stats(rt, &fs), 0);
    uint64_t failures = 0;
    for (unsigned tm = 0; tm < 3; tm++)
        failures += status(rt, tm).failures;
    print_message(
        "chaos: %llu injected, %llu declared failed, %u pinned "
        "jobs failed over\n",
        (unsigned long long)(fs.injected[0] + fs.injected[1] + fs.injected[2]),
        (unsigned long long)failures, failovers);
    assert_true(fs.injected[0] + fs.injected[1] + fs.injected[2] >= 10);
    assert_int_equal(fs.jobs_cancelled, 0);
    fleet_runtime_destroy(rt);
}

/* --- nesting ----------------------------------------------------------- */

/* Each item of an outer job runs an inner job pinned to inner_tm and waits
 * for it. */
struct outer {
    fleet_runtime_t *rt;
    unsigned inner_tm;
    struct placed *inner; /* one per outer item */
    _Atomic unsigned errors;
};

static void outer_run(void *ctx, size_t b, size_t e)
{
    struct outer *o = ctx;
    for (size_t i = b; i < e; i++) {
        struct placed *p = &o->inner[i];
        fleet_job_t *job;
        if (fleet_tm_status(o->rt, o->inner_tm, &p->before) != 0 ||
            fleet_submit_on(o->rt, o->inner_tm, placed_run, p, 0, p->n, &job) !=
                0) {
            atomic_fetch_add(&o->errors, 1);
            continue;
        }
        if (fleet_job_wait(job) != 0)
            atomic_fetch_add(&o->errors, 1);
        fleet_job_release(job);
    }
}

static void outer_init(struct outer *o, fleet_runtime_t *rt, unsigned inner_tm,
                       size_t rows, size_t inner_n)
{
    o->rt = rt;
    o->inner_tm = inner_tm;
    atomic_init(&o->errors, 0);
    o->inner = calloc(rows, sizeof(*o->inner));
    assert_non_null(o->inner);
    for (size_t i = 0; i < rows; i++)
        placed_init(&o->inner[i], rt, (int)inner_tm, inner_n);
}

/* Checks the inner jobs (each strictly unless its TaskManager failed
 * since its submit) and frees them. */
static void outer_check(struct outer *o, size_t rows)
{
    assert_int_equal(atomic_load(&o->errors), 0);
    fleet_tm_status_t after = status(o->rt, o->inner_tm);
    for (size_t i = 0; i < rows; i++) {
        placed_check(&o->inner[i], failed_between(&o->inner[i].before, &after));
        placed_free(&o->inner[i]);
    }
    free(o->inner);
}

/* Outer jobs pinned to one TaskManager whose items wait for inner jobs
 * pinned to another — crosswise at once, 0 -> 1 and 1 -> 0, so that with
 * one worker per pool each worker waits for the other's pool — and to
 * their own; and an outer job that may run anywhere, also on the waiting
 * test thread. No deadlock; every inner item on its TaskManager. */
static void test_nested_pinned(void **state)
{
    (void)state;
    static const unsigned shapes[][2] = {{2, 1}, {2, 2}, {3, 1}};
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        unsigned ntm = shapes[k][0];
        fleet_config_t c = config(ntm, shapes[k][1]);
        fleet_runtime_t *rt = make(&c);
        for (int round = 0; round < 3; round++) {
            size_t rows = 12, inner_n = round == 0 ? 1 : 3000 * (size_t)round;
            struct outer cross[2], self, any;
            outer_init(&cross[0], rt, 1, rows, inner_n);
            outer_init(&cross[1], rt, 0, rows, inner_n);
            outer_init(&self, rt, ntm - 1, rows, inner_n);
            outer_init(&any, rt, 0, rows, inner_n);
            fleet_job_t *jobs[4];
            assert_int_equal(
                fleet_submit_on(rt, 0, outer_run, &cross[0], 0, rows, &jobs[0]),
                0);
            assert_int_equal(
                fleet_submit_on(rt, 1, outer_run, &cross[1], 0, rows, &jobs[1]),
                0);
            assert_int_equal(fleet_submit_on(rt, ntm - 1, outer_run, &self, 0,
                                             rows, &jobs[2]),
                             0);
            assert_int_equal(
                fleet_submit(rt, outer_run, &any, 0, rows, &jobs[3]), 0);
            for (int j = 3; j >= 0; j--) {
                assert_int_equal(fleet_job_wait(jobs[j]), 0);
                fleet_job_release(jobs[j]);
            }
            outer_check(&cross[0], rows);
            outer_check(&cross[1], rows);
            outer_check(&self, rows);
            outer_check(&any, rows);
        }
        fleet_runtime_destroy(rt);
    }
}

/* --- a busy TaskManager ------------------------------------------------ */

/* Every worker of TaskManager 0 is held inside a long job pinned to it:
 * a second job pinned to 0 waits — nobody else may run it, not the idle
 * TaskManager 1 nor a thread waiting for it — while a job that may run
 * anywhere goes ahead on 1; once the long job ends, the second runs on 0. */
static void test_busy_tm(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 2; workers++) {
        fleet_config_t c = config(2, workers);
        fleet_runtime_t *rt = make(&c);
        _Atomic bool gate = false;
        struct placed hold, second, other;
        placed_init(&hold, rt, 0, 64);
        hold.gate = &gate;
        placed_init(&second, rt, 0, 20000);
        placed_init(&other, rt, 1, 20000);
        fleet_tm_status_t s0 = status(rt, 0);
        fleet_job_t *jh, *js, *jo;
        assert_int_equal(
            fleet_submit_on(rt, 0, placed_run, &hold, 0, hold.n, &jh), 0);
        /* Until every worker of 0 is inside it. */
        uint64_t end = now_ms() + 5000;
        while (atomic_load(&hold.entered) < workers && now_ms() < end)
            sleep_us(200);
        assert_true(atomic_load(&hold.entered) >= workers);
        assert_int_equal(
            fleet_submit_on(rt, 0, placed_run, &second, 0, second.n, &js), 0);
        assert_int_equal(fleet_submit(rt, placed_run, &other, 0, other.n, &jo),
                         0);
        assert_int_equal(fleet_job_wait(jo), 0); /* not held up */
        fleet_job_release(jo);
        struct waiter w = {js, 1};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, wait_job, &w), 0);
        sleep_us(30000); /* dispatcher ticks: thieves would come now */
        fleet_tm_status_t s1 = status(rt, 0);
        if (!failed_between(&s0, &s1)) {
            assert_int_equal(fleet_job_poll(js), -EAGAIN);
            assert_int_equal(fleet_job_poll(jh), -EAGAIN);
        }
        atomic_store_explicit(&gate, true, memory_order_release);
        pthread_join(th, NULL);
        assert_int_equal(w.err, 0);
        assert_int_equal(fleet_job_wait(js), 0);
        assert_int_equal(fleet_job_wait(jh), 0);
        fleet_job_release(js);
        fleet_job_release(jh);
        s1 = status(rt, 0);
        placed_check(&hold, failed_between(&s0, &s1));
        placed_check(&second, failed_between(&s0, &s1));
        for (size_t i = 0; i < other.n; i++)
            assert_int_equal(atomic_load(&other.hits[i]), 1);
        placed_free(&hold);
        placed_free(&second);
        placed_free(&other);
        fleet_runtime_destroy(rt);
    }
}

/* --- failures ------------------------------------------------------------ */

/* Submits n items pinned to TaskManager 0 that wait at a gate; once one
 * of them has begun, fails TaskManager 0 (`how`), opens the gate and waits
 * for the job, which must succeed. */
static void fail_while_gated(fleet_runtime_t *rt, struct placed *p, size_t n,
                             fleet_fail_t how)
{
    _Atomic bool gate = false;
    placed_init(p, rt, 0, n);
    p->gate = &gate;
    fleet_job_t *job;
    assert_int_equal(fleet_submit_on(rt, 0, placed_run, p, 0, p->n, &job), 0);
    uint64_t end = now_ms() + 5000;
    while (atomic_load(&p->entered) == 0 && now_ms() < end)
        sleep_us(200);
    assert_true(atomic_load(&p->entered) != 0);
    assert_int_equal(fleet_tm_fail(rt, 0, how), 0);
    atomic_store_explicit(&gate, true, memory_order_release);
    assert_int_equal(fleet_job_wait(job), 0);
    fleet_job_release(job);
    p->gate = NULL; /* gone with this frame; every item has passed it */
}

/*
 * Fails TaskManager 0 (`how`) while every item of a job pinned to it waits
 * at a gate inside its first chunk, so that the job can end only through
 * detection and failover to TaskManager 1. Then: every item ran, some on 1;
 * 0 counts one failure and stays down (no restart strategy) until
 * recovered by hand; a job pinned to it meanwhile fails over too; after the
 * restart pinned work runs on 0 again.
 */
static void fail_pinned(fleet_fail_t how, unsigned workers)
{
    fleet_config_t c = ft_config(2, workers);
    fleet_runtime_t *rt = make(&c);
    struct placed p;
    fail_while_gated(rt, &p, 50000, how);
    fleet_tm_status_t s = status(rt, 0);
    assert_false(s.live);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.restarts, 0);
    size_t off = placed_check(&p, true);
    print_message("%s of pinned TaskManager 0 (%u workers): %zu of %zu items "
                  "ran on %d\n",
                  how == FLEET_FAIL_CRASH ? "crash" : "hang", workers, off, p.n,
                  atomic_load(&p.off_tm));
    assert_true(off > 0);
    assert_int_equal(atomic_load(&p.off_tm), 1);
    placed_free(&p);

    /* Down: pinned work runs on any live TaskManager meanwhile. */
    placed_init(&p, rt, 0, 20000);
    fleet_job_t *job;
    assert_int_equal(fleet_submit_on(rt, 0, placed_run, &p, 0, p.n, &job), 0);
    assert_int_equal(fleet_job_wait(job), 0);
    fleet_job_release(job);
    assert_int_equal(placed_check(&p, true), p.n);
    placed_free(&p);
    s = status(rt, 0);
    assert_false(s.live);
    assert_int_equal(s.restarts, 0);

    /* Back: pinned work goes to 0 again. */
    assert_int_equal(fleet_tm_recover(rt, 0), 0);
    assert_true(pump_until(rt, is_live, 0, 0, 5000));
    s = status(rt, 0);
    assert_true(s.live);
    assert_true(s.failures >= 1);
    assert_int_equal(s.restarts, s.failures);
    bool strict = false;
    for (int i = 0; i < 5 && !strict; i++)
        strict = run_pinned(rt, 0, 100000);
    assert_true(strict);
    fleet_runtime_destroy(rt);
}

static void test_crash_pinned_tm(void **state)
{
    (void)state;
    fail_pinned(FLEET_FAIL_CRASH, 1);
    fail_pinned(FLEET_FAIL_CRASH, 2);
}

static void test_hang_pinned_tm(void **state)
{
    (void)state;
    fail_pinned(FLEET_FAIL_HANG, 1);
    fail_pinned(FLEET_FAIL_HANG, 2);

    /* The only TaskManager hangs: its pinned job ends after detection and
     * the restart, on it. */
    fleet_config_t c = ft_config(1, 2);
    c.restart.kind = FLEET_RESTART_FIXED_DELAY;
    c.restart.delay_ms = 5;
    fleet_runtime_t *rt = make(&c);
    struct placed p;
    fail_while_gated(rt, &p, 20000, FLEET_FAIL_HANG);
    fleet_tm_status_t s = status(rt, 0);
    assert_true(s.failures >= 1);
    assert_true(s.restarts >= 1);
    assert_int_equal(placed_check(&p, true), 0);
    placed_free(&p);
    fleet_runtime_destroy(rt);
}

/* Crashes TaskManager 1 three times, each once it has restarted: its
 * counts follow, 0's stay, and they add up to the runtime's totals. */
static void test_status_across_restarts(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(2, 1);
    c.restart.kind = FLEET_RESTART_FIXED_DELAY;
    c.restart.delay_ms = 5;
    fleet_runtime_t *rt = make(&c);
    for (uint64_t k = 1; k <= 3; k++) {
        uint64_t end = now_ms() + 5000;
        int err;
        while ((err = fleet_tm_fail(rt, 1, FLEET_FAIL_CRASH)) != 0 &&
               now_ms() < end)
            (void)pump_until(rt, is_live, 1, 0, 2);
        assert_int_equal(err, 0);
        assert_true(pump_until(rt, failures_at_least, 1, k, 5000));
        assert_true(pump_until(rt, is_live, 1, 0, 5000));
        fleet_tm_status_t s = status(rt, 1);
        assert_true(s.live);
        assert_true(s.failures >= k);
        assert_int_equal(s.restarts, s.failures);
    }
    /* Pinned work on the restarted TaskManager stays there. */
    bool strict = false;
    for (int i = 0; i < 5 && !strict; i++)
        strict = run_pinned(rt, 1, 50000);
    assert_true(strict);
    /* Per TaskManager counts add up to the runtime's totals (counted one
     * after the other: read again while a failure or restart passes). */
    bool same = false;
    fleet_failure_stats_t fs;
    uint64_t failures = 0, restarts = 0;
    for (int i = 0; i < 100 && !same; i++) {
        fleet_tm_status_t s0 = status(rt, 0), s1 = status(rt, 1);
        failures = s0.failures + s1.failures;
        restarts = s0.restarts + s1.restarts;
        assert_int_equal(fleet_failure_stats(rt, &fs), 0);
        same = failures == fs.detected[0] + fs.detected[1] + fs.detected[2] +
                               fs.suspected &&
               restarts == fs.restarts;
        if (!same)
            sleep_us(1000);
    }
    print_message("failures %llu (crashes detected %llu, suspected %llu), "
                  "restarts %llu\n",
                  (unsigned long long)failures,
                  (unsigned long long)fs.detected[FLEET_FAIL_CRASH],
                  (unsigned long long)fs.suspected,
                  (unsigned long long)restarts);
    assert_true(same);
    assert_true(fs.detected[FLEET_FAIL_CRASH] >= 3);
    fleet_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_every_item_on_its_tm),
        cmocka_unit_test(test_idle_tms_do_not_steal),
        cmocka_unit_test(test_busy_tm),
        cmocka_unit_test(test_nested_pinned),
        cmocka_unit_test(test_concurrent_submitters),
        cmocka_unit_test(test_crash_pinned_tm),
        cmocka_unit_test(test_hang_pinned_tm),
        cmocka_unit_test(test_status_across_restarts),
        cmocka_unit_test(test_chaos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
