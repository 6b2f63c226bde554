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
    atomic_init(&d->sleepers, 0);
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
    struct fleet_job *job = b->job;
    b->sched_prev = NULL;
    b->sched_next = tm->scheduled;
    if (tm->scheduled != NULL)
        tm->scheduled->sched_prev = b;
    tm->scheduled = b;
    b->job_prev = NULL;
    b->job_next = job->live;
    if (job->live != NULL)
        job->live->job_prev = b;
    job->live = b;
    tm->outstanding++;
    tm->load += b->end - b->begin;
}

static void unschedule(struct fl_tm *tm, struct fl_batch *b)
{
    struct fleet_job *job = b->job;
    if (b->sched_prev != NULL)
        b->sched_prev->sched_next = b->sched_next;
    else
        tm->scheduled = b->sched_next;
    if (b->sched_next != NULL)
        b->sched_next->sched_prev = b->sched_prev;
    if (b->job_prev != NULL)
        b->job_prev->job_next = b->job_next;
    else
        job->live = b->job_next;
    if (b->job_next != NULL)
        b->job_next->job_prev = b->job_prev;
    tm->outstanding--;
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

static void commit(struct fleet_runtime *rt, struct fl_batch *b)
{
    struct fleet_job *job = b->job;
    unschedule(&rt->tms[b->tm], b);
    if (job->reduce)
        job->red.combine(job->ctx, job->acc, b->partial);
    job->committed += b->end - b->begin;
    fl_batch_unref(b);
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

static unsigned tm_rooms(const struct fl_tm *tm)
{
    unsigned cap = FL_EAGER_PER_WORKER * tm->nworkers;
    if (tm->outstanding >= cap ||
        fl_ring_size(&tm->ring) >= fl_ring_capacity(&tm->ring))
        return 0;
    return cap - tm->outstanding;
}

/* The least-loaded TaskManager with room, and the rooms over all. */
static struct fl_tm *pick_tm(struct fleet_runtime *rt, unsigned *rooms)
{
    struct fl_tm *best = NULL;
    *rooms = 0;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        unsigned r = tm_rooms(tm);
        if (r == 0)
            continue;
        *rooms += r;
        if (best == NULL || tm->load < best->load)
            best = tm;
    }
    return best;
}

static struct fl_batch *make_batch(struct fleet_runtime *rt, struct fl_tm *tm,
                                   struct fleet_job *job, size_t b, size_t e,
                                   unsigned refs)
{
    (void)rt;
    struct fl_batch *nb =
        fl_batch_new(job, b, e, tm->index, tm->arena, job->grain, refs);
    if (nb != NULL)
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
    struct fl_pending *p = d->cur;
    p->begin = end;
    if (p->begin == p->end) {
        if (p != &p->job->root)
            fl_free(p);
        d->cur = NULL;
    }
}

static bool hand_out(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    bool any = false;
    for (;;) {
        unsigned rooms;
        struct fl_tm *tm = pick_tm(rt, &rooms);
        if (tm == NULL)
            break;
        if (d->cur == NULL && (d->cur = fl_pending_pop(&d->pending)) == NULL)
            break;
        struct fl_pending *p = d->cur;
        size_t end = fl_split_take(p->begin, p->end, p->job->grain, rooms);
        struct fl_batch *b = make_batch(rt, tm, p->job, p->begin, end, 2);
        if (b == NULL)
            break; /* out of memory: retried at the next dispatch */
        advance_cur(d, end);
        hand_to(tm, b);
        any = true;
    }
    return any;
}

/* --- tail steals ---------------------------------------------------------- */

static bool tm_idle(const struct fl_tm *tm)
{
    return tm->outstanding < tm->nworkers && tm_rooms(tm) != 0;
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
        for (struct fl_batch *b = tm->scheduled; b != NULL; b = b->sched_next) {
            size_t n = fl_batch_unclaimed(b);
            if (n > most) {
                most = n;
                best = b;
            }
        }
    }
    return best;
}

static bool balance(struct fleet_runtime *rt)
{
    bool any = false;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (!tm_idle(tm))
            continue;
        struct fl_batch *v = steal_victim(rt, tm);
        size_t s, e;
        if (v == NULL || !fl_batch_steal_tail(v, v->job->grain, &s, &e))
            continue;
        struct fl_batch *nb = make_batch(rt, tm, v->job, s, e, 2);
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
        (d->cur == NULL && !fl_pending_nonempty(&d->pending)))
        return;
    atomic_store_explicit(&d->sleepers, 0, memory_order_relaxed);
    for (unsigned i = 0; i < rt->ntm; i++)
        fl_tm_wake(&rt->tms[i]);
}

/* Runs the role until nothing moves. Returns whether a TaskManager could
 * still take work, i.e. whether new PENDING entries would be actionable. */
static bool role_run(struct fleet_runtime *rt)
{
    for (;;) {
        bool moved = drain_completions(rt);
        moved |= hand_out(rt);
        if (!moved && rt->disp.cur == NULL &&
            !fl_pending_nonempty(&rt->disp.pending))
            moved = balance(rt);
        if (!moved)
            break;
    }
    wake_helpers(rt);
    unsigned rooms;
    return pick_tm(rt, &rooms) != NULL;
}

