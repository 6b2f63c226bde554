/*
 * dispatcher: the dispatcher role (splitting, SCHEDULED, commits, tail
 * steals), helping waiters, and the dispatcher thread.
 */
#include "dispatcher.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>

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
    atomic_init(&d->resumed_at, fl_now_ns());
    atomic_init(&d->tick_due, false);
    d->started = false;
    d->cur = NULL;
    d->pinned_ranges = 0;
    d->pinned_flagged = 0;
    CK_LIST_INIT(&d->graveyard);
    d->ndurations = 0;
    d->chaos_rng = 0;
    d->chaos_next = 0;
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
    struct fl_metrics *m = &tm->rt->metrics;
    fl_len_inc1(&m->sched_len, &m->sched_hwm);
}

static void unschedule(struct fl_tm *tm, struct fl_batch *b)
{
    CK_LIST_REMOVE(b, sched_link);
    CK_LIST_REMOVE(b, job_link);
    tm->load -= b->end - b->begin;
    fl_count1(&tm->rt->metrics.sched_len, (uint64_t)-1);
}

/* --- settling, fencing, commits (role only) ---------------------------- */

/* Settles a complete job once no fenced attempt of it is left: no thread
 * runs its function any more. The job may be freed when this returns. */
static void maybe_settle(struct fleet_runtime *rt, struct fleet_job *job)
{
    if (!job->complete || job->fenced_live != 0)
        return;
    fl_count1(&rt->metrics.jobs_completed, 1);
    fl_job_finish(job, job->status);
    /* With the seq_cst increment of tm_waiters in a nested wait: either
     * that waiter sees `done`, or we see it and wake its pool. */
    fl_fence();
    if (atomic_load_explicit(&job->tm_waiters, memory_order_relaxed) != 0)
        for (unsigned i = 0; i < rt->ntm; i++)
            fl_tm_wake(&rt->tms[i]);
    fl_job_unref(job);
    if (atomic_fetch_sub_explicit(&rt->jobs_live, 1, memory_order_acq_rel) == 1)
        fl_event_signal(&rt->idle);
}

