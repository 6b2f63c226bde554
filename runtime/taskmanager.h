/*
 * taskmanager: a TaskManager is a pool of worker threads with its own input
 * ring (the dispatcher role is its only producer, its workers consume),
 * its own jemalloc arena, and a list of the batches it is running.
 *
 * A worker takes a batch from the ring and runs it chunk by chunk (the claim
 * protocol of batch.h). Idle siblings join a running batch of their own
 * pool instead of sleeping — lazy splitting inside the pool — and after a
 * bounded spin they sleep on the pool's event, which the dispatcher signals
 * when it hands the pool work.
 *
 * Failures are simulated per pool: `fault` says what its threads obey from
 * their next check point — between two chunks, or in the idle loop, never
 * inside a ring call or a task body. SLOW sleeps (slow_factor - 1) times the
 * chunk's time after each chunk; CRASH and HANG freeze the worker until the
 * fault ends or the pool is declared failed, in which case it leaves its
 * batch (fenced by then). Liveness is reported by one heartbeat thread per
 * pool, which stops while the pool is frozen.
 *
 * Jobs pinned to a TaskManager (fleet_submit_on) wait for its room in its
 * own queue of pending ranges, which the dispatcher role keeps here and
 * serves to this pool only; `has_pinned` tells its idle workers to call the
 * dispatcher, as the dispatcher's has_pending does for the other jobs.
 *
 * It does not decide who gets what (the dispatcher does) and does not commit.
 */
#ifndef FLEET_TASKMANAGER_H
#define FLEET_TASKMANAGER_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "batch.h"
#include "metrics.h"
#include "ring.h"
#include "wait.h"

struct fleet_runtime;
struct fleet_job;
struct fl_pending;
struct fl_tm;

struct fl_worker {
    struct fleet_runtime *rt;
    struct fl_tm *tm;
    unsigned index;
    pthread_t thread;
    bool started;
    struct fl_wmetrics m; /* written by this worker only */
};

struct fl_tm {
    struct fleet_runtime *rt;
    unsigned index;
    unsigned arena;
    unsigned nworkers;
    struct fl_worker *workers;
    struct fl_ring ring; /* SPMC: dispatcher role -> workers */

    alignas(64) struct fl_event ev; /* idle workers sleep here */
    _Atomic unsigned idle;          /* workers looking for work */
    _Atomic unsigned spinning;      /* ... of which awake, not asleep */
    _Atomic unsigned parked;        /* workers asleep on ev, idle or not */
    /* The role left ranges pinned here waiting for room (a snapshot of
     * `pinned` != NULL, stored by the role, read by idle workers). */
    _Atomic bool has_pinned;

    /* Lock order: dispatcher role, then this lock, then a batch's
     * partial_lock. Guards the running list. */
    alignas(64) pthread_mutex_t lock;
    struct fl_batch_list running; /* taken from the ring, not yet posted */

    /* Fault tolerance. */
    alignas(64) _Atomic int fault; /* FL_FAULT_NONE or a fleet_fail_t */
    _Atomic bool live;             /* not declared failed */
    _Atomic unsigned fail_epoch;   /* +1 each time it is declared failed */
    _Atomic uint64_t heartbeat;    /* ns, by its heartbeat thread */
    _Atomic uint64_t fault_at;     /* ns, when the fault was injected */
    _Atomic bool restart_asap;     /* fleet_tm_recover: restart at once */
    pthread_t hb_thread;
    bool hb_started;
    /* fleet_tm_status: times declared failed, and restarted, since the
     * runtime was created. Written under the dispatcher role, `failures`
     * before any of its batches is queued again; live == (failures ==
     * rejoins) whenever the role is free. */
    _Atomic uint64_t failures;
    _Atomic uint64_t rejoins;

    /* Dispatcher role only. */
    alignas(64) size_t load;        /* items in SCHEDULED batches */
    struct fl_batch_list scheduled; /* the SCHEDULED list */
    struct fl_batch *pool;          /* committed batches for reuse */
    unsigned pooled;
    struct fl_tm_counters counters; /* read by snapshots */
    uint64_t restart_at;  /* when to rejoin; UINT64_MAX: not scheduled */
    unsigned restarts;    /* done so far */
    unsigned backoff;     /* exponential-delay: the next delay's exponent */
    uint64_t live_since;  /* ns, last (re)start */
    uint64_t *fail_times; /* failure-rate: the last failures, a ring */
    unsigned fail_count;  /* failures recorded in fail_times */
    uint64_t chaos_end;   /* ns, when a chaos HANG or SLOW ends; 0: none */
    /* Items its failures sent back to PENDING, not committed yet, and when
     * the earliest of those failures was injected (ns). */
    size_t lost_items;
    uint64_t lost_since;
    /* Ranges of jobs pinned here, taken from PENDING while it is live and
     * waiting for its room, oldest first (linked through their `next`);
     * sent back to PENDING when it is declared failed. */
    struct fl_pending *pinned, *pinned_tail;
    /* Its workers registered as sleepers (fl_park_prepare). */
    unsigned sleepers;
};