/* Whether work arrived that the role must see: completions, or PENDING
 * entries that a pool, or a sleeping helper, could take. */
static bool role_wanted(struct fleet_runtime *rt, bool room)
{
    struct fl_dispatcher *d = &rt->disp;
    return fl_ring_size(&d->completions) != 0 ||
           (fl_pending_ring_nonempty(&d->pending) &&
            (room ||
             atomic_load_explicit(&d->sleepers, memory_order_relaxed) != 0));
}

void fl_dispatch(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    /* seq_cst: orders the caller's enqueue before our look at the role, as
     * the holder's release is ordered before its look at the rings below:
     * one of the two sees the other. */
    fl_fence();
    while (role_try(d)) {
        bool room = role_run(rt);
        role_release(d);
        fl_fence(); /* see above */
        if (!role_wanted(rt, room))
            break;
    }
}

void fl_post(struct fleet_runtime *rt, struct fl_batch *b)
{
    /* Before taking the TaskManager lock: see fl_tm_running_add(). */
    atomic_store_explicit(&b->posted, true, memory_order_relaxed);
    fl_tm_running_remove(&rt->tms[b->tm], b);
    while (!fl_ring_enqueue(&rt->disp.completions, b)) {
        /* Full: whoever holds the role is draining it. */
        fl_dispatch(rt);
        sched_yield();
    }
    fl_dispatch(rt);
}

/* --- helping ---------------------------------------------------------------
 */

/* The live batch of job with the most unclaimed items. Role only. */
static struct fl_batch *job_victim(struct fleet_job *job)
{
    struct fl_batch *best = NULL;
    size_t most = 0;
    for (struct fl_batch *b = job->live; b != NULL; b = b->job_next) {
        size_t n = fl_batch_unclaimed(b);
        if (n > most) {
            most = n;
            best = b;
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
    if (job != NULL) {
        struct fl_batch *b = job_victim(job);
        if (b != NULL && fl_batch_claim(b, s, e))
            return b;
    }
    if (d->cur == NULL)
        d->cur = fl_pending_pop(&d->pending);
    struct fl_pending *p = d->cur;
    /* A caller from outside takes only its own job's range; a worker takes
     * any, since the range may wait for a room that only this worker's
     * own task would free. */
    if (p == NULL || (self == NULL && p->job != job))
        return NULL;
    /* Nobody had room for it: run a piece here, booked to a TaskManager so
     * its workers can join and its failure accounting covers it. */
    unsigned rooms;
    (void)pick_tm(rt, &rooms);
    size_t end = fl_split_take(p->begin, p->end, p->job->grain, rooms + 1);
    struct fl_tm *tm = self != NULL ? self->tm : least_loaded(rt);
    struct fl_batch *b = make_batch(rt, tm, p->job, p->begin, end, 1);
    if (b == NULL)
        return NULL;
    advance_cur(d, end);
    bool ok = fl_batch_claim(b, s, e);
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
    fl_fence(); /* as in fl_dispatch */
    if (!role_try(d))
        return false;
    bool room = role_run(rt);
    size_t s = 0, e = 0;
    struct fl_batch *b = NULL;
    if (job == NULL || !fl_job_is_done(job))
        b = help_claim(rt, job, self, &s, &e);
    role_release(d);
    fl_fence();
    if (role_wanted(rt, room))
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
    fl_fence(); /* as in fl_dispatch */
    if (!role_try(d))
        return false;
    bool room = role_run(rt);
    /* Register first, then look: whatever arrives after the snapshot moves
     * the event. */
    atomic_fetch_add_explicit(&d->sleepers, 1, memory_order_relaxed);
    *seen = fl_event_value(&self->tm->ev);
    bool idle =
        d->cur == NULL && !fl_pending_nonempty(&d->pending) &&
        (job == NULL || (!fl_job_is_done(job) && job_victim(job) == NULL)) &&
        !fl_tm_has_work(self->tm);
    if (!idle)
        atomic_fetch_sub_explicit(&d->sleepers, 1, memory_order_relaxed);
    role_release(d);
    fl_fence();
    if (role_wanted(rt, room))
        fl_dispatch(rt);
    return idle;
}

/* --- the dispatcher thread --------------------------------------------- */

static void *dispatcher_main(void *arg)
{
    struct fleet_runtime *rt = arg;
    struct fl_dispatcher *d = &rt->disp;
    uint64_t tick = (uint64_t)rt->cfg.heartbeat_interval_us * 1000u;
    while (!fl_stopping(rt)) {
        uint32_t seen = fl_event_value(&d->wake);
        fl_dispatch(rt);
        bool busy =
            atomic_load_explicit(&rt->jobs_live, memory_order_acquire) != 0;
        if (fl_stopping(rt))
            break;
        fl_event_wait(&d->wake, seen, busy ? tick : 0);
    }
    return NULL;
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
