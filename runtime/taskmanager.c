/*
 * taskmanager: worker threads, the running list, and running a batch.
 */
#include "taskmanager.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "dispatcher.h"
#include "job.h"
#include "runtime.h"

/* Reducer partials up to this size live on the visiting thread's stack. */
#define FL_STACK_PARTIAL 256

static void *worker_main(void *arg);
static void *heartbeat_main(void *arg);

int fl_tm_init(struct fl_tm *tm, struct fleet_runtime *rt, unsigned index,
               unsigned nworkers, unsigned ring_capacity)
{
    memset(tm, 0, sizeof(*tm));
    tm->rt = rt;
    tm->index = index;
    tm->nworkers = nworkers;
    tm->arena = FL_ARENA_DEFAULT;
    fl_event_init(&tm->ev);
    atomic_init(&tm->idle, 0);
    atomic_init(&tm->spinning, 0);
    atomic_init(&tm->parked, 0);
    atomic_init(&tm->has_pinned, false);
    atomic_init(&tm->fault, FL_FAULT_NONE);
    atomic_init(&tm->live, true);
    atomic_init(&tm->fail_epoch, 0);
    atomic_init(&tm->failures, 0);
    atomic_init(&tm->rejoins, 0);
    atomic_init(&tm->heartbeat, fl_now_ns());
    atomic_init(&tm->fault_at, 0);
    atomic_init(&tm->restart_asap, false);
    tm->restart_at = UINT64_MAX;
    tm->live_since = fl_now_ns();
    pthread_mutex_init(&tm->lock, NULL);
    int err = fl_arena_create(&tm->arena);
    if (err == 0)
        err = fl_ring_init(&tm->ring, ring_capacity, FL_RING_SP | FL_RING_MC);
    if (err == 0) {
        /* Aligned: each worker's counters keep to their own lines. */
        tm->workers =
            fl_alloc_aligned(tm->arena, 64, nworkers * sizeof(*tm->workers));
        if (tm->workers == NULL)
            err = -ENOMEM;
    }
    const fleet_restart_t *rs = &rt->cfg.restart;
    if (err == 0 && rs->kind == FLEET_RESTART_FAILURE_RATE) {
        tm->fail_times =
            fl_calloc(tm->arena, rs->max_failures + 1, sizeof(*tm->fail_times));
        if (tm->fail_times == NULL)
            err = -ENOMEM;
    }
    if (err != 0) {
        fl_tm_fini(tm);
        return err;
    }
    for (unsigned i = 0; i < nworkers; i++) {
        tm->workers[i].rt = rt;
        tm->workers[i].tm = tm;
        tm->workers[i].index = i;
    }
    return 0;
}

int fl_tm_start(struct fl_tm *tm)
{
    if (tm->rt->cfg.fault_tolerance) {
        int err = pthread_create(&tm->hb_thread, NULL, heartbeat_main, tm);
        if (err != 0)
            return -err;
        tm->hb_started = true;
    }
    for (unsigned i = 0; i < tm->nworkers; i++) {
        struct fl_worker *w = &tm->workers[i];
        int err = pthread_create(&w->thread, NULL, worker_main, w);
        if (err != 0)
            return -err;
        w->started = true;
    }
    return 0;
}

void fl_tm_join(struct fl_tm *tm)
{
    if (tm->hb_started)
        pthread_join(tm->hb_thread, NULL);
    tm->hb_started = false;
    for (unsigned i = 0; tm->workers != NULL && i < tm->nworkers; i++) {
        struct fl_worker *w = &tm->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        w->started = false;
    }
}

void fl_tm_fini(struct fl_tm *tm)
{
    if (tm->ring.buf != NULL) {
        /* Entries whose batch was run by others before it was taken. */
        void *v;
        while (fl_ring_dequeue(&tm->ring, &v))
            if (fl_batch_release(v))
                fl_batch_destroy(v);
        fl_ring_fini(&tm->ring);
    }
    while (tm->pool != NULL) {
        struct fl_batch *b = tm->pool;
        tm->pool = b->free_next;
        fl_batch_destroy(b);
    }
    tm->pooled = 0;
    fl_free(tm->arena, tm->workers);
    tm->workers = NULL;
    fl_free(tm->arena, tm->fail_times);
    tm->fail_times = NULL;
    pthread_mutex_destroy(&tm->lock);
    fl_arena_destroy(tm->arena);
    tm->arena = FL_ARENA_DEFAULT;
}

void fl_tm_wake(struct fl_tm *tm)
{
    fl_event_signal(&tm->ev);
}

