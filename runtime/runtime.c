/*
 * runtime: the public API — configuration, lifecycle, submit and wait.
 */
#define _GNU_SOURCE
#include "runtime.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "job.h"

#define FL_MAX_TMS 1024u
#define FL_MAX_WORKERS 1024u
#define FL_MAX_RING (1u << 20)
#define FL_MAX_SPIN_US 1000000u

void fleet_config_init(fleet_config_t *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->task_managers = 2;
    cfg->workers_per_tm = 0;
    cfg->ring_size = 64;
    cfg->grain = 0;
    cfg->heartbeat_interval_us = 2000;
    cfg->heartbeat_timeout_us = 20000;
    cfg->spin_us = 50;
    cfg->fault_tolerance = true;
    cfg->restart.kind = FLEET_RESTART_FIXED_DELAY;
    cfg->restart.attempts = 0;
    cfg->restart.delay_ms = 10;
    cfg->restart.initial_ms = 10;
    cfg->restart.max_ms = 1000;
    cfg->restart.multiplier = 2.0;
    cfg->restart.jitter = 0.1;
    cfg->restart.max_failures = 3;
    cfg->restart.interval_ms = 1000;
    cfg->slow_factor = 4;
    cfg->speculation = true;
    cfg->speculation_floor_us = 20000;
    cfg->chaos_seed = 0;
    cfg->chaos_mtbf_us = 5000;
    cfg->chaos_weight[FLEET_FAIL_CRASH] = 1;
    cfg->chaos_weight[FLEET_FAIL_HANG] = 1;
    cfg->chaos_weight[FLEET_FAIL_SLOW] = 1;
    cfg->chaos_fault_us = 5000;
}

static unsigned cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int config_check(const fleet_config_t *c)
{
    if (c->task_managers == 0 || c->task_managers > FL_MAX_TMS)
        return -EINVAL;
    if (c->workers_per_tm > FL_MAX_WORKERS)
        return -EINVAL;
    if (c->ring_size < 4 || c->ring_size > FL_MAX_RING ||
        (c->ring_size & (c->ring_size - 1)) != 0)
        return -EINVAL;
    if (c->heartbeat_interval_us == 0 ||
        c->heartbeat_timeout_us <= c->heartbeat_interval_us)
        return -EINVAL;
    if (c->spin_us > FL_MAX_SPIN_US)
        return -EINVAL;
    const fleet_restart_t *r = &c->restart;
    switch (r->kind) {
    case FLEET_RESTART_NONE:
    case FLEET_RESTART_FIXED_DELAY:
        break;
    case FLEET_RESTART_EXPONENTIAL_DELAY:
        /* !(x >= 1) also refuses NaN. */
        if (r->initial_ms == 0 || r->max_ms < r->initial_ms ||
            !(r->multiplier >= 1.0) || r->multiplier > 1e6 ||
            !(r->jitter >= 0.0 && r->jitter <= 1.0))
            return -EINVAL;
        break;
    case FLEET_RESTART_FAILURE_RATE:
        if (r->max_failures == 0 || r->max_failures > 1000000 ||
            r->interval_ms == 0)
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }
    if (c->slow_factor < 2 || c->slow_factor > 1000)
        return -EINVAL;
    if (c->chaos_seed != 0 &&
        (!c->fault_tolerance || c->chaos_mtbf_us == 0 ||
         c->chaos_fault_us == 0 ||
         (uint64_t)c->chaos_weight[0] + c->chaos_weight[1] +
                 c->chaos_weight[2] ==
             0 ||
         (uint64_t)c->chaos_weight[0] + c->chaos_weight[1] +
                 c->chaos_weight[2] >
             UINT32_MAX))
        return -EINVAL;
    return 0;
}

