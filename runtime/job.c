/*
 * job: allocation, references and completion of a job.
 */
#include "job.h"

#include <string.h>

#include "alloc.h"

struct fleet_job *fl_job_new(struct fleet_runtime *rt, fleet_range_fn fn,
                             const fleet_reducer_t *red, void *ctx,
                             size_t begin, size_t end, size_t grain)
{
    struct fleet_job *job = fl_calloc(FL_ARENA_DEFAULT, 1, sizeof(*job));
    if (job == NULL)
        return NULL;
    job->rt = rt;
    job->fn = fn;
    job->ctx = ctx;
    if (red != NULL) {
        job->reduce = true;
        job->red = *red;
        job->acc = fl_alloc(FL_ARENA_DEFAULT, red->size);
        if (job->acc == NULL) {
            fl_free(job);
            return NULL;
        }
        red->init(ctx, job->acc);
    }
    job->begin = begin;
    job->end = end;
    job->grain = grain;
    atomic_init(&job->done, false);
    fl_event_init(&job->done_ev);
    atomic_init(&job->refs, 2);
    atomic_init(&job->tm_waiters, 0);
    job->root.job = job;
    job->root.begin = begin;
    job->root.end = end;
    job->root.next = NULL;
    return job;
}

void fl_job_unref(struct fleet_job *job)
{
    /* acq_rel: the last owner sees every write of the others. */
    if (atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) != 1)
        return;
    fl_free(job->acc);
    fl_free(job);
}

void fl_job_finish(struct fleet_job *job)
{
    /* release: publishes the accumulator and all committed work. */
    atomic_store_explicit(&job->done, true, memory_order_release);
    fl_event_signal(&job->done_ev);
}
