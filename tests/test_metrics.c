/*
 * test_metrics: the histograms, the snapshot's counts after known work,
 * the JSON (checked with jq) and Prometheus (checked with promtool)
 * exporters, the reporter thread, and Little's law on PENDING under an
 * open-loop arrival process, so that the numbers are known to be real.
 */
#include <errno.h>
#include <math.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fleet.h"
#include "fleet/metrics.h"
#include "metrics.h"
#include "runtime.h"
#include "rng.h"

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void spin_ns(uint64_t ns)
{
    uint64_t end = now_ns() + ns;
    while (now_ns() < end)
        ;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec t = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&t, NULL);
}

static fleet_runtime_t *make_spin(unsigned tms, unsigned workers,
                                  unsigned spin_us)
{
    fleet_config_t c;
    fleet_config_init(&c);
    c.task_managers = tms;
    c.workers_per_tm = workers;
    c.spin_us = spin_us;
    fleet_runtime_t *rt = NULL;
    assert_int_equal(fleet_runtime_create(&rt, &c), 0);
    return rt;
}

static fleet_runtime_t *make(unsigned tms, unsigned workers)
{
    return make_spin(tms, workers, 50);
}

/* --- histograms ---------------------------------------------------------- */

static void test_hist(void **state)
{
    (void)state;
    assert_true(fleet_hist_bucket_le(0) == 0);
    assert_true(fleet_hist_bucket_le(1) == 2);
    assert_true(fleet_hist_bucket_le(10) == 2046);
    static struct fl_hist h;
    memset(&h, 0, sizeof(h));
    fleet_hist_t r;
    memset(&r, 0, sizeof(r));
    fl_hist_read(&h, &r);
    assert_true(fleet_hist_quantile(&r, 0.5) == 0); /* empty */
    /* 90 values of 1000 ns, 9 of 100 000, 1 of 10 000 000. */
    for (int i = 0; i < 90; i++)
        fl_hist_add1(&h, 1000);
    for (int i = 0; i < 9; i++)
        fl_hist_add(&h, 100000);
    fl_hist_add1(&h, 10000000);
    memset(&r, 0, sizeof(r));
    fl_hist_read(&h, &r);
    assert_true(r.count == 100);
    assert_true(r.sum_ns == 90 * 1000 + 9 * 100000 + 10000000);
    assert_true(r.max_ns == 10000000);
    /* Upper bucket edges: 1000 lies in [1023, 2046], 100 000 in
     * [65535, 131070]. */
    assert_true(fleet_hist_quantile(&r, 0.5) == 1022);
    assert_true(fleet_hist_quantile(&r, 0.9) == 1022);
    assert_true(fleet_hist_quantile(&r, 0.91) == 131070);
    assert_true(fleet_hist_quantile(&r, 0.99) == 131070);
    assert_true(fleet_hist_quantile(&r, 1.0) == 10000000); /* the max */
    assert_true(fleet_hist_quantile(NULL, 0.5) == 0);
    /* Reading adds: two histograms merge. */
    fl_hist_read(&h, &r);
    assert_true(r.count == 200);
}

/* --- counts after known work --------------------------------------------- */

struct load {
    _Atomic uint64_t items;
};

static void work(void *ctx, size_t b, size_t e)
{
    struct load *l = ctx;
    spin_ns((e - b) * 200); /* 200 ns an item */
    atomic_fetch_add(&l->items, e - b);
}

/* Waits until every submitted job has completed and every queue is empty
 * (a ring may still hold a batch that others ran while it sat there, until
 * its worker takes it out). */
static void quiesce(fleet_runtime_t *rt, fleet_metrics_t *m)
{
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(fleet_metrics_snapshot(rt, m), 0);
        bool empty = m->jobs_completed == m->jobs_submitted &&
                     m->pending.length == 0 && m->scheduled.length == 0 &&
                     m->completions.length == 0;
        for (unsigned t = 0; t < m->task_managers; t++)
            empty = empty && m->tm[t].ring.length == 0;
        if (empty)
            return;
        sleep_ns(1000000);
    }
    fail_msg("jobs never all completed");
}

