/*
 * test_runtime: the public API without failures — argument errors, exact
 * coverage of parallel_for, exact reductions, concurrent submitters, nested
 * parallelism, back-pressure, FIFO start order on one worker, destroy with
 * released jobs, several runtimes at once, and an idle runtime that stays
 * idle.
 *
 * Worker threads only record; every assertion runs on the test thread.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fleet.h"
#include "rng.h"
#include "sum64.h"
#include "waiter.h"

static fleet_runtime_t *make(unsigned tms, unsigned workers, unsigned ring,
                             size_t grain)
{
    fleet_config_t cfg;
    fleet_config_init(&cfg);
    cfg.task_managers = tms;
    cfg.workers_per_tm = workers;
    cfg.ring_size = ring;
    cfg.grain = grain;
    fleet_runtime_t *rt = NULL;
    assert_int_equal(fleet_runtime_create(&rt, &cfg), 0);
    assert_non_null(rt);
    return rt;
}

/* --- a counting body --------------------------------------------------- */

struct counts {
    size_t base, n;
    _Atomic unsigned *hits;
    _Atomic unsigned out_of_range;
};

static void count_items(void *ctx, size_t b, size_t e)
{
    struct counts *c = ctx;
    for (size_t i = b; i < e; i++) {
        if (i < c->base || i - c->base >= c->n)
            atomic_fetch_add(&c->out_of_range, 1);
        else
            atomic_fetch_add_explicit(&c->hits[i - c->base], 1,
                                      memory_order_relaxed);
    }
}

static void counts_init(struct counts *c, size_t base, size_t n)
{
    c->base = base;
    c->n = n;
    c->hits = calloc(n ? n : 1, sizeof(*c->hits));
    assert_non_null(c->hits);
    atomic_init(&c->out_of_range, 0);
}

/* Every item seen exactly `times` times. */
static void counts_check(struct counts *c, unsigned times)
{
    assert_int_equal(atomic_load(&c->out_of_range), 0);
    for (size_t i = 0; i < c->n; i++)
        if (atomic_load(&c->hits[i]) != times)
            fail_msg("item %zu ran %u times, expected %u", i,
                     atomic_load(&c->hits[i]), times);
}

static void counts_free(struct counts *c)
{
    free((void *)c->hits);
}

/* --- errors ------------------------------------------------------------ */

static void never(void *ctx, size_t b, size_t e)
{
    (void)b;
    (void)e;
    atomic_fetch_add((_Atomic unsigned *)ctx, 1);
}

static void test_config_errors(void **state)
{
    (void)state;
    fleet_runtime_t *rt = (fleet_runtime_t *)&rt;
    fleet_config_t cfg;
    assert_int_equal(fleet_runtime_create(NULL, NULL), -EINVAL);
    fleet_config_init(NULL); /* a no-op */

    fleet_config_init(&cfg);
    cfg.task_managers = 0;
    assert_int_equal(fleet_runtime_create(&rt, &cfg), -EINVAL);
    assert_null(rt);
    static const unsigned bad_rings[] = {0, 1, 2, 3, 6, 12, 100, 1u << 31};
    for (size_t i = 0; i < sizeof(bad_rings) / sizeof(bad_rings[0]); i++) {
        fleet_config_init(&cfg);
        cfg.ring_size = bad_rings[i];
        assert_int_equal(fleet_runtime_create(&rt, &cfg), -EINVAL);
    }
    fleet_config_init(&cfg);
    cfg.heartbeat_timeout_us = cfg.heartbeat_interval_us;
    assert_int_equal(fleet_runtime_create(&rt, &cfg), -EINVAL);
    fleet_config_init(&cfg);
    cfg.heartbeat_interval_us = 0;
    assert_int_equal(fleet_runtime_create(&rt, &cfg), -EINVAL);
    fleet_config_init(&cfg);
    cfg.spin_us = 2000000;
    assert_int_equal(fleet_runtime_create(&rt, &cfg), -EINVAL);
    fleet_config_init(&cfg);
    cfg.workers_per_tm = 100000;
    assert_int_equal(fleet_runtime_create(&rt, &cfg), -EINVAL);
    fleet_config_init(&cfg);
    cfg.task_managers = 100000;
    assert_int_equal(fleet_runtime_create(&rt, &cfg), -EINVAL);

    /* The defaults and the smallest ring are fine; the resolved
     * configuration says how many workers "auto" gave. */
    assert_int_equal(fleet_runtime_create(&rt, NULL), 0);
    fleet_config_t got;
    assert_int_equal(fleet_runtime_config(NULL, &got), -EINVAL);
    assert_int_equal(fleet_runtime_config(rt, NULL), -EINVAL);
    assert_int_equal(fleet_runtime_config(rt, &got), 0);
    assert_int_equal(got.task_managers, 2);
    assert_true(got.workers_per_tm >= 1);
    assert_int_equal(got.ring_size, 64);
    fleet_runtime_destroy(rt);
    fleet_config_init(&cfg);
    cfg.ring_size = 4;
    cfg.spin_us = 0;
    assert_int_equal(fleet_runtime_create(&rt, &cfg), 0);
    fleet_runtime_destroy(rt);
    fleet_runtime_destroy(NULL);
}