/* Stops and joins every thread started, frees everything made. */
static void teardown(struct fleet_runtime *rt, unsigned tms_made,
                     bool disp_made, bool metrics_made)
{
    if (metrics_made)
        (void)fleet_metrics_reporter_stop(rt);
    atomic_store_explicit(&rt->stop, true, memory_order_release);
    for (unsigned i = 0; i < tms_made; i++)
        fl_tm_wake(&rt->tms[i]);
    fl_event_signal(&rt->disp.wake);
    fl_dispatcher_join(rt);
    for (unsigned i = 0; i < tms_made; i++)
        fl_tm_join(&rt->tms[i]);
    if (disp_made)
        fl_dispatcher_drain(rt);
    for (unsigned i = 0; i < tms_made; i++)
        fl_tm_fini(&rt->tms[i]);
    if (disp_made)
        fl_dispatcher_fini(&rt->disp);
    fl_free(FL_ARENA_DEFAULT, rt->tms);
    if (metrics_made)
        fl_metrics_fini(rt);
    if (rt->self_key_made)
        pthread_key_delete(rt->self);
    if (rt->depth_key_made)
        pthread_key_delete(rt->depth);
    fl_free(FL_ARENA_DEFAULT, rt);
}

int fleet_runtime_create(fleet_runtime_t **out, const fleet_config_t *cfg)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    fleet_config_t c;
    if (cfg != NULL)
        c = *cfg;
    else
        fleet_config_init(&c);
    int err = config_check(&c);
    if (err != 0)
        return err;
    if (c.workers_per_tm == 0) {
        unsigned n = cpu_count() / c.task_managers;
        c.workers_per_tm = n == 0 ? 1 : n;
    }

    struct fleet_runtime *rt =
        fl_alloc_aligned(FL_ARENA_DEFAULT, 64, sizeof(*rt));
    if (rt == NULL)
        return -ENOMEM;
    rt->cfg = c;
    rt->ntm = c.task_managers;
    rt->nworkers = c.task_managers * c.workers_per_tm;
    rt->ncpu = cpu_count();
    rt->spin_ns = (uint64_t)c.spin_us * 1000u;
    atomic_init(&rt->jobs_live, 0);
    atomic_init(&rt->awake, 0);
    atomic_init(&rt->dead, false);
    atomic_init(&rt->tms_live, c.task_managers);
    memset(&rt->stats, 0, sizeof(rt->stats));
    fl_cost_init(&rt->costs);
    atomic_init(&rt->inlined, 0);
    atomic_init(&rt->closing, false);
    atomic_init(&rt->stop, false);
    fl_event_init(&rt->idle);

    unsigned tms_made = 0;
    bool disp_made = false;
    err = fl_metrics_init(rt);
    if (err != 0) {
        fl_free(FL_ARENA_DEFAULT, rt);
        return err;
    }
    err = -pthread_key_create(&rt->self, NULL);
    rt->self_key_made = err == 0;
    if (err == 0) {
        err = -pthread_key_create(&rt->depth, NULL);
        rt->depth_key_made = err == 0;
    }
    if (err == 0) {
        rt->tms = fl_calloc(FL_ARENA_DEFAULT, rt->ntm, sizeof(*rt->tms));
        if (rt->tms == NULL)
            err = -ENOMEM;
    }
    for (; err == 0 && tms_made < rt->ntm; tms_made++) {
        err = fl_tm_init(&rt->tms[tms_made], rt, tms_made, c.workers_per_tm,
                         c.ring_size);
        if (err != 0)
            break;
    }
    if (err == 0) {
        /* Every batch in flight fits (the rings' and the running ones,
         * twice over), so a poster rarely waits. */
        uint64_t cap = (uint64_t)rt->ntm * (c.ring_size + c.workers_per_tm) * 2;
        if (cap > FL_RING_MAX_CAPACITY)
            cap = FL_RING_MAX_CAPACITY;
        err = fl_dispatcher_init(&rt->disp, c.ring_size, (unsigned)cap);
        disp_made = err == 0;
    }
    if (err == 0)
        rt->disp.chaos_rng = c.chaos_seed;
    if (err == 0)
        err = fl_dispatcher_start(rt);
    for (unsigned i = 0; err == 0 && i < rt->ntm; i++)
        err = fl_tm_start(&rt->tms[i]);
    if (err != 0) {
        teardown(rt, tms_made, disp_made, true);
        return err;
    }
    *out = rt;
    return 0;
}