static void test_counts(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1);
    static fleet_metrics_t m;
    assert_int_equal(fleet_metrics_snapshot(NULL, &m), -EINVAL);
    assert_int_equal(fleet_metrics_snapshot(rt, NULL), -EINVAL);
    struct load l = {0};
    const unsigned jobs = 40;
    const size_t n = 20000; /* 4 ms a job on one thread */
    for (unsigned j = 0; j < jobs / 2; j++)
        assert_int_equal(fleet_parallel_for(rt, work, &l, 0, n), 0);
    fleet_job_t *h[20];
    for (unsigned j = 0; j < jobs / 2; j++)
        assert_int_equal(fleet_submit(rt, work, &l, 0, n, &h[j]), 0);
    for (unsigned j = 0; j < jobs / 2; j++) {
        assert_int_equal(fleet_job_wait(h[j]), 0);
        fleet_job_release(h[j]);
    }
    quiesce(rt, &m);
    assert_true(atomic_load(&l.items) == (uint64_t)jobs * n);
    assert_true(m.jobs_submitted == jobs);
    assert_true(m.jobs_completed == jobs);
    assert_true(m.jobs_inline == 0); /* 4 ms jobs are never inline */
    assert_int_equal(m.task_managers, 2);
    uint64_t b_in = 0, b_out = 0, i_in = 0, i_out = 0, busy = 0;
    for (unsigned i = 0; i < m.task_managers; i++) {
        const fleet_tm_metrics_t *t = &m.tm[i];
        b_in += t->batches_in;
        b_out += t->batches_out;
        i_in += t->items_in;
        i_out += t->items_out;
        busy += t->busy_ns_total;
        assert_true(t->live);
        assert_int_equal(t->workers, 1);
        double sum = t->busy_time_ms_per_second + t->idle_time_ms_per_second +
                     t->back_pressured_time_ms_per_second;
        assert_true(fabs(sum - 1000) < 1e-6);
        assert_true(t->busy_time_ms_per_second >= 0 &&
                    t->busy_time_ms_per_second <= 1000);
        assert_true(t->ring.length == 0);
        assert_true(t->ring.high_water >= 1);
    }
    /* Every batch made was committed, every item once (no failures). */
    assert_true(b_in == m.batches_split);
    assert_true(b_out == b_in);
    assert_true(i_out == (uint64_t)jobs * n);
    assert_true(i_in == i_out);
    assert_true(busy > 0);
    assert_true(m.split_depth_max >= 1);
    assert_true(m.split_depth_mean >= 0 &&
                m.split_depth_mean <= (double)m.split_depth_max);
    /* Each job entered PENDING once and left it once. */
    assert_true(m.pending.length == 0);
    assert_true(m.pending.high_water >= 1);
    assert_true(m.pending.wait.count == jobs);
    assert_true(m.scheduled.length == 0);
    assert_true(m.scheduled.high_water >= 2);
    assert_true(m.scheduled.wait.count == b_out);
    assert_true(m.completions.wait.count == b_out);
    assert_true(m.dispatch_latency.count == jobs);
    assert_true(m.dispatch_latency.max_ns > 0);
    assert_true(m.failures.task_managers_live == 2);

    /* Idle now: the next interval is mostly idle time. */
    sleep_ns(50000000);
    assert_int_equal(fleet_metrics_snapshot(rt, &m), 0);
    assert_true(m.interval_ns >= 50000000);
    for (unsigned i = 0; i < m.task_managers; i++)
        assert_true(m.tm[i].idle_time_ms_per_second > 900);
    fleet_runtime_destroy(rt);
}

/* A long visit counts busy time as it goes, not all when it ends: while
 * one 1-worker TaskManager runs a long job, every interval is busy. */
static void test_busy_while_running(void **state)
{
    (void)state;
    fleet_config_t c;
    fleet_config_init(&c);
    c.task_managers = 1;
    c.workers_per_tm = 1;
    c.fault_tolerance = false; /* no cuts: one batch, one long visit */
    fleet_runtime_t *rt = NULL;
    assert_int_equal(fleet_runtime_create(&rt, &c), 0);
    static fleet_metrics_t m;
    struct load l = {0};
    fleet_job_t *job;
    /* 1.5 M items of 200 ns: 300 ms, run by the worker alone. */
    assert_int_equal(fleet_submit(rt, work, &l, 0, 1500000, &job), 0);
    sleep_ns(20000000);
    assert_int_equal(fleet_metrics_snapshot(rt, &m), 0);
    int busy_intervals = 0;
    for (int i = 0; i < 4; i++) {
        sleep_ns(40000000);
        assert_int_equal(fleet_metrics_snapshot(rt, &m), 0);
        if (m.tm[0].busy_time_ms_per_second > 500)
            busy_intervals++;
    }
    assert_int_equal(fleet_job_wait(job), 0);
    fleet_job_release(job);
    assert_true(atomic_load(&l.items) == 1500000);
    assert_int_equal(busy_intervals, 4);
    fleet_runtime_destroy(rt);
}