static void rfold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += i;
    *(uint64_t *)p += s;
}

static void test_api_errors(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1, 64, 0);
    _Atomic unsigned calls = 0;
    fleet_job_t *job = NULL;
    assert_int_equal(fleet_submit(NULL, never, (void *)&calls, 0, 1, &job),
                     -EINVAL);
    assert_int_equal(fleet_submit(rt, NULL, (void *)&calls, 0, 1, &job),
                     -EINVAL);
    assert_int_equal(fleet_submit(rt, never, (void *)&calls, 0, 1, NULL),
                     -EINVAL);
    assert_int_equal(fleet_submit(rt, never, (void *)&calls, 5, 4, &job),
                     -EINVAL);
    assert_int_equal(fleet_job_wait(NULL), -EINVAL);
    assert_int_equal(fleet_job_poll(NULL), -EINVAL);
    fleet_job_release(NULL);
    assert_int_equal(fleet_parallel_for(NULL, never, (void *)&calls, 0, 1),
                     -EINVAL);
    assert_int_equal(fleet_parallel_for(rt, NULL, (void *)&calls, 0, 1),
                     -EINVAL);
    assert_int_equal(fleet_parallel_for(rt, never, (void *)&calls, 2, 1),
                     -EINVAL);

    fleet_reducer_t r = {sizeof(uint64_t), sum64_init, rfold, sum64_combine};
    uint64_t result = 12345;
    assert_int_equal(fleet_parallel_reduce(NULL, &r, NULL, 0, 1, &result),
                     -EINVAL);
    assert_int_equal(fleet_parallel_reduce(rt, NULL, NULL, 0, 1, &result),
                     -EINVAL);
    assert_int_equal(fleet_parallel_reduce(rt, &r, NULL, 0, 1, NULL), -EINVAL);
    assert_int_equal(fleet_parallel_reduce(rt, &r, NULL, 1, 0, &result),
                     -EINVAL);
    fleet_reducer_t bad = r;
    bad.size = 0;
    assert_int_equal(fleet_parallel_reduce(rt, &bad, NULL, 0, 1, &result),
                     -EINVAL);
    bad = r;
    bad.init = NULL;
    assert_int_equal(fleet_parallel_reduce(rt, &bad, NULL, 0, 1, &result),
                     -EINVAL);
    bad = r;
    bad.fold = NULL;
    assert_int_equal(fleet_parallel_reduce(rt, &bad, NULL, 0, 1, &result),
                     -EINVAL);
    bad = r;
    bad.combine = NULL;
    assert_int_equal(fleet_parallel_reduce(rt, &bad, NULL, 0, 1, &result),
                     -EINVAL);
    assert_int_equal(result, 12345); /* untouched on error */

    assert_int_equal(fleet_tm_fail(NULL, 0, FLEET_FAIL_CRASH), -EINVAL);
    assert_int_equal(fleet_tm_fail(rt, 2, FLEET_FAIL_CRASH), -EINVAL);
    assert_int_equal(fleet_tm_fail(rt, 0, (fleet_fail_t)42), -EINVAL);
    assert_int_equal(fleet_tm_recover(NULL, 0), -EINVAL);
    assert_int_equal(fleet_tm_recover(rt, 7), -EINVAL);
    assert_int_equal(fleet_tm_recover(rt, 1), -EALREADY); /* nothing to end */
    assert_int_equal(fleet_tm_fail(rt, 1, FLEET_FAIL_SLOW), 0);
    assert_int_equal(fleet_tm_fail(rt, 1, FLEET_FAIL_HANG), -EALREADY);
    assert_int_equal(fleet_tm_recover(rt, 1), 0);
    assert_int_equal(fleet_tm_recover(rt, 1), -EALREADY);
    fleet_failure_stats_t fs;
    assert_int_equal(fleet_failure_stats(NULL, &fs), -EINVAL);
    assert_int_equal(fleet_failure_stats(rt, NULL), -EINVAL);
    assert_int_equal(fleet_failure_stats(rt, &fs), 0);
    assert_int_equal(fs.injected[FLEET_FAIL_SLOW], 1);
    assert_int_equal(fs.task_managers_live, 2);
    assert_int_equal(atomic_load(&calls), 0); /* no callback ran */

    assert_string_equal(fleet_strerror(0), "success");
    assert_string_equal(fleet_strerror(-EINVAL), "Invalid argument");
    assert_string_equal(fleet_strerror(EINVAL), "Invalid argument");
    assert_non_null(fleet_strerror(-123456));
    assert_string_equal(fleet_strerror(INT_MIN), "unknown error");
    assert_string_equal(fleet_strerror(INT_MAX), "unknown error");
    fleet_runtime_destroy(rt);
}

