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
 * - fl_chunk: how much a worker claims from its batch at a time.
 * - fl_grain_auto: the default floor for a job of n items.
 */
#ifndef FLEET_SPLIT_H
#define FLEET_SPLIT_H

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

/* A chunk that ran faster than this lets its thread claim up to twice as
 * much next (a thief then misses at most a few microseconds of work);
 * slower chunks keep halving what is left, so long items stay stealable. */
#define FL_FAST_CHUNK_NS 1000u

/* Default grain for a job of n items run by `workers` threads (>= 1). */
size_t fl_grain_auto(size_t n, unsigned workers);

#endif /* FLEET_SPLIT_H */