int fleet_runtime_config(const fleet_runtime_t *rt, fleet_config_t *out)
{
    if (rt == NULL || out == NULL)
        return -EINVAL;
    *out = rt->cfg;
    return 0;
}

void fleet_runtime_destroy(fleet_runtime_t *rt)
{
    if (rt == NULL)
        return;
    atomic_store_explicit(&rt->closing, true, memory_order_seq_cst);
    for (;;) {
        uint32_t seen = fl_event_value(&rt->idle);
        if (atomic_load_explicit(&rt->jobs_live, memory_order_acquire) == 0)
            break;
        fl_event_wait(&rt->idle, seen, 0);
    }
    teardown(rt, rt->ntm, true, true);
}

/* `local`: the job lives there, not on the heap, and the caller waits for
 * it right away, so the first split keeps a share for it. `pin`: the
 * TaskManager the job's batches run on, or NULL. A pinned job is always on
 * the heap: it has no caller's share, and never runs inline on its caller
 * (only the blocking calls do that). */
static int submit(fleet_runtime_t *rt, fleet_range_fn fn,
                  const fleet_reducer_t *red, void *ctx, size_t begin,
                  size_t end, struct fl_tm *pin, struct fleet_job *local,
                  fleet_job_t **out)
{
    if (rt == NULL || out == NULL || begin > end)
        return -EINVAL;
    if (red == NULL && fn == NULL)
        return -EINVAL;
    if (red != NULL && (red->size == 0 || red->init == NULL ||
                        red->fold == NULL || red->combine == NULL))
        return -EINVAL;
    struct fl_worker *self = fl_self(rt);
    /* Task bodies may still submit while destroy drains the runtime. */
    if (self == NULL &&
        atomic_load_explicit(&rt->closing, memory_order_seq_cst))
        return -ESHUTDOWN;
    /* Nothing will run it until a manual recover (a job accepted just
     * before is cancelled by the dispatcher instead). */
    if (atomic_load_explicit(&rt->dead, memory_order_acquire))
        return -ECANCELED;

    size_t n = end - begin;
    size_t grain =
        rt->cfg.grain != 0 ? rt->cfg.grain : fl_grain_auto(n, rt->nworkers);
    if (grain > FL_BATCH_MAX)
        grain = FL_BATCH_MAX;
    struct fleet_job *job = local;
    if (job == NULL)
        job = fl_job_new(rt, fn, red, ctx, begin, end, grain);
    else if (fl_job_init(job, rt, fn, red, ctx, begin, end, grain) != 0)
        job = NULL;
    if (job == NULL)
        return -ENOMEM;
    if (n == 0) {
        fl_job_finish(job, 0);
        fl_job_unref(job); /* the runtime's reference */
        *out = job;
        return 0;
    }
    job->caller_share = local != NULL && pin == NULL;
    /* Before the push, which publishes the job to the dispatcher. */
    job->pin = pin;
    job->t_submit = fl_now_ns();
    /* Before the push: counted submitted before it can be completed. */
    atomic_fetch_add_explicit(&rt->metrics.jobs_submitted, 1,
                              memory_order_relaxed);
    if (atomic_fetch_add_explicit(&rt->jobs_live, 1, memory_order_acq_rel) == 0)
        fl_dispatcher_kick(rt); /* it may have parked */

    /* PENDING is entered when the job was submitted. */
    if (!fl_dispatch_submit(rt, &job->root, job->t_submit)) {
        /* Back-pressure: PENDING is full until the dispatcher hands some
         * of it to a TaskManager. A worker helps meanwhile: a full PENDING
         * always holds work it can take, so it never needs to sleep. */
        struct fl_pending_queue *q = &rt->disp.pending;
        uint64_t t_full = fl_now_ns();
        do {
            fl_dispatch(rt);
            if (self != NULL) {
                if (!fl_help(rt, NULL, self))
                    sched_yield();
                continue;
            }
            uint32_t seen = fl_event_value(&q->space);
            if (fl_pending_push(q, &job->root, fl_now_ns()))
                break;
            fl_event_wait(&q->space, seen, 0);
        } while (!fl_pending_push(q, &job->root, fl_now_ns()));
        if (self != NULL) /* a worker held up: back-pressure */
            fl_count1(&self->m.bp_ns, fl_now_ns() - t_full);
        fl_dispatch(rt);
    }
    *out = job;
    return 0;
}

