/*
 * loops_work.h: the items and sizes of the three loops of bench_loops,
 * shared with bench_tbb so that fleet, OpenMP and oneTBB run identical
 * work. Plain C11 and C++17.
 *
 *   balanced   - sum of cheap(i) over LOOPS_BALANCED_N items;
 *   unbalanced - sum of costly(i), item i costing i / UNB_DIV rounds, over
 *                LOOPS_UNBALANCED_N items;
 *   small_jobs - LOOPS_SMALL_REPS loops of small_item over LOOPS_SMALL_N
 *                items of a uint32_t array.
 * The _QUICK sizes are those of --quick.
 */
#ifndef FLEET_PERF_LOOPS_WORK_H
#define FLEET_PERF_LOOPS_WORK_H

#include <stddef.h>
#include <stdint.h>

#define LOOPS_BALANCED_N 100000000u
#define LOOPS_BALANCED_N_QUICK 20000000u
#define LOOPS_UNBALANCED_N 24000u
#define LOOPS_UNBALANCED_N_QUICK 12000u
#define LOOPS_SMALL_N 512
#define LOOPS_SMALL_REPS 20000
#define LOOPS_SMALL_REPS_QUICK 5000

static inline uint64_t cheap(size_t i)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull;
    return (x ^ (x >> 29)) & 0xffff;
}

/* Cost grows with i: i / UNB_DIV rounds of a multiply chain. */
#define UNB_DIV 2
static inline uint64_t costly(size_t i)
{
    uint64_t h = i;
    for (size_t k = 0; k < i / UNB_DIV; k++)
        h = h * 6364136223846793005ull + 1442695040888963407ull;
    return h >> 40;
}

static inline uint32_t small_item(uint32_t x)
{
    return x * 1664525u + 1013904223u;
}

static inline void cheap_fold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += cheap(i);
    *(uint64_t *)p += s;
}

static inline void costly_fold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += costly(i);
    *(uint64_t *)p += s;
}

static inline void small_body(void *ctx, size_t b, size_t e)
{
    uint32_t *a = (uint32_t *)ctx;
    for (size_t i = b; i < e; i++)
        a[i] = small_item(a[i]);
}

#endif /* FLEET_PERF_LOOPS_WORK_H */
