/*
 * test_failures: simulated TaskManager failures — CRASH, HANG, SLOW,
 * recovery, restart strategies, cancellation, speculation — and a seeded
 * chaos stress. Whatever fails, every reduction equals the failure-free
 * result, every parallel_for item runs at least once (more only when an
 * attempt was fenced), and no job waits forever (ctest's timeout).
 *
 * Worker threads only record; every assertion runs on the test thread.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "fleet.h"
#include "ring.h" /* FL_RING_TSAN */
#include "rng.h"
#include "sum64.h"

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Heartbeats every 1 ms, declared failed after 10 ms of silence. */
static fleet_config_t ft_config(unsigned tms)
{
    fleet_config_t c;
    fleet_config_init(&c);
    c.task_managers = tms;
    c.workers_per_tm = 1;
    c.heartbeat_interval_us = 1000;
    c.heartbeat_timeout_us = 10000;
    c.restart.kind = FLEET_RESTART_FIXED_DELAY;
    c.restart.delay_ms = 5;
    return c;
}

static fleet_runtime_t *make(const fleet_config_t *c)
{
    fleet_runtime_t *rt = NULL;
    assert_int_equal(fleet_runtime_create(&rt, c), 0);
    return rt;
}

static fleet_failure_stats_t stats(fleet_runtime_t *rt)
{
    fleet_failure_stats_t s;
    assert_int_equal(fleet_failure_stats(rt, &s), 0);
    return s;
}

/* --- the work ------------------------------------------------------------ */

static void sum_fold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += sum64_item(i);
    *(uint64_t *)p += s;
}

static const fleet_reducer_t summer = {sizeof(uint64_t), sum64_init, sum_fold,
                                       sum64_combine};

static uint64_t serial_sum(size_t b, size_t e)
{
    uint64_t s = 0;
    sum_fold(NULL, b, e, &s);
    return s;
}

struct hits {
    size_t n;
    _Atomic unsigned *count;
};

static void hit(void *ctx, size_t b, size_t e)
{
    struct hits *h = ctx;
    for (size_t i = b; i < e; i++) {
        uint64_t v = sum64_item(i);
        __asm__ volatile("" : : "r"(v)); /* keep the work: v is unused */
        atomic_fetch_add_explicit(&h->count[i], 1, memory_order_relaxed);
    }
}

/* Every item at least once; returns how many ran more than once. */
static size_t check_hits(struct hits *h)
{
    size_t extra = 0;
    for (size_t i = 0; i < h->n; i++) {
        unsigned c = atomic_load(&h->count[i]);
        if (c == 0)
            fail_msg("item %zu never ran", i);
        extra += c > 1;
    }
    return extra;
}

/* Short jobs until cond(rt) holds or ms pass; the monitor ticks only while
 * the runtime is in use. Returns whether cond held. */
static bool pump_until(fleet_runtime_t *rt,
                       bool (*cond)(fleet_runtime_t *, void *), void *arg,
                       unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (!cond(rt, arg)) {
        if (now_ms() > end)
            return false;
        uint64_t got = 0;
        int err = fleet_parallel_reduce(rt, &summer, NULL, 0, 2000, &got);
        if (err == 0 && got != serial_sum(0, 2000))
            fail_msg("a pump job summed wrong");
        if (err != 0 && err != -ECANCELED)
            fail_msg("a pump job failed: %d", err);
        sleep_ms(1);
    }
    return true;
}

static bool never(fleet_runtime_t *rt, void *arg)
{
    (void)rt;
    (void)arg;
    return false;
}

/* Keeps the runtime in use for ms (the monitor ticks meanwhile). */
static void pump_for(fleet_runtime_t *rt, unsigned ms)
{
    (void)pump_until(rt, never, NULL, ms);
}

static bool detected_at_least(fleet_runtime_t *rt, void *arg)
{
    fleet_failure_stats_t s;
    fleet_failure_stats(rt, &s);
    return s.detected[0] + s.detected[1] + s.detected[2] >=
           *(const uint64_t *)arg;
}

