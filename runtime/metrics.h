/*
 * metrics: the counters behind include/fleet/metrics.h, the snapshot, the
 * exporters and the reporter thread.
 *
 * Who writes what (so that no worker writes a line another one writes):
 * - each worker its own struct fl_wmetrics (busy and back-pressured time,
 *   its TaskManager ring's waits, dispatch latencies it saw first);
 * - the dispatcher role holder the per-TaskManager in/out counters, the
 *   ring high-water marks and everything in struct fl_metrics marked
 *   "role" (one writer at a time, ordered by the role's CAS);
 * - any thread the few fields marked "shared" (submit, post), with atomic
 *   read-modify-writes on lines of their own.
 * Single-writer counters are updated with a relaxed load and store, and
 * read by the snapshot with relaxed loads: each value is exact, a snapshot
 * is not a stop-the-world copy.
 */
#ifndef FLEET_METRICS_INTERNAL_H
#define FLEET_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fleet/metrics.h"

struct fl_hist {
    _Atomic uint64_t count, sum, max;
    _Atomic uint64_t bucket[FLEET_HIST_BUCKETS];
};

/* Adds to a counter that only the caller writes. */
static inline void fl_count1(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Adds one to a queue length only the caller writes, raising its
 * high-water mark (also the caller's alone). */
static inline void fl_len_inc1(_Atomic uint64_t *len, _Atomic uint64_t *hwm)
{
    uint64_t n = atomic_load_explicit(len, memory_order_relaxed) + 1;
    atomic_store_explicit(len, n, memory_order_relaxed);
    if (n > atomic_load_explicit(hwm, memory_order_relaxed))
        atomic_store_explicit(hwm, n, memory_order_relaxed);
}

/* Raises *m to v if below; any number of writers. */
void fl_max_raise(_Atomic uint64_t *m, uint64_t v);

/* Records ns in h: fl_hist_add1 when the caller is h's only writer,
 * fl_hist_add otherwise. */
void fl_hist_add1(struct fl_hist *h, uint64_t ns);
void fl_hist_add(struct fl_hist *h, uint64_t ns);

/* Adds h's counts into *out. */
void fl_hist_read(const struct fl_hist *h, fleet_hist_t *out);

/* One worker's counters, padded off its neighbours' lines. */
struct fl_wmetrics {
    alignas(64) _Atomic uint64_t busy_ns;
    _Atomic uint64_t bp_ns;
    struct fl_hist ring_wait; /* its pool's ring: enqueue to its dequeue */
    struct fl_hist latency;   /* submit to first item, jobs it started */
    char pad[64];
};

struct fl_tm_counters {
    /* Role. */
    _Atomic uint64_t batches_in, batches_out, items_in, items_out;
    _Atomic uint64_t ring_hwm;
    _Atomic uint64_t pinned_len, pinned_hwm;
    struct fl_hist pinned_wait; /* leaving PENDING to the last hand-out */
};

struct fl_metrics {
    uint64_t created_ns;
    /* Role. */
    alignas(64) _Atomic uint64_t sched_len, sched_hwm;
    struct fl_hist sched_time; /* hand-out to commit */
    struct fl_hist comp_wait;  /* post to commit */
    _Atomic uint64_t batches_split, depth_max, depth_sum;
    _Atomic uint64_t jobs_completed;
    /* Shared. */
    alignas(64) _Atomic uint64_t jobs_submitted;
    alignas(64) _Atomic uint64_t comp_hwm;
    alignas(64) struct fl_hist latency_out; /* jobs first run by a caller */

    /* The previous snapshot, for the per-second rates. */
    pthread_mutex_t lock;
    uint64_t last_ns;
    uint64_t *last_busy, *last_bp; /* per TaskManager */

    /* The reporter thread: rep_ctl serialises start and stop (held across
     * the join); rep_lock guards the fields the thread reads. */
    pthread_mutex_t rep_ctl;
    pthread_mutex_t rep_lock;
    pthread_cond_t rep_cond;
    pthread_t rep_thread;
    bool rep_running, rep_stop;
    char *rep_path;
    unsigned rep_period_ms;
    fleet_metrics_format_t rep_format;
};

struct fleet_runtime;

/* Sets up rt->metrics for rt->ntm TaskManagers. 0 or -ENOMEM. */
int fl_metrics_init(struct fleet_runtime *rt);
/* Stops a reporter still running, then frees. */
void fl_metrics_fini(struct fleet_runtime *rt);

#endif /* FLEET_METRICS_INTERNAL_H */