int fleet_submit(fleet_runtime_t *rt, fleet_range_fn fn, void *ctx,
                 size_t begin, size_t end, fleet_job_t **job)
{
    if (fn == NULL)
        return -EINVAL;
    return submit(rt, fn, NULL, ctx, begin, end, NULL, NULL, job);
}

int fleet_submit_on(fleet_runtime_t *rt, unsigned tm, fleet_range_fn fn,
                    void *ctx, size_t begin, size_t end, fleet_job_t **job)
{
    if (rt == NULL || fn == NULL || tm >= rt->ntm)
        return -EINVAL;
    return submit(rt, fn, NULL, ctx, begin, end, &rt->tms[tm], NULL, job);
}

static void wait_loop(struct fleet_runtime *rt, struct fleet_job *job,
                      struct fl_worker *self)
{
    struct fl_spin spin;
    fl_spin_init(&spin, rt->spin_ns);
    for (unsigned step = 0;; step++) {
        if (fl_job_is_done(job))
            return;
        /* Helping takes the dispatcher role; once it found nothing, look
         * again only now and then, and meanwhile just watch `done`. */
        if ((step & 7) == 0 && fl_help(rt, job, self)) {
            fl_spin_init(&spin, rt->spin_ns);
            step = (unsigned)-1;
            continue;
        }
        if (fl_spin_step(&spin))
            continue;
        if (self != NULL) {
            /* A worker sleeps where its pool's work would wake it, after
             * registering under the dispatcher role (fl_park_prepare); the
             * job's end wakes every pool while tm_waiters is set. A frozen
             * (crashed or hung) worker only waits. */
            atomic_fetch_add_explicit(&job->tm_waiters, 1,
                                      memory_order_seq_cst);
            uint32_t seen = fl_event_value(&self->tm->ev);
            if (fl_tm_frozen(self->tm)) {
                if (!fl_job_is_done(job) && !fl_stopping(rt))
                    fl_tm_park(self->tm, seen);
            } else if (fl_park_prepare(rt, self, job, &seen)) {
                fl_tm_park(self->tm, seen);
            }
            atomic_fetch_sub_explicit(&job->tm_waiters, 1,
                                      memory_order_relaxed);
        } else {
            uint32_t seen = fl_event_value(&job->done_ev);
            if (!fl_job_is_done(job)) {
                /* A sleeping caller runs no share of its job, and the CPU
                 * it frees may be what pending work waited for: let the
                 * dispatcher see both before we sleep. */
                atomic_store_explicit(&job->caller_asleep, true,
                                      memory_order_seq_cst);
                fl_awake_add(rt, -1);
                fl_dispatch(rt);
                fl_event_wait(&job->done_ev, seen, 0);
                fl_awake_add(rt, 1);
                atomic_store_explicit(&job->caller_asleep, false,
                                      memory_order_relaxed);
            }
        }
        fl_spin_init(&spin, rt->spin_ns);
    }
}

int fleet_job_wait(fleet_job_t *job)
{
    if (job == NULL)
        return -EINVAL;
    if (fl_job_is_done(job))
        return job->status;
    struct fleet_runtime *rt = job->rt;
    struct fl_worker *self = fl_self(rt);
    if (self != NULL) {
        wait_loop(rt, job, self); /* a worker is counted awake already */
        return job->status;
    }
    /* An outside thread counts as awake once, however deep it waits (it
     * may wait again inside a task it helps with). */
    uintptr_t depth = (uintptr_t)pthread_getspecific(rt->depth);
    if (depth == 0)
        fl_awake_add(rt, 1);
    pthread_setspecific(rt->depth, (void *)(depth + 1));
    wait_loop(rt, job, NULL);
    pthread_setspecific(rt->depth, (void *)depth);
    if (depth == 0)
        fl_awake_add(rt, -1);
    return job->status;
}

int fleet_job_poll(fleet_job_t *job)
{
    if (job == NULL)
        return -EINVAL;
    return fl_job_is_done(job) ? job->status : -EAGAIN;
}