static bool restarted_at_least(fleet_runtime_t *rt, void *arg)
{
    fleet_failure_stats_t s;
    fleet_failure_stats(rt, &s);
    return s.restarts >= *(const uint64_t *)arg;
}

/* Fails tm `after_ms` into a job, from another thread. */
struct injection {
    fleet_runtime_t *rt;
    unsigned tm;
    fleet_fail_t how;
    unsigned after_ms;
    int recover_after_ms; /* < 0: never */
    int err;
};

static void *inject(void *arg)
{
    struct injection *in = arg;
    sleep_ms(in->after_ms);
    in->err = fleet_tm_fail(in->rt, in->tm, in->how);
    if (in->recover_after_ms >= 0) {
        sleep_ms((unsigned)in->recover_after_ms);
        int err = fleet_tm_recover(in->rt, in->tm);
        if (in->err == 0)
            in->err = err;
    }
    return NULL;
}

/* --- tests ------------------------------------------------------------- */

static void test_config_and_errors(void **state)
{
    (void)state;
    fleet_runtime_t *rt = NULL;
    fleet_config_t c = ft_config(2);
    c.restart.kind = (fleet_restart_kind_t)9;
    assert_int_equal(fleet_runtime_create(&rt, &c), -EINVAL);
    c = ft_config(2);
    c.restart.kind = FLEET_RESTART_EXPONENTIAL_DELAY;
    c.restart.max_ms = c.restart.initial_ms - 1;
    assert_int_equal(fleet_runtime_create(&rt, &c), -EINVAL);
    c.restart.max_ms = 100;
    c.restart.multiplier = 0.5;
    assert_int_equal(fleet_runtime_create(&rt, &c), -EINVAL);
    c.restart.multiplier = 2;
    c.restart.jitter = 1.5;
    assert_int_equal(fleet_runtime_create(&rt, &c), -EINVAL);
    c = ft_config(2);
    c.restart.kind = FLEET_RESTART_FAILURE_RATE;
    c.restart.max_failures = 0;
    assert_int_equal(fleet_runtime_create(&rt, &c), -EINVAL);
    c = ft_config(2);
    c.slow_factor = 1;
    assert_int_equal(fleet_runtime_create(&rt, &c), -EINVAL);
    c = ft_config(2);
    c.chaos_seed = 1;
    c.chaos_weight[0] = c.chaos_weight[1] = c.chaos_weight[2] = 0;
    assert_int_equal(fleet_runtime_create(&rt, &c), -EINVAL);
    c = ft_config(2);
    c.chaos_seed = 1;
    c.fault_tolerance = false;
    assert_int_equal(fleet_runtime_create(&rt, &c), -EINVAL);
    assert_null(rt);

    /* Without fault tolerance nothing can be simulated. */
    c = ft_config(2);
    c.fault_tolerance = false;
    rt = make(&c);
    assert_int_equal(fleet_tm_fail(rt, 0, FLEET_FAIL_CRASH), -ENOTSUP);
    assert_int_equal(fleet_tm_recover(rt, 0), -ENOTSUP);
    fleet_runtime_destroy(rt);

    c = ft_config(2);
    rt = make(&c);
    assert_int_equal(fleet_tm_fail(rt, 2, FLEET_FAIL_CRASH), -EINVAL);
    assert_int_equal(fleet_tm_fail(rt, 0, (fleet_fail_t)3), -EINVAL);
    assert_int_equal(fleet_tm_recover(rt, 0), -EALREADY);
    assert_int_equal(fleet_tm_fail(rt, 0, FLEET_FAIL_HANG), 0);
    assert_int_equal(fleet_tm_fail(rt, 0, FLEET_FAIL_CRASH), -EALREADY);
    assert_int_equal(fleet_tm_recover(rt, 0), 0); /* before detection */
    assert_int_equal(fleet_tm_recover(rt, 0), -EALREADY);
    fleet_failure_stats_t s = stats(rt);
    assert_int_equal(s.injected[FLEET_FAIL_HANG], 1);
    assert_int_equal(s.task_managers_live, 2);
    fleet_runtime_destroy(rt);
}

/* A TaskManager crashed before the job starts: its batches are lost, found
 * by heartbeat, and run elsewhere. */
