/*
 * fleet: an in-process task runtime for C.
 *
 * A program creates a runtime (a dispatcher plus `task_managers` pools of
 * worker threads), hands it ranges of work, and waits for them. The
 * dispatcher splits each range by recursive halving ("binary scheduling")
 * and hands the pieces (batches) to the least-loaded TaskManager; the
 * workers of a pool share a batch by claiming chunks of it, and an idle
 * TaskManager takes the unclaimed tail of a busy one's batch.
 *
 * Conventions (as in libuv): every call that can fail returns 0 or a
 * negative errno value; fleet_strerror() names it. When a call fails, the
 * callbacks it was given never run and nothing it was given is kept.
 *
 * Memory: the library allocates through jemalloc's own calls (mallocx,
 * one arena per TaskManager). The program's malloc() stays the C
 * library's: libc comes before the linked jemalloc in symbol lookup.
 * Sanitizer builds, and builds with FLEET_SYSTEM_MALLOC, use the system
 * malloc for everything.
 */
#ifndef FLEET_H
#define FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FLEET_API __attribute__((visibility("default")))
#else
#define FLEET_API
#endif

typedef struct fleet_runtime fleet_runtime_t; /* opaque */
typedef struct fleet_job fleet_job_t;         /* opaque */

/* Simulated TaskManager failures (fleet_tm_fail, and the chaos injector). */
typedef enum {
    FLEET_FAIL_CRASH, /* stops at once: its queued and running work is lost */
    FLEET_FAIL_HANG,  /* stops making progress and heartbeating */
    FLEET_FAIL_SLOW   /* keeps working and heartbeating, several times slower */
} fleet_fail_t;

/*
 * When a failed TaskManager rejoins, named and parametrised like Flink's
 * restart strategies. A restart clears the simulated fault; a TaskManager
 * that will not restart stays out. Times in milliseconds.
 */
typedef enum {
    FLEET_RESTART_NONE,        /* never */
    FLEET_RESTART_FIXED_DELAY, /* after delay_ms, at most attempts times */
    FLEET_RESTART_EXPONENTIAL_DELAY, /* after initial_ms, x multiplier each
                                        time, capped at max_ms, +-jitter */
    FLEET_RESTART_FAILURE_RATE       /* after delay_ms, unless more than
                                        max_failures in interval_ms */
} fleet_restart_kind_t;

typedef struct fleet_restart {
    fleet_restart_kind_t kind;
    unsigned attempts;   /* fixed-delay: restarts per TaskManager; 0 = no
                            limit */
    unsigned delay_ms;   /* fixed-delay, failure-rate */
    unsigned initial_ms; /* exponential-delay: first delay */
    unsigned max_ms;     /* exponential-delay: cap, >= initial_ms */
    double multiplier;   /* exponential-delay: 1 .. 10^6 */
    double jitter;       /* exponential-delay: 0..1, a fraction of the delay */
    unsigned max_failures; /* failure-rate: per interval, 1 .. 10^6 */
    unsigned interval_ms;  /* failure-rate: >= 1 */
} fleet_restart_t;