void fleet_job_release(fleet_job_t *job)
{
    if (job != NULL)
        fl_job_unref(job);
}

/* --- blocking calls ----------------------------------------------------
 *
 * A blocking job whose items the cost table knows to be so cheap that all
 * of it costs less than a hand-off (FL_INLINE_NS) runs on its caller at
 * once: no PENDING, no batch, no worker. It runs in chunks and gives up
 * after twice that budget (the items cost more than learned: another
 * context behind the same pointer, say); what is left then goes the
 * normal way. Calls the normal path would refuse are not run here.
 */

static bool inline_worth(struct fleet_runtime *rt, uint64_t key, size_t begin,
                         size_t end, uint32_t *ps)
{
    if (rt == NULL || begin >= end)
        return false;
    *ps = fl_cost_get(&rt->costs, key);
    if (*ps == 0 || end - begin >= (uint64_t)FL_INLINE_NS * 1000u / *ps)
        return false;
    if (atomic_load_explicit(&rt->dead, memory_order_acquire))
        return false; /* the normal path reports -ECANCELED */
    return fl_self(rt) != NULL ||
           !atomic_load_explicit(&rt->closing, memory_order_seq_cst);
}

/* Runs [begin, end) here, folding into `partial` for a reduction, in
 * chunks that start at an eighth of the budget by the estimate and double,
 * so a wrong estimate costs little before it shows; returns where it
 * stopped, having taught the cost table what it saw. */
static size_t run_here(struct fleet_runtime *rt, uint64_t key,
                       fleet_range_fn fn, const fleet_reducer_t *red, void *ctx,
                       size_t begin, size_t end, void *partial, uint32_t ps)
{
    size_t chunk = (size_t)FL_INLINE_NS * 1000u / 8 / ps;
    if (chunk == 0)
        chunk = 1;
    uint64_t t0 = fl_now_ns(), t = t0;
    size_t at = begin;
    while (at < end && t - t0 <= 2 * (uint64_t)FL_INLINE_NS) {
        size_t e = end - at > chunk ? at + chunk : end;
        if (red != NULL)
            red->fold(ctx, at, e, partial);
        else
            fn(ctx, at, e);
        at = e;
        chunk *= 2;
        t = fl_now_ns();
    }
    fl_cost_put(&rt->costs, key, at - begin, t - t0);
    if (at == end)
        atomic_fetch_add_explicit(&rt->inlined, 1, memory_order_relaxed);
    return at;
}

int fleet_parallel_for(fleet_runtime_t *rt, fleet_range_fn fn, void *ctx,
                       size_t begin, size_t end)
{
    if (fn == NULL)
        return -EINVAL;
    uint64_t key = fl_cost_key((const void *)fn, ctx);
    uint32_t ps;
    if (inline_worth(rt, key, begin, end, &ps)) {
        begin = run_here(rt, key, fn, NULL, ctx, begin, end, NULL, ps);
        if (begin == end)
            return 0;
    }
    struct fleet_job local, *job;
    int err = submit(rt, fn, NULL, ctx, begin, end, NULL, &local, &job);
    if (err != 0)
        return err;
    err = fleet_job_wait(job);
    fl_job_settle(job);
    return err;
}

int fleet_parallel_reduce(fleet_runtime_t *rt, const fleet_reducer_t *r,
                          void *ctx, size_t begin, size_t end, void *result)
{
    if (r == NULL || result == NULL)
        return -EINVAL;
    /* The inline path keeps two partials on the stack; larger ones go the
     * normal way. */
    alignas(16) unsigned char acc[FL_JOB_ACC_INLINE];
    alignas(16) unsigned char part[FL_JOB_ACC_INLINE];
    size_t from = begin;
    uint32_t ps;
    uint64_t key = fl_cost_key((const void *)(r->fold), ctx);
    bool here = r->size != 0 && r->size <= sizeof(part) && r->init != NULL &&
                r->fold != NULL && r->combine != NULL &&
                inline_worth(rt, key, begin, end, &ps);
    if (here) {
        /* As one batch would: its partial combined into an init()ed
         * accumulator. */
        r->init(ctx, acc);
        r->init(ctx, part);
        from = run_here(rt, key, NULL, r, ctx, begin, end, part, ps);
        r->combine(ctx, acc, part);
        if (from == end) {
            memcpy(result, acc, r->size);
            return 0;
        }
    }
    struct fleet_job local, *job;
    int err = submit(rt, NULL, r, ctx, from, end, NULL, &local, &job);
    if (err != 0)
        return err;
    err = fleet_job_wait(job);
    if (err == 0) {
        if (here)
            r->combine(ctx, acc, job->acc);
        memcpy(result, here ? (const void *)acc : job->acc, r->size);
    }
    fl_job_settle(job);
    return err;
}