/* All items committed (status 0) or given up. May free the job. */
static void complete_job(struct fleet_runtime *rt, struct fleet_job *job,
                         int status)
{
    if (job->complete)
        return;
    job->complete = true;
    job->status = status;
    if (status != 0)
        fl_stat_add(&rt->stats.cancelled, 1);
    maybe_settle(rt, job);
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

/*
 * Discards an attempt: no more claims, off SCHEDULED and its job's live
 * list, into the graveyard until its visitors have left and it is posted
 * (drop_fenced). Its range is not queued again here (redispatch).
 */
static void fence(struct fleet_runtime *rt, struct fl_batch *b)
{
    /* release: a visitor that sees it skips the SLOW sleep; claims stop
     * through the claim word itself. */
    atomic_store_explicit(&b->fenced, true, memory_order_release);
    size_t n = fl_batch_take_unclaimed(b);
    unschedule(&rt->tms[b->tm], b);
    CK_LIST_INSERT_HEAD(&rt->disp.graveyard, b, sched_link);
    b->job->fenced_live++;
    if (b->twin != NULL) {
        b->twin->twin = NULL;
        b->twin = NULL;
    }
    fl_stat_add(&rt->stats.fenced, 1);
    if (n != 0 && fl_batch_done(b, n))
        fl_post(rt, b, fl_now_ns());
}

/* A fenced attempt was posted: every visitor has left it. */
static void drop_fenced(struct fleet_runtime *rt, struct fl_batch *b)
{
    struct fleet_job *job = b->job;
    CK_LIST_REMOVE(b, sched_link);
    job->fenced_live--;
    if (fl_batch_release(b))
        recycle(&rt->tms[b->tm], b);
    maybe_settle(rt, job);
}

/* Records a time in microseconds: last, max, total. */
static void stat_time(_Atomic uint64_t *last, _Atomic uint64_t *max,
                      _Atomic uint64_t *total, uint64_t us)
{
    atomic_store_explicit(last, us, memory_order_relaxed);
    fl_stat_add(total, us);
    if (us > atomic_load_explicit(max, memory_order_relaxed))
        atomic_store_explicit(max, us, memory_order_relaxed);
}

/* Queues [begin, end) of job as a pending range again, behind the backlog,
 * for batches of `attempt` redoing what `origin` lost. NULL when out of
 * memory. */
static struct fl_pending *requeue(struct fleet_runtime *rt,
                                  struct fleet_job *job, size_t begin,
                                  size_t end, unsigned attempt, unsigned origin)
{
    struct fl_pending *p = fl_alloc(FL_ARENA_DEFAULT, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->job = job;
    p->begin = begin;
    p->end = end;
    p->attempt = attempt;
    p->origin = origin;
    fl_pending_push_backlog(&rt->disp.pending, p);
    return p;
}

/* Queues b's range again as the next attempt (before b is fenced), lost by
 * the failure of `failed` injected at `since` unless an earlier failure
 * lost it already. */
static void redispatch(struct fleet_runtime *rt, struct fl_batch *b,
                       struct fl_tm *failed, uint64_t since)
{
    unsigned origin = b->origin;
    if (origin == 0)
        origin = failed->index + 1;
    if (requeue(rt, b->job, b->begin, b->end, b->attempt + 1, origin) == NULL) {
        /* Nothing to rerun it with: the job ends with the error. */
        complete_job(rt, b->job, -ENOMEM);
        return;
    }
    if (b->origin == 0) {
        if (failed->lost_items == 0)
            failed->lost_since = since;
        failed->lost_items += b->end - b->begin;
    }
    fl_stat_add(&rt->stats.redispatched, 1);
}

static void record_duration(struct fl_dispatcher *d, uint64_t ns)
{
    size_t n = sizeof(d->durations) / sizeof(d->durations[0]);
    d->durations[d->ndurations++ % n] = ns;
}

static void commit(struct fleet_runtime *rt, struct fl_batch *b)
{
    if (atomic_load_explicit(&b->fenced, memory_order_relaxed)) {
        drop_fenced(rt, b);
        return;
    }
    struct fleet_job *job = b->job;
    struct fl_tm *tm = &rt->tms[b->tm];
    unschedule(tm, b);
    if (b->twin != NULL) {
        /* The first of two attempts to complete wins; the other is
         * fenced (the job settles once its visitors have left). */
        if (b->speculative)
            fl_stat_add(&rt->stats.spec_won, 1);
        fence(rt, b->twin);
    }
    uint64_t now = fl_now_ns();
    record_duration(&rt->disp, now - b->t_dispatch);
    struct fl_metrics *m = &rt->metrics;
    fl_hist_add1(&m->sched_time, now - b->t_dispatch);
    fl_hist_add1(&m->comp_wait, now > b->t_posted ? now - b->t_posted : 0);
    fl_count1(&tm->counters.batches_out, 1);
    fl_count1(&tm->counters.items_out, b->end - b->begin);
    /* relaxed: fl_batch_done's acq_rel ordered every visitor's add. */
    fl_cost_put(&rt->costs, job->cost_key, b->end - b->begin,
                atomic_load_explicit(&b->busy_ns, memory_order_relaxed));
    if (b->origin != 0) {
        /* A range lost by a failure: recovered once all of it commits. */
        struct fl_tm *o = &rt->tms[b->origin - 1];
        o->lost_items -= b->end - b->begin;
        if (o->lost_items == 0) {
            struct fl_stats *st = &rt->stats;
            fl_stat_add(&st->recoveries, 1);
            stat_time(&st->recovery_us_last, &st->recovery_us_max,
                      &st->recovery_us_total, (now - o->lost_since) / 1000);
        }
    }
    if (job->reduce)
        job->red.combine(job->ctx, job->acc, b->partial);
    job->committed += b->end - b->begin;
    bool all = job->committed == job->end - job->begin;
    if (fl_batch_release(b))
        recycle(tm, b);
    if (all)
        complete_job(rt, job, 0);
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

/* --- pinned jobs (role only) --------------------------------------------- */

/* Whether tm may run job's work: any job not pinned; a pinned one on its
 * own TaskManager, or on any while that one is not live (failover). Role
 * only: `live` changes under the role. */
static bool may_run(const struct fleet_job *job, const struct fl_tm *tm)
{
    return job->pin == NULL || job->pin == tm ||
           !atomic_load_explicit(&job->pin->live, memory_order_relaxed);
}

/* Whether a helping thread — worker `self`, or NULL for a thread from
 * outside — may run job's work. A thread from outside never runs a pinned
 * job's (its waiter only waits). Role only. */
static bool may_help(const struct fleet_job *job, const struct fl_worker *self)
{
    return job->pin == NULL || (self != NULL && may_run(job, self->tm));
}

/* Frees a range unless it is its job's root, which lives in the job. */
static void pending_free(struct fl_pending *p)
{
    if (p != &p->job->root)
        fl_free(FL_ARENA_DEFAULT, p); /* a redispatched range */
}

/* Queues p behind the ranges pinned to tm. */
static void pinned_push(struct fl_dispatcher *d, struct fl_tm *tm,
                        struct fl_pending *p)
{
    p->t_in = fl_now_ns(); /* its wait in this queue starts */
    fl_len_inc1(&tm->counters.pinned_len, &tm->counters.pinned_hwm);
    p->next = NULL;
    if (tm->pinned_tail != NULL)
        tm->pinned_tail->next = p;
    else
        tm->pinned = p;
    tm->pinned_tail = p;
    d->pinned_ranges++;
}

/* Takes the oldest range off tm's pinned queue (not empty). */
static struct fl_pending *pinned_pop(struct fl_dispatcher *d, struct fl_tm *tm)
{
    struct fl_pending *p = tm->pinned;
    tm->pinned = p->next;
    if (tm->pinned == NULL)
        tm->pinned_tail = NULL;
    d->pinned_ranges--;
    uint64_t now = fl_now_ns();
    fl_hist_add1(&tm->counters.pinned_wait, now > p->t_in ? now - p->t_in : 0);
    fl_count1(&tm->counters.pinned_len, (uint64_t)-1);
    return p;
}

/* The oldest range pinned to tm, dropping those of jobs that ended, or
 * NULL. */
static struct fl_pending *pinned_next(struct fl_dispatcher *d, struct fl_tm *tm)
{
    while (tm->pinned != NULL && tm->pinned->job->complete)
        pending_free(pinned_pop(d, tm));
    return tm->pinned;
}

/* Consumes [begin, end) of the oldest range pinned to tm. */
static void pinned_advance(struct fl_dispatcher *d, struct fl_tm *tm,
                           size_t end)
{
    tm->pinned->begin = end;
    if (end == tm->pinned->end)
        pending_free(pinned_pop(d, tm));
}

/* tm was declared failed: what waited for its room goes back to PENDING,
 * to be split like any job's while tm is not live. */
static void pinned_requeue(struct fl_dispatcher *d, struct fl_tm *tm)
{
    while (tm->pinned != NULL)
        fl_pending_push_backlog(&d->pending, pinned_pop(d, tm));
}

/*
 * Tells each pool whether ranges pinned to it wait for its room, as
 * has_pending does for the others: its workers going idle call the
 * dispatcher then. Returns whether any wait.
 */
static bool publish_pinned(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    if (d->pinned_ranges == 0 && d->pinned_flagged == 0)
        return false;
    bool any = false;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        bool waiting = pinned_next(d, tm) != NULL;
        any |= waiting;
        /* Stored only when it changes: the last store (under the role,
         * before our hand-out's seq_cst look at `idle`) is the one a
         * worker's seq_cst load would have to miss. */
        if (waiting ==
            atomic_load_explicit(&tm->has_pinned, memory_order_relaxed))
            continue;
        /* seq_cst, against a worker's seq_cst idle increment and load of
         * has_pinned: either it sees the ranges and calls us, or the
         * hand-out after this sees its room. */
        atomic_store_explicit(&tm->has_pinned, waiting, memory_order_seq_cst);
        if (waiting)
            d->pinned_flagged++;
        else
            d->pinned_flagged--;
    }
    return any;
}

/* --- handing out ---------------------------------------------------------- */

/* Batches tm could start now: its idle workers, less what its ring holds
 * (batches waiting, or already run by others and not yet drained). */
static unsigned tm_rooms(struct fl_tm *tm)
{
    if (!atomic_load_explicit(&tm->live, memory_order_relaxed))
        return 0;
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
                                   size_t b, size_t e, unsigned refs,
                                   unsigned attempt, unsigned origin)
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
    struct fl_metrics *m = &tm->rt->metrics;
    fl_count1(&m->batches_split, 1);
    /* Halvings from the job's range to this batch: floor(log2(job /
     * batch)); a batch is never empty nor larger than its job. */
    uint64_t depth =
        63u - (uint64_t)__builtin_clzll(
                  (unsigned long long)((job->end - job->begin) / (e - b)));
    fl_count1(&m->depth_sum, depth);
    if (depth > atomic_load_explicit(&m->depth_max, memory_order_relaxed))
        atomic_store_explicit(&m->depth_max, depth, memory_order_relaxed);
    fl_count1(&tm->counters.batches_in, 1);
    fl_count1(&tm->counters.items_in, e - b);
    nb->attempt = attempt;
    nb->origin = origin;
    nb->t_dispatch = fl_now_ns();
    schedule(tm, nb);
    return nb;
}

static void hand_to(struct fl_tm *tm, struct fl_batch *b)
{
    /* Cannot fail: tm_rooms() checked the ring, and we are its only
     * producer. */
    bool ok = fl_ring_enqueue(&tm->ring, b);
    (void)ok;
    uint64_t len = fl_ring_size(&tm->ring);
    if (len >
        atomic_load_explicit(&tm->counters.ring_hwm, memory_order_relaxed))
        atomic_store_explicit(&tm->counters.ring_hwm, len,
                              memory_order_relaxed);
    fl_tm_wake(tm);
}

/* Consumes [cur->begin, end) of the current pending range. */
static void drop_cur(struct fl_dispatcher *d)
{
    struct fl_pending *p = d->cur;
    d->cur = NULL;
    pending_free(p);
}

static void advance_cur(struct fl_dispatcher *d, size_t end)
{
    d->cur->begin = end;
    if (end == d->cur->end)
        drop_cur(d);
}

/* The range to split next (the current one, else the next queued), or
 * NULL. Ranges of a job that already ended are dropped; those of a job
 * pinned to a live TaskManager move to its pinned queue (looked at again
 * each time: a pinned range split for failover goes back to its
 * TaskManager once that is live again). Role only. */
static struct fl_pending *next_pending(struct fl_dispatcher *d)
{
    for (;;) {
        if (d->cur == NULL && (d->cur = fl_pending_pop(&d->pending)) == NULL)
            return NULL;
        struct fleet_job *job = d->cur->job;
        if (job->complete) {
            drop_cur(d);
        } else if (job->pin != NULL &&
                   atomic_load_explicit(&job->pin->live,
                                        memory_order_relaxed)) {
            pinned_push(d, job->pin, d->cur);
            d->cur = NULL;
        } else {
            return d->cur;
        }
    }
}

/* Whether job's pending range keeps a part for its caller: a caller that
 * waits at once is one more runner, and takes that part without a ring hop
 * (fl_help) — while it is awake. Role only. */
static bool keeps_share(struct fleet_job *job)
{
    return job->caller_share &&
           !atomic_load_explicit(&job->caller_asleep, memory_order_seq_cst);
}

/*
 * Hands the ranges pinned to each TaskManager to it, and to it only, while
 * it has room: halved for its idle workers as hand_out() does for all
 * pools. A sleeping pool is woken for them whatever the wake budget
 * (nobody else may run them), but split for no more of its workers than
 * the budget allows. *woken: threads woken so far by this hand-out.
 */
static bool hand_out_pinned(struct fleet_runtime *rt, unsigned *woken)
{
    struct fl_dispatcher *d = &rt->disp;
    bool any = false;
    for (unsigned i = 0; i < rt->ntm && d->pinned_ranges != 0; i++) {
        struct fl_tm *tm = &rt->tms[i];
        struct fl_pending *p;
        while ((p = pinned_next(d, tm)) != NULL) {
            unsigned rooms = tm_rooms(tm);
            if (rooms == 0)
                break;
            bool awake = fl_tm_awake(tm);
            if (!awake) {
                unsigned budget = wake_budget(rt, *woken);
                if (rooms > budget)
                    rooms = budget != 0 ? budget : 1;
            }
            size_t end = fl_split_take(p->begin, p->end, p->job->grain, rooms);
            struct fl_batch *b =
                make_batch(tm, p->job, p->begin, end, 2, p->attempt, p->origin);
            if (b == NULL)
                return any; /* out of memory: retried at the next dispatch */
            pinned_advance(d, tm, end);
            if (!awake)
                *woken += tm->nworkers;
            hand_to(tm, b);
            any = true;
        }
    }
    return any;
}

static bool hand_out(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    unsigned woken = 0;
    /* Pinned ranges first: their pools' room is the only one they can
     * use, while other jobs can go anywhere. */
    bool any = hand_out_pinned(rt, &woken);
    for (;;) {
        struct fl_pending *p = next_pending(d);
        if (p == NULL)
            break;
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
        struct fl_batch *b =
            make_batch(tm, p->job, p->begin, end, 2, p->attempt, p->origin);
        if (b == NULL)
            break; /* out of memory: retried at the next dispatch */
        advance_cur(d, end);
        if (!fl_tm_awake(tm))
            woken += tm->nworkers;
        hand_to(tm, b);
        any = true;
    }
    /* Those next_pending() has just moved to their pools' queues. */
    any |= hand_out_pinned(rt, &woken);
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
 * items, of a job the thief may run (not pinned to another live one). */
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
            /* Twins must keep the same range, or one could not stand for
             * the other. */
            if (n > most && b->twin == NULL && may_run(b->job, thief)) {
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
        struct fl_batch *nb =
            make_batch(tm, v->job, s, e, 2, v->attempt, v->origin);
        if (nb == NULL) {
            /* Give the tail back: nobody can have claimed it. */
            fl_batch_steal_undo(v, s, e);
            continue;
        }
        struct fl_tm *vtm = &rt->tms[v->tm];
        vtm->load -= e - s;
        fl_count1(&vtm->counters.items_in, (uint64_t)0 - (e - s));
        v->end = s;
        hand_to(tm, nb);
        if (fl_batch_done(v, e - s))
            fl_post(rt, v, fl_now_ns());
        any = true;
    }
    return any;
}

/* --- failures (role only) ----------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

#define MS 1000000u

/* Decides, by the restart strategy, when tm (just declared failed)
 * rejoins. */
static void schedule_restart(struct fleet_runtime *rt, struct fl_tm *tm,
                             uint64_t now)
{
    const fleet_restart_t *r = &rt->cfg.restart;
    uint64_t delay = 0;
    bool ok = false;
    switch (r->kind) {
    case FLEET_RESTART_NONE:
        break;
    case FLEET_RESTART_FIXED_DELAY:
        ok = r->attempts == 0 || tm->restarts < r->attempts;
        delay = (uint64_t)r->delay_ms * MS;
        break;
    case FLEET_RESTART_EXPONENTIAL_DELAY: {
        /* Back to the initial delay after a healthy run longer than the
         * cap (Flink's reset-backoff-threshold). */
        if (now - tm->live_since > 2 * (uint64_t)r->max_ms * MS)
            tm->backoff = 0;
        double d = r->initial_ms;
        for (unsigned i = 0; i < tm->backoff && d < r->max_ms; i++)
            d *= r->multiplier;
        if (d > r->max_ms)
            d = r->max_ms;
        d += d * r->jitter * (2 * rng_unit(&rt->disp.chaos_rng) - 1);
        tm->backoff++;
        ok = true;
        delay = d > 0 ? (uint64_t)(d * MS) : 0;
        break;
    }
    case FLEET_RESTART_FAILURE_RATE: {
        unsigned n = r->max_failures + 1;
        tm->fail_times[tm->fail_count++ % n] = now;
        /* More than max_failures in the interval: the oldest of the last
         * max_failures + 1 failures is within it. */
        uint64_t oldest = tm->fail_times[tm->fail_count % n];
        ok = tm->fail_count < n || now - oldest > (uint64_t)r->interval_ms * MS;
        delay = (uint64_t)r->delay_ms * MS;
        break;
    }
    }
    tm->restart_at = ok ? now + delay : UINT64_MAX;
}

/* Heartbeats stopped: fence tm's batches, queue their ranges again, and let
 * the restart strategy decide its return. */
static void declare_failed(struct fleet_runtime *rt, struct fl_tm *tm,
                           uint64_t now)
{
    atomic_store_explicit(&tm->live, false, memory_order_seq_cst);
    /* release, and before anything of tm is queued again below: a caller
     * that reads the count (acquire) after its pinned job completed counts
     * every failure that made a batch of that job run elsewhere. */
    atomic_fetch_add_explicit(&tm->failures, 1, memory_order_release);
    atomic_fetch_sub_explicit(&rt->tms_live, 1, memory_order_relaxed);
    /* acq_rel: frozen workers that see the new epoch see `live` too. */
    atomic_fetch_add_explicit(&tm->fail_epoch, 1, memory_order_acq_rel);
    int kind = atomic_load_explicit(&tm->fault, memory_order_acquire);
    uint64_t at = atomic_load_explicit(&tm->fault_at, memory_order_relaxed);
    struct fl_stats *st = &rt->stats;
    if (kind == FL_FAULT_NONE || at == 0) {
        fl_stat_add(&st->suspected, 1);
        at = now;
    } else {
        uint64_t us = now > at ? (now - at) / 1000 : 0;
        fl_stat_add(&st->detected[kind], 1);
        stat_time(&st->detection_us_last, &st->detection_us_max,
                  &st->detection_us_total, us);
    }
    uint64_t t0 = fl_now_ns();
    struct fl_batch *b, *next;
    CK_LIST_FOREACH_SAFE (b, &tm->scheduled, sched_link, next) {
        /* A twin elsewhere still covers the range. */
        if (b->twin == NULL)
            redispatch(rt, b, tm, at);
        fence(rt, b);
    }
    pinned_requeue(&rt->disp, tm);
    fl_stat_add(&st->fencing_ns_total, fl_now_ns() - t0);
    schedule_restart(rt, tm, now);
    fl_tm_wake(tm); /* frozen workers leave their (fenced) batches */
}

static void restart(struct fleet_runtime *rt, struct fl_tm *tm, uint64_t now)
{
    tm->restarts++;
    tm->restart_at = UINT64_MAX;
    tm->chaos_end = 0;
    tm->live_since = now;
    atomic_store_explicit(&tm->restart_asap, false, memory_order_relaxed);
    atomic_store_explicit(&tm->fault_at, 0, memory_order_relaxed);
    atomic_store_explicit(&tm->heartbeat, now, memory_order_relaxed);
    atomic_store_explicit(&tm->fault, FL_FAULT_NONE, memory_order_release);
    atomic_store_explicit(&tm->live, true, memory_order_seq_cst);
    /* release: pairs with fleet_tm_status's acquire, as `failures`. */
    atomic_fetch_add_explicit(&tm->rejoins, 1, memory_order_release);
    atomic_fetch_add_explicit(&rt->tms_live, 1, memory_order_relaxed);
    atomic_store_explicit(&rt->dead, false, memory_order_relaxed);
    fl_stat_add(&rt->stats.restarts, 1); /* last: it is live when counted */
    fl_tm_wake(tm);
}

/* No TaskManager is live and none will restart: whatever waits ends with
 * -ECANCELED, and submits are refused until a manual recover. */
static void cancel_all(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    atomic_store_explicit(&rt->dead, true, memory_order_seq_cst);
    for (unsigned i = 0; i < rt->ntm; i++) {
        rt->tms[i].lost_items = 0; /* never to be recovered */
        /* Empty already (requeued when it failed); what is there ends. */
        pinned_requeue(d, &rt->tms[i]);
    }
    struct fl_pending *p;
    while ((p = next_pending(d)) != NULL) {
        struct fleet_job *job = p->job;
        drop_cur(d);
        complete_job(rt, job, -ECANCELED); /* may free job (and a root p) */
    }
    fl_event_signal(&d->pending.space);
}

/* Restarts those due; cancels everything if nothing will ever run it. */
static void restarts_due(struct fleet_runtime *rt)
{
    if (atomic_load_explicit(&rt->tms_live, memory_order_relaxed) == rt->ntm)
        return;
    uint64_t now = fl_now_ns();
    bool coming = false;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (atomic_load_explicit(&tm->live, memory_order_relaxed))
            continue;
        if (atomic_load_explicit(&tm->restart_asap, memory_order_relaxed) ||
            tm->restart_at <= now)
            restart(rt, tm, now);
        else if (tm->restart_at != UINT64_MAX)
            coming = true;
    }
    if (atomic_load_explicit(&rt->tms_live, memory_order_relaxed) == 0 &&
        !coming)
        cancel_all(rt);
}