typedef struct fleet_config {
    /* Worker pools. Default 2; 1 .. 1024. */
    unsigned task_managers;
    /* Threads per pool, at most 1024; 0 = the usable CPU count divided by
     * task_managers, at least 1. */
    unsigned workers_per_tm;
    /* Batches each queue (PENDING, every TaskManager's ring) holds at least
     * (a ring holds one less than twice that); a power of two, 4 .. 2^20.
     * Default 64. */
    unsigned ring_size;
    /* Smallest batch the dispatcher makes, in items; 0 = automatic (derived
     * per job from its size and the number of workers). It is a floor, not
     * a target: batches are split further only when someone is idle. */
    size_t grain;
    /* Heartbeat period (>= 1) and failure timeout of the TaskManagers, in
     * microseconds; the timeout must exceed the interval. Defaults 2000 and
     * 20000. */
    unsigned heartbeat_interval_us;
    unsigned heartbeat_timeout_us;
    /* How long an idle worker or waiter spins (yielding the CPU between
     * checks) before it sleeps, in microseconds. Default 50, at most
     * 1000000; 0 sleeps at once. */
    unsigned spin_us;

    /* Fault tolerance: heartbeats, failure detection, redispatch, restarts
     * and speculation. Default true; false runs no heartbeat threads and
     * makes fleet_tm_fail return -ENOTSUP. */
    bool fault_tolerance;
    /* When a failed TaskManager rejoins. Default: fixed-delay, no attempt
     * limit, 10 ms. */
    fleet_restart_t restart;
    /* FLEET_FAIL_SLOW makes a TaskManager this many times slower (>= 2,
     * <= 1000). Default 4. */
    unsigned slow_factor;
    /* Speculative execution: on a SLOW TaskManager, a batch whose items are
     * all claimed but which runs longer than 1.5x the median batch time and
     * than speculation_floor_us gets a second attempt on an idle
     * TaskManager; the first to complete commits, the other is fenced.
     * (Elsewhere a long batch is long work, and a second attempt would run
     * parallel_for items twice with nothing failed.) Default true, floor
     * 20000. */
    bool speculation;
    unsigned speculation_floor_us;
    /* Seeded random failures while jobs run ("chaos"): 0 = off; on, it
     * needs fault_tolerance. Failures come at exponentially distributed
     * intervals of mean chaos_mtbf_us (>= 1), on random live TaskManagers,
     * of kinds drawn with the weights chaos_weight[FLEET_FAIL_CRASH..
     * FLEET_FAIL_SLOW] (not all 0). A HANG or SLOW ends after
     * chaos_fault_us (>= 1); a CRASH ends when the restart strategy
     * restarts it. */
    unsigned long long chaos_seed;
    unsigned chaos_mtbf_us;
    unsigned chaos_weight[3];
    unsigned chaos_fault_us;
} fleet_config_t;

/* Fills *cfg with the defaults above. Thread-safety: any thread. */
FLEET_API void fleet_config_init(fleet_config_t *cfg);

/*
 * Creates a runtime from *cfg (NULL: the defaults) and starts its threads.
 * Returns 0 and sets *out, or -EINVAL (bad configuration, NULL out),
 * -ENOMEM, or the error pthread_create returned (-EAGAIN).
 * Thread-safety: any thread; runtimes are independent of each other.
 */
FLEET_API int fleet_runtime_create(fleet_runtime_t **out,
                                   const fleet_config_t *cfg);

/* Copies rt's configuration, defaults resolved (workers_per_tm is never 0
 * there), to *out. Returns 0 or -EINVAL for NULL. Thread-safety: any
 * thread. */
FLEET_API int fleet_runtime_config(const fleet_runtime_t *rt,
                                   fleet_config_t *out);

/*
 * Waits until every submitted job has completed (released ones included),
 * stops and joins every thread of the runtime and frees it. NULL is a no-op.
 * Jobs not yet released stay valid for fleet_job_wait/fleet_job_release.
 * Thread-safety: once per runtime, from a thread that is not one of its
 * workers and with no other call on it in progress or to come.
 */
FLEET_API void fleet_runtime_destroy(fleet_runtime_t *rt);

/* Runs items [begin, end) of a job; may be called many times per job, from
 * any worker, with disjoint sub-ranges whose union is the job's range. */
typedef void (*fleet_range_fn)(void *ctx, size_t begin, size_t end);

/*
 * Submits fn over [begin, end) and returns at once with a handle in *job.
 * If the PENDING queue is full, waits until the dispatcher makes room
 * (back-pressure). An empty range completes at once.
 * Returns 0, -EINVAL (NULL rt/fn/job, begin > end), -ENOMEM, -ESHUTDOWN
 * when called from outside the runtime once destroy has begun (task bodies
 * may still submit while destroy drains), or -ECANCELED when no
 * TaskManager is live and none will restart.
 * Thread-safety: any thread, also from inside a task body.
 */
FLEET_API int fleet_submit(fleet_runtime_t *rt, fleet_range_fn fn, void *ctx,
                           size_t begin, size_t end, fleet_job_t **job);

