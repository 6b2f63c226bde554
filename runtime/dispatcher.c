/*
 * dispatcher: the dispatcher role (splitting, SCHEDULED, commits, tail
 * steals), helping waiters, and the dispatcher thread.
 */
#include "dispatcher.h"

#include <errno.h>
#include <sched.h>

#include "alloc.h"
#include "fence.h"
#include "job.h"
#include "runtime.h"

int fl_dispatcher_init(struct fl_dispatcher *d, unsigned pending_capacity,
                       unsigned completion_capacity)
{
    atomic_init(&d->role, false);
    atomic_init(&d->gen, 0);
    atomic_init(&d->has_pending, false);
    atomic_init(&d->sleepers, 0);
    atomic_init(&d->parked, false);
    fl_event_init(&d->wake);
    d->started = false;
    d->cur = NULL;
    int err = fl_pending_init(&d->pending, pending_capacity);
    if (err == 0)
        err = fl_ring_init(&d->completions, completion_capacity,
                           FL_RING_MP | FL_RING_SC);
    if (err != 0)
        fl_dispatcher_fini(d);
    return err;
}

void fl_dispatcher_fini(struct fl_dispatcher *d)
{
    fl_pending_fini(&d->pending);
    fl_ring_fini(&d->completions);
}

static bool role_try(struct fl_dispatcher *d)
{
    bool expected = false;
    if (atomic_load_explicit(&d->role, memory_order_relaxed))
        return false;
    /* acquire: see everything the previous holder did. */
    return atomic_compare_exchange_strong_explicit(
        &d->role, &expected, true, memory_order_acquire, memory_order_relaxed);
}

static void role_release(struct fl_dispatcher *d)
{
    /* release: hand our role-only writes to the next holder. */
    atomic_store_explicit(&d->role, false, memory_order_release);
}

/* --- SCHEDULED and the job's live list (role only) --------------------- */

static void schedule(struct fl_tm *tm, struct fl_batch *b)
{
    CK_LIST_INSERT_HEAD(&tm->scheduled, b, sched_link);
    CK_LIST_INSERT_HEAD(&b->job->live, b, job_link);
    tm->load += b->end - b->begin;
}

static void unschedule(struct fl_tm *tm, struct fl_batch *b)
{
    CK_LIST_REMOVE(b, sched_link);
    CK_LIST_REMOVE(b, job_link);
    tm->load -= b->end - b->begin;
}

/* --- commits ------------------------------------------------------------ */

static void finish_job(struct fleet_runtime *rt, struct fleet_job *job)
{
    fl_job_finish(job);
    /* seq_cst, with the seq_cst increment of tm_waiters in a nested wait:
     * either that waiter sees `done`, or we see it and wake its pool. */
    fl_fence();
    if (atomic_load_explicit(&job->tm_waiters, memory_order_relaxed) != 0)
        for (unsigned i = 0; i < rt->ntm; i++)
            fl_tm_wake(&rt->tms[i]);
    fl_job_unref(job);
    if (atomic_fetch_sub_explicit(&rt->jobs_live, 1, memory_order_acq_rel) == 1)
        fl_event_signal(&rt->idle);
}

/* Keeps a batch whose last reference the role dropped, for reuse. */
static void recycle(struct fl_tm *tm, struct fl_batch *b)
{
    if (tm->pooled >= FL_BATCH_POOL) {
        fl_batch_destroy(b);
        return;
    }
    b->free_next = tm->pool;
    tm->pool = b;
    tm->pooled++;
}

static void commit(struct fleet_runtime *rt, struct fl_batch *b)
{
    struct fleet_job *job = b->job;
    unschedule(&rt->tms[b->tm], b);
    if (job->reduce)
        job->red.combine(job->ctx, job->acc, b->partial);
    job->committed += b->end - b->begin;
    if (fl_batch_release(b))
        recycle(&rt->tms[b->tm], b);
    if (job->committed == job->end - job->begin)
        finish_job(rt, job);
}

static bool drain_completions(struct fleet_runtime *rt)
{
    bool any = false;
    void *v;
    while (fl_ring_dequeue(&rt->disp.completions, &v)) {
        commit(rt, v);
        any = true;
    }
    return any;
}