/* Seeded random failures; and the end of those whose time is up. */
static void chaos(struct fleet_runtime *rt, uint64_t now)
{
    const fleet_config_t *c = &rt->cfg;
    struct fl_dispatcher *d = &rt->disp;
    if (c->chaos_seed == 0)
        return;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (tm->chaos_end == 0 || tm->chaos_end > now)
            continue;
        tm->chaos_end = 0;
        int f = atomic_load_explicit(&tm->fault, memory_order_relaxed);
        if (f == FLEET_FAIL_HANG || f == FLEET_FAIL_SLOW)
            (void)fl_recover(rt, i);
    }
    double mean = (double)c->chaos_mtbf_us * 1000.0;
    if (d->chaos_next == 0)
        d->chaos_next =
            now + (uint64_t)(-log(1 - rng_unit(&d->chaos_rng)) * mean);
    unsigned weights =
        c->chaos_weight[0] + c->chaos_weight[1] + c->chaos_weight[2];
    /* At most a few per tick, however small the mean. */
    for (unsigned n = 0; d->chaos_next <= now && n < 8; n++) {
        d->chaos_next +=
            1 + (uint64_t)(-log(1 - rng_unit(&d->chaos_rng)) * mean);
        unsigned w = (unsigned)(rng_next(&d->chaos_rng) % weights);
        fleet_fail_t how = w < c->chaos_weight[0] ? FLEET_FAIL_CRASH
                           : w < c->chaos_weight[0] + c->chaos_weight[1]
                               ? FLEET_FAIL_HANG
                               : FLEET_FAIL_SLOW;
        /* A random one of the TaskManagers that are live and fine. */
        unsigned fine = 0, pick = UINT32_MAX;
        for (unsigned i = 0; i < rt->ntm; i++)
            if (atomic_load_explicit(&rt->tms[i].live, memory_order_relaxed) &&
                atomic_load_explicit(&rt->tms[i].fault, memory_order_relaxed) ==
                    FL_FAULT_NONE &&
                rng_next(&d->chaos_rng) % ++fine == 0)
                pick = i;
        if (pick != UINT32_MAX && fl_inject(rt, pick, how) == 0 &&
            how != FLEET_FAIL_CRASH)
            rt->tms[pick].chaos_end = now + (uint64_t)c->chaos_fault_us * 1000u;
    }
    if (d->chaos_next <= now)
        d->chaos_next = now + 1;
}

