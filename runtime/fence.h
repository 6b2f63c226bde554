/*
 * fence: the full memory fence of the Dekker-style checks (a thread
 * publishes X then reads Y; another publishes Y then reads X; the fence on
 * both sides guarantees one of them sees the other).
 *
 * C11's atomic_thread_fence(memory_order_seq_cst), except under
 * ThreadSanitizer, which does not model standalone fences (gcc warns with
 * -Wtsan): there it is Concurrency Kit's full fence, equally invisible to
 * TSan and equally strong on the hardware. Nothing here synchronizes data;
 * data is always published by a release/acquire pair of its own.
 */
#ifndef FLEET_FENCE_H
#define FLEET_FENCE_H

#include <stdatomic.h>
#include <ck_pr.h>

#include "ring.h" /* FL_RING_TSAN */

static inline void fl_fence(void)
{
#ifdef FL_RING_TSAN
    ck_pr_fence_memory();
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

#endif /* FLEET_FENCE_H */