static void test_crash_before_job(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(2);
    fleet_runtime_t *rt = make(&c);
    size_t n = 400000;
    uint64_t want = serial_sum(0, n);
    assert_int_equal(fleet_tm_fail(rt, 1, FLEET_FAIL_CRASH), 0);
    for (int round = 0; round < 5; round++) {
        uint64_t got = 0;
        assert_int_equal(fleet_parallel_reduce(rt, &summer, NULL, 0, n, &got),
                         0);
        assert_int_equal(got, want);
    }
    uint64_t one = 1;
    assert_true(pump_until(rt, detected_at_least, &one, 5000));
    assert_true(pump_until(rt, restarted_at_least, &one, 5000));
    fleet_failure_stats_t s = stats(rt);
    assert_int_equal(s.detected[FLEET_FAIL_CRASH], 1);
    assert_int_equal(s.suspected, 0);
    assert_true(s.restarts >= 1);
    fleet_runtime_destroy(rt);
}

/* Crashes both pools `after_ms` into a job (with two CPUs one of them may
 * be asleep and have no work: the other then surely has). */
struct double_crash {
    fleet_runtime_t *rt;
    unsigned after_ms;
    int err;
};

static void *crash_both(void *arg)
{
    struct double_crash *dc = arg;
    sleep_ms(dc->after_ms);
    dc->err = fleet_tm_fail(dc->rt, 0, FLEET_FAIL_CRASH);
    if (dc->err == 0)
        dc->err = fleet_tm_fail(dc->rt, 1, FLEET_FAIL_CRASH);
    return NULL;
}

/* Crashes in the middle of long jobs, on both kinds of job: the frozen
 * worker holds a chunk, so the job ends only through detection, fencing
 * and redispatch; sums stay exact, every item runs. */
static void test_crash_mid_job(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(2);
    fleet_runtime_t *rt = make(&c);
    size_t n = 2000000; /* ~50 ms on one thread */
    uint64_t want = serial_sum(0, n);
    struct double_crash dc = {rt, 5, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, crash_both, &dc), 0);
    uint64_t got = 0;
    assert_int_equal(fleet_parallel_reduce(rt, &summer, NULL, 0, n, &got), 0);
    pthread_join(th, NULL);
    assert_int_equal(dc.err, 0);
    assert_int_equal(got, want);
    fleet_failure_stats_t s = stats(rt);
    assert_true(s.batches_redispatched >= 1);
    /* The job has ended, so every lost range was committed again: its
     * recovery ended, no sooner than the failure was detected. */
    assert_true(s.recoveries >= 1);
    assert_true(s.recovery_us_last >=
                c.heartbeat_timeout_us - c.heartbeat_interval_us);
    assert_true(s.recovery_us_max >= s.recovery_us_last);
    assert_true(s.fencing_ns_total > 0);
    uint64_t two = 2;
    assert_true(pump_until(rt, restarted_at_least, &two, 5000));

    struct hits h = {n, calloc(n, sizeof(unsigned))};
    assert_non_null(h.count);
    uint64_t redispatched = stats(rt).batches_redispatched;
    dc.err = 0;
    assert_int_equal(pthread_create(&th, NULL, crash_both, &dc), 0);
    assert_int_equal(fleet_parallel_for(rt, hit, &h, 0, n), 0);
    pthread_join(th, NULL);
    assert_int_equal(dc.err, 0);
    size_t extra = check_hits(&h);
    s = stats(rt);
    print_message("crash mid-job: %zu items ran twice; %llu redispatched, "
                  "%llu fenced, detection %llu us (max %llu), recovery %llu "
                  "us, fencing %llu ns\n",
                  extra, (unsigned long long)s.batches_redispatched,
                  (unsigned long long)s.attempts_fenced,
                  (unsigned long long)s.detection_us_last,
                  (unsigned long long)s.detection_us_max,
                  (unsigned long long)s.recovery_us_last,
                  (unsigned long long)s.fencing_ns_total);
    assert_true(s.batches_redispatched > redispatched);
    assert_true(s.attempts_fenced >= 2);
    assert_int_equal(s.detected[FLEET_FAIL_CRASH], 4);
    free((void *)h.count);
    fleet_runtime_destroy(rt);
}