/* The median of the recent batch times, 0 while there are too few. */
static uint64_t median_duration(const struct fl_dispatcher *d)
{
    size_t cap = sizeof(d->durations) / sizeof(d->durations[0]);
    size_t n = d->ndurations < cap ? d->ndurations : cap;
    if (n < 8)
        return 0;
    uint64_t v[sizeof(d->durations) / sizeof(d->durations[0])];
    for (size_t i = 0; i < n; i++) {
        /* insertion sort: at most 64 values, once a tick */
        size_t j = i;
        for (; j > 0 && v[j - 1] > d->durations[i]; j--)
            v[j] = v[j - 1];
        v[j] = d->durations[i];
    }
    return v[n / 2];
}

/* A live TaskManager other than `not` that could start a batch now. */
static struct fl_tm *idle_tm(struct fleet_runtime *rt,
                             const struct fl_tm * not )
{
    struct fl_tm *best = NULL;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (tm != not &&tm_rooms(tm) != 0 &&
            (best == NULL || (fl_tm_awake(tm) && !fl_tm_awake(best))))
            best = tm;
    }
    return best;
}

/* Second attempts for stragglers: batches fully claimed (a tail steal can
 * no longer help) that ran longer than 1.5x the median and the floor, on a
 * SLOW TaskManager. Only there: a long batch elsewhere is long work, and a
 * second attempt would run parallel_for items twice with nothing failed. */