static void test_empty_range(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1, 64, 0);
    _Atomic unsigned calls = 0;
    assert_int_equal(fleet_parallel_for(rt, never, (void *)&calls, 7, 7), 0);
    assert_int_equal(
        fleet_parallel_for(rt, never, (void *)&calls, SIZE_MAX, SIZE_MAX), 0);
    fleet_job_t *job;
    assert_int_equal(fleet_submit(rt, never, (void *)&calls, 0, 0, &job), 0);
    assert_int_equal(fleet_job_poll(job), 0);
    assert_int_equal(fleet_job_wait(job), 0);
    assert_int_equal(fleet_job_wait(job), 0);
    fleet_job_release(job);
    fleet_reducer_t r = {sizeof(uint64_t), sum64_init, rfold, sum64_combine};
    uint64_t result = 99;
    assert_int_equal(fleet_parallel_reduce(rt, &r, NULL, 3, 3, &result), 0);
    assert_int_equal(result, 0); /* init() of an empty reduction */
    assert_int_equal(atomic_load(&calls), 0);
    fleet_runtime_destroy(rt);
}

/* --- exactly once -------------------------------------------------------- */

static void test_for_exactly_once(void **state)
{
    (void)state;
    uint64_t seed = 42;
    static const unsigned shapes[][3] = {
        {1, 1, 4}, {2, 1, 64}, {2, 2, 8}, {3, 1, 4}, {4, 2, 16}, {1, 3, 4},
    };
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        for (int g = 0; g < 3; g++) {
            size_t grain = g == 0 ? 0 : g == 1 ? 1 : 1000;
            fleet_runtime_t *rt =
                make(shapes[k][0], shapes[k][1], shapes[k][2], grain);
            for (int round = 0; round < 8; round++) {
                size_t n =
                    (size_t)(rng_next(&seed) % (round < 4 ? 300 : 200000));
                size_t base = (size_t)(rng_next(&seed) % 1000000);
                struct counts c;
                counts_init(&c, base, n);
                assert_int_equal(
                    fleet_parallel_for(rt, count_items, &c, base, base + n), 0);
                counts_check(&c, 1);
                counts_free(&c);
            }
            fleet_runtime_destroy(rt);
        }
    }
}

static void test_top_of_size_t(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 2, 8, 0);
    size_t sizes[] = {1, 2, 3, 1000, 300000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        struct counts c;
        counts_init(&c, SIZE_MAX - sizes[k], sizes[k]);
        assert_int_equal(fleet_parallel_for(rt, count_items, &c,
                                            SIZE_MAX - sizes[k], SIZE_MAX),
                         0);
        counts_check(&c, 1);
        counts_free(&c);
    }
    fleet_runtime_destroy(rt);
}

