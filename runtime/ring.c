/*
 * ring: buffer set-up for the ck_ring wrapper (the operations are inline in
 * ring.h). Allocation goes through the shim in alloc.h.
 */
#include "ring.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "alloc.h"

int fl_ring_init(struct fl_ring *r, unsigned capacity, unsigned mode)
{
    if (r == NULL || capacity == 0 || capacity > FL_RING_MAX_CAPACITY ||
        (mode & ~(unsigned)(FL_RING_MP | FL_RING_MC)) != 0)
        return -EINVAL;
    unsigned slots = 4;
    while (slots - 1 < capacity)
        slots <<= 1;
    r->buf = fl_calloc(FL_ARENA_DEFAULT, slots, sizeof(*r->buf));
    if (r->buf == NULL)
        return -ENOMEM;
    ck_ring_init(&r->ring, slots);
    r->capacity = slots - 1;
    r->mode = mode;
    return 0;
}

void fl_ring_await_turn(struct fl_ring *r, unsigned ticket)
{
    for (unsigned spins = 0; ck_pr_load_uint(&r->ring.p_tail) != ticket;
         spins++) {
        if (spins < 64)
            ck_pr_stall();
        else
            sched_yield(); /* the producer we wait for may need this core */
    }
}

void fl_ring_fini(struct fl_ring *r)
{
    if (r == NULL)
        return;
    fl_free(FL_ARENA_DEFAULT, r->buf);
    r->buf = NULL;
    r->capacity = 0;
}