/* A batch commits as a whole, so a failure loses everything its
 * TaskManager ran of it. Batches that have run longer than half the
 * heartbeat timeout are cut where their threads have got to: the claimed
 * part commits once its chunks end, the rest goes on as a new batch on the
 * same TaskManager. A failure then loses at most the uncommitted cut part
 * and its successor's progress: about a timeout's work per thread. (The
 * rest of a batch that failover gave another TaskManager than its job's,
 * now live again, goes back to PENDING instead, and so to that one.) */
static void cut_long(struct fleet_runtime *rt, uint64_t now)
{
    uint64_t age = (uint64_t)rt->cfg.heartbeat_timeout_us * 500u;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (!atomic_load_explicit(&tm->live, memory_order_relaxed))
            continue;
        struct fl_batch *b, *next;
        CK_LIST_FOREACH_SAFE (b, &tm->scheduled, sched_link, next) {
            if (fl_ring_size(&tm->ring) >= fl_ring_capacity(&tm->ring))
                break;
            size_t s, e;
            if (b->twin != NULL || now - b->t_dispatch <= age ||
                !fl_batch_cut(b, b->job->grain ? b->job->grain : 1, &s, &e))
                continue;
            struct fl_batch *nb = NULL;
            bool back = !may_run(b->job, tm);
            if (back ? requeue(rt, b->job, s, e, b->attempt, b->origin) == NULL
                     : (nb = make_batch(tm, b->job, s, e, 2, b->attempt,
                                        b->origin)) == NULL) {
                fl_batch_steal_undo(b, s, e);
                continue;
            }
            tm->load -= e - s; /* counted again wherever the rest goes */
            fl_count1(&tm->counters.items_in, (uint64_t)0 - (e - s));
            b->end = s;
            b->cut = true;
            if (nb != NULL)
                hand_to(tm, nb);
            fl_stat_add(&rt->stats.cut, 1);
            if (fl_batch_done(b, e - s))
                fl_post(rt, b, fl_now_ns());
        }
    }
}