/* --- reductions ----------------------------------------------------------- */

static void test_reduce_sum(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1, 64, 0);
    fleet_reducer_t r = {sizeof(uint64_t), sum64_init, rfold, sum64_combine};
    size_t sizes[] = {1, 2, 17, 512, 100000, 10000000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        uint64_t n = sizes[k], result = 0;
        assert_int_equal(fleet_parallel_reduce(rt, &r, NULL, 0, n, &result), 0);
        assert_int_equal(result, n * (n - 1) / 2);
        /* An offset range. */
        assert_int_equal(
            fleet_parallel_reduce(rt, &r, NULL, 1000, 1000 + n, &result), 0);
        assert_int_equal(result, n * (n - 1) / 2 + 1000 * n);
    }
    fleet_runtime_destroy(rt);
}

/* A struct partial: count, sum, min, max and a histogram of item % 16. */
struct stats {
    uint64_t count, sum, min, max;
    uint64_t hist[16];
};

static void sinit(void *ctx, void *p)
{
    (void)ctx;
    struct stats *s = p;
    memset(s, 0, sizeof(*s));
    s->min = UINT64_MAX;
}

static void sfold(void *ctx, size_t b, size_t e, void *p)
{
    const uint32_t *v = ctx;
    struct stats *s = p;
    for (size_t i = b; i < e; i++) {
        s->count++;
        s->sum += v[i];
        if (v[i] < s->min)
            s->min = v[i];
        if (v[i] > s->max)
            s->max = v[i];
        s->hist[v[i] % 16]++;
    }
}

static void scombine(void *ctx, void *into, const void *p)
{
    (void)ctx;
    struct stats *a = into;
    const struct stats *b = p;
    a->count += b->count;
    a->sum += b->sum;
    if (b->min < a->min)
        a->min = b->min;
    if (b->max > a->max)
        a->max = b->max;
    for (int i = 0; i < 16; i++)
        a->hist[i] += b->hist[i];
}

/* Big partials go through the heap instead of the stack. */
struct big {
    uint64_t words[100];
};

static void binit(void *ctx, void *p)
{
    (void)ctx;
    memset(p, 0, sizeof(struct big));
}

static void bfold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    struct big *x = p;
    for (size_t i = b; i < e; i++)
        x->words[i % 100] += i;
}

static void bcombine(void *ctx, void *into, const void *p)
{
    (void)ctx;
    struct big *a = into;
    const struct big *b = p;
    for (int i = 0; i < 100; i++)
        a->words[i] += b->words[i];
}

static void test_reduce_struct(void **state)
{
    (void)state;
    size_t n = 3000000;
    uint32_t *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    uint64_t seed = 7;
    struct stats want;
    sinit(NULL, &want);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint32_t)rng_next(&seed);
    sfold(v, 0, n, &want);
    fleet_reducer_t r = {sizeof(struct stats), sinit, sfold, scombine};
    fleet_reducer_t rb = {sizeof(struct big), binit, bfold, bcombine};
    struct big bwant;
    binit(NULL, &bwant);
    bfold(NULL, 0, n, &bwant);
    for (unsigned tms = 1; tms <= 3; tms++) {
        fleet_runtime_t *rt = make(tms, 2, 16, tms == 3 ? 1 : 0);
        struct stats got;
        assert_int_equal(fleet_parallel_reduce(rt, &r, v, 0, n, &got), 0);
        assert_memory_equal(&got, &want, sizeof(got));
        struct big bgot;
        assert_int_equal(fleet_parallel_reduce(rt, &rb, NULL, 0, n, &bgot), 0);
        assert_memory_equal(&bgot, &bwant, sizeof(bgot));
        fleet_runtime_destroy(rt);
    }
    free(v);
}

/* --- concurrency ---------------------------------------------------------- */

struct submitter {
    fleet_runtime_t *rt;
    unsigned id;
    int err;      /* first error seen */
    unsigned bad; /* wrong results seen */
};

