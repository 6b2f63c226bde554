/*
 * cost: what one item of a job has cost, learned per (function, context)
 * from the batches that ran it, so that a job too small to be worth a
 * hand-off runs on its caller at once.
 *
 * A direct-mapped table of one 64-bit word per slot: the key's tag and the
 * cost in picoseconds per item, so a reader never sees one key's tag with
 * another's cost. Updates race benignly (the last writer wins); a cost is
 * a hint, never a promise. Does not decide anything itself: see
 * runtime.c's inline path.
 */
#ifndef FLEET_COST_H
#define FLEET_COST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FL_COST_SLOTS 64u /* a power of two */

/* Jobs estimated below this run on their caller (blocking calls only): a
 * hand-off to a worker and back costs about 1.5-2 us on the development
 * machine, so splitting pays only above about twice that. */
#define FL_INLINE_NS 2000u

struct fl_cost_table {
    _Atomic uint64_t slot[FL_COST_SLOTS];
};

void fl_cost_init(struct fl_cost_table *t);

/* The key of a job's items: its function (fold for a reduction) and
 * context. */
uint64_t fl_cost_key(const void *fn, const void *ctx);

/* Picoseconds per item last learned for key, or 0 when unknown. */
uint32_t fl_cost_get(const struct fl_cost_table *t, uint64_t key);

/* Learns that `items` (>= 1) items of key took `ns` in all: a moving
 * average with what was known. */
void fl_cost_put(struct fl_cost_table *t, uint64_t key, uint64_t items,
                 uint64_t ns);

#endif /* FLEET_COST_H */
