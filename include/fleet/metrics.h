/*
 * fleet/metrics.h: what the dispatcher, the queues and each TaskManager
 * are doing, read as one snapshot, and written as JSON or in the Prometheus
 * text exposition format.
 *
 * Names follow Apache Flink's where Flink has one (busyTimeMsPerSecond,
 * idleTimeMsPerSecond, backPressuredTimeMsPerSecond, numRecordsIn/Out as
 * items and batches in/out). Counters are kept per thread or by the one
 * thread that holds the dispatcher role, so keeping them writes no cache
 * line shared by the workers; a snapshot sums them.
 *
 * The queues: PENDING (jobs and redispatched ranges waiting for the
 * dispatcher), each TaskManager's pinned queue (ranges of jobs pinned to it
 * with fleet_submit_on, taken from PENDING and waiting for its room), each
 * TaskManager's ring (batches handed to it, waiting for one of its
 * workers), SCHEDULED (batches handed out and not yet committed) and the
 * completions ring (batches done, waiting to be committed). For each: the
 * current length, its high-water mark and a histogram of the time an entry
 * spent in it (PENDING: push to pop by the dispatcher; pinned: from leaving
 * PENDING until its last batch is handed out, or it goes back to PENDING
 * when its TaskManager fails; a ring: enqueue to dequeue; SCHEDULED:
 * hand-out to commit; completions: post to commit).
 */
#ifndef FLEET_METRICS_H
#define FLEET_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include <fleet.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A log-bucketed histogram of durations: bucket i counts values v (ns)
 * with 2^i <= v + 1 < 2^(i + 1), i.e. bucket 0 holds 0 ns, bucket 1 holds
 * 1-2 ns, ..., the last one everything from about 9 minutes on. */
#define FLEET_HIST_BUCKETS 40
typedef struct fleet_hist {
    uint64_t count;
    uint64_t sum_ns;
    uint64_t max_ns;
    uint64_t bucket[FLEET_HIST_BUCKETS];
} fleet_hist_t;

/* The q-quantile (0 <= q <= 1) of h in ns: the upper edge of the bucket
 * holding it, never above max_ns; 0 for an empty histogram. Thread-safety:
 * any thread. */
FLEET_API uint64_t fleet_hist_quantile(const fleet_hist_t *h, double q);

/* The upper edge (ns, inclusive) of bucket i: 2^(i + 1) - 2. */
FLEET_API uint64_t fleet_hist_bucket_le(unsigned i);

typedef struct fleet_queue_metrics {
    uint64_t length;     /* entries now */
    uint64_t high_water; /* most entries ever */
    fleet_hist_t wait;   /* time in the queue */
} fleet_queue_metrics_t;

typedef struct fleet_tm_metrics {
    /* Per worker, averaged over the TaskManager's workers, since the
     * previous snapshot (the first: since the runtime was created); the
     * three add up to 1000. Busy: running task bodies (and check points);
     * back-pressured: blocked on a full queue (completions, PENDING);
     * idle: the rest, including a simulated failure. */
    double busy_time_ms_per_second;
    double idle_time_ms_per_second;
    double back_pressured_time_ms_per_second;
    uint64_t busy_ns_total; /* over all its workers, since creation */
    uint64_t batches_in;    /* handed to it */
    uint64_t batches_out;   /* committed from it */
    uint64_t items_in;
    uint64_t items_out;
    unsigned workers;
    int live;                     /* 1, or 0 while declared failed */
    fleet_queue_metrics_t pinned; /* ranges pinned here, waiting for room */
    fleet_queue_metrics_t ring;
} fleet_tm_metrics_t;

/* The most TaskManagers a snapshot describes one by one. */
#define FLEET_METRICS_MAX_TMS 64

typedef struct fleet_metrics {
    uint64_t taken_ns;      /* CLOCK_MONOTONIC, when the snapshot was taken */
    uint64_t interval_ns;   /* since the previous snapshot */
    unsigned task_managers; /* described in tm[], at most the max above */
    fleet_tm_metrics_t tm[FLEET_METRICS_MAX_TMS];
    fleet_queue_metrics_t pending, scheduled, completions;

    /* Dispatcher. */
    uint64_t jobs_submitted;  /* accepted by fleet_submit (and friends) */
    uint64_t jobs_completed;  /* ended, cancelled ones included */
    uint64_t jobs_inline;     /* tiny blocking jobs run on their caller */
    uint64_t batches_split;   /* batches made from pending ranges */
    uint64_t split_depth_max; /* halvings from a job to its batch, log2 */
    double split_depth_mean;
    fleet_hist_t dispatch_latency; /* submit to the job's first item */

    fleet_failure_stats_t failures;
} fleet_metrics_t;

/* Fills *out. Returns 0 or -EINVAL (NULL). Thread-safety: any thread;
 * concurrent snapshots each see a consistent state but share the "since
 * the previous snapshot" interval. Each counter is exact; counters of one
 * snapshot are read one after another while the runtime runs. */
FLEET_API int fleet_metrics_snapshot(fleet_runtime_t *rt, fleet_metrics_t *out);

/* Writes a snapshot as one JSON object (and a newline), and flushes out.
 * Returns 0, -EINVAL, -ENOMEM, or -EIO when writing or flushing failed.
 * Thread-safety: any thread. */
FLEET_API int fleet_metrics_write_json(fleet_runtime_t *rt, FILE *out);

/* Writes a snapshot in the Prometheus text exposition format (0.0.4):
 * gauges, counters, and the queue waits and dispatch latency as
 * histograms in seconds; flushes out. Returns as fleet_metrics_write_json.
 * Thread-safety: any thread. */
FLEET_API int fleet_metrics_write_prometheus(fleet_runtime_t *rt, FILE *out);

typedef enum fleet_metrics_format {
    FLEET_METRICS_JSON,
    FLEET_METRICS_PROMETHEUS
} fleet_metrics_format_t;

/*
 * Starts a thread that writes a snapshot every period_ms (>= 1) to `path`
 * (written to path + ".tmp", then renamed, so a reader never sees half a
 * snapshot), for watching a long run. One reporter per runtime; destroy
 * stops it. Returns 0, -EINVAL (NULL, period 0, unknown format), -EBUSY
 * (one is running), -ENOMEM, or the error pthread_create returned.
 * Thread-safety: any thread.
 */
FLEET_API int fleet_metrics_reporter_start(fleet_runtime_t *rt,
                                           const char *path, unsigned period_ms,
                                           fleet_metrics_format_t format);

/* Stops the reporter after one last snapshot. Returns 0, -EINVAL, or
 * -ENOENT (none running). Thread-safety: any thread. */
FLEET_API int fleet_metrics_reporter_stop(fleet_runtime_t *rt);

#ifdef __cplusplus
}
#endif

#endif /* FLEET_METRICS_H */