static void speculate(struct fleet_runtime *rt, uint64_t now)
{
    if (!rt->cfg.speculation)
        return;
    uint64_t med = median_duration(&rt->disp);
    if (med == 0)
        return;
    uint64_t limit = med + med / 2;
    uint64_t floor = (uint64_t)rt->cfg.speculation_floor_us * 1000u;
    if (limit < floor)
        limit = floor;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (!atomic_load_explicit(&tm->live, memory_order_relaxed) ||
            atomic_load_explicit(&tm->fault, memory_order_relaxed) !=
                FLEET_FAIL_SLOW)
            continue;
        struct fl_batch *b;
        CK_LIST_FOREACH (b, &tm->scheduled, sched_link) {
            /* A cut batch is old but has only its last chunks to run. */
            if (b->twin != NULL || b->speculative || b->cut ||
                now - b->t_dispatch <= limit || fl_batch_unclaimed(b) != 0)
                continue;
            struct fl_tm *to = idle_tm(rt, tm);
            if (to == NULL)
                return;
            if (!may_run(b->job, to))
                continue; /* pinned to another, live TaskManager */
            struct fl_batch *copy = make_batch(to, b->job, b->begin, b->end, 2,
                                               b->attempt + 1, b->origin);
            if (copy == NULL)
                return;
            copy->speculative = true;
            copy->twin = b;
            b->twin = copy;
            hand_to(to, copy);
            fl_stat_add(&rt->stats.spec_launched, 1);
        }
    }
}

/* The dispatcher thread's tick: heartbeats, chaos, speculation. */
static void monitor(struct fleet_runtime *rt)
{
    if (!rt->cfg.fault_tolerance)
        return;
    uint64_t now = fl_now_ns();
    uint64_t timeout = (uint64_t)rt->cfg.heartbeat_timeout_us * 1000u;
    struct fl_dispatcher *d = &rt->disp;
    uint64_t since = atomic_load_explicit(&d->resumed_at, memory_order_relaxed);
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (!atomic_load_explicit(&tm->live, memory_order_relaxed))
            continue;
        uint64_t hb =
            atomic_load_explicit(&tm->heartbeat, memory_order_acquire);
        if (hb < since)
            hb = since;
        /* A crash fleet_tm_recover asked to restart needs no detecting. */
        bool recover =
            atomic_load_explicit(&tm->restart_asap, memory_order_relaxed) &&
            atomic_load_explicit(&tm->fault, memory_order_acquire) ==
                FLEET_FAIL_CRASH;
        if (recover || (now > hb && now - hb > timeout))
            declare_failed(rt, tm, now);
    }
    chaos(rt, now);
    cut_long(rt, now);
    speculate(rt, now);
}

int fl_inject(struct fleet_runtime *rt, unsigned i, fleet_fail_t how)
{
    struct fl_tm *tm = &rt->tms[i];
    if (!atomic_load_explicit(&tm->live, memory_order_acquire))
        return -EALREADY;
    int none = FL_FAULT_NONE;
    if (!atomic_compare_exchange_strong_explicit(&tm->fault, &none, (int)how,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed))
        return -EALREADY;
    /* A recover that raced with this TaskManager's restart has nothing
     * left to restart: this failure follows the restart strategy. */
    atomic_store_explicit(&tm->restart_asap, false, memory_order_relaxed);
    atomic_store_explicit(&tm->fault_at, fl_now_ns(), memory_order_relaxed);
    fl_stat_add(&rt->stats.injected[how], 1);
    return 0;
}