/* --- handing out ---------------------------------------------------------- */

/* Batches tm could start now: its idle workers, less what its ring holds
 * (batches waiting, or already run by others and not yet drained). */
static unsigned tm_rooms(struct fl_tm *tm)
{
    unsigned idle = atomic_load_explicit(&tm->idle, memory_order_seq_cst);
    unsigned queued = fl_ring_size(&tm->ring);
    if (queued >= fl_ring_capacity(&tm->ring) || idle <= queued)
        return 0;
    return idle - queued;
}

/* How many more threads may be woken for new work: enough to fill the
 * CPUs that awake threads (and `extra` about to run) leave idle. */
static unsigned wake_budget(struct fleet_runtime *rt, unsigned extra)
{
    unsigned awake = fl_awake(rt) + extra;
    return awake < rt->ncpu ? rt->ncpu - awake : 0;
}

/*
 * The TaskManager to hand the next batch: one with room, awake first (its
 * workers poll their ring), then asleep while `budget` allows a wake; the
 * least loaded among equals. *rooms: the batches those could take, the
 * sleeping ones counted up to the budget. (A sleeping worker never has
 * batches in its ring for long: every enqueue signals it.)
 */
static struct fl_tm *pick_tm(struct fleet_runtime *rt, unsigned budget,
                             unsigned *rooms)
{
    struct fl_tm *best = NULL;
    bool best_awake = false;
    unsigned asleep_rooms = 0;
    *rooms = 0;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        unsigned r = tm_rooms(tm);
        if (r == 0)
            continue;
        bool awake = fl_tm_awake(tm);
        if (awake)
            *rooms += r;
        else if (budget == 0)
            continue;
        else
            asleep_rooms += r;
        if (best == NULL || (awake && !best_awake) ||
            (awake == best_awake && tm->load < best->load)) {
            best = tm;
            best_awake = awake;
        }
    }
    *rooms += asleep_rooms < budget ? asleep_rooms : budget;
    return best;
}

static struct fl_batch *make_batch(struct fl_tm *tm, struct fleet_job *job,
                                   size_t b, size_t e, unsigned refs)
{
    size_t need = job->reduce ? job->red.size : 0;
    struct fl_batch *nb = tm->pool;
    if (nb != NULL && nb->partial_cap >= need) {
        tm->pool = nb->free_next;
        tm->pooled--;
    } else {
        nb = fl_batch_alloc(tm->arena,
                            need > FL_BATCH_PARTIAL ? need : FL_BATCH_PARTIAL);
        if (nb == NULL)
            return NULL;
    }
    fl_batch_init(nb, job, b, e, tm->index, job->grain, refs);
    schedule(tm, nb);
    return nb;
}

static void hand_to(struct fl_tm *tm, struct fl_batch *b)
{
    /* Cannot fail: tm_rooms() checked the ring, and we are its only
     * producer. */
    bool ok = fl_ring_enqueue(&tm->ring, b);
    (void)ok;
    fl_tm_wake(tm);
}

/* Consumes [cur->begin, end) of the current pending range. */
static void advance_cur(struct fl_dispatcher *d, size_t end)
{
    d->cur->begin = end;
    if (end == d->cur->end)
        d->cur = NULL;
}

/* Whether job's pending range keeps a part for its caller: a caller that
 * waits at once is one more runner, and takes that part without a ring hop
 * (fl_help) — while it is awake. Role only. */
static bool keeps_share(struct fleet_job *job)
{
    return job->caller_share &&
           !atomic_load_explicit(&job->caller_asleep, memory_order_seq_cst);
}

