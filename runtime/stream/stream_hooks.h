/*
 * stream_hooks: test-only access to a pipeline's driver. Not installed, not
 * exported from the shared library; tests link the static library.
 */
#ifndef FL_STREAM_HOOKS_H
#define FL_STREAM_HOOKS_H

#include <fleet/stream.h>

/* fn(ctx, n) runs on the driver thread at the start of the n-th checkpoint
 * attempt (0, 1, ...), before any snapshot is taken: a test can fail a
 * TaskManager there to land the failure inside the checkpoint. */
void fl_stream_checkpoint_hook(fleet_stream_t *s,
                               void (*fn)(void *ctx, unsigned n), void *ctx);

/* Bytes the file source has searched for the end of a line while reading
 * (each byte about once, however long the line). */
uint64_t fl_stream_nl_searched(const fleet_stream_t *s);

#endif /* FL_STREAM_HOOKS_H */
