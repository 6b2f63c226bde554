/*
 * sum64: the init and combine of the tests' uint64_t sum reductions (each
 * test brings its own fold, over its own items), and sum64_item, a slow
 * item to sum.
 */
#ifndef FLEET_TEST_SUM64_H
#define FLEET_TEST_SUM64_H

#include <stddef.h>
#include <stdint.h>

static inline void sum64_init(void *ctx, void *p)
{
    (void)ctx;
    *(uint64_t *)p = 0;
}

static inline void sum64_combine(void *ctx, void *into, const void *p)
{
    (void)ctx;
    *(uint64_t *)into += *(const uint64_t *)p;
}

/* About 25 ns of work for item i, so that jobs last long enough to fail
 * in: the data-dependent shift keeps the compiler from vectorizing it. */
static inline uint64_t sum64_item(size_t i)
{
    uint64_t h = i | 1;
    for (int k = 0; k < 40; k++)
        h = (h * 6364136223846793005ull + 1442695040888963407ull) >>
            (1 + (h & 3));
    return h & 0xffff;
}

#endif /* FLEET_TEST_SUM64_H */