/*
 * Like fleet_submit, but the job's batches run on TaskManager `tm` only
 * (0 <= tm < task_managers), e.g. where the state its items touch lives: the
 * range is split by halving for that pool's idle workers alone, no other
 * TaskManager is handed its batches or steals their tails (nor speculates
 * on them), and the waiter of the job does not run them itself
 * (fleet_job_wait only waits for a pinned job, unless the waiting thread is
 * a worker of `tm`, e.g. a task body of tm's that waits). However small, it
 * never runs on its caller. While `tm` is busy the job waits for it, and
 * other jobs meanwhile go ahead.
 * Failover: if `tm` is declared failed, the job's batches it held go back
 * to PENDING and, while it is not live, this job's work runs on any live
 * TaskManager, like any other job's; once it has restarted, what has not
 * been handed out yet goes to `tm` again. Batches run elsewhere only after
 * such a failure, and its count in fleet_tm_status() has gone up before
 * (see there). If no TaskManager is live and none will restart, the job
 * ends with -ECANCELED as any other.
 * Returns 0, or the errors of fleet_submit, with -EINVAL also for
 * tm >= task_managers.
 * Thread-safety: any thread, also from inside a task body.
 */
FLEET_API int fleet_submit_on(fleet_runtime_t *rt, unsigned tm,
                              fleet_range_fn fn, void *ctx, size_t begin,
                              size_t end, fleet_job_t **job);

/*
 * Waits until every item of the job has been processed and committed,
 * and no thread runs its function any more (also not a fenced attempt).
 * While it waits, the caller helps run the job's work (a pinned job's only
 * if it is a worker of that job's TaskManager). Returns 0, -EINVAL
 * for NULL, or -ECANCELED when no TaskManager was live and none would
 * restart (some items may not have run).
 * Thread-safety: any thread, also from inside a task body; any number of
 * threads may wait on one job until it is released.
 */
FLEET_API int fleet_job_wait(fleet_job_t *job);

/* Like fleet_job_wait, but returns at once: -EAGAIN while the job runs,
 * else what fleet_job_wait would return. Never helps, never blocks.
 * Thread-safety: as fleet_job_wait. */
FLEET_API int fleet_job_poll(fleet_job_t *job);

/*
 * Gives up the caller's handle. The job still runs to completion; the
 * runtime frees it then. NULL is a no-op.
 * Thread-safety: once per job, after every wait on it has returned.
 */
FLEET_API void fleet_job_release(fleet_job_t *job);

/* fleet_submit + fleet_job_wait + fleet_job_release. Same errors as
 * those. Each item runs at least once; more than once only when an attempt
 * was fenced after a failure. A job whose items earlier runs of the same
 * fn and ctx showed to be so cheap that all of it costs less than a
 * hand-off to a worker (about 2 us) runs on the calling thread (giving the
 * rest to the workers if it turns out slower). Thread-safety: any thread,
 * also from inside a task body (the waiting worker runs pending work
 * meanwhile). */
FLEET_API int fleet_parallel_for(fleet_runtime_t *rt, fleet_range_fn fn,
                                 void *ctx, size_t begin, size_t end);

/*
 * A reduction: every batch starts from init() and fold()s its items into
 * its own partial of `size` bytes; partials are merged with combine().
 * combine must be associative and commutative (partials are merged in
 * completion order); it is called from worker threads too, but never twice
 * at once on the same `into`.
 */
typedef struct fleet_reducer {
    size_t size; /* bytes of a partial, >= 1 */
    void (*init)(void *ctx, void *partial);
    void (*fold)(void *ctx, size_t begin, size_t end, void *partial);
    void (*combine)(void *ctx, void *into, const void *partial);
} fleet_reducer_t;

/*
 * Reduces [begin, end) into *result (r->size bytes): result is init()ed,
 * then every batch's partial is combined into it exactly once, whatever
 * fails (partials of fenced attempts are discarded). A tiny job may run on
 * the caller as one batch, as in fleet_parallel_for (partials up to 64
 * bytes). Returns 0, -EINVAL
 * (NULL rt/r/result, a NULL callback, size 0, begin > end), -ENOMEM,
 * -ESHUTDOWN or -ECANCELED. On error *result is left untouched.
 * Thread-safety: as fleet_parallel_for.
 */
FLEET_API int fleet_parallel_reduce(fleet_runtime_t *rt,
                                    const fleet_reducer_t *r, void *ctx,
                                    size_t begin, size_t end, void *result);

/*
 * Simulates a failure of TaskManager `tm`: its threads obey `how` from
 * their next check point (between two chunks of work, or when idle). A
 * CRASH or HANG stops its heartbeats, so the monitor declares the
 * TaskManager failed after heartbeat_timeout_us: its batches then go back
 * to PENDING and run elsewhere (anything the failed attempt still
 * completes is fenced off), and the restart strategy decides when it
 * rejoins. A SLOW TaskManager keeps heartbeating; speculation copes with
 * its stragglers.
 * Returns 0, -EINVAL (NULL runtime, unknown `tm` or `how`), -EALREADY (a
 * fault is already simulated on it, or it is failed and not restarted yet),
 * or -ENOTSUP (fault_tolerance is off).
 * Thread-safety: any thread.
 */