/* A crash late in a long job loses about a timeout's work per thread, not
 * all the crashed TaskManager ran of its (large) batch: long batches are
 * cut. The job is sized by a failure-free run in the same build. */
static void test_late_crash_loses_little(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(2);
    fleet_runtime_t *rt = make(&c);
    size_t n = 1000000;
    struct hits h = {n, calloc(8000000, sizeof(unsigned))};
    assert_non_null(h.count);
    uint64_t t0 = now_ms();
    assert_int_equal(fleet_parallel_for(rt, hit, &h, 0, n), 0);
    uint64_t ms = now_ms() - t0 + 1;
    /* About 200 ms: many timeouts long. */
    n = n * 200 / ms;
    n = n < 100000 ? 100000 : n > 8000000 ? 8000000 : n;
    h.n = n;
    memset((void *)h.count, 0, n * sizeof(unsigned));
    uint64_t expect_ms = ms * n / 1000000;
    struct injection in = {rt, 1, FLEET_FAIL_CRASH, (unsigned)(expect_ms / 2),
                           -1, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, inject, &in), 0);
    assert_int_equal(fleet_parallel_for(rt, hit, &h, 0, n), 0);
    pthread_join(th, NULL);
    assert_int_equal(in.err, 0);
    size_t extra = check_hits(&h);
    fleet_failure_stats_t s = stats(rt);
    print_message("late crash: %zu items (%.1f%%) ran twice, %llu batches "
                  "cut, job %zu items, crash at %llu ms\n",
                  extra, 100.0 * (double)extra / (double)n,
                  (unsigned long long)s.batches_cut, n,
                  (unsigned long long)(expect_ms / 2));
    assert_int_equal(s.detected[FLEET_FAIL_CRASH], 1);
    assert_true(s.batches_cut >= 1);
    /* Uncut, the crashed pool's batch (a third to a half of the job) would
     * lose half of what it ran: 1/6 to 1/4 of n. */
    assert_true(extra <= n / 10);
    free((void *)h.count);
    fleet_runtime_destroy(rt);
}

/* Detection within about timeout + interval: measured with slack for a
 * loaded machine (the exact figure is the perf suite's). */
static void test_detection_latency(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(2);
    c.heartbeat_interval_us = 2000;
    c.heartbeat_timeout_us = 20000;
    fleet_runtime_t *rt = make(&c);
    assert_int_equal(fleet_tm_fail(rt, 0, FLEET_FAIL_CRASH), 0);
    uint64_t one = 1;
    assert_true(pump_until(rt, detected_at_least, &one, 5000));
    fleet_failure_stats_t s = stats(rt);
    print_message("detected after %llu us (timeout 20000, interval 2000)\n",
                  (unsigned long long)s.detection_us_last);
    /* Silence counts from the last heartbeat, up to an interval before the
     * injection. */
    assert_true(s.detection_us_last >= 20000 - 2000);
    assert_true(s.detection_us_last <= 20000 + 2000 + 60000);
    fleet_runtime_destroy(rt);
}

/* A hang shorter than the timeout: nothing detected, nothing fenced, the
 * hung worker finishes its own work. */
static void test_short_hang(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(2);
    c.heartbeat_timeout_us = 1000000; /* 1 s: the hang ends well before */
    fleet_runtime_t *rt = make(&c);
    size_t n = 2000000;
    uint64_t want = serial_sum(0, n);
    struct injection in = {rt, 1, FLEET_FAIL_HANG, 3, 30, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, inject, &in), 0);
    uint64_t got = 0;
    assert_int_equal(fleet_parallel_reduce(rt, &summer, NULL, 0, n, &got), 0);
    pthread_join(th, NULL);
    assert_int_equal(in.err, 0);
    assert_int_equal(got, want);
    fleet_failure_stats_t s = stats(rt);
    assert_int_equal(s.detected[FLEET_FAIL_HANG], 0);
    assert_int_equal(s.attempts_fenced, 0);
    fleet_runtime_destroy(rt);
}