static void *submit_loop(void *arg)
{
    struct submitter *s = arg;
    uint64_t seed = s->id;
    fleet_reducer_t r = {sizeof(uint64_t), sum64_init, rfold, sum64_combine};
    for (int round = 0; round < 60; round++) {
        size_t n = 1 + (size_t)(rng_next(&seed) % 50000);
        struct counts c;
        c.base = 0;
        c.n = n;
        c.hits = calloc(n, sizeof(*c.hits));
        atomic_init(&c.out_of_range, 0);
        if (c.hits == NULL) {
            s->bad++;
            return NULL;
        }
        fleet_job_t *job;
        int err = fleet_submit(s->rt, count_items, &c, 0, n, &job);
        if (err == 0) {
            uint64_t sum = 0;
            err = fleet_parallel_reduce(s->rt, &r, NULL, 0, n, &sum);
            if (sum != (uint64_t)n * (n - 1) / 2)
                s->bad++;
            int werr = fleet_job_wait(job);
            if (err == 0)
                err = werr;
            fleet_job_release(job);
        }
        if (err != 0 && s->err == 0)
            s->err = err;
        for (size_t i = 0; i < n; i++)
            if (atomic_load(&c.hits[i]) != 1)
                s->bad++;
        free((void *)c.hits);
    }
    return NULL;
}

static void test_concurrent_submitters(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1, 4, 0);
    pthread_t th[4];
    struct submitter s[4];
    for (unsigned i = 0; i < 4; i++) {
        s[i] = (struct submitter){rt, i + 1, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, submit_loop, &s[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].err, 0);
        assert_int_equal(s[i].bad, 0);
    }
    fleet_runtime_destroy(rt);
}

/* Nested: every outer item runs an inner parallel_for over its row, and
 * (at depth 2) every inner item runs one more. */
struct nest {
    fleet_runtime_t *rt;
    size_t rows, cols, depth3;
    _Atomic unsigned *cells;
    _Atomic unsigned errors;
};

struct row {
    struct nest *nest;
    size_t r;
};

static void inner3(void *ctx, size_t b, size_t e)
{
    _Atomic unsigned *cell = ctx;
    for (size_t i = b; i < e; i++)
        atomic_fetch_add(cell, 1);
}

static void inner(void *ctx, size_t b, size_t e)
{
    struct row *row = ctx;
    struct nest *n = row->nest;
    for (size_t c = b; c < e; c++) {
        _Atomic unsigned *cell = &n->cells[row->r * n->cols + c];
        if (n->depth3) {
            if (fleet_parallel_for(n->rt, inner3, (void *)cell, 0, n->depth3))
                atomic_fetch_add(&n->errors, 1);
        } else {
            atomic_fetch_add(cell, 1);
        }
    }
}

static void outer(void *ctx, size_t b, size_t e)
{
    struct nest *n = ctx;
    for (size_t r = b; r < e; r++) {
        struct row row = {n, r};
        if (fleet_parallel_for(n->rt, inner, &row, 0, n->cols) != 0)
            atomic_fetch_add(&n->errors, 1);
    }
}

static void run_nested(unsigned tms, unsigned workers, size_t rows, size_t cols,
                       size_t depth3)
{
    struct nest n;
    n.rt = make(tms, workers, 4, 1);
    n.rows = rows;
    n.cols = cols;
    n.depth3 = depth3;
    n.cells = calloc(rows * cols, sizeof(*n.cells));
    assert_non_null(n.cells);
    atomic_init(&n.errors, 0);
    assert_int_equal(fleet_parallel_for(n.rt, outer, &n, 0, rows), 0);
    assert_int_equal(atomic_load(&n.errors), 0);
    unsigned want = depth3 ? (unsigned)depth3 : 1;
    for (size_t i = 0; i < rows * cols; i++)
        assert_int_equal(atomic_load(&n.cells[i]), want);
    fleet_runtime_destroy(n.rt);
    free((void *)n.cells);
}

static void test_nested(void **state)
{
    (void)state;
    run_nested(1, 1, 16, 200, 0); /* one worker: it must help itself */
    run_nested(2, 1, 32, 500, 0);
    run_nested(2, 2, 8, 40, 30); /* three levels */
    run_nested(3, 1, 6, 30, 20);
}

/* Submitting many jobs without waiting fills PENDING: submit must wait for
 * room, not fail or lose anything. */
