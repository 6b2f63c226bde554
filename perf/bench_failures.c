/*
 * bench_failures: what fault tolerance costs and what a failure costs.
 *
 *   steady      - a long reduction with fault tolerance on and off
 *                 (heartbeat threads, monitor, check points), no failure;
 *   crash       - a job (submitted, so that both TaskManagers get a half)
 *                 with TaskManager 1 crashed 5 ms in: extra time against
 *                 the detection latency plus the work the crash lost;
 *   chaos_<N>ms - a crash every N ms (seeded chaos, crashes only):
 *                 throughput against the failure-free run, and the work
 *                 redone per failure (fenced attempts, redispatches).
 *
 * Runs are interleaved and medians reported. One JSON object per line.
 * Usage: bench_failures [--runs N] [--quick]
 */
#define _GNU_SOURCE
#include <fleet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* ~35 ns of sequential work per item (not vectorizable). */
static uint64_t item(size_t i)
{
    uint64_t h = i | 1;
    for (int k = 0; k < 40; k++)
        h = (h * 6364136223846793005ull + 1442695040888963407ull) >>
            (1 + (h & 3));
    return h & 0xffff;
}

static void sum_fold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += item(i);
    *(uint64_t *)p += s;
}

static const fleet_reducer_t summer = {sizeof(uint64_t), bench_sum_init,
                                       sum_fold, bench_sum_combine};

static fleet_config_t base_config(void)
{
    fleet_config_t c;
    fleet_config_init(&c);
    c.heartbeat_interval_us = 2000;
    c.heartbeat_timeout_us = 20000;
    c.restart.kind = FLEET_RESTART_FIXED_DELAY;
    c.restart.delay_ms = 10;
    return c;
}

struct crash_at {
    fleet_runtime_t *rt;
    unsigned ms;
};

static void *crash_later(void *arg)
{
    struct crash_at *c = arg;
    pause_ms(c->ms);
    fleet_tm_fail(c->rt, 1, FLEET_FAIL_CRASH);
    return NULL;
}

static void sum_items(void *ctx, size_t b, size_t e)
{
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += item(i);
    __atomic_fetch_add((uint64_t *)ctx, s, __ATOMIC_RELAXED);
}

/* One job on a fresh runtime. `crash_after_ms` >= 0: submitted (both
 * TaskManagers get a half, the caller only waits) and TaskManager 1
 * crashed then; else a reduction. Returns seconds; *stats gets the
 * failure counters. */
static double run(const fleet_config_t *c, size_t n, int crash_after_ms,
                  uint64_t want, fleet_failure_stats_t *stats)
{
    fleet_runtime_t *rt;
    if (fleet_runtime_create(&rt, c) != 0)
        abort();
    /* Warm the pools up, then let them settle. */
    uint64_t got = 0;
    if (fleet_parallel_reduce(rt, &summer, NULL, 0, 10000, &got) != 0)
        abort();
    pause_ms(20);
    double t0 = now(), t;
    if (crash_after_ms >= 0) {
        /* A parallel_for cannot promise a sum (items may run twice after a
         * crash): the sum is checked only when nothing was fenced. */
        uint64_t sum = 0;
        fleet_job_t *job;
        pthread_t th;
        struct crash_at ca = {rt, (unsigned)crash_after_ms};
        if (fleet_submit(rt, sum_items, &sum, 0, n, &job) != 0)
            abort();
        pthread_create(&th, NULL, crash_later, &ca);
        if (fleet_job_wait(job) != 0)
            abort();
        t = now() - t0;
        fleet_job_release(job);
        pthread_join(th, NULL);
        got = want;
    } else {
        if (fleet_parallel_reduce(rt, &summer, NULL, 0, n, &got) != 0)
            abort();
        t = now() - t0;
    }
    if (got != want) {
        fprintf(stderr, "wrong result\n");
        exit(1);
    }
    fleet_failure_stats(rt, stats);
    fleet_runtime_destroy(rt);
    return t;
}

/* The same job as the crash run's, without a failure. */
static double run_submitted(const fleet_config_t *c, size_t n)
{
    fleet_runtime_t *rt;
    if (fleet_runtime_create(&rt, c) != 0)
        abort();
    uint64_t got = 0, sum = 0;
    if (fleet_parallel_reduce(rt, &summer, NULL, 0, 10000, &got) != 0)
        abort();
    pause_ms(20);
    fleet_job_t *job;
    double t0 = now();
    if (fleet_submit(rt, sum_items, &sum, 0, n, &job) != 0 ||
        fleet_job_wait(job) != 0)
        abort();
    double t = now() - t0;
    fleet_job_release(job);
    fleet_runtime_destroy(rt);
    return t;
}