/* --- exporters ----------------------------------------------------------- */

/* Runs `cmd` with file's path appended; returns its exit status, and its
 * output in out (truncated). */
static int run_tool(const char *cmd, const char *path, char *out, size_t cap)
{
    char line[512];
    snprintf(line, sizeof(line), "%s '%s' 2>&1", cmd, path);
    FILE *p = popen(line, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void busy_runtime(fleet_runtime_t *rt)
{
    struct load l = {0};
    for (int j = 0; j < 10; j++)
        assert_int_equal(fleet_parallel_for(rt, work, &l, 0, 5000), 0);
}

/* Writes rt's metrics with `write` to a new file named from the template
 * `path` (updated); a NULL runtime is refused first. */
static void export_to(char *path, fleet_runtime_t *rt,
                      int (*write)(fleet_runtime_t *, FILE *))
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(write(NULL, f), -EINVAL);
    assert_int_equal(write(rt, f), 0);
    assert_int_equal(fclose(f), 0);
}

/* promtool, reading the file on stdin, must find nothing to say. */
static void check_promtool(const char *path)
{
    char out[4096];
    int st = run_tool("promtool check metrics <", path, out, sizeof(out));
    if (st != 0 || out[0] != '\0')
        fail_msg("promtool (exit %d): %s", st, out);
}

/* export_to with the Prometheus writer, checked by promtool. */
static void export_prometheus(char *path, fleet_runtime_t *rt)
{
    export_to(path, rt, fleet_metrics_write_prometheus);
    check_promtool(path);
}

static void test_json(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1);
    busy_runtime(rt);
    assert_int_equal(fleet_metrics_write_json(rt, NULL), -EINVAL);
    char path[] = "/tmp/fleet-metrics-XXXXXX";
    export_to(path, rt, fleet_metrics_write_json);
    char out[4096];
    /* Parses, and has the figures where a reader looks for them. */
    assert_int_equal(run_tool("jq -e '.dispatcher.jobs_submitted == 10 and "
                              "(.task_managers | length) == 2 and "
                              ".task_managers[0].busyTimeMsPerSecond >= 0 and "
                              ".queues.pending.wait.count == 10 and "
                              ".failures.task_managers_live == 2'",
                              path, out, sizeof(out)),
                     0);
    unlink(path);
    fleet_runtime_destroy(rt);
}

static void test_prometheus(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1);
    busy_runtime(rt);
    assert_int_equal(fleet_metrics_write_prometheus(rt, NULL), -EINVAL);
    char path[] = "/tmp/fleet-metrics-XXXXXX";
    export_prometheus(path, rt);
    char out[4096];
    /* And the histogram is there, cumulative up to +Inf. */
    assert_int_equal(
        run_tool("grep -q 'fleet_queue_wait_seconds_bucket{queue=\"pending\","
                 "le=\"+Inf\"} 10'",
                 path, out, sizeof(out)),
        0);
    unlink(path);
    fleet_runtime_destroy(rt);
}

/* --- pinned queues ---------------------------------------------------------
 */

struct gated {
    fleet_runtime_t *rt;
    _Atomic bool open, entered;
    _Atomic int tm; /* where it ran */
};

static void gated_run(void *ctx, size_t b, size_t e)
{
    struct gated *g = ctx;
    (void)b;
    (void)e;
    atomic_store(&g->tm, fl_current_tm(g->rt));
    atomic_store(&g->entered, true);
    while (!atomic_load_explicit(&g->open, memory_order_acquire))
        sleep_ns(100000);
}

/* A job pinned to a TaskManager whose only worker is busy waits in its
 * pinned queue, not in PENDING, and the metrics show it there: length and
 * high-water mark while it waits, then its wait in the histogram - in the
 * snapshot, the JSON and the Prometheus text. */
/* A write that fails shows in the result, also when all of the output
 * still sat in the FILE's buffer as the exporter returned. */
static void test_write_error(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1);
    busy_runtime(rt);
    int (*const writers[])(fleet_runtime_t *, FILE *) = {
        fleet_metrics_write_json, fleet_metrics_write_prometheus};
    for (size_t i = 0; i < sizeof(writers) / sizeof(writers[0]); i++) {
        FILE *f = fopen("/dev/full", "w");
        assert_non_null(f);
        static char buf[1 << 16];
        assert_int_equal(setvbuf(f, buf, _IOFBF, sizeof(buf)), 0);
        assert_int_equal(writers[i](rt, f), -EIO);
        fclose(f);
    }
    fleet_runtime_destroy(rt);
}