static void test_back_pressure(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(1, 1, 4, 1);
    enum { JOBS = 300 };
    struct counts c;
    counts_init(&c, 0, 64);
    fleet_job_t *jobs[JOBS];
    for (int i = 0; i < JOBS; i++)
        assert_int_equal(fleet_submit(rt, count_items, &c, 0, 64, &jobs[i]), 0);
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(fleet_job_wait(jobs[i]), 0);
        fleet_job_release(jobs[i]);
    }
    counts_check(&c, JOBS);
    counts_free(&c);
    fleet_runtime_destroy(rt);
}

/* Jobs start in the order they were submitted when one worker serves
 * them: a job submitted while the role is free and nothing is queued goes
 * straight to the role, which must not let it pass (or replace) one still
 * waiting for room. The worker is held by a first job while the others
 * queue; the test thread never waits on a job before all have started, so
 * it helps none of them. */
enum { FIFO_JOBS = 40 };

struct fifo {
    _Atomic bool started, go;
    _Atomic unsigned seq;
    _Atomic unsigned order[FIFO_JOBS];
};

struct fifo_job {
    struct fifo *f;
    unsigned id;
};

static void fifo_hold(void *ctx, size_t b, size_t e)
{
    struct fifo *f = ctx;
    (void)b;
    (void)e;
    atomic_store(&f->started, true);
    while (!atomic_load(&f->go))
        sched_yield();
}

static void fifo_note(void *ctx, size_t b, size_t e)
{
    struct fifo_job *j = ctx;
    (void)b;
    (void)e;
    unsigned at = atomic_fetch_add(&j->f->seq, 1);
    if (at < FIFO_JOBS)
        atomic_store(&j->f->order[at], j->id);
}

static void test_fifo(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(1, 1, 64, 1);
    for (unsigned round = 0; round < 20; round++) {
        static struct fifo f;
        struct fifo_job jobs[FIFO_JOBS];
        fleet_job_t *h[FIFO_JOBS + 1];
        atomic_init(&f.started, false);
        atomic_init(&f.go, false);
        atomic_init(&f.seq, 0);
        assert_int_equal(fleet_submit(rt, fifo_hold, &f, 0, 1, &h[0]), 0);
        while (!atomic_load(&f.started))
            sched_yield();
        /* Odd rounds space the submissions out, so that the dispatcher
         * thread's ticks fall between them too. */
        unsigned n = 1 + 2 * round;
        for (unsigned i = 0; i < n; i++) {
            jobs[i] = (struct fifo_job){&f, i};
            assert_int_equal(
                fleet_submit(rt, fifo_note, &jobs[i], 0, 1, &h[i + 1]), 0);
            if (round % 2 == 1) {
                struct timespec ts = {0, 100000};
                nanosleep(&ts, NULL);
            }
        }
        atomic_store(&f.go, true);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (atomic_load(&f.seq) < n) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec > 20)
                fail_msg("round %u: %u of %u jobs ran", round,
                         atomic_load(&f.seq), n);
            sched_yield();
        }
        for (unsigned i = 0; i <= n; i++) {
            assert_int_equal(fleet_job_wait(h[i]), 0);
            fleet_job_release(h[i]);
        }
        assert_int_equal(atomic_load(&f.seq), n);
        for (unsigned i = 0; i < n; i++)
            if (atomic_load(&f.order[i]) != i)
                fail_msg("round %u: job %u started %uth", round,
                         atomic_load(&f.order[i]), i);
    }
    fleet_runtime_destroy(rt);
}

/* Destroy drains jobs whose handles were already released. */
static void slow_items(void *ctx, size_t b, size_t e)
{
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
    count_items(ctx, b, e);
}

static void test_destroy_drains(void **state)
{
    (void)state;
    struct counts c;
    counts_init(&c, 0, 2000);
    fleet_runtime_t *rt = make(2, 1, 8, 1);
    for (int i = 0; i < 20; i++) {
        fleet_job_t *job;
        assert_int_equal(fleet_submit(rt, slow_items, &c, 0, 2000, &job), 0);
        fleet_job_release(job);
    }
    /* One kept: still valid after destroy. */
    fleet_job_t *kept;
    assert_int_equal(fleet_submit(rt, count_items, &c, 0, 2000, &kept), 0);
    fleet_runtime_destroy(rt);
    assert_int_equal(fleet_job_wait(kept), 0);
    fleet_job_release(kept);
    counts_check(&c, 21);
    counts_free(&c);
}

