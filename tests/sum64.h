/*
 * sum64: the init and combine of the tests' uint64_t sum reductions (each
 * test brings its own fold, over its own items).
 */
#ifndef FLEET_TEST_SUM64_H
#define FLEET_TEST_SUM64_H

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

#endif /* FLEET_TEST_SUM64_H */