static bool hand_out(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    bool any = false;
    unsigned woken = 0;
    for (;;) {
        if (d->cur == NULL && (d->cur = fl_pending_pop(&d->pending)) == NULL)
            break;
        struct fl_pending *p = d->cur;
        bool share = keeps_share(p->job);
        /* Waking a pool for more parallelism must fill an idle CPU; a job
         * that nobody runs yet gets one pool whatever the count. */
        unsigned budget = wake_budget(rt, share + woken);
        if (budget == 0 && !share && CK_LIST_EMPTY(&p->job->live))
            budget = 1;
        unsigned rooms;
        struct fl_tm *tm = pick_tm(rt, budget, &rooms);
        if (tm == NULL)
            break;
        size_t end =
            fl_split_take(p->begin, p->end, p->job->grain, rooms + share);
        if (share && end == p->end) {
            p->job->caller_share = false;
            break;
        }
        struct fl_batch *b = make_batch(tm, p->job, p->begin, end, 2);
        if (b == NULL)
            break; /* out of memory: retried at the next dispatch */
        advance_cur(d, end);
        if (!fl_tm_awake(tm))
            woken += tm->nworkers;
        hand_to(tm, b);
        any = true;
    }
    return any;
}

/* --- tail steals ---------------------------------------------------------- */

/* A TaskManager that could start on stolen work now: a worker without a
 * batch, awake in its spin — or, on the dispatcher's tick, asleep while a
 * CPU is idle: a batch that outlived a tick is worth a wake-up. */
static bool tm_idle(struct fleet_runtime *rt, struct fl_tm *tm, bool tick)
{
    if (tm_rooms(tm) == 0)
        return false;
    if (atomic_load_explicit(&tm->spinning, memory_order_relaxed) != 0)
        return true;
    return tick && !fl_tm_awake(tm) && wake_budget(rt, 0) != 0;
}

/* The scheduled batch, on another TaskManager, with the most unclaimed
 * items. */
static struct fl_batch *steal_victim(struct fleet_runtime *rt,
                                     const struct fl_tm *thief)
{
    struct fl_batch *best = NULL;
    size_t most = 0;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (tm == thief)
            continue;
        struct fl_batch *b;
        CK_LIST_FOREACH (b, &tm->scheduled, sched_link) {
            size_t n = fl_batch_unclaimed(b);
            if (n > most) {
                most = n;
                best = b;
            }
        }
    }
    return best;
}

static bool balance(struct fleet_runtime *rt, bool tick)
{
    bool any = false;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (!tm_idle(rt, tm, tick))
            continue;
        struct fl_batch *v = steal_victim(rt, tm);
        size_t s, e;
        if (v == NULL || !fl_batch_steal_tail(v, v->job->grain, &s, &e))
            continue;
        struct fl_batch *nb = make_batch(tm, v->job, s, e, 2);
        if (nb == NULL) {
            /* Give the tail back: nobody can have claimed it. */
            fl_batch_steal_undo(v, s, e);
            continue;
        }
        struct fl_tm *vtm = &rt->tms[v->tm];
        vtm->load -= e - s;
        v->end = s;
        hand_to(tm, nb);
        if (fl_batch_done(v, e - s))
            fl_post(rt, v);
        any = true;
    }
    return any;
}

/* --- the role ------------------------------------------------------------- */

/* Wakes the registered sleepers if pending work waits that no pool has
 * room for: only threads that help can run it. Role only. */
static void wake_helpers(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    if (atomic_load_explicit(&d->sleepers, memory_order_relaxed) == 0 ||
        (d->cur == NULL && !fl_pending_ring_nonempty(&d->pending)))
        return;
    atomic_store_explicit(&d->sleepers, 0, memory_order_relaxed);
    for (unsigned i = 0; i < rt->ntm; i++)
        fl_tm_wake(&rt->tms[i]);
}

/* Runs the role until nothing moves (`tick`: on the dispatcher thread's
 * periodic pass). */
static void role_run(struct fleet_runtime *rt, bool tick)
{
    struct fl_dispatcher *d = &rt->disp;
    for (;;) {
        bool moved = drain_completions(rt);
        moved |= hand_out(rt);
        if (!moved && d->cur == NULL && !fl_pending_ring_nonempty(&d->pending))
            moved = balance(rt, tick);
        if (moved)
            continue;
        wake_helpers(rt);
        /* A share kept for its awake caller is not for the pools. */
        bool pending = d->cur != NULL && !keeps_share(d->cur->job);
        /* seq_cst, against a worker's seq_cst idle increment and load of
         * has_pending: either it sees the range pending and calls us, or
         * the hand-out below sees its room. */
        atomic_store_explicit(&d->has_pending, pending, memory_order_seq_cst);
        if (!pending || !hand_out(rt))
            break;
    }
}

