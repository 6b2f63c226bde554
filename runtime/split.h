/*
 * split: the arithmetic of binary scheduling, with no state and no locks.
 *
 * Ranges are half-open [begin, end) of size_t and may end at SIZE_MAX; no
 * function here overflows. A batch holds at most FL_BATCH_MAX items because
 * its claim word packs two 32-bit offsets (batch.h).
 *
 * - fl_split_take: the piece of a pending range that goes to the next
 *   TaskManager when `parts` TaskManager slots are waiting for work: about
 *   1/parts of it (parts == 2 is plain halving), never leaving a remainder
 *   below the grain.
 * - fl_tail_split: where an idle TaskManager cuts the unclaimed tail of a
 *   busy one's batch (the back half), or no cut when too small.
 * - fl_chunk: the most a thread claims from its batch at a time (a fair
 *   share of what is left); fl_next_want: how much it would like, steered
 *   by how long its last chunk took.
 * - fl_grain_auto: the default floor for a job of n items.
 */
#ifndef FLEET_SPLIT_H
#define FLEET_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_BATCH_MAX ((size_t)UINT32_MAX)

/* End of the piece [b, result) to hand out; b < result <= e. Requires
 * b < e, grain >= 1, parts >= 1. */
size_t fl_split_take(size_t b, size_t e, size_t grain, unsigned parts);

/* For unclaimed [next, end): the start of the tail to steal, or `end` when
 * the range is smaller than two grains. Requires next <= end. */
size_t fl_tail_split(size_t next, size_t end, size_t grain);

/* Items to claim from `remaining` (>= 1) unclaimed ones, with `visitors`
 * threads sharing the batch: 1 <= result <= remaining. */
size_t fl_chunk(size_t remaining, unsigned visitors, size_t min_chunk);

/* How much a thread claims when `left` items are unclaimed: `want` items
 * (0: no wish), at least min_chunk, at most what is left, and at most
 * fl_chunk()'s share unless `beyond` (its last chunk was too short to be
 * worth sharing). */
size_t fl_claim_size(size_t left, unsigned visitors, size_t min_chunk,
                     size_t want, bool beyond);

/* A chunk that ran faster than this is not worth sharing: its thread may
 * claim twice as much next, past its fair share (a thief then misses at
 * most a few microseconds of work). */
#define FL_FAST_CHUNK_NS 1000u

/* Chunks aim at this duration: long enough that claims cost nothing, short
 * enough that a thief, a failure or a fence reaches the thread soon. A
 * thread's first chunk is FL_FIRST_CHUNK items (at most its share); each
 * next one is sized from the last one's time, at most doubling or halving. */
#define FL_CHUNK_TARGET_NS 500000u
#define FL_FIRST_CHUNK 1024u

/* The size a thread asks for next, after a chunk of `last` items that took
 * last_ns (last == 0: the first chunk). >= 1. */
size_t fl_next_want(size_t last, uint64_t last_ns);

/* Default grain for a job of n items run by `workers` threads (>= 1). */
size_t fl_grain_auto(size_t n, unsigned workers);

#endif /* FLEET_SPLIT_H */