int fleet_tm_fail(fleet_runtime_t *rt, unsigned tm, fleet_fail_t how)
{
    if (rt == NULL || tm >= rt->ntm)
        return -EINVAL;
    if (how != FLEET_FAIL_CRASH && how != FLEET_FAIL_HANG &&
        how != FLEET_FAIL_SLOW)
        return -EINVAL;
    if (!rt->cfg.fault_tolerance)
        return -ENOTSUP;
    return fl_inject(rt, tm, how);
}

int fleet_tm_recover(fleet_runtime_t *rt, unsigned tm)
{
    if (rt == NULL || tm >= rt->ntm)
        return -EINVAL;
    if (!rt->cfg.fault_tolerance)
        return -ENOTSUP;
    return fl_recover(rt, tm);
}

int fleet_tm_status(const fleet_runtime_t *rt, unsigned tm,
                    fleet_tm_status_t *out)
{
    if (rt == NULL || out == NULL || tm >= rt->ntm)
        return -EINVAL;
    const struct fl_tm *t = &rt->tms[tm];
    uint64_t failures, rejoins;
    /* acquire: pairs with the release increments in the dispatcher
     * (declare_failed, restart), so a caller whose pinned job has completed
     * sees every failure that sent any of its batches elsewhere. Read again
     * while `failures` moves, so that the three fields describe one moment:
     * a failure and a restart alternate, and live == (failures ==
     * rejoins). */
    do {
        failures = atomic_load_explicit(&t->failures, memory_order_acquire);
        rejoins = atomic_load_explicit(&t->rejoins, memory_order_acquire);
    } while (atomic_load_explicit(&t->failures, memory_order_acquire) !=
             failures);
    out->live = failures == rejoins;
    out->failures = failures;
    out->restarts = rejoins;
    return 0;
}

int fleet_failure_stats(const fleet_runtime_t *rt, fleet_failure_stats_t *out)
{
    if (rt == NULL || out == NULL)
        return -EINVAL;
    const struct fl_stats *st = &rt->stats;
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)
    memset(out, 0, sizeof(*out));
    for (int k = 0; k < 3; k++) {
        out->injected[k] = GET(st->injected[k]);
        out->detected[k] = GET(st->detected[k]);
    }
    out->suspected = GET(st->suspected);
    out->detection_us_last = GET(st->detection_us_last);
    out->detection_us_max = GET(st->detection_us_max);
    out->detection_us_total = GET(st->detection_us_total);
    out->batches_redispatched = GET(st->redispatched);
    out->attempts_fenced = GET(st->fenced);
    out->speculative_launched = GET(st->spec_launched);
    out->speculative_won = GET(st->spec_won);
    out->restarts = GET(st->restarts);
    out->jobs_cancelled = GET(st->cancelled);
    out->recoveries = GET(st->recoveries);
    out->recovery_us_last = GET(st->recovery_us_last);
    out->recovery_us_max = GET(st->recovery_us_max);
    out->recovery_us_total = GET(st->recovery_us_total);
    out->fencing_ns_total = GET(st->fencing_ns_total);
    out->batches_cut = GET(st->cut);
    out->task_managers_live = GET(rt->tms_live);
#undef GET
    return 0;
}

const char *fleet_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err == INT_MIN)
        return "unknown error"; /* no errno value; -err would overflow */
    if (err < 0)
        err = -err;
    const char *s = strerrordesc_np(err);
    return s != NULL ? s : "unknown error";
}
