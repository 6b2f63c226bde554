/*
 * dispatcher: binary scheduling, SCHEDULED bookkeeping and commits.
 *
 * The dispatcher is a role, held by whichever thread wins `role` with a
 * CAS: the dispatcher thread, a submitter (the fast path: it splits its own
 * job at once), a waiter, or a worker that has just posted a batch. The
 * holder drains the completion ring (committing each batch once), hands
 * PENDING ranges to TaskManagers by recursive splitting, and, when nothing
 * is pending and a TaskManager is idle, cuts the unclaimed tail off the
 * biggest running batch of a busy TaskManager for it. On release it checks
 * the rings again, so work that arrived meanwhile is never stranded.
 *
 * Everything marked "dispatcher role only" in runtime/ is touched by the
 * holder alone; the CAS (acquire) and the release store order holders.
 * A TaskManager has room for as many batches as it has idle workers, less
 * what its ring holds: room is about who can run, not what was booked to
 * it (helpers may be running a pool's batches).
 * The dispatcher thread ticks every heartbeat interval while the runtime
 * is in use, and parks without a timeout once it has seen no live job for
 * FL_DISPATCHER_LINGER ticks; only then must a submitter wake it (a
 * futex wake per job would cost more than a small job itself). Its tick is
 * the monitor: a live TaskManager whose heartbeat is older than the
 * timeout is declared failed — its SCHEDULED batches are fenced and their
 * ranges queued again — and the restart strategy schedules its return; the
 * tick also restarts, injects chaos, launches speculative attempts and,
 * when no TaskManager is live and none will restart, cancels what waits.
 *
 * Pinned jobs (fleet_submit_on) run on their TaskManager only, while it is
 * live. A pinned range taken from PENDING moves to its TaskManager's own
 * queue (fl_tm.pinned), so it never holds up other jobs, and is split by
 * halving for that pool's room alone; no other pool tail-steals or
 * speculates its batches; a helping thread runs its work only if it is a
 * worker of that TaskManager (then also from its pinned queue, which its
 * own nested wait may be what holds the room). When the TaskManager is
 * declared failed, its `failures` count goes up before anything of it is
 * queued again, its pinned queue goes back to PENDING, and until it is live
 * again the job's ranges are split like any job's (failover); those taken
 * from PENDING once it is back go to it again.
 */
#ifndef FLEET_DISPATCHER_H
#define FLEET_DISPATCHER_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "batch.h"
#include "fleet.h"
#include "pending.h"
#include "ring.h"
#include "wait.h"

struct fleet_runtime;
struct fleet_job;
struct fl_worker;

struct fl_dispatcher {
    alignas(64) _Atomic bool role;
    /* Bumped by every thread that changed something the role acts on
     * (pushed, posted, went idle) before it tries the role; a holder that
     * finds it moved during its run runs again. */
    _Atomic unsigned gen;
    /* The role left a range pending (cur) that pools could take; workers
     * going idle read it and then call the dispatcher. */
    _Atomic bool has_pending;
    alignas(64) struct fl_pending_queue pending;
    struct fl_ring completions; /* MPSC: posting threads -> role holder */
    struct fl_event wake;       /* the dispatcher thread sleeps here */
    _Atomic bool parked;        /* it sleeps without a timeout */
    pthread_t thread;
    bool started;
    /* Workers waiting inside a task that found nothing to help with and
     * sleep on their pool's event (the sum of the pools' `sleepers`).
     * Registered and cleared under the role; read outside it only as a hint
     * to re-run the role. */
    _Atomic unsigned sleepers;
    /* The thread's last return from parking, ns: heartbeats older than
     * this are not held against a TaskManager. */
    _Atomic uint64_t resumed_at;
    /* A tick the dispatcher thread could not run itself (the role was
     * busy): the holder runs the monitor for it. */
    _Atomic bool tick_due;
    /* Dispatcher role only. */
    struct fl_pending *cur;         /* the range being split */
    unsigned pinned_ranges;         /* in the pools' pinned queues */
    unsigned pinned_flagged;        /* pools whose has_pinned is true */
    struct fl_batch_list graveyard; /* fenced attempts not yet dropped */
    uint64_t durations[64];         /* recent batch times, ns */
    unsigned ndurations;
    uint64_t chaos_rng, chaos_next; /* chaos: generator, next failure */
};