void fl_tm_park(struct fl_tm *tm, uint32_t seen)
{
    atomic_fetch_add_explicit(&tm->parked, 1, memory_order_relaxed);
    fl_awake_add(tm->rt, -1);
    /* The CPU we free may be what pending work waited for. */
    if (fl_dispatch_pending(&tm->rt->disp) || fl_tm_pinned_waiting(tm))
        fl_dispatch(tm->rt);
    fl_event_wait(&tm->ev, seen, 0);
    fl_awake_add(tm->rt, 1);
    atomic_fetch_sub_explicit(&tm->parked, 1, memory_order_relaxed);
}

/* Takes b off its pool's running list if it is on it. The pool's lock
 * held. */
static void unlink_running(struct fl_batch *b)
{
    if (!atomic_load_explicit(&b->in_running, memory_order_relaxed))
        return;
    CK_LIST_REMOVE(b, run_link);
    atomic_store_explicit(&b->in_running, false, memory_order_relaxed);
}

void fl_tm_running_add(struct fl_tm *tm, struct fl_batch *b)
{
    pthread_mutex_lock(&tm->lock);
    CK_LIST_INSERT_HEAD(&tm->running, b, run_link);
    /* seq_cst, against the poster's seq_cst store of `posted` and load of
     * in_running: either it sees us on the list and takes b off, or we see
     * `posted` here and do it ourselves. */
    atomic_store_explicit(&b->in_running, true, memory_order_seq_cst);
    if (atomic_load_explicit(&b->posted, memory_order_seq_cst))
        unlink_running(b);
    pthread_mutex_unlock(&tm->lock);
}

void fl_tm_running_remove(struct fl_tm *tm, struct fl_batch *b)
{
    /* The poster: `posted` is stored (seq_cst) already. */
    if (!atomic_load_explicit(&b->in_running, memory_order_seq_cst))
        return;
    pthread_mutex_lock(&tm->lock);
    unlink_running(b);
    pthread_mutex_unlock(&tm->lock);
}

bool fl_tm_join_running(struct fl_worker *self)
{
    struct fl_tm *tm = self->tm;
    size_t s = 0, e = 0;
    struct fl_batch *got = NULL;
    pthread_mutex_lock(&tm->lock);
    /* On the list a batch is not yet posted, so it is still allocated; our
     * claim then keeps it from completing once we let the lock go. */
    for (;;) {
        struct fl_batch *best = NULL;
        size_t most = 0;
        struct fl_batch *b;
        CK_LIST_FOREACH (b, &tm->running, run_link) {
            size_t n = fl_batch_unclaimed(b);
            if (n > most) {
                most = n;
                best = b;
            }
        }
        if (best == NULL)
            break;
        if (fl_batch_claim(best, fl_next_want(0, 0), false, &s, &e)) {
            got = best;
            break;
        }
    }
    pthread_mutex_unlock(&tm->lock);
    if (got == NULL)
        return false;
    fl_visit(tm->rt, self, got, s, e, fl_now_ns());
    return true;
}

bool fl_tm_take(struct fl_worker *self)
{
    struct fl_tm *tm = self->tm;
    void *v;
    if (!fl_ring_dequeue(&tm->ring, &v))
        return false;
    struct fl_batch *b = v;
    uint64_t now = fl_now_ns();
    fl_hist_add1(&self->m.ring_wait,
                 now > b->t_dispatch ? now - b->t_dispatch : 0);
    size_t s, e;
    if (!fl_batch_claim(b, fl_next_want(0, 0), false, &s, &e)) {
        /* Others ran all of it while it sat here. */
        if (fl_batch_release(b))
            fl_batch_destroy(b);
        return true;
    }
    /* Our claim now keeps b from completing, so the ring's reference can
     * go; it is not the last (the dispatcher's stays until commit). */
    (void)fl_batch_release(b);
    if (tm->nworkers > 1) {
        fl_tm_running_add(tm, b);
        /* More than one chunk left: sleeping siblings may join. */
        if (atomic_load_explicit(&tm->idle, memory_order_relaxed) != 0 &&
            fl_batch_has_unclaimed(b)) {
            fl_tm_wake(tm);
            now = fl_now_ns(); /* a wake takes microseconds: not busy time */
        }
    }
    fl_visit(tm->rt, self, b, s, e, now);
    return true;
}

/* A worker between chunks is alive: it refreshes its pool's heartbeat,
 * writing the shared line only when the beat is getting old. */
static void beat(struct fl_tm *tm, uint64_t now)
{
    uint64_t half = (uint64_t)tm->rt->cfg.heartbeat_interval_us * 500u;
    if (now - atomic_load_explicit(&tm->heartbeat, memory_order_relaxed) > half)
        atomic_store_explicit(&tm->heartbeat, now, memory_order_release);
}