int fl_recover(struct fleet_runtime *rt, unsigned i)
{
    struct fl_tm *tm = &rt->tms[i];
    int f = atomic_load_explicit(&tm->fault, memory_order_acquire);
    if (!atomic_load_explicit(&tm->live, memory_order_acquire) ||
        f == FLEET_FAIL_CRASH) {
        /* Failed, or a crash awaiting detection: declared failed (if not
         * yet) and restarted at the dispatcher thread's next tick, which
         * may have to wake up for it. */
        atomic_store_explicit(&tm->restart_asap, true, memory_order_relaxed);
        fl_event_signal(&rt->disp.wake);
        fl_dispatch(rt);
        return 0;
    }
    if (f == FL_FAULT_NONE || !atomic_compare_exchange_strong_explicit(
                                  &tm->fault, &f, FL_FAULT_NONE,
                                  memory_order_acq_rel, memory_order_relaxed))
        return -EALREADY;
    atomic_store_explicit(&tm->fault_at, 0, memory_order_relaxed);
    fl_tm_wake(tm); /* a HANG resumes where it stopped */
    return 0;
}

void fl_dispatcher_drain(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    void *v;
    while (fl_ring_dequeue(&d->completions, &v))
        ; /* fenced attempts: freed below, through the graveyard */
    struct fl_batch *b, *next;
    CK_LIST_FOREACH_SAFE (b, &d->graveyard, sched_link, next) {
        CK_LIST_REMOVE(b, sched_link);
        if (fl_batch_release(b))
            fl_batch_destroy(b);
    }
    while (d->cur != NULL || (d->cur = fl_pending_pop(&d->pending)) != NULL)
        drop_cur(d);
    for (unsigned i = 0; i < rt->ntm; i++)
        while (rt->tms[i].pinned != NULL)
            pending_free(pinned_pop(d, &rt->tms[i]));
}

/* --- the role ------------------------------------------------------------- */

/* Wakes the registered sleepers if pending work waits that no pool has
 * room for: only threads that help can run it — every pool, for work any
 * may run; a pool with sleepers, for work pinned to it. Role only. */
static void wake_helpers(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    if (atomic_load_explicit(&d->sleepers, memory_order_relaxed) == 0)
        return;
    bool any = d->cur != NULL || fl_pending_nonempty(&d->pending);
    if (!any && d->pinned_ranges == 0)
        return;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (!any && (tm->sleepers == 0 || pinned_next(d, tm) == NULL))
            continue;
        atomic_fetch_sub_explicit(&d->sleepers, tm->sleepers,
                                  memory_order_relaxed);
        tm->sleepers = 0;
        fl_tm_wake(tm);
    }
}

/* Runs the role until nothing moves; first the monitor, when the
 * dispatcher thread's tick is due. */
