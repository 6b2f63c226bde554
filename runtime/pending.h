/*
 * pending: the PENDING queue — ranges waiting for the dispatcher.
 *
 * Any thread submits into a bounded MPMC ring (back-pressure: a full ring
 * refuses and the submitter waits on `space`); the dispatcher role takes
 * from it.
 *
 * It does not split, schedule or free what it carries.
 */
#ifndef FLEET_PENDING_H
#define FLEET_PENDING_H

#include <stdbool.h>
#include <stddef.h>

#include "ring.h"
#include "wait.h"

struct fleet_job;

/* A range of a job waiting to be handed out. */
struct fl_pending {
    struct fleet_job *job;
    size_t begin, end;
};

struct fl_pending_queue {
    struct fl_ring ring;
    struct fl_event space; /* signalled whenever the ring gives up an entry */
};

/* Returns 0, -EINVAL or -ENOMEM. Not thread-safe. */
int fl_pending_init(struct fl_pending_queue *q, unsigned capacity);
void fl_pending_fini(struct fl_pending_queue *q);

/* Any thread. False when the ring is full. */
bool fl_pending_push(struct fl_pending_queue *q, struct fl_pending *p);

/* Dispatcher role only: the next range, or NULL. */
struct fl_pending *fl_pending_pop(struct fl_pending_queue *q);

/* Whether the ring holds anything (a snapshot). Any thread. */
bool fl_pending_ring_nonempty(const struct fl_pending_queue *q);

#endif /* FLEET_PENDING_H */
