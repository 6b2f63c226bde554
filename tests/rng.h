/*
 * rng: the tests' seeded pseudo-random numbers (splitmix64), so every
 * random test is reproducible from its seed.
 */
#ifndef FLEET_TEST_RNG_H
#define FLEET_TEST_RNG_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform-ish in [0, n); 0 when n is 0. */
static inline size_t rng_below(uint64_t *s, size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next(s) % n);
}

#endif /* FLEET_TEST_RNG_H */