/* Sleeps until the pool is no longer frozen, it is declared failed after
 * `epoch`, or the runtime stops. Returns true when the worker may go on. */
static bool freeze(struct fl_tm *tm, unsigned epoch)
{
    struct fleet_runtime *rt = tm->rt;
    for (;;) {
        uint32_t seen = fl_event_value(&tm->ev);
        if (fl_stopping(rt))
            return false;
        if (!fl_tm_frozen(tm))
            return true;
        if (atomic_load_explicit(&tm->fail_epoch, memory_order_acquire) !=
            epoch)
            return false;
        fl_tm_park(tm, seen);
    }
}

void fl_tm_freeze_idle(struct fl_worker *self)
{
    struct fl_tm *tm = self->tm;
    while (fl_tm_frozen(tm) && !fl_stopping(tm->rt))
        (void)freeze(
            tm,
            atomic_load_explicit(&tm->fail_epoch, memory_order_acquire) - 1u);
}

/*
 * A worker's check point between two chunks of b, the last one having
 * taken chunk_ns and ended at `now`: applies its pool's simulated fault
 * (none: beats the heartbeat). Returns false when
 * the worker must leave b: its pool was declared failed while it was
 * frozen (b is fenced by then), or the runtime stops.
 */
static bool checkpoint(struct fl_worker *self, struct fl_batch *b,
                       uint64_t chunk_ns, uint64_t now)
{
    struct fl_tm *tm = self->tm;
    int f = atomic_load_explicit(&tm->fault, memory_order_relaxed);
    if (f == FL_FAULT_NONE) {
        beat(tm, now);
        return true;
    }
    if (f == FLEET_FAIL_SLOW) {
        if (!atomic_load_explicit(&b->fenced, memory_order_relaxed))
            fl_sleep_ns(chunk_ns * (tm->rt->cfg.slow_factor - 1));
        return true;
    }
    unsigned epoch =
        atomic_load_explicit(&tm->fail_epoch, memory_order_acquire);
    if (!atomic_load_explicit(&tm->live, memory_order_acquire))
        return false;
    return freeze(tm, epoch);
}

/* The next chunk of b for a thread whose last chunk [s, e) began at *t
 * (updated to the end of that chunk), sized by fl_next_want. Workers pass
 * their check point first. */
static bool next_chunk(struct fl_worker *self, struct fl_batch *b, uint64_t *t,
                       size_t *s, size_t *e)
{
    uint64_t now = fl_now_ns();
    uint64_t took = now - *t, from = *t;
    *t = now;
    if (self != NULL) {
        bool go = checkpoint(self, b, took, now);
        /* A SLOW check point slept: that was busy time too. */
        if (go && atomic_load_explicit(&self->tm->fault,
                                       memory_order_relaxed) != FL_FAULT_NONE)
            *t = fl_now_ns();
        /* Counted per chunk, so that a long visit shows in every interval
         * of the busy rate, not all at its end. */
        fl_count1(&self->m.busy_ns, *t - from);
        if (!go)
            return false;
    }
    return fl_batch_claim(b, fl_next_want(*e - *s, took),
                          took < FL_FAST_CHUNK_NS, s, e);
}

void fl_visit(struct fleet_runtime *rt, struct fl_worker *self,
              struct fl_batch *b, size_t s, size_t e, uint64_t now)
{
    struct fleet_job *job = b->job;
    size_t ran = 0;
    uint64_t t = now, t_first = t;
    /* The job's first item: its dispatch latency, counted once. */
    if (!atomic_load_explicit(&job->started, memory_order_relaxed) &&
        !atomic_exchange_explicit(&job->started, true, memory_order_relaxed)) {
        uint64_t lat = t > job->t_submit ? t - job->t_submit : 0;
        if (self != NULL)
            fl_hist_add1(&self->m.latency, lat);
        else
            fl_hist_add(&rt->metrics.latency_out, lat);
    }
    atomic_fetch_add_explicit(&b->visitors, 1, memory_order_relaxed);
    if (!job->reduce) {
        do {
            job->fn(job->ctx, s, e);
            ran += e - s;
        } while (next_chunk(self, b, &t, &s, &e));
    } else {
        alignas(64) unsigned char stack[FL_STACK_PARTIAL];
        void *local = stack;
        if (job->red.size > sizeof(stack)) {
            local = fl_alloc(rt->tms[b->tm].arena, job->red.size);
            if (local == NULL) {
                /* Fold straight into the batch partial, one at a time. */
                pthread_mutex_lock(&b->partial_lock);
                do {
                    job->red.fold(job->ctx, s, e, b->partial);
                    ran += e - s;
                } while (next_chunk(self, b, &t, &s, &e));
                pthread_mutex_unlock(&b->partial_lock);
                goto leave;
            }
        }
        job->red.init(job->ctx, local);
        do {
            job->red.fold(job->ctx, s, e, local);
            ran += e - s;
        } while (next_chunk(self, b, &t, &s, &e));
        pthread_mutex_lock(&b->partial_lock);
        job->red.combine(job->ctx, b->partial, local);
        pthread_mutex_unlock(&b->partial_lock);
        if (local != stack)
            fl_free(rt->tms[b->tm].arena, local);
    }
leave:;
    /* t: when this thread last looked for a chunk, i.e. finished one. */
    atomic_fetch_add_explicit(&b->busy_ns, t - t_first, memory_order_relaxed);
    atomic_fetch_sub_explicit(&b->visitors, 1, memory_order_relaxed);
    if (fl_batch_done(b, ran))
        fl_post(rt, b, t);
}