static void test_pinned_queue(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1);
    struct gated busy = {.rt = rt}, next = {.rt = rt};
    atomic_store(&next.open, true);
    fleet_job_t *a, *b;
    assert_int_equal(fleet_submit_on(rt, 0, gated_run, &busy, 0, 1, &a), 0);
    for (int i = 0; i < 5000 && !atomic_load(&busy.entered); i++)
        sleep_ns(1000000);
    assert_true(atomic_load(&busy.entered));
    assert_int_equal(fleet_submit_on(rt, 0, gated_run, &next, 0, 1, &b), 0);
    uint64_t held = 20000000; /* ns */
    sleep_ns(held);
    fleet_metrics_t m;
    assert_int_equal(fleet_metrics_snapshot(rt, &m), 0);
    assert_false(atomic_load(&next.entered));
    assert_int_equal(m.tm[0].pinned.length, 1);
    assert_true(m.tm[0].pinned.high_water >= 1);
    assert_int_equal(m.tm[1].pinned.length, 0);
    assert_int_equal(m.tm[1].pinned.high_water, 0);
    assert_int_equal(m.pending.length, 0); /* it left PENDING */

    char path[] = "/tmp/fleet-metrics-XXXXXX", out[4096];
    export_to(path, rt, fleet_metrics_write_json);
    assert_int_equal(run_tool("jq -e '.task_managers[0].pinned.length == 1 and "
                              ".task_managers[1].pinned.length == 0'",
                              path, out, sizeof(out)),
                     0);
    unlink(path);

    atomic_store_explicit(&busy.open, true, memory_order_release);
    assert_int_equal(fleet_job_wait(a), 0);
    assert_int_equal(fleet_job_wait(b), 0);
    fleet_job_release(a);
    fleet_job_release(b);
    assert_int_equal(atomic_load(&next.tm), 0);
    quiesce(rt, &m);
    /* Both ranges went through the queue; the second one waited there. */
    assert_int_equal(m.tm[0].pinned.length, 0);
    assert_int_equal(m.tm[0].pinned.wait.count, 2);
    assert_true(m.tm[0].pinned.wait.max_ns >= held);
    assert_true(fleet_hist_quantile(&m.tm[0].pinned.wait, 1.0) >= held);
    assert_int_equal(m.tm[1].pinned.wait.count, 0);

    char ppath[] = "/tmp/fleet-metrics-XXXXXX";
    export_prometheus(ppath, rt);
    assert_int_equal(
        run_tool("grep -q 'fleet_queue_wait_seconds_count{queue=\"pinned\","
                 "taskmanager=\"0\"} 2'",
                 ppath, out, sizeof(out)),
        0);
    unlink(ppath);
    fleet_runtime_destroy(rt);
}

static void test_reporter(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make(2, 1);
    char dir[] = "/tmp/fleet-reporter-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/metrics.json", dir);
    assert_int_equal(fleet_metrics_reporter_stop(rt), -ENOENT);
    assert_int_equal(
        fleet_metrics_reporter_start(rt, NULL, 5, FLEET_METRICS_JSON), -EINVAL);
    assert_int_equal(
        fleet_metrics_reporter_start(rt, path, 0, FLEET_METRICS_JSON), -EINVAL);
    assert_int_equal(
        fleet_metrics_reporter_start(rt, path, 5, (fleet_metrics_format_t)7),
        -EINVAL);
    assert_int_equal(
        fleet_metrics_reporter_start(rt, path, 5, FLEET_METRICS_JSON), 0);
    assert_int_equal(
        fleet_metrics_reporter_start(rt, path, 5, FLEET_METRICS_JSON), -EBUSY);
    busy_runtime(rt);
    sleep_ns(30000000);
    char out[4096];
    /* A whole snapshot at every moment: the file parses while written. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(run_tool("jq -e .taken_ns", path, out, sizeof(out)),
                         0);
        sleep_ns(2000000);
    }
    assert_int_equal(fleet_metrics_reporter_stop(rt), 0);
    assert_int_equal(fleet_metrics_reporter_stop(rt), -ENOENT);
    /* The last snapshot, written at stop, saw all ten jobs. */
    assert_int_equal(run_tool("jq -e '.dispatcher.jobs_completed == 10'", path,
                              out, sizeof(out)),
                     0);
    /* Prometheus, and left running: destroy stops it. */
    snprintf(path, sizeof(path), "%s/metrics.prom", dir);
    assert_int_equal(
        fleet_metrics_reporter_start(rt, path, 3, FLEET_METRICS_PROMETHEUS), 0);
    sleep_ns(10000000);
    fleet_runtime_destroy(rt);
    check_promtool(path);
    unlink(path);
    snprintf(path, sizeof(path), "%s/metrics.json", dir);
    unlink(path);
    rmdir(dir);
}