/* Items of about 20 us, so that a worker is inside a batch when it hangs. */
static void slow_hit(void *ctx, size_t b, size_t e)
{
    struct timespec t = {0, 20000};
    for (size_t i = b; i < e; i++)
        nanosleep(&t, NULL);
    hit(ctx, b, e);
}

/* A hang longer than the timeout, while the only pool runs the job:
 * declared failed, its batch fenced, the range run again after the
 * restart; the hung worker's chunk, finished after recovery, is discarded.
 * The job is waited for only after the detection, so that its caller
 * cannot have run the work itself. */
static void test_long_hang(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(1);
    fleet_runtime_t *rt = make(&c);
    size_t n = 2000; /* ~40 ms of sleeping items */
    struct hits h = {n, calloc(n, sizeof(unsigned))};
    assert_non_null(h.count);
    fleet_job_t *job;
    assert_int_equal(fleet_submit(rt, slow_hit, &h, 0, n, &job), 0);
    sleep_ms(5);
    assert_int_equal(fleet_tm_fail(rt, 0, FLEET_FAIL_HANG), 0);
    uint64_t one = 1;
    assert_true(pump_until(rt, detected_at_least, &one, 5000));
    assert_int_equal(fleet_job_wait(job), 0);
    fleet_job_release(job);
    check_hits(&h);
    fleet_failure_stats_t s = stats(rt);
    assert_int_equal(s.detected[FLEET_FAIL_HANG], 1);
    assert_true(s.attempts_fenced >= 1);
    assert_true(s.batches_redispatched >= 1);
    assert_true(s.restarts >= 1);
    assert_int_equal(s.task_managers_live, 1);
    uint64_t got = 0;
    assert_int_equal(fleet_parallel_reduce(rt, &summer, NULL, 0, 100000, &got),
                     0);
    assert_int_equal(got, serial_sum(0, 100000));
    free((void *)h.count);
    fleet_runtime_destroy(rt);
}

/* SLOW keeps heartbeating (never detected). The fast pool finishes its
 * half and takes the slow one's unclaimed tail; what the slow worker holds
 * gets a speculative copy on the idle pool, which wins; results stay
 * exact. The job is waited for only once the copy launched, so that its
 * caller does not do the work itself. */
static void test_slow_speculation(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(2);
    c.slow_factor = 20;
    c.speculation_floor_us = 2000;
    fleet_runtime_t *rt = make(&c);
    uint64_t got = 0;
    for (int i = 0; i < 10; i++) { /* batch times for the median */
        assert_int_equal(
            fleet_parallel_reduce(rt, &summer, NULL, 0, 100000, &got), 0);
        assert_int_equal(got, serial_sum(0, 100000));
    }
    assert_int_equal(fleet_tm_fail(rt, 1, FLEET_FAIL_SLOW), 0);
    size_t n = 1000000;
    struct hits h = {n, calloc(n, sizeof(unsigned))};
    assert_non_null(h.count);
    /* Tail steals take most of the slow pool's batch away: a straggler is
     * the last of it, and one job may pass without one. */
    uint64_t end = now_ms() + 20000;
    while (stats(rt).speculative_launched == 0 && now_ms() < end) {
        memset((void *)h.count, 0, n * sizeof(unsigned));
        fleet_job_t *job;
        assert_int_equal(fleet_submit(rt, hit, &h, 0, n, &job), 0);
        while (stats(rt).speculative_launched == 0 && now_ms() < end &&
               fleet_job_poll(job) == -EAGAIN)
            sleep_ms(1);
        assert_int_equal(fleet_job_wait(job), 0);
        fleet_job_release(job);
        check_hits(&h);
    }
    fleet_failure_stats_t s = stats(rt);
    print_message("slow: %llu speculative attempts, %llu won\n",
                  (unsigned long long)s.speculative_launched,
                  (unsigned long long)s.speculative_won);
    assert_true(s.speculative_launched >= 1);
    assert_int_equal(s.detected[FLEET_FAIL_SLOW], 0);
    assert_int_equal(s.suspected, 0);
    assert_int_equal(fleet_tm_recover(rt, 1), 0);
    assert_int_equal(fleet_parallel_reduce(rt, &summer, NULL, 0, n, &got), 0);
    assert_int_equal(got, serial_sum(0, n));
    free((void *)h.count);
    fleet_runtime_destroy(rt);
}

