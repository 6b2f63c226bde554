/*
 * runtime: the fleet_runtime object that ties the parts together — its
 * configuration, TaskManagers, dispatcher and lifecycle flags.
 *
 * Holds no logic beyond small accessors; see dispatcher.h, taskmanager.h.
 */
#ifndef FLEET_RUNTIME_H
#define FLEET_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"
#include "cost.h"
#include "dispatcher.h"
#include "metrics.h"
#include "taskmanager.h"
#include "wait.h"

/* Failure counters (fleet_failure_stats); written by the dispatcher role or
 * fleet_tm_fail, read by anyone. */
struct fl_stats {
    _Atomic uint64_t injected[3], detected[3], suspected;
    _Atomic uint64_t detection_us_last, detection_us_max, detection_us_total;
    _Atomic uint64_t redispatched, fenced, spec_launched, spec_won;
    _Atomic uint64_t restarts, cancelled;
    _Atomic uint64_t recoveries, recovery_us_last, recovery_us_max;
    _Atomic uint64_t recovery_us_total, fencing_ns_total, cut;
};

static inline void fl_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

struct fleet_runtime {
    fleet_config_t cfg;
    unsigned ntm;
    unsigned nworkers; /* over all TaskManagers */
    unsigned ncpu;     /* CPUs this process may run on */
    uint64_t spin_ns;
    struct fl_tm *tms;
    struct fl_dispatcher disp;
    pthread_key_t self; /* the calling thread's struct fl_worker, if ours */
    bool self_key_made;
    pthread_key_t depth; /* an outside thread's fleet_job_wait nesting */
    bool depth_key_made;

    /* Threads of this runtime not asleep: workers, and callers inside
     * fleet_job_wait. Idle workers spin only while it is at most ncpu, and
     * sleeping workers are woken for new work only while it is below: on a
     * small machine a spinner beyond the CPU count only takes a core from a
     * thread with work, and a wake costs the waker microseconds. */
    alignas(64) _Atomic unsigned awake;
    alignas(64) _Atomic size_t jobs_live; /* submitted, not yet complete */
    struct fl_event idle;                 /* signalled when that hits 0 */
    _Atomic bool closing;                 /* destroy began: refuse submits */
    _Atomic bool dead; /* no TaskManager live, none to restart */
    _Atomic unsigned tms_live;
    struct fl_stats stats;
    struct fl_cost_table costs; /* what items cost, per function + context */
    _Atomic uint64_t inlined;   /* blocking jobs run wholly on their caller */
    struct fl_metrics metrics;
    _Atomic bool stop; /* threads exit */
};

/* The calling thread's worker if it is one of rt's, else NULL. */
static inline struct fl_worker *fl_self(struct fleet_runtime *rt)
{
    return pthread_getspecific(rt->self);
}

/* The index of the TaskManager whose worker the calling thread is, or -1
 * for a thread that is none of rt's workers. For tests, to see where work
 * ran. Any thread. */
static inline int fl_current_tm(struct fleet_runtime *rt)
{
    struct fl_worker *w = fl_self(rt);
    return w != NULL ? (int)w->tm->index : -1;
}

static inline void fl_awake_add(struct fleet_runtime *rt, int delta)
{
    atomic_fetch_add_explicit(&rt->awake, (unsigned)delta,
                              memory_order_relaxed);
}

static inline unsigned fl_awake(struct fleet_runtime *rt)
{
    return atomic_load_explicit(&rt->awake, memory_order_relaxed);
}

static inline bool fl_stopping(struct fleet_runtime *rt)
{
    return atomic_load_explicit(&rt->stop, memory_order_acquire);
}

#endif /* FLEET_RUNTIME_H */