/* `fault` when nothing is simulated. */
#define FL_FAULT_NONE (-1)

/* Committed batches a TaskManager keeps for reuse, and the partial size
 * they are allocated with at least. */
#define FL_BATCH_POOL 64
#define FL_BATCH_PARTIAL 64

/* Whether the pool's threads are frozen by a CRASH or HANG. */
static inline bool fl_tm_frozen(struct fl_tm *tm)
{
    int f = atomic_load_explicit(&tm->fault, memory_order_acquire);
    return f == FLEET_FAIL_CRASH || f == FLEET_FAIL_HANG;
}

/* Returns 0, -ENOMEM or -EINVAL. Starts no thread. */
int fl_tm_init(struct fl_tm *tm, struct fleet_runtime *rt, unsigned index,
               unsigned nworkers, unsigned ring_capacity);
/* Starts the workers, and the heartbeat thread when fault tolerance is on.
 * Returns 0 or -errno (those started keep running). */
int fl_tm_start(struct fl_tm *tm);
/* Joins its threads; the runtime's stop flag must be set and its events
 * signalled. */
void fl_tm_join(struct fl_tm *tm);
/* Frees what init made, batches left in the ring included. */
void fl_tm_fini(struct fl_tm *tm);

/* Wakes the pool's sleeping workers. Any thread. */
void fl_tm_wake(struct fl_tm *tm);

/* Whether some worker of the pool is not asleep (a snapshot). */
static inline bool fl_tm_awake(struct fl_tm *tm)
{
    return atomic_load_explicit(&tm->parked, memory_order_relaxed) <
           tm->nworkers;
}

/* Whether the dispatcher role left ranges pinned to tm waiting for its room
 * (a snapshot). Any thread. */
static inline bool fl_tm_pinned_waiting(struct fl_tm *tm)
{
    /* seq_cst: see the role's store (dispatcher.c, publish_pinned). */
    return atomic_load_explicit(&tm->has_pinned, memory_order_seq_cst);
}

/* Sleeps on the pool's event while its value is `seen`, counted as parked
 * and not awake. A worker of the pool. */
void fl_tm_park(struct fl_tm *tm, uint32_t seen);

/* Takes one batch from its pool's ring and runs what it can of it. False
 * when the ring is empty. A worker of the pool. */
bool fl_tm_take(struct fl_worker *self);

/* Joins the running batch of its pool with the most unclaimed items and
 * runs chunks of it. False when none has any. A worker of the pool. */
bool fl_tm_join_running(struct fl_worker *self);

/* Whether the pool has a batch in its ring or an unclaimed chunk on its
 * running list. Any thread. */
bool fl_tm_has_work(struct fl_tm *tm);

/* Puts b on the running list, so idle workers of the pool can join it,
 * unless it is posted meanwhile. Any thread that may touch b. */
void fl_tm_running_add(struct fl_tm *tm, struct fl_batch *b);

/* Takes b off the running list if it is there; takes the lock only then.
 * The poster of b, after storing `posted`. */
void fl_tm_running_remove(struct fl_tm *tm, struct fl_batch *b);

/*
 * Runs chunk [s, e) of b (already claimed by the caller at `now`, its
 * fl_now_ns()), then every chunk it can still claim, folds or runs them,
 * leaves, and posts b if it was the last. `self` is the calling worker (its
 * pool's fault applies between chunks) or NULL. Any thread of the runtime.
 */
void fl_visit(struct fleet_runtime *rt, struct fl_worker *self,
              struct fl_batch *b, size_t s, size_t e, uint64_t now);

/* For a worker whose pool is frozen and that holds no batch: sleeps until
 * the fault ends or the runtime stops. */
void fl_tm_freeze_idle(struct fl_worker *self);

#endif /* FLEET_TASKMANAGER_H */