/* No TaskManager left and none will restart: waiting jobs and new submits
 * get -ECANCELED; a manual recover brings the runtime back. */
static void test_cancel_when_none_left(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(2);
    c.restart.kind = FLEET_RESTART_NONE;
    fleet_runtime_t *rt = make(&c);
    assert_int_equal(fleet_tm_fail(rt, 0, FLEET_FAIL_CRASH), 0);
    assert_int_equal(fleet_tm_fail(rt, 1, FLEET_FAIL_HANG), 0);
    /* Submitted, not waited for (a waiting caller would help run it). */
    fleet_job_t *job;
    struct hits h = {100000, calloc(100000, sizeof(unsigned))};
    assert_non_null(h.count);
    assert_int_equal(fleet_submit(rt, hit, &h, 0, h.n, &job), 0);
    uint64_t end = now_ms() + 5000;
    while (stats(rt).task_managers_live != 0 && now_ms() < end)
        sleep_ms(1);
    assert_int_equal(stats(rt).task_managers_live, 0);
    assert_int_equal(fleet_job_wait(job), -ECANCELED);
    fleet_job_release(job);
    assert_int_equal(fleet_submit(rt, hit, &h, 0, h.n, &job), -ECANCELED);
    uint64_t got = 0;
    assert_int_equal(fleet_parallel_reduce(rt, &summer, NULL, 0, 10, &got),
                     -ECANCELED);
    assert_int_equal(got, 0); /* untouched */
    assert_true(stats(rt).jobs_cancelled >= 1);
    /* Back by hand. */
    assert_int_equal(fleet_tm_recover(rt, 0), 0);
    assert_int_equal(fleet_tm_recover(rt, 1), 0);
    end = now_ms() + 5000;
    int err;
    while ((err = fleet_parallel_reduce(rt, &summer, NULL, 0, 1000, &got)) ==
               -ECANCELED &&
           now_ms() < end)
        sleep_ms(1);
    assert_int_equal(err, 0);
    assert_int_equal(got, serial_sum(0, 1000));
    free((void *)h.count);
    fleet_runtime_destroy(rt);
}

/* fleet_tm_recover of a crash not yet detected restarts it at once, also
 * on an idle runtime, whose dispatcher thread is parked and so detects
 * nothing; the restart strategy (none) applies again to later failures. */
static void test_recover_crash_idle(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(2);
    c.restart.kind = FLEET_RESTART_NONE;
    fleet_runtime_t *rt = make(&c);
    sleep_ms(300); /* idle: the dispatcher thread parks */
    assert_int_equal(fleet_tm_fail(rt, 1, FLEET_FAIL_CRASH), 0);
    sleep_ms(50);
    assert_int_equal(fleet_tm_recover(rt, 1), 0);
    fleet_tm_status_t st = {0};
    uint64_t end = now_ms() + 2000;
    do {
        sleep_ms(1);
        assert_int_equal(fleet_tm_status(rt, 1, &st), 0);
    } while (st.restarts == 0 && now_ms() < end);
    assert_true(st.live);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.restarts, 1);
    assert_int_equal(stats(rt).detected[FLEET_FAIL_CRASH], 1);
    /* Live and well: a new fault takes, and work runs. */
    assert_int_equal(fleet_tm_fail(rt, 1, FLEET_FAIL_SLOW), 0);
    assert_int_equal(fleet_tm_recover(rt, 1), 0);
    uint64_t got = 0;
    assert_int_equal(fleet_parallel_reduce(rt, &summer, NULL, 0, 1000, &got),
                     0);
    assert_int_equal(got, serial_sum(0, 1000));
    /* The next crash waits for detection and, with no restart strategy,
     * stays down. */
    assert_int_equal(fleet_tm_fail(rt, 1, FLEET_FAIL_CRASH), 0);
    assert_int_equal(fleet_parallel_reduce(rt, &summer, NULL, 0, 1000, &got),
                     0);
    end = now_ms() + 2000;
    do {
        pump_for(rt, 2);
        assert_int_equal(fleet_tm_status(rt, 1, &st), 0);
    } while (st.failures < 2 && now_ms() < end);
    assert_int_equal(st.failures, 2);
    pump_for(rt, 100);
    assert_int_equal(fleet_tm_status(rt, 1, &st), 0);
    assert_false(st.live);
    assert_int_equal(st.restarts, 1);
    fleet_runtime_destroy(rt);
}