static void role_run(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    /* Read first: the exchange writes a shared line, and ticks are rare. */
    bool tick =
        atomic_load_explicit(&d->tick_due, memory_order_relaxed) &&
        atomic_exchange_explicit(&d->tick_due, false, memory_order_acq_rel);
    if (tick)
        monitor(rt);
    restarts_due(rt);
    for (;;) {
        bool moved = drain_completions(rt);
        moved |= hand_out(rt);
        if (!moved && d->cur == NULL && !fl_pending_nonempty(&d->pending))
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
        /* The same for each pool and the ranges pinned to it. */
        bool pinned = publish_pinned(rt);
        if ((!pending && !pinned) || !hand_out(rt))
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

void fl_dispatch(struct fleet_runtime *rt)
{
    struct fl_dispatcher *d = &rt->disp;
    atomic_fetch_add_explicit(&d->gen, 1, memory_order_seq_cst);
    unsigned gen;
    while (role_enter(d, &gen)) {
        role_run(rt);
        if (!role_leave(d, gen))
            break;
    }
}

bool fl_dispatch_submit(struct fleet_runtime *rt, struct fl_pending *p,
                        uint64_t now)
{
    struct fl_dispatcher *d = &rt->disp;
    unsigned gen;
    if (!role_enter(d, &gen)) {
        /* The holder runs again: fl_dispatch() announces the push. */
        if (!fl_pending_push(&d->pending, p, now))
            return false;
        fl_dispatch(rt);
        return true;
    }
    bool in;
    if (d->cur == NULL && !fl_pending_nonempty(&d->pending)) {
        fl_pending_direct(&d->pending, p, now);
        d->cur = p;
        in = true;
    } else {
        in = fl_pending_push(&d->pending, p, now);
    }
    /* Also when p found PENDING full: the run makes room. */
    role_run(rt);
    if (role_leave(d, gen))
        fl_dispatch(rt);
    return in;
}

void fl_post(struct fleet_runtime *rt, struct fl_batch *b, uint64_t now)
{
    b->t_posted = now;
    /* seq_cst: see fl_tm_running_add(). */
    atomic_store_explicit(&b->posted, true, memory_order_seq_cst);
    fl_tm_running_remove(&rt->tms[b->tm], b);
    if (!fl_ring_enqueue(&rt->disp.completions, b)) {
        /* Full: whoever holds the role is draining it. A worker counts
         * the wait as back-pressure. */
        uint64_t t0 = fl_now_ns();
        do {
            fl_dispatch(rt);
            sched_yield();
        } while (!fl_ring_enqueue(&rt->disp.completions, b));
        struct fl_worker *self = fl_self(rt);
        if (self != NULL)
            fl_count1(&self->m.bp_ns, fl_now_ns() - t0);
    }
    fl_max_raise(&rt->metrics.comp_hwm, fl_ring_size(&rt->disp.completions));
    fl_dispatch(rt);
}

/* --- helping ------------------------------------------------------------ */

/* The live batch of job a helper (worker self, or NULL) should join: one
 * nobody runs yet if any (sharing a started one interleaves chunks on the
 * same cache lines), the one with the most unclaimed items among those;
 * none of a job the helper may not run. Role only. */
static struct fl_batch *job_victim(struct fleet_job *job,
                                   const struct fl_worker *self)
{
    if (!may_help(job, self))
        return NULL;
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

/* The live TaskManager with the least load, or NULL. */
static struct fl_tm *least_loaded(struct fleet_runtime *rt)
{
    struct fl_tm *best = NULL;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        if (atomic_load_explicit(&tm->live, memory_order_relaxed) &&
            (best == NULL || tm->load < best->load))
            best = tm;
    }
    return best;
}

/* With the role held: claims a first chunk for a helper, from a live batch
 * of job or from the pending range it may take. */
static struct fl_batch *help_claim(struct fleet_runtime *rt,
                                   struct fleet_job *job,
                                   struct fl_worker *self, size_t *s, size_t *e)
{
    struct fl_dispatcher *d = &rt->disp;
    struct fl_pending *p = next_pending(d);
    struct fl_tm *pinned = NULL; /* p is the oldest range pinned to it */
    bool own = self != NULL &&
               atomic_load_explicit(&self->tm->live, memory_order_relaxed);
    /* The job's own pending range first (its caller's share), then a live
     * batch of the job; a worker then takes any pending range, since it may
     * wait for a room that only this worker's own task would free — and for
     * that reason also a range pinned to its own pool. A caller from outside
     * never runs other jobs' work, nor a pinned job's. (A range next_pending
     * returns is never pinned to a live TaskManager.) */
    if (p == NULL || p->job != job || !may_help(job, self)) {
        struct fl_batch *b = job != NULL ? job_victim(job, self) : NULL;
        if (b != NULL && fl_batch_claim(b, fl_next_want(0, 0), false, s, e))
            return b;
        if (self == NULL)
            return NULL;
        if (p == NULL && own && (p = pinned_next(d, self->tm)) != NULL)
            pinned = self->tm;
        if (p == NULL)
            return NULL;
    }
    /* Nobody had room for it: run a piece here, booked to a live
     * TaskManager so its workers can join and its failure accounting
     * covers it (a pinned range: to its own). */
    struct fl_tm *tm = own ? self->tm : least_loaded(rt);
    if (tm == NULL)
        return NULL; /* none live: it waits for a restart, or is cancelled */
    p->job->caller_share = false;
    unsigned rooms;
    if (pinned != NULL)
        rooms = tm_rooms(tm);
    else
        (void)pick_tm(rt, wake_budget(rt, 0), &rooms);
    size_t end = fl_split_take(p->begin, p->end, p->job->grain, rooms + 1);
    struct fl_batch *b =
        make_batch(tm, p->job, p->begin, end, 1, p->attempt, p->origin);
    if (b == NULL)
        return NULL;
    if (pinned != NULL)
        pinned_advance(d, pinned, end);
    else
        advance_cur(d, end);
    bool ok = fl_batch_claim(b, fl_next_want(0, 0), false, s, e);
    (void)ok; /* a new batch has at least one item */
    fl_tm_running_add(tm, b);
    return b;
}

bool fl_help(struct fleet_runtime *rt, struct fleet_job *job,
             struct fl_worker *self)
{
    if (self != NULL && fl_tm_frozen(self->tm))
        return false; /* a crashed or hung pool does no work */
    if (self != NULL && (fl_tm_take(self) || fl_tm_join_running(self)))
        return true;
    struct fl_dispatcher *d = &rt->disp;
    unsigned gen;
    if (!role_enter(d, &gen))
        return false;
    role_run(rt);
    size_t s = 0, e = 0;
    struct fl_batch *b = NULL;
    if (job == NULL || !fl_job_is_done(job))
        b = help_claim(rt, job, self, &s, &e);
    if (role_leave(d, gen))
        fl_dispatch(rt);
    if (b == NULL)
        return false;
    fl_visit(rt, self, b, s, e, fl_now_ns());
    return true;
}

bool fl_park_prepare(struct fleet_runtime *rt, struct fl_worker *self,
                     struct fleet_job *job, uint32_t *seen)
{
    struct fl_dispatcher *d = &rt->disp;
    unsigned gen;
    if (!role_enter(d, &gen))
        return false;
    role_run(rt);
    /* Register first, then look: whatever arrives after the snapshot moves
     * the event. */
    atomic_fetch_add_explicit(&d->sleepers, 1, memory_order_relaxed);
    self->tm->sleepers++;
    *seen = fl_event_value(&self->tm->ev);
    bool idle = d->cur == NULL && !fl_pending_nonempty(&d->pending) &&
                pinned_next(d, self->tm) == NULL &&
                (job == NULL ||
                 (!fl_job_is_done(job) && job_victim(job, self) == NULL)) &&
                !fl_tm_has_work(self->tm);
    if (!idle) {
        atomic_fetch_sub_explicit(&d->sleepers, 1, memory_order_relaxed);
        self->tm->sleepers--;
    }
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
    uint64_t half_timeout = (uint64_t)rt->cfg.heartbeat_timeout_us * 500u;
    uint64_t last = fl_now_ns();
    unsigned idle_ticks = 0;
    while (!fl_stopping(rt)) {
        uint32_t seen = fl_event_value(&d->wake);
        /* A monitor that got no CPU for half the timeout cannot tell a
         * silent TaskManager from a starved one: it judges from now on. */
        uint64_t now = fl_now_ns();
        if (now - last > half_timeout)
            atomic_store_explicit(&d->resumed_at, now, memory_order_relaxed);
        last = now;
        atomic_store_explicit(&d->tick_due, true, memory_order_release);
        fl_dispatch(rt);
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
        /* Heartbeat threads slept with us: judge none by older beats, and
         * wake them even if no submit did (a heartbeat thread that saw us
         * parked sleeps until this event moves). */
        last = fl_now_ns();
        atomic_store_explicit(&d->resumed_at, last, memory_order_relaxed);
        atomic_store_explicit(&d->parked, false, memory_order_release);
        fl_event_signal(&d->wake);
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
