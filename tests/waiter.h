/*
 * waiter: fleet_job_wait on a thread of its own (pthread_create(&t, NULL,
 * wait_job, &w)), its result in w.err once joined.
 */
#ifndef FLEET_TEST_WAITER_H
#define FLEET_TEST_WAITER_H

#include "fleet.h"

struct waiter {
    fleet_job_t *job;
    int err;
};

static inline void *wait_job(void *arg)
{
    struct waiter *w = arg;
    w->err = fleet_job_wait(w->job);
    return NULL;
}

#endif /* FLEET_TEST_WAITER_H */