/* Idle ticks before the dispatcher thread parks. */
#define FL_DISPATCHER_LINGER 50

/* Returns 0, -EINVAL or -ENOMEM. */
int fl_dispatcher_init(struct fl_dispatcher *d, unsigned pending_capacity,
                       unsigned completion_capacity);
int fl_dispatcher_start(struct fleet_runtime *rt);
/* Joins the thread; the runtime's stop flag must be set. */
void fl_dispatcher_join(struct fleet_runtime *rt);
void fl_dispatcher_fini(struct fl_dispatcher *d);

/* Wakes the dispatcher thread if it is parked; after a job became live.
 * Any thread. */
void fl_dispatcher_kick(struct fleet_runtime *rt);

/* Simulates `how` on tm (fleet_tm_fail, chaos). Returns 0 or -EALREADY.
 * Any thread. */
int fl_inject(struct fleet_runtime *rt, unsigned tm, fleet_fail_t how);

/* Ends tm's simulated fault, or restarts it at once if it was declared
 * failed or crashed (fleet_tm_recover). Returns 0 or -EALREADY. Any
 * thread. */
int fl_recover(struct fleet_runtime *rt, unsigned tm);

/* Frees what fenced attempts and completions are left; after every thread
 * of the runtime has been joined. */
void fl_dispatcher_drain(struct fleet_runtime *rt);

/* Announces a change (a push, a post, an idle worker) and runs the
 * dispatcher role unless someone holds it, in which case the holder runs
 * again. Any thread. */
void fl_dispatch(struct fleet_runtime *rt);

/*
 * Enters p (a job's root range, submitted at `now`) into PENDING and runs
 * the role for it, unless another thread holds the role and will run it
 * again. When the role is free and nothing is queued — no range being
 * split, an empty backlog and ring — p skips the ring and becomes the
 * range being split at once (fl_pending_direct): two ring operations and
 * their cache misses fewer. FIFO order is kept: p never passes a range
 * queued before it. Returns false, p not entered, when PENDING is full:
 * the caller waits for room (back-pressure) and pushes it itself. Any
 * thread.
 */
bool fl_dispatch_submit(struct fleet_runtime *rt, struct fl_pending *p,
                        uint64_t now);

/* Whether the role left work pending (a snapshot). Any thread. */
static inline bool fl_dispatch_pending(struct fl_dispatcher *d)
{
    return atomic_load_explicit(&d->has_pending, memory_order_seq_cst) ||
           fl_pending_ring_nonempty(&d->pending);
}

/* Reports b complete (every item run or stolen) at `now` (fl_now_ns() of
 * the caller's last look at the clock). Called once per batch, by the
 * thread whose fl_batch_done() returned true. Any thread. */
void fl_post(struct fleet_runtime *rt, struct fl_batch *b, uint64_t now);

/*
 * Finds work for a thread that waits — for `job` (NULL: any work; only
 * workers may pass NULL) — and runs it. `self` is the calling worker or
 * NULL. Work of a job pinned to a live TaskManager is run only by that
 * TaskManager's workers. Returns true if it ran anything. Any thread.
 */
bool fl_help(struct fleet_runtime *rt, struct fleet_job *job,
             struct fl_worker *self);

/*
 * For a worker about to sleep while it waits inside a task (for `job`, or
 * for PENDING room when job is NULL): under the role, checks that nothing is
 * left that it could help with, registers it as a sleeper and sets *seen to
 * its pool's event value. Returns false, registering nothing, when there is
 * work to help with or the role is busy: then the caller helps and retries.
 * A role holder that leaves pending work no pool has room for wakes every
 * registered sleeper. Any worker of rt.
 */
bool fl_park_prepare(struct fleet_runtime *rt, struct fl_worker *self,
                     struct fleet_job *job, uint32_t *seen);

#endif /* FLEET_DISPATCHER_H */