static bool role_enter(struct fl_dispatcher *d, unsigned *gen)
{
    if (!role_try(d))
        return false;
    *gen = atomic_load_explicit(&d->gen, memory_order_acquire);
    return true;
}

/* Releases the role; true when something changed during the holder's run
 * that it may not have seen, so the role must run again. */
static bool role_leave(struct fl_dispatcher *d, unsigned gen)
{
    role_release(d);
    /* Orders the release before the look at gen, as a producer's gen
     * increment is ordered before its try of the role: one of the two sees
     * the other. */
    fl_fence();
    return atomic_load_explicit(&d->gen, memory_order_relaxed) != gen;
}

static void dispatch(struct fleet_runtime *rt, bool tick)
{
    struct fl_dispatcher *d = &rt->disp;
    atomic_fetch_add_explicit(&d->gen, 1, memory_order_seq_cst);
    unsigned gen;
    while (role_enter(d, &gen)) {
        role_run(rt, tick);
        tick = false;
        if (!role_leave(d, gen))
            break;
    }
}

void fl_dispatch(struct fleet_runtime *rt)
{
    dispatch(rt, false);
}

void fl_post(struct fleet_runtime *rt, struct fl_batch *b)
{
    /* seq_cst: see fl_tm_running_add(). */
    atomic_store_explicit(&b->posted, true, memory_order_seq_cst);
    fl_tm_running_remove(&rt->tms[b->tm], b);
    while (!fl_ring_enqueue(&rt->disp.completions, b)) {
        /* Full: whoever holds the role is draining it. */
        fl_dispatch(rt);
        sched_yield();
    }
    fl_dispatch(rt);
}

/* --- helping ------------------------------------------------------------ */

/* The live batch of job a helper should join: one nobody runs yet if any
 * (sharing a started one interleaves chunks on the same cache lines), the
 * one with the most unclaimed items among those. Role only. */
static struct fl_batch *job_victim(struct fleet_job *job)
{
    struct fl_batch *best = NULL;
    size_t most = 0;
    bool best_fresh = false;
    struct fl_batch *b;
    CK_LIST_FOREACH (b, &job->live, job_link) {
        size_t n = fl_batch_unclaimed(b);
        bool fresh =
            atomic_load_explicit(&b->visitors, memory_order_relaxed) == 0;
        if (n == 0 || (best_fresh && !fresh))
            continue;
        if (n > most || (fresh && !best_fresh)) {
            most = n;
            best = b;
            best_fresh = fresh;
        }
    }
    return best;
}

static struct fl_tm *least_loaded(struct fleet_runtime *rt)
{
    struct fl_tm *best = &rt->tms[0];
    for (unsigned i = 1; i < rt->ntm; i++)
        if (rt->tms[i].load < best->load)
            best = &rt->tms[i];
    return best;
}

/* With the role held: claims a first chunk for a helper, from a live batch
 * of job or from the pending range it may take. */
static struct fl_batch *help_claim(struct fleet_runtime *rt,
                                   struct fleet_job *job,
                                   struct fl_worker *self, size_t *s, size_t *e)
{
    struct fl_dispatcher *d = &rt->disp;
    if (d->cur == NULL)
        d->cur = fl_pending_pop(&d->pending);
    struct fl_pending *p = d->cur;
    /* The job's own pending range first (its caller's share), then a live
     * batch of the job; a worker then takes any pending range, since it may
     * wait for a room that only this worker's own task would free. A caller
     * from outside never runs other jobs' work. */
    if (p == NULL || p->job != job) {
        struct fl_batch *b = job != NULL ? job_victim(job) : NULL;
        if (b != NULL && fl_batch_claim(b, 0, s, e))
            return b;
        if (p == NULL || self == NULL)
            return NULL;
    }
    p->job->caller_share = false;
    /* Nobody had room for it: run a piece here, booked to a TaskManager so
     * its workers can join and its failure accounting covers it. */
    unsigned rooms;
    (void)pick_tm(rt, wake_budget(rt, 0), &rooms);
    size_t end = fl_split_take(p->begin, p->end, p->job->grain, rooms + 1);
    struct fl_tm *tm = self != NULL ? self->tm : least_loaded(rt);
    struct fl_batch *b = make_batch(tm, p->job, p->begin, end, 1);
    if (b == NULL)
        return NULL;
    advance_cur(d, end);
    bool ok = fl_batch_claim(b, 0, s, e);
    (void)ok; /* a new batch has at least one item */
    fl_tm_running_add(tm, b);
    return b;
}

