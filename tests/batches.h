/*
 * batches: making and dropping batches in tests the way the dispatcher
 * does, without a runtime.
 */
#ifndef FLEET_TEST_BATCHES_H
#define FLEET_TEST_BATCHES_H

#include "alloc.h"
#include "batch.h"

static inline struct fl_batch *new_batch(struct fleet_job *job, size_t b,
                                         size_t e, size_t min_chunk,
                                         unsigned refs)
{
    struct fl_batch *x = fl_batch_alloc(FL_ARENA_DEFAULT, 0);
    if (x != NULL)
        fl_batch_init(x, job, b, e, 0, min_chunk, refs);
    return x;
}

static inline void drop(struct fl_batch *b)
{
    if (fl_batch_release(b))
        fl_batch_destroy(b);
}

static inline void nop_range(void *ctx, size_t b, size_t e)
{
    (void)ctx;
    (void)b;
    (void)e;
}

#endif /* FLEET_TEST_BATCHES_H */