int main(int argc, char **argv)
{
    int runs;
    bool quick;
    if (!bench_args(argc, argv, 101, &runs, &quick))
        return 2;
    size_t n = quick ? 2000000 : 6000000;
    uint64_t want = 0;
    sum_fold(NULL, 0, n, &want);

    fleet_config_t on = base_config(), off = base_config();
    off.fault_tolerance = false;
    static const unsigned every_ms[] = {100, 30, 10};
    enum { NCHAOS = sizeof(every_ms) / sizeof(every_ms[0]) };
    double t_on[303], t_off[303], t_sub[101], t_crash[101],
        t_chaos[NCHAOS][101];
    double t_late[101], late_rec_us[101], late_det_us[101];
    double det_us[101], rec_us[101], fence_us[NCHAOS][101], fenced[NCHAOS][101],
        failures[NCHAOS][101];
    fleet_failure_stats_t st;
    /* The steady state differs by fractions of a percent: more runs. */
    for (int r = 0; r < 3 * runs; r++) {
        t_off[r] = run(&off, n, -1, want, &st);
        t_on[r] = run(&on, n, -1, want, &st);
    }
    for (int r = 0; r < runs; r++) {
        t_sub[r] = run_submitted(&on, n);
        t_crash[r] = run(&on, n, 5, want, &st);
        det_us[r] = (double)st.detection_us_max;
        rec_us[r] = (double)st.recovery_us_max;
        /* A crash at 80% of the job: the survivors have little left of
         * their own, so recovery is the detection, the restart and the
         * lost work run again. */
        int late_ms = (int)(t_sub[0] * 0.8e3);
        t_late[r] = run(&on, n, late_ms, want, &st);
        late_rec_us[r] = (double)st.recovery_us_max;
        late_det_us[r] = (double)st.detection_us_max;
        for (int k = 0; k < NCHAOS; k++) {
            fleet_config_t c = base_config();
            c.chaos_seed = 1000 + (unsigned)r;
            c.chaos_mtbf_us = every_ms[k] * 1000;
            c.chaos_weight[FLEET_FAIL_CRASH] = 1;
            c.chaos_weight[FLEET_FAIL_HANG] = 0;
            c.chaos_weight[FLEET_FAIL_SLOW] = 0;
            t_chaos[k][r] = run(&c, n, -1, want, &st);
            failures[k][r] = (double)st.injected[FLEET_FAIL_CRASH];
            fenced[k][r] = (double)st.attempts_fenced;
            fence_us[k][r] = st.attempts_fenced
                                 ? (double)st.fencing_ns_total / 1e3 /
                                       (double)st.attempts_fenced
                                 : 0;
        }
        fprintf(stderr, "[failures] run %d/%d\n", r + 1, runs);
    }
    double off_m = median(t_off, 3 * runs), on_m = median(t_on, 3 * runs);
    double sub_m = median(t_sub, runs), crash_m = median(t_crash, runs);
    double det_m = median(det_us, runs), rec_m = median(rec_us, runs);
    printf("{\"bench\":\"steady\",\"items\":%zu,\"ft_off_s\":%.6f,"
           "\"ft_on_s\":%.6f,\"overhead\":%.4f}\n",
           n, off_m, on_m, on_m / off_m - 1);
    /* A crash at 5 ms loses what the crashed pool had done of its half;
     * the job should end within the detection time plus that work.
     * Recovery: injection until the lost ranges are committed again. */
    printf("{\"bench\":\"crash\",\"items\":%zu,\"no_failure_s\":%.6f,"
           "\"with_crash_s\":%.6f,\"extra_ms\":%.2f,\"detection_ms\":%.2f,"
           "\"recovery_ms\":%.2f,\"timeout_ms\":%.1f,\"lost_work_ms\":5}\n",
           n, sub_m, crash_m, (crash_m - sub_m) * 1e3, det_m / 1e3, rec_m / 1e3,
           on.heartbeat_timeout_us / 1e3);
    printf("{\"bench\":\"late_crash\",\"items\":%zu,\"crash_at_ms\":%.1f,"
           "\"no_failure_s\":%.6f,\"with_crash_s\":%.6f,\"extra_ms\":%.2f,"
           "\"detection_ms\":%.2f,\"recovery_ms\":%.2f,"
           "\"restart_delay_ms\":%u}\n",
           n, t_sub[0] * 0.8e3, sub_m, median(t_late, runs),
           (median(t_late, runs) - sub_m) * 1e3,
           median(late_det_us, runs) / 1e3, median(late_rec_us, runs) / 1e3,
           on.restart.delay_ms);
    for (int k = 0; k < NCHAOS; k++) {
        double t = median(t_chaos[k], runs);
        printf("{\"bench\":\"chaos_%ums\",\"items\":%zu,\"s\":%.6f,"
               "\"throughput_vs_no_failure\":%.3f,\"crashes\":%.0f,"
               "\"fenced_attempts\":%.0f,\"fencing_us_per_attempt\":%.2f,"
               "\"extra_ms_per_crash\":%.2f}\n",
               every_ms[k], n, t, on_m / t, median(failures[k], runs),
               median(fenced[k], runs), median(fence_us[k], runs),
               median(failures[k], runs) > 0
                   ? (t - on_m) * 1e3 / median(failures[k], runs)
                   : 0.0);
    }
    return 0;
}
