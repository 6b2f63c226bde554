/*
 * job: what a caller submitted — a function (or reducer) over a range —
 * and how its completion is reported.
 *
 * A job has two references: the caller's handle and the runtime's, dropped
 * when the job settles: all its items committed (or the job cancelled) and
 * every fenced attempt of it dropped, so that no thread runs its function
 * any more. fleet_submit allocates jobs; the
 * blocking calls keep theirs on the caller's stack and return only once the
 * runtime has dropped its reference (fl_job_settle). `committed` and the
 * live-batch list belong to the dispatcher role; `done` is published with
 * release order and waiters sleep on `done_ev`. A job may be pinned to one
 * TaskManager (fleet_submit_on): `pin`, fixed at submit, is what the
 * dispatcher, the tail steals and the helpers check (dispatcher.c).
 *
 * This module does not schedule anything.
 */
#ifndef FLEET_JOB_H
#define FLEET_JOB_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "batch.h"
#include "cost.h"
#include "fleet.h"
#include "pending.h"
#include "wait.h"

struct fl_tm;

/* Reducer partials up to this size live inside the job. */
#define FL_JOB_ACC_INLINE 64

struct fleet_job {
    struct fleet_runtime *rt;
    bool heap; /* allocated by fl_job_new */
    fleet_range_fn fn;
    void *ctx;
    bool reduce;
    fleet_reducer_t red;
    void *acc; /* reduce: every committed partial is combined here */
    size_t begin, end;
    size_t grain;
    /* The TaskManager its batches run on (fleet_submit_on); NULL: any. Set
     * before the job is pushed, then read-only. */
    struct fl_tm *pin;
    uint64_t cost_key;    /* its items' entry in the runtime's cost table */
    uint64_t t_submit;    /* ns, for the dispatch latency */
    _Atomic bool started; /* a thread ran its first chunk */

    _Atomic bool done; /* settled; `status` is final */
    int status;        /* 0 or -ECANCELED */
    struct fl_event done_ev;
    _Atomic unsigned refs;
    _Atomic unsigned tm_waiters; /* workers asleep on their pool's event */
    _Atomic bool caller_asleep;  /* its waiting caller sleeps: no share */

    /* Dispatcher role only. */
    bool caller_share;         /* its first split keeps a part for the caller */
    bool complete;             /* all committed, or given up */
    unsigned fenced_live;      /* fenced attempts not yet dropped */
    size_t committed;          /* items whose batch was committed */
    struct fl_batch_list live; /* batches handed out, not yet committed */

    struct fl_pending root; /* the job's range as it enters PENDING */
    alignas(16) unsigned char acc_inline[FL_JOB_ACC_INLINE];
};

/*
 * Sets up *job over [begin, end) running fn, or the reducer *red when red
 * is not NULL (its accumulator init()ed), with grain already resolved; two
 * references. Returns 0 or -ENOMEM. Thread-safety: any thread.
 */
int fl_job_init(struct fleet_job *job, struct fleet_runtime *rt,
                fleet_range_fn fn, const fleet_reducer_t *red, void *ctx,
                size_t begin, size_t end, size_t grain);

/* fl_job_init on a new allocation; NULL when out of memory. */
struct fleet_job *fl_job_new(struct fleet_runtime *rt, fleet_range_fn fn,
                             const fleet_reducer_t *red, void *ctx,
                             size_t begin, size_t end, size_t grain);

/* For a job not from fl_job_new, once done: waits until the runtime has
 * dropped its reference, then frees what init allocated. The caller's
 * thread. */
void fl_job_settle(struct fleet_job *job);

/* Drops a reference; frees the job at zero. Any thread. */
void fl_job_unref(struct fleet_job *job);

/* Marks the job settled with `status` and wakes its waiters. Dispatcher
 * role, once. */
void fl_job_finish(struct fleet_job *job, int status);

static inline bool fl_job_is_done(const struct fleet_job *job)
{
    /* acquire: pairs with the release in fl_job_finish, so the waiter sees
     * the accumulator and every item's effects. */
    return atomic_load_explicit(&job->done, memory_order_acquire);
}

#endif /* FLEET_JOB_H */