FLEET_API int fleet_tm_fail(fleet_runtime_t *rt, unsigned tm, fleet_fail_t how);

/*
 * Ends the simulated failure of `tm`: a SLOW one runs at full speed again,
 * a HANG not yet detected resumes its work where it stopped. A TaskManager
 * already declared failed (or crashed) is restarted at once, whatever the
 * restart strategy says. Returns 0, -EINVAL, -EALREADY (nothing to end), or
 * -ENOTSUP. Thread-safety: any thread.
 */
FLEET_API int fleet_tm_recover(fleet_runtime_t *rt, unsigned tm);

/* What the runtime counted about failures since it was created. */
typedef struct fleet_failure_stats {
    uint64_t injected[3];       /* by fleet_tm_fail or chaos, by kind */
    uint64_t detected[3];       /* declared failed, by the injected kind */
    uint64_t suspected;         /* declared failed with nothing simulated:
                                   its heartbeat thread got no CPU */
    uint64_t detection_us_last; /* injection to declared failed */
    uint64_t detection_us_max;
    uint64_t detection_us_total; /* / sum of detected[] = the mean */
    uint64_t batches_redispatched;
    uint64_t attempts_fenced; /* attempts whose work was discarded */
    uint64_t speculative_launched;
    uint64_t speculative_won; /* the copy committed before the original */
    uint64_t restarts;
    uint64_t jobs_cancelled; /* ended with -ECANCELED */
    /* Recovery: from a failure's injection (or, unsimulated, its detection)
     * until every range it sent back to PENDING has been committed again.
     * Failures of one TaskManager that overlap count as one recovery, from
     * the earliest. */
    uint64_t recoveries;
    uint64_t recovery_us_last;
    uint64_t recovery_us_max;
    uint64_t recovery_us_total; /* / recoveries = the mean */
    /* Time the monitor spent fencing failed TaskManagers' batches and
     * queueing their ranges again. */
    uint64_t fencing_ns_total;
    /* Batches cut because they had run longer than heartbeat_timeout_us / 2:
     * a batch commits as a whole, so cutting bounds what a failure loses
     * (about a timeout's work per thread). */
    uint64_t batches_cut;
    unsigned task_managers_live; /* not declared failed now */
} fleet_failure_stats_t;

/* Copies the counters to *out. Returns 0 or -EINVAL. Thread-safety: any
 * thread; the counters are read one by one, not as one snapshot. */
FLEET_API int fleet_failure_stats(const fleet_runtime_t *rt,
                                  fleet_failure_stats_t *out);

/* One TaskManager's state, as fleet_tm_status() reports it. */
typedef struct fleet_tm_status {
    bool live;         /* not declared failed now */
    uint64_t failures; /* times it has been declared failed (detected: by
                          the monitor's heartbeat timeout), since the
                          runtime was created */
    uint64_t restarts; /* times it rejoined */
} fleet_tm_status_t;

/*
 * Copies the state of TaskManager `tm` to *out, the three fields as of one
 * moment (live is false exactly when failures == restarts + 1).
 * Ordering: once `tm` has been declared failed, `failures` has gone up
 * before any batch it held (or any range waiting for it) is handed out
 * again, and it is read with acquire order. So a caller that reads it after
 * its job pinned to `tm` has completed (fleet_job_wait or fleet_job_poll
 * returned) sees every failure that made any of that job's batches run
 * elsewhere: if `tm` was live before the submit and `failures` has not
 * changed since, all of the job ran on `tm`.
 * Returns 0 or -EINVAL (NULL rt or out, tm out of range).
 * Thread-safety: any thread.
 */
FLEET_API int fleet_tm_status(const fleet_runtime_t *rt, unsigned tm,
                              fleet_tm_status_t *out);

/* A static description of a (negative or positive) errno value returned by
 * this library: "success" for 0, "unknown error" for an int that is no
 * errno value. Thread-safety: any thread. */
FLEET_API const char *fleet_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* FLEET_H */