bool fl_help(struct fleet_runtime *rt, struct fleet_job *job,
             struct fl_worker *self)
{
    if (self != NULL && (fl_tm_take(self->tm) || fl_tm_join_running(self->tm)))
        return true;
    struct fl_dispatcher *d = &rt->disp;
    unsigned gen;
    if (!role_enter(d, &gen))
        return false;
    role_run(rt, false);
    size_t s = 0, e = 0;
    struct fl_batch *b = NULL;
    if (job == NULL || !fl_job_is_done(job))
        b = help_claim(rt, job, self, &s, &e);
    if (role_leave(d, gen))
        fl_dispatch(rt);
    if (b == NULL)
        return false;
    fl_visit(rt, b, s, e);
    return true;
}

bool fl_park_prepare(struct fleet_runtime *rt, struct fl_worker *self,
                     struct fleet_job *job, uint32_t *seen)
{
    struct fl_dispatcher *d = &rt->disp;
    unsigned gen;
    if (!role_enter(d, &gen))
        return false;
    role_run(rt, false);
    /* Register first, then look: whatever arrives after the snapshot moves
     * the event. */
    atomic_fetch_add_explicit(&d->sleepers, 1, memory_order_relaxed);
    *seen = fl_event_value(&self->tm->ev);
    bool idle =
        d->cur == NULL && !fl_pending_ring_nonempty(&d->pending) &&
        (job == NULL || (!fl_job_is_done(job) && job_victim(job) == NULL)) &&
        !fl_tm_has_work(self->tm);
    if (!idle)
        atomic_fetch_sub_explicit(&d->sleepers, 1, memory_order_relaxed);
    if (role_leave(d, gen))
        fl_dispatch(rt);
    return idle;
}

/* --- the dispatcher thread --------------------------------------------- */

static void *dispatcher_main(void *arg)
{
    struct fleet_runtime *rt = arg;
    struct fl_dispatcher *d = &rt->disp;
    uint64_t tick = (uint64_t)rt->cfg.heartbeat_interval_us * 1000u;
    unsigned idle_ticks = 0;
    while (!fl_stopping(rt)) {
        uint32_t seen = fl_event_value(&d->wake);
        dispatch(rt, true);
        if (atomic_load_explicit(&rt->jobs_live, memory_order_acquire) != 0)
            idle_ticks = 0;
        else if (idle_ticks < FL_DISPATCHER_LINGER)
            idle_ticks++;
        if (idle_ticks < FL_DISPATCHER_LINGER) {
            fl_event_wait(&d->wake, seen, tick);
            continue;
        }
        /* Park: either a submitter sees `parked` and wakes us, or we see
         * its job here (fences on both sides). */
        atomic_store_explicit(&d->parked, true, memory_order_relaxed);
        fl_fence();
        if (atomic_load_explicit(&rt->jobs_live, memory_order_relaxed) == 0 &&
            !fl_stopping(rt))
            fl_event_wait(&d->wake, seen, 0);
        atomic_store_explicit(&d->parked, false, memory_order_relaxed);
        idle_ticks = 0;
    }
    return NULL;
}

void fl_dispatcher_kick(struct fleet_runtime *rt)
{
    fl_fence(); /* the caller's jobs_live increment, then our look */
    if (atomic_load_explicit(&rt->disp.parked, memory_order_relaxed))
        fl_event_signal(&rt->disp.wake);
}

int fl_dispatcher_start(struct fleet_runtime *rt)
{
    int err = pthread_create(&rt->disp.thread, NULL, dispatcher_main, rt);
    if (err != 0)
        return -err;
    rt->disp.started = true;
    return 0;
}

void fl_dispatcher_join(struct fleet_runtime *rt)
{
    if (rt->disp.started)
        pthread_join(rt->disp.thread, NULL);
    rt->disp.started = false;
}
