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
#include "dispatcher.h"
#include "taskmanager.h"
#include "wait.h"

/* Batches each worker is given before the rest waits for an idle one. */
#define FL_EAGER_PER_WORKER 2

struct fleet_runtime {
    fleet_config_t cfg;
    unsigned ntm;
    unsigned nworkers; /* over all TaskManagers */
    uint64_t spin_ns;
    struct fl_tm *tms;
    struct fl_dispatcher disp;
    pthread_key_t self; /* the calling thread's struct fl_worker, if ours */
    bool self_key_made;

    alignas(64) _Atomic size_t jobs_live; /* submitted, not yet complete */
    struct fl_event idle;                 /* signalled when that hits 0 */
    _Atomic bool closing;                 /* destroy began: refuse submits */
    _Atomic bool stop;                    /* threads exit */
};

/* The calling thread's worker if it is one of rt's, else NULL. */
static inline struct fl_worker *fl_self(struct fleet_runtime *rt)
{
    return pthread_getspecific(rt->self);
}

static inline bool fl_stopping(struct fleet_runtime *rt)
{
    return atomic_load_explicit(&rt->stop, memory_order_acquire);
}

#endif /* FLEET_RUNTIME_H */
