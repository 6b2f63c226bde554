/*
 * batch: one piece of a job handed to a TaskManager, and the claim protocol
 * by which threads share it.
 *
 * A batch covers [begin, begin + n) with n <= FL_BATCH_MAX. Its claim word
 * packs the next unclaimed offset and the end offset; threads running it
 * (the worker that took it from its TaskManager's ring, idle siblings, a
 * waiting caller) claim chunks from the front with a CAS, and the dispatcher
 * may cut off the unclaimed back half for an idle TaskManager (a tail
 * steal). `remaining` counts items neither run nor stolen: each thread
 * subtracts what it ran when it leaves, the dispatcher subtracts what it
 * stole, and whoever brings it to zero posts the completion (exactly one
 * thread does).
 *
 * A batch is one attempt at its range. Fencing it (after its TaskManager
 * failed, or when its speculative twin won) takes every unclaimed item away
 * and sets `fenced`: its visitors stop at their next chunk, and when its
 * count reaches zero it is posted like any other — the dispatcher then
 * drops it without committing or combining anything.
 *
 * Lifetime: a thread may touch a batch while it holds a claim it has not yet
 * subtracted (the batch cannot complete), or the TaskManager ring's
 * reference, or the dispatcher role. The memory belongs to whoever drops
 * the last reference — the dispatcher's (dropped at commit) or the ring's
 * (dropped by the worker that dequeues it): the dispatcher recycles blocks,
 * anyone else destroys them.
 *
 * This module does not know about queues, TaskManagers or the dispatcher.
 */
#ifndef FLEET_BATCH_H
#define FLEET_BATCH_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ck_queue.h>

#include "split.h"

struct fleet_job;
struct fl_batch;

/* A list of batches (Concurrency Kit's intrusive doubly-linked list). */
CK_LIST_HEAD(fl_batch_list, fl_batch);

struct fl_batch {
    /* Shared by the threads that run it; first cache line. */
    alignas(64) _Atomic uint64_t claim; /* next offset << 32 | end offset */
    _Atomic size_t remaining;           /* items not yet run or stolen */
    _Atomic unsigned visitors;          /* threads inside; sizes chunks */
    _Atomic unsigned refs;              /* dispatcher + ring references */
    _Atomic bool posted;                /* remaining reached zero */
    _Atomic bool fenced;                /* this attempt's work is discarded */
    _Atomic uint64_t busy_ns;           /* thread time spent in it so far */

    /* Fixed from fl_batch_init to the last reference. */
    alignas(64) struct fleet_job *job;
    size_t begin;
    size_t min_chunk;
    unsigned tm;
    unsigned arena;             /* fixed at allocation */
    size_t partial_cap;         /* bytes of `partial`, fixed at allocation */
    struct fl_batch *free_next; /* a recycling list, dispatcher role only */

    /* Dispatcher role only. */
    size_t end;            /* shrinks when a tail is stolen */
    unsigned attempt;      /* 0 for a first attempt */
    unsigned origin;       /* as fl_pending's: whose failure it redoes */
    bool speculative;      /* a second attempt of a straggler */
    bool cut;              /* its unclaimed rest went to another batch */
    struct fl_batch *twin; /* the other attempt racing this one */
    uint64_t t_dispatch;   /* when it was handed out, ns */
    uint64_t t_posted;     /* when it was posted, ns (by the poster) */
    /* SCHEDULED list of its TM; once fenced, the dispatcher's graveyard. */
    CK_LIST_ENTRY(fl_batch) sched_link;
    CK_LIST_ENTRY(fl_batch) job_link; /* live batches of its job */

    /* Guarded by the lock of TaskManager `tm`; in_running may be read
     * without it (see fl_tm_running_remove). */
    CK_LIST_ENTRY(fl_batch) run_link;
    _Atomic bool in_running;

    /* Guards `partial` while leaving threads combine into it. */
    pthread_mutex_t partial_lock;
    alignas(16) unsigned char partial[]; /* job's reducer size, if any */
};

/* Allocates an uninitialized batch with room for a partial of partial_cap
 * bytes, in `arena`. NULL when out of memory. Any thread. */
struct fl_batch *fl_batch_alloc(unsigned arena, size_t partial_cap);

/*
 * (Re)initializes b as a batch of job over [begin, end) for TaskManager tm,
 * with `refs` references (1, or 2 when it will sit in a ring); its partial
 * is init()ed when the job reduces (b->partial_cap must fit the job's).
 * Only while nobody else can see b.
 */
void fl_batch_init(struct fl_batch *b, struct fleet_job *job, size_t begin,
                   size_t end, unsigned tm, size_t min_chunk, unsigned refs);

/* Frees a batch whose last reference is gone. */
void fl_batch_destroy(struct fl_batch *b);

/* Drops a reference. True for the caller that dropped the last one, which
 * now owns the memory. Any thread. */
bool fl_batch_release(struct fl_batch *b);

/*
 * Claims the next chunk, of fl_claim_size() items. True with [*s, *e) set,
 * false when nothing is left unclaimed. Lock-free. The caller must be
 * allowed to touch b (above).
 */
bool fl_batch_claim(struct fl_batch *b, size_t want, bool beyond, size_t *s,
                    size_t *e);

/* Whether any item is still unclaimed (a snapshot). */
bool fl_batch_has_unclaimed(const struct fl_batch *b);

/* Unclaimed items (a snapshot). */
size_t fl_batch_unclaimed(const struct fl_batch *b);

/*
 * Cuts the back half of the unclaimed items off b for another batch:
 * true with the stolen [*s, *e) set. Lock-free. The caller must then call
 * fl_batch_done(b, *e - *s) itself.
 */
bool fl_batch_steal_tail(struct fl_batch *b, size_t grain, size_t *s,
                         size_t *e);

/*
 * Cuts every unclaimed item off b for another batch, if b has run some of
 * its items and at least `min` (>= 1) are unclaimed: true with [*s, *e)
 * set. Lock-free. The caller must then call fl_batch_done(b, *e - *s)
 * itself (and may give the cut back with fl_batch_steal_undo).
 */
bool fl_batch_cut(struct fl_batch *b, size_t min, size_t *s, size_t *e);

/* Takes every unclaimed item away, for a fence. Returns how many; the
 * caller must then call fl_batch_done(b, n) itself. Lock-free. */
size_t fl_batch_take_unclaimed(struct fl_batch *b);

/* Gives back a tail [s, e) just taken with fl_batch_steal_tail or
 * fl_batch_cut, before anyone ran it. Only the thief, and only while it
 * alone may change the batch's end (the dispatcher role). */
void fl_batch_steal_undo(struct fl_batch *b, size_t s, size_t e);

/*
 * Accounts n items as run or stolen. Returns true for exactly one caller:
 * the one that brought `remaining` to zero, which must post the batch.
 * After it returns false the caller must not touch b (unless it holds a
 * reference).
 */
bool fl_batch_done(struct fl_batch *b, size_t n);

#endif /* FLEET_BATCH_H */