/* Crashes TaskManager 0 up to `times` times, each once it is live again,
 * and returns how many restarts followed. */
static uint64_t crash_repeatedly(fleet_runtime_t *rt, int times)
{
    for (int i = 0; i < times; i++) {
        uint64_t want = stats(rt).detected[FLEET_FAIL_CRASH] + 1;
        uint64_t end = now_ms() + 2000;
        while (fleet_tm_fail(rt, 0, FLEET_FAIL_CRASH) != 0) {
            if (now_ms() > end)
                goto out; /* not restarted: the strategy said no */
            pump_for(rt, 2);
        }
        assert_true(pump_until(rt, detected_at_least, &want, 5000));
    }
out:
    pump_for(rt, 300); /* time for any restart due */
    return stats(rt).restarts;
}

static void test_restart_strategies(void **state)
{
    (void)state;
    /* fixed-delay, one attempt: restarted once, then out for good. */
    fleet_config_t c = ft_config(2);
    c.restart.kind = FLEET_RESTART_FIXED_DELAY;
    c.restart.attempts = 1;
    c.restart.delay_ms = 5;
    fleet_runtime_t *rt = make(&c);
    assert_int_equal(crash_repeatedly(rt, 2), 1);
    assert_int_equal(stats(rt).task_managers_live, 1);
    fleet_runtime_destroy(rt);

    /* none: never. */
    c.restart.kind = FLEET_RESTART_NONE;
    rt = make(&c);
    assert_int_equal(crash_repeatedly(rt, 1), 0);
    assert_int_equal(stats(rt).task_managers_live, 1);
    fleet_runtime_destroy(rt);

    /* failure-rate: at most one failure per 10 s, so the second stays. */
    c.restart.kind = FLEET_RESTART_FAILURE_RATE;
    c.restart.max_failures = 1;
    c.restart.interval_ms = 10000;
    c.restart.delay_ms = 5;
    rt = make(&c);
    assert_int_equal(crash_repeatedly(rt, 2), 1);
    fleet_runtime_destroy(rt);

    /* exponential-delay: every failure restarts, each later than the last
     * (10, 40, 160 ms without jitter). A restart cannot come sooner than
     * timeout - interval + delay after the injection; the test's own lag
     * only lengthens what it measures, so only the lower bounds are exact.
     * The first restart beating the third's delay rules out a fixed one. */
    c.restart.kind = FLEET_RESTART_EXPONENTIAL_DELAY;
    c.restart.initial_ms = 10;
    c.restart.max_ms = 1000;
    c.restart.multiplier = 4;
    c.restart.jitter = 0;
    rt = make(&c);
    const uint64_t floor_ms =
        (c.heartbeat_timeout_us - c.heartbeat_interval_us) / 1000;
    const uint64_t delay_ms[3] = {10, 40, 160};
    uint64_t gaps[3];
    for (int i = 0; i < 3; i++) {
        uint64_t r = stats(rt).restarts + 1;
        uint64_t t0 = now_ms();
        assert_int_equal(fleet_tm_fail(rt, 0, FLEET_FAIL_CRASH), 0);
        assert_true(pump_until(rt, restarted_at_least, &r, 5000));
        gaps[i] = now_ms() - t0;
    }
    print_message("exponential restarts %llu, %llu, %llu ms after the crash\n",
                  (unsigned long long)gaps[0], (unsigned long long)gaps[1],
                  (unsigned long long)gaps[2]);
    for (int i = 0; i < 3; i++)
        assert_true(gaps[i] >= floor_ms + delay_ms[i]);
    assert_true(gaps[0] < floor_ms + delay_ms[2]);
    fleet_runtime_destroy(rt);
}