bool fl_tm_has_work(struct fl_tm *tm)
{
    if (fl_ring_size(&tm->ring) != 0)
        return true;
    pthread_mutex_lock(&tm->lock);
    bool any = false;
    struct fl_batch *b;
    CK_LIST_FOREACH (b, &tm->running, run_link) {
        if (fl_batch_has_unclaimed(b)) {
            any = true;
            break;
        }
    }
    pthread_mutex_unlock(&tm->lock);
    return any;
}

static void *worker_main(void *arg)
{
    struct fl_worker *w = arg;
    struct fl_tm *tm = w->tm;
    struct fleet_runtime *rt = w->rt;
    pthread_setspecific(rt->self, w);
    fl_awake_add(rt, 1);
    while (!fl_stopping(rt)) {
        if (fl_tm_frozen(tm)) {
            fl_tm_freeze_idle(w);
            continue;
        }
        if (fl_tm_take(w) || fl_tm_join_running(w))
            continue;
        /* seq_cst: see role_run(). Room opens when a worker goes idle, so
         * work left pending for want of room is handed out now — also work
         * pinned to this pool, which no other pool may take. */
        atomic_fetch_add_explicit(&tm->idle, 1, memory_order_seq_cst);
        if (fl_dispatch_pending(&rt->disp) || fl_tm_pinned_waiting(tm))
            fl_dispatch(rt);
        bool found = false;
        /* Spin only while no more threads are awake than there are CPUs. */
        if (fl_awake(rt) <= rt->ncpu) {
            atomic_fetch_add_explicit(&tm->spinning, 1, memory_order_relaxed);
            struct fl_spin spin;
            fl_spin_init(&spin, rt->spin_ns);
            while (!found && fl_spin_step(&spin)) {
                found = fl_ring_size(&tm->ring) != 0 || fl_stopping(rt) ||
                        fl_tm_frozen(tm);
                if (!found && (spin.steps & 7) == 0) {
                    found = fl_tm_has_work(tm);
                    /* One spinner too many since we started: yield. */
                    if (!found && fl_awake(rt) > rt->ncpu)
                        break;
                }
            }
            atomic_fetch_sub_explicit(&tm->spinning, 1, memory_order_relaxed);
        }
        if (!found) {
            uint32_t seen = fl_event_value(&tm->ev);
            if (!fl_stopping(rt) && !fl_tm_frozen(tm) && !fl_tm_has_work(tm))
                fl_tm_park(tm, seen);
        }
        atomic_fetch_sub_explicit(&tm->idle, 1, memory_order_relaxed);
    }
    fl_awake_add(rt, -1);
    return NULL;
}

/* One per pool: stores the time while the pool is not frozen, every
 * heartbeat interval while the dispatcher thread ticks, and sleeps with it
 * when it parks. */
static void *heartbeat_main(void *arg)
{
    struct fl_tm *tm = arg;
    struct fleet_runtime *rt = tm->rt;
    struct fl_dispatcher *d = &rt->disp;
    uint64_t tick = (uint64_t)rt->cfg.heartbeat_interval_us * 1000u;
    while (!fl_stopping(rt)) {
        uint32_t seen = fl_event_value(&d->wake);
        if (!fl_tm_frozen(tm))
            atomic_store_explicit(&tm->heartbeat, fl_now_ns(),
                                  memory_order_release);
        if (fl_stopping(rt))
            break;
        bool parked = atomic_load_explicit(&d->parked, memory_order_acquire);
        fl_event_wait(&d->wake, seen, parked ? 0 : tick);
    }
    return NULL;
}
