/*
 * job: allocation, references and completion of a job.
 */
#include "job.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "alloc.h"

int fl_job_init(struct fleet_job *job, struct fleet_runtime *rt,
                fleet_range_fn fn, const fleet_reducer_t *red, void *ctx,
                size_t begin, size_t end, size_t grain)
{
    memset(job, 0, sizeof(*job));
    job->rt = rt;
    job->fn = fn;
    job->ctx = ctx;
    if (red != NULL) {
        job->reduce = true;
        job->red = *red;
        job->acc = red->size <= FL_JOB_ACC_INLINE
                       ? job->acc_inline
                       : fl_alloc(FL_ARENA_DEFAULT, red->size);
        if (job->acc == NULL)
            return -ENOMEM;
        red->init(ctx, job->acc);
    }
    job->begin = begin;
    job->end = end;
    job->grain = grain;
    job->cost_key = fl_cost_key(
        red != NULL ? (const void *)red->fold : (const void *)fn, ctx);
    atomic_init(&job->done, false);
    fl_event_init(&job->done_ev);
    atomic_init(&job->refs, 2);
    atomic_init(&job->tm_waiters, 0);
    atomic_init(&job->caller_asleep, false);
    atomic_init(&job->started, false);
    job->root.job = job;
    job->root.begin = begin;
    job->root.end = end;
    return 0;
}

static void free_acc(struct fleet_job *job)
{
    if (job->acc != job->acc_inline)
        fl_free(FL_ARENA_DEFAULT, job->acc);
}

struct fleet_job *fl_job_new(struct fleet_runtime *rt, fleet_range_fn fn,
                             const fleet_reducer_t *red, void *ctx,
                             size_t begin, size_t end, size_t grain)
{
    struct fleet_job *job = fl_alloc(FL_ARENA_DEFAULT, sizeof(*job));
    if (job == NULL)
        return NULL;
    if (fl_job_init(job, rt, fn, red, ctx, begin, end, grain) != 0) {
        fl_free(FL_ARENA_DEFAULT, job);
        return NULL;
    }
    job->heap = true;
    return job;
}

void fl_job_unref(struct fleet_job *job)
{
    /* acq_rel: the last owner sees every write of the others. */
    if (atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) != 1)
        return;
    free_acc(job);
    if (job->heap)
        fl_free(FL_ARENA_DEFAULT, job);
}

void fl_job_settle(struct fleet_job *job)
{
    /* acquire: pairs with the runtime's release of its reference, its
     * last touch of the job. */
    for (unsigned spins = 0;
         atomic_load_explicit(&job->refs, memory_order_acquire) > 1; spins++)
        if (spins > 64)
            sched_yield(); /* the thread dropping it may need this core */
    free_acc(job);
}

void fl_job_finish(struct fleet_job *job, int status)
{
    job->status = status;
    /* release: publishes the accumulator and all committed work. */
    atomic_store_explicit(&job->done, true, memory_order_release);
    fl_event_signal(&job->done_ev);
}
