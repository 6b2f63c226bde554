/*
 * batch: creation, reference counting and the claim word.
 */
#include "batch.h"

#include "alloc.h"
#include "job.h"

static inline uint64_t pack(uint32_t next, uint32_t end)
{
    return ((uint64_t)next << 32) | end;
}

struct fl_batch *fl_batch_alloc(unsigned arena, size_t partial_cap)
{
    struct fl_batch *b =
        fl_alloc_aligned(arena, 64, sizeof(struct fl_batch) + partial_cap);
    if (b == NULL)
        return NULL;
    b->arena = arena;
    b->partial_cap = partial_cap;
    b->free_next = NULL;
    pthread_mutex_init(&b->partial_lock, NULL);
    return b;
}

void fl_batch_init(struct fl_batch *b, struct fleet_job *job, size_t begin,
                   size_t end, unsigned tm, size_t min_chunk, unsigned refs)
{
    size_t n = end - begin;
    atomic_init(&b->claim, pack(0, (uint32_t)n));
    atomic_init(&b->remaining, n);
    atomic_init(&b->visitors, 0);
    atomic_init(&b->refs, refs);
    atomic_init(&b->posted, false);
    atomic_init(&b->fenced, false);
    atomic_init(&b->busy_ns, 0);
    b->attempt = 0;
    b->origin = 0;
    b->speculative = false;
    b->cut = false;
    b->twin = NULL;
    b->t_dispatch = 0;
    b->job = job;
    b->begin = begin;
    b->end = end;
    b->min_chunk = min_chunk == 0 ? 1 : min_chunk;
    b->tm = tm;
    atomic_init(&b->in_running, false);
    if (job->reduce)
        job->red.init(job->ctx, b->partial);
}

void fl_batch_destroy(struct fl_batch *b)
{
    pthread_mutex_destroy(&b->partial_lock);
    fl_free(b->arena, b);
}

bool fl_batch_release(struct fl_batch *b)
{
    /* acq_rel: the last owner sees every write of the others. */
    return atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1;
}

bool fl_batch_claim(struct fl_batch *b, size_t want, bool beyond, size_t *s,
                    size_t *e)
{
    /* relaxed: the claim only partitions items; the job's data was
     * published by the hand-off that gave this thread the batch. */
    uint64_t w = atomic_load_explicit(&b->claim, memory_order_relaxed);
    for (;;) {
        uint32_t next = (uint32_t)(w >> 32), end = (uint32_t)w;
        if (next >= end)
            return false;
        unsigned v = atomic_load_explicit(&b->visitors, memory_order_relaxed);
        size_t c = fl_claim_size(end - next, v, b->min_chunk, want, beyond);
        uint64_t nw = pack(next + (uint32_t)c, end);
        if (atomic_compare_exchange_weak_explicit(&b->claim, &w, nw,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *s = b->begin + next;
            *e = b->begin + next + c;
            return true;
        }
    }
}

size_t fl_batch_unclaimed(const struct fl_batch *b)
{
    uint64_t w = atomic_load_explicit(&b->claim, memory_order_relaxed);
    uint32_t next = (uint32_t)(w >> 32), end = (uint32_t)w;
    return next < end ? end - next : 0;
}

bool fl_batch_has_unclaimed(const struct fl_batch *b)
{
    return fl_batch_unclaimed(b) != 0;
}

bool fl_batch_steal_tail(struct fl_batch *b, size_t grain, size_t *s, size_t *e)
{
    uint64_t w = atomic_load_explicit(&b->claim, memory_order_relaxed);
    for (;;) {
        uint32_t next = (uint32_t)(w >> 32), end = (uint32_t)w;
        if (next >= end)
            return false;
        uint32_t mid = (uint32_t)fl_tail_split(next, end, grain);
        if (mid >= end)
            return false;
        if (atomic_compare_exchange_weak_explicit(
                &b->claim, &w, pack(next, mid), memory_order_relaxed,
                memory_order_relaxed)) {
            *s = b->begin + mid;
            *e = b->begin + end;
            return true;
        }
    }
}

bool fl_batch_cut(struct fl_batch *b, size_t min, size_t *s, size_t *e)
{
    uint64_t w = atomic_load_explicit(&b->claim, memory_order_relaxed);
    for (;;) {
        uint32_t next = (uint32_t)(w >> 32), end = (uint32_t)w;
        if (next == 0 || next >= end || end - next < min)
            return false;
        if (atomic_compare_exchange_weak_explicit(
                &b->claim, &w, pack(next, next), memory_order_relaxed,
                memory_order_relaxed)) {
            *s = b->begin + next;
            *e = b->begin + end;
            return true;
        }
    }
}

size_t fl_batch_take_unclaimed(struct fl_batch *b)
{
    uint64_t w = atomic_load_explicit(&b->claim, memory_order_relaxed);
    for (;;) {
        uint32_t next = (uint32_t)(w >> 32), end = (uint32_t)w;
        if (next >= end)
            return 0;
        if (atomic_compare_exchange_weak_explicit(&b->claim, &w, pack(end, end),
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return end - next;
    }
}

void fl_batch_steal_undo(struct fl_batch *b, size_t s, size_t e)
{
    uint32_t mid = (uint32_t)(s - b->begin), end = (uint32_t)(e - b->begin);
    uint64_t w = atomic_load_explicit(&b->claim, memory_order_relaxed);
    for (;;) {
        uint64_t nw = (w & ~(uint64_t)UINT32_MAX) | end;
        (void)mid; /* the end is still mid: only the thief moves it */
        if (atomic_compare_exchange_weak_explicit(
                &b->claim, &w, nw, memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

bool fl_batch_done(struct fl_batch *b, size_t n)
{
    /* acq_rel: each leaver releases its work (and its combined partial);
     * the one that reaches zero acquires all of it before posting. */
    return atomic_fetch_sub_explicit(&b->remaining, n, memory_order_acq_rel) ==
           n;
}