/* Submits after destroy began are refused. */
static void test_submit_after_close(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(1, 1, 4, 0);
    fleet_runtime_destroy(rt);
    /* (rt is gone; nothing to call. The refusal itself is covered by a
     * task that submits while destroy drains, which must be accepted.) */
    struct nest n;
    n.rt = make(2, 1, 4, 1);
    n.rows = 4;
    n.cols = 100;
    n.depth3 = 0;
    n.cells = calloc(n.rows * n.cols, sizeof(*n.cells));
    assert_non_null(n.cells);
    atomic_init(&n.errors, 0);
    fleet_job_t *job;
    assert_int_equal(fleet_submit(n.rt, outer, &n, 0, n.rows, &job), 0);
    fleet_job_release(job);
    fleet_runtime_destroy(n.rt); /* its tasks still submit nested jobs */
    assert_int_equal(atomic_load(&n.errors), 0);
    for (size_t i = 0; i < n.rows * n.cols; i++)
        assert_int_equal(atomic_load(&n.cells[i]), 1);
    free((void *)n.cells);
}

static void *use_runtime(void *arg)
{
    struct submitter *s = arg;
    fleet_reducer_t r = {sizeof(uint64_t), sum64_init, rfold, sum64_combine};
    for (int i = 0; i < 200; i++) {
        uint64_t n = 1000 + (uint64_t)i * 37, sum = 0;
        int err = fleet_parallel_reduce(s->rt, &r, NULL, 0, n, &sum);
        if (err != 0 && s->err == 0)
            s->err = err;
        if (sum != n * (n - 1) / 2)
            s->bad++;
    }
    return NULL;
}

static void test_three_runtimes(void **state)
{
    (void)state;
    pthread_t th[3];
    struct submitter s[3];
    for (unsigned i = 0; i < 3; i++) {
        s[i] = (struct submitter){make(1 + i, 1, 8, 0), i, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, use_runtime, &s[i]), 0);
    }
    for (unsigned i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].err, 0);
        assert_int_equal(s[i].bad, 0);
        fleet_runtime_destroy(s[i].rt);
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void test_idle_cpu(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 2, 64, 0);
    struct counts c;
    counts_init(&c, 0, 100000);
    assert_int_equal(fleet_parallel_for(rt, count_items, &c, 0, 100000), 0);
    /* Let the spin windows run out, then measure a second of idleness. */
    struct timespec settle = {0, 100 * 1000 * 1000}, second = {1, 0};
    nanosleep(&settle, NULL);
    double before = cpu_seconds();
    nanosleep(&second, NULL);
    double used = cpu_seconds() - before;
    print_message("idle runtime used %.2f ms of CPU in 1 s\n", used * 1e3);
    assert_true(used < 0.02); /* well under 5% of one core */
    fleet_runtime_destroy(rt);
    counts_check(&c, 1);
    counts_free(&c);
}

/* Several threads wait on one job. */
static void test_many_waiters(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1, 8, 1);
    struct counts c;
    counts_init(&c, 0, 5000);
    fleet_job_t *job;
    assert_int_equal(fleet_submit(rt, slow_items, &c, 0, 5000, &job), 0);
    assert_int_equal(fleet_job_poll(job), -EAGAIN); /* 100 ms of work */
    pthread_t th[3];
    struct waiter w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct waiter){job, 1};
        assert_int_equal(pthread_create(&th[i], NULL, wait_job, &w[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].err, 0);
    }
    assert_int_equal(fleet_job_poll(job), 0);
    fleet_job_release(job);
    counts_check(&c, 1);
    counts_free(&c);
    fleet_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_empty_range),
        cmocka_unit_test(test_for_exactly_once),
        cmocka_unit_test(test_top_of_size_t),
        cmocka_unit_test(test_reduce_sum),
        cmocka_unit_test(test_reduce_struct),
        cmocka_unit_test(test_concurrent_submitters),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_back_pressure),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_destroy_drains),
        cmocka_unit_test(test_submit_after_close),
        cmocka_unit_test(test_three_runtimes),
        cmocka_unit_test(test_many_waiters),
        cmocka_unit_test(test_idle_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