/* Seeded chaos: thousands of failures over hundreds of jobs, in every
 * build. */
#ifdef FL_RING_TSAN
#define CHAOS_JOBS 150
#else
#define CHAOS_JOBS 500
#endif

static void test_chaos(void **state)
{
    (void)state;
    fleet_config_t c = ft_config(4);
    c.chaos_seed = 0xC4A05;
    c.chaos_mtbf_us = 300;
    c.chaos_fault_us = 2000;
    c.heartbeat_interval_us = 500;
    c.heartbeat_timeout_us = 3000;
    c.restart.delay_ms = 2;
    c.speculation_floor_us = 1000;
    fleet_runtime_t *rt = make(&c);
    uint64_t seed = 99;
    size_t nmax = 300000;
    uint64_t *want = calloc(nmax + 1, sizeof(*want));
    struct hits h = {0, calloc(nmax, sizeof(unsigned))};
    assert_non_null(want);
    assert_non_null(h.count);
    size_t duplicated = 0;
    for (int j = 0; j < CHAOS_JOBS; j++) {
        size_t n = 1 + rng_below(&seed, nmax);
        if (j % 3 == 2) {
            h.n = n;
            memset((void *)h.count, 0, n * sizeof(unsigned));
            assert_int_equal(fleet_parallel_for(rt, hit, &h, 0, n), 0);
            duplicated += check_hits(&h);
        } else {
            uint64_t got = 0;
            size_t b = rng_below(&seed, 1000);
            assert_int_equal(
                fleet_parallel_reduce(rt, &summer, NULL, b, b + n, &got), 0);
            if (got != serial_sum(b, b + n))
                fail_msg("job %d: reduce over [%zu, %zu) wrong", j, b, b + n);
        }
    }
    fleet_failure_stats_t s = stats(rt);
    uint64_t injected = s.injected[0] + s.injected[1] + s.injected[2];
    uint64_t detected = s.detected[0] + s.detected[1] + s.detected[2];
    print_message(
        "chaos: %d jobs, %llu failures injected (%llu crash, %llu "
        "hang, %llu slow), %llu detected, %llu restarts, %llu "
        "batches redispatched, %llu attempts fenced, %llu "
        "speculative (%llu won), %zu items run twice, %llu recoveries "
        "(mean %llu us)\n",
        CHAOS_JOBS, (unsigned long long)injected,
        (unsigned long long)s.injected[0], (unsigned long long)s.injected[1],
        (unsigned long long)s.injected[2], (unsigned long long)detected,
        (unsigned long long)s.restarts,
        (unsigned long long)s.batches_redispatched,
        (unsigned long long)s.attempts_fenced,
        (unsigned long long)s.speculative_launched,
        (unsigned long long)s.speculative_won, duplicated,
        (unsigned long long)s.recoveries,
        (unsigned long long)(s.recoveries ? s.recovery_us_total / s.recoveries
                                          : 0));
    assert_true(injected >= 1000);
    assert_true(detected >= 1 && s.restarts >= 1);
    assert_true(s.batches_redispatched >= 1 && s.attempts_fenced >= 1);
    /* Each recovery ends at least one failure. */
    assert_true(s.recoveries >= 1 && s.recoveries <= detected + s.suspected);
    assert_int_equal(s.jobs_cancelled, 0);
    free(want);
    free((void *)h.count);
    fleet_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_and_errors),
        cmocka_unit_test(test_crash_before_job),
        cmocka_unit_test(test_crash_mid_job),
        cmocka_unit_test(test_late_crash_loses_little),
        cmocka_unit_test(test_detection_latency),
        cmocka_unit_test(test_short_hang),
        cmocka_unit_test(test_long_hang),
        cmocka_unit_test(test_slow_speculation),
        cmocka_unit_test(test_cancel_when_none_left),
        cmocka_unit_test(test_recover_crash_idle),
        cmocka_unit_test(test_restart_strategies),
        cmocka_unit_test(test_chaos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
