/*
 * pending: the PENDING queue — ranges waiting for the dispatcher.
 *
 * Any thread submits into a bounded MPMC ring (back-pressure: a full ring
 * refuses and the submitter waits on `space`); the dispatcher role takes
 * from it. A submitter that holds the role while nothing is queued skips
 * the ring: its range is counted in and out at once (fl_pending_direct),
 * so the metrics still see every range enter PENDING. Ranges the
 * dispatcher queues itself — the work of a failed attempt, redispatched —
 * go to a private backlog it serves first, since the role must never wait
 * on its own ring.
 *
 * It does not split, schedule or free what it carries.
 */
#ifndef FLEET_PENDING_H
#define FLEET_PENDING_H

#include <stdbool.h>
#include <stddef.h>

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "metrics.h"
#include "ring.h"
#include "wait.h"

struct fleet_job;

/* A range of a job waiting to be handed out: a job's own root, or the
 * range of a failed attempt (heap-allocated, in the backlog). */
struct fl_pending {
    struct fleet_job *job;
    size_t begin, end;
    uint64_t t_in;    /* pushed, ns */
    unsigned attempt; /* of the batches made from it */
    unsigned origin;  /* 1 + the TaskManager whose failure lost it; 0: none */
    struct fl_pending *next; /* backlog link */
};

struct fl_pending_queue {
    struct fl_ring ring;
    struct fl_event space; /* signalled when a pop leaves it half empty */
    /* Metrics: any thread pushes, the role pops. */
    alignas(64) _Atomic uint64_t pushed, hwm;
    alignas(64) _Atomic uint64_t popped;
    struct fl_hist wait; /* push to pop */
    /* Dispatcher role only. */
    struct fl_pending *backlog, *backlog_tail;
};

/* Returns 0, -EINVAL or -ENOMEM. Not thread-safe. */
int fl_pending_init(struct fl_pending_queue *q, unsigned capacity);
void fl_pending_fini(struct fl_pending_queue *q);

/* Pushes p, entering the queue at `now` (fl_now_ns(), read by the caller
 * just before). Any thread. False when the ring is full. */
bool fl_pending_push(struct fl_pending_queue *q, struct fl_pending *p,
                     uint64_t now);

/* Dispatcher role only: counts p into and at once out of the queue, with
 * a wait of 0, for a range the role takes straight from its submitter
 * (fl_dispatch_submit) while nothing is queued. */
void fl_pending_direct(struct fl_pending_queue *q, struct fl_pending *p,
                       uint64_t now);

/* Dispatcher role only: queues p behind the backlog. */
void fl_pending_push_backlog(struct fl_pending_queue *q, struct fl_pending *p);

/* Dispatcher role only: the next range, backlog first, or NULL. */
struct fl_pending *fl_pending_pop(struct fl_pending_queue *q);

/* Dispatcher role only: whether anything waits, backlog included. */
bool fl_pending_nonempty(const struct fl_pending_queue *q);

/* Whether the ring holds anything (a snapshot). Any thread. */
bool fl_pending_ring_nonempty(const struct fl_pending_queue *q);

#endif /* FLEET_PENDING_H */