/* --- Little's law -------------------------------------------------------- */

/* One worker, jobs of SERVICE_NS, Poisson arrivals at 80% of what the
 * runtime serves back to back in this build: jobs wait in PENDING while
 * the worker is busy. The mean PENDING length, sampled from the gauge,
 * must equal the arrival rate times the mean wait from the histogram
 * (Little's law), within 10%. The worker spins through idle gaps: waking
 * a sleeping one costs this VM 0.1-0.7 ms, which would make the first job
 * after every gap that much longer and push the queue towards saturation,
 * where the sampler itself gets too little CPU to sample fairly. */
#define SERVICE_NS 300000u
#define LOAD 0.8

static void serve(void *ctx, size_t b, size_t e)
{
    (void)ctx;
    (void)b;
    (void)e;
    spin_ns(SERVICE_NS);
}

struct sampler {
    fleet_runtime_t *rt;
    _Atomic bool stop;
    double sum;
    uint64_t samples;
};

static void *sample(void *arg)
{
    struct sampler *s = arg;
    static fleet_metrics_t m;
    while (!atomic_load(&s->stop)) {
        if (fleet_metrics_snapshot(s->rt, &m) == 0) {
            s->sum += (double)m.pending.length;
            s->samples++;
        }
        sleep_ns(50000);
    }
    return NULL;
}

static void test_littles_law(void **state)
{
    (void)state;
    fleet_runtime_t *rt = make_spin(1, 1, 20000);
    static fleet_metrics_t m0, m1;
    uint64_t seed = 0x11771e;
    /* What a job really takes here, hand-offs included. */
    enum { CAL = 100 };
    fleet_job_t *cal[CAL];
    uint64_t c0 = now_ns();
    for (int i = 0; i < CAL; i++)
        assert_int_equal(fleet_submit(rt, serve, NULL, 0, 1, &cal[i]), 0);
    for (int i = 0; i < CAL; i++) {
        assert_int_equal(fleet_job_wait(cal[i]), 0);
        fleet_job_release(cal[i]);
    }
    const double mean_gap = (double)(now_ns() - c0) / CAL / LOAD; /* ns */
    const uint64_t run_ns = 1500000000u;
    struct sampler s = {rt, false, 0, 0};
    assert_int_equal(fleet_metrics_snapshot(rt, &m0), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sample, &s), 0);
    uint64_t t0 = now_ns(), next = t0;
    unsigned jobs = 0;
    while (next < t0 + run_ns) {
        uint64_t now = now_ns();
        if (next > now)
            sleep_ns(next - now);
        fleet_job_t *job;
        assert_int_equal(fleet_submit(rt, serve, NULL, 0, 1, &job), 0);
        fleet_job_release(job);
        jobs++;
        /* Exponential gaps: an open loop, whatever the queue does. */
        double u = ((double)(rng_next(&seed) >> 11) + 0.5) / 9007199254740992.0;
        next += (uint64_t)(-log(u) * mean_gap);
    }
    uint64_t t1 = now_ns();
    atomic_store(&s.stop, true);
    pthread_join(th, NULL);
    quiesce(rt, &m1);
    double lambda = (double)jobs / ((double)(t1 - t0) * 1e-9); /* per s */
    const fleet_hist_t *w = &m1.pending.wait;
    uint64_t waits = w->count - m0.pending.wait.count;
    double mean_wait = (double)(w->sum_ns - m0.pending.wait.sum_ns) * 1e-9 /
                       (double)waits; /* s */
    double l_sampled = s.sum / (double)s.samples;
    double l_little = lambda * mean_wait;
    print_message("little: %u jobs, lambda %.0f/s, mean wait %.1f us, "
                  "L sampled %.3f vs lambda*W %.3f (%llu samples), "
                  "pending high water %llu\n",
                  jobs, lambda, mean_wait * 1e6, l_sampled, l_little,
                  (unsigned long long)s.samples,
                  (unsigned long long)m1.pending.high_water);
    assert_true(waits == jobs);
    assert_true(l_little > 0.1); /* a real queue, not an empty one */
    assert_true(fabs(l_sampled - l_little) <= 0.1 * l_little);
    fleet_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_busy_while_running),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_prometheus),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_pinned_queue),
        cmocka_unit_test(test_reporter),
        cmocka_unit_test(test_littles_law),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
