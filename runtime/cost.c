/*
 * cost: per-(function, context) item costs (see cost.h).
 */
#include "cost.h"

void fl_cost_init(struct fl_cost_table *t)
{
    for (unsigned i = 0; i < FL_COST_SLOTS; i++)
        atomic_init(&t->slot[i], 0);
}

uint64_t fl_cost_key(const void *fn, const void *ctx)
{
    /* splitmix64's finaliser over both pointers. */
    uint64_t z = (uint64_t)(uintptr_t)fn * 0x9e3779b97f4a7c15ull ^
                 (uint64_t)(uintptr_t)ctx;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The slot's upper half holds the key's upper half as its tag. */
static _Atomic uint64_t *slot_of(const struct fl_cost_table *t, uint64_t key)
{
    return (_Atomic uint64_t *)&t->slot[key & (FL_COST_SLOTS - 1)];
}

uint32_t fl_cost_get(const struct fl_cost_table *t, uint64_t key)
{
    uint64_t w = atomic_load_explicit(slot_of(t, key), memory_order_relaxed);
    return (w >> 32) == (key >> 32) ? (uint32_t)w : 0;
}

void fl_cost_put(struct fl_cost_table *t, uint64_t key, uint64_t items,
                 uint64_t ns)
{
    if (items == 0)
        return;
    uint64_t ps = ns >= UINT64_MAX / 1000u ? UINT64_MAX : ns * 1000u;
    ps /= items;
    if (ps == 0)
        ps = 1; /* 0 means unknown */
    uint32_t old = fl_cost_get(t, key);
    if (old != 0)
        ps = (3 * (uint64_t)old + (ps > UINT32_MAX ? UINT32_MAX : ps)) / 4;
    if (ps > UINT32_MAX)
        ps = UINT32_MAX;
    atomic_store_explicit(slot_of(t, key), (key >> 32) << 32 | ps,
                          memory_order_relaxed);
}
