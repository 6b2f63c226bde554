/*
 * fleet/stream.h: stream processing on a fleet runtime.
 *
 * A pipeline is declared like Flink's DataStream or WindFlow's builders:
 *
 *   source -> (map | filter | flat_map)* -> key_by -> (reduce | window)
 *          -> (map | filter | flat_map)* -> sink
 *
 * (key_by and what follows it are optional: source -> ops -> sink works).
 * fleet_stream_run() then runs it to the end of the stream.
 *
 * How it runs. The source is cut into epochs (micro-batches) of
 * epoch_batches batches; a batch is batch_bytes of whole lines or
 * batch_records generator indices. An epoch's batches run the chain of
 * stateless operators in parallel on the runtime, fused into one task per
 * batch (operator chaining: a record goes from one operator to the next by
 * a function call). key_by hashes each key onto one of `partitions` key
 * partitions; partition p belongs to TaskManager p % task_managers, keeps
 * its keyed state there, and merges each epoch's records into that state on
 * that TaskManager (fleet_submit_on), in source order. Reductions and
 * tumbling or sliding event-time windows without allowed lateness are
 * pre-aggregated per batch before the hand-off (a combiner); the other
 * windows receive every record. An epoch's batches run while the epoch
 * before merges; no more is in flight, so a slow sink or keyed stage holds
 * the source back.
 *
 * Event time. A record carries a timestamp (set by the source or by any
 * operator's fleet_emit). The watermark is bounded out-of-orderness as in
 * Flink: just before a record reaches key_by, it stands at the largest
 * timestamp seen so far minus max_out_of_orderness minus 1, in source order
 * (deterministic: it does not depend on batching or parallelism). A window
 * [start, end) fires when the watermark reaches end - 1. A record whose
 * windows have all fired more than allowed_lateness ago is late: dropped and
 * counted. With allowed lateness, a late record that still has a window
 * kept makes it fire again with the record added. The end of the stream
 * brings the watermark to +infinity: every window fires, count windows
 * with elements not yet fired included.
 *
 * Exactly once. Every checkpoint_ms (1 s; 0: only at the end) the pipeline
 * snapshots the keyed state of every partition at an epoch boundary (the
 * micro-batch form of an aligned barrier) with the source offset. Records
 * reach the sink only when a checkpoint covering their partition has
 * completed (a pipeline without key_by keeps no state: its output goes to
 * the sink as each epoch ends). When a TaskManager is declared failed, the
 * state of its partitions is lost: it is restored from their last
 * completed checkpoint and the source replays from that checkpoint's offset
 * for them. A checkpoint completes TaskManager by TaskManager: one that
 * fails during it holds back only its own partitions. The sink therefore
 * sees exactly the records of a run without failures (each partition's in
 * order; how partitions interleave may differ). Operators must be deterministic
 * (the same input gives the same output) and may run more than once on a
 * record; their side effects beyond fleet_emit are theirs to make
 * idempotent.
 *
 * Conventions as in fleet.h: 0 or -errno; a failed call keeps nothing.
 * Thread-safety: a pipeline is built, run and destroyed by one thread at a
 * time; its operators are called from the runtime's threads concurrently
 * (never twice at once for one key partition's keyed callbacks); the sink
 * is called from the thread in fleet_stream_run only.
 */
#ifndef FLEET_STREAM_H
#define FLEET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <fleet.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fleet_stream fleet_stream_t;   /* opaque */
typedef struct fleet_emitter fleet_emitter_t; /* opaque */

/* The timestamp of a record that has none. */
#define FLEET_TS_NONE INT64_MIN
/* The event times an event-time window takes: [FLEET_TS_MIN, FLEET_TS_MAX]
 * (about +-146 years in nanoseconds); a record outside fails the run with
 * -ERANGE. */
#define FLEET_TS_MAX ((int64_t)1 << 62)
#define FLEET_TS_MIN (-FLEET_TS_MAX)
/* The longest span of event time a window or the watermark's delay may
 * have (about 36 years in nanoseconds). */
#define FLEET_SPAN_MAX ((int64_t)1 << 60)

/* A record: bytes and an event time. data stays valid only during the call
 * it is passed to; bytes the library kept (between key_by and the keyed
 * stage, for the sink) start 8-byte aligned. */
typedef struct fleet_record {
    const void *data;
    size_t len;
    int64_t ts;
} fleet_record_t;

/* Passes a record to the next operator, at once (the bytes need only live
 * until fleet_emit returns). Thread-safety: only the operator the emitter
 * was passed to, during that call. */
FLEET_API void fleet_emit(fleet_emitter_t *out, const void *data, size_t len,
                          int64_t ts);

/* Emits exactly one record per input (else the run fails with -EPROTO). */
typedef void (*fleet_map_fn)(void *ctx, const fleet_record_t *in,
                             fleet_emitter_t *out);
/* Keeps the records it returns true for. */
typedef bool (*fleet_filter_fn)(void *ctx, const fleet_record_t *in);
/* Emits any number of records per input. */
typedef void (*fleet_flat_map_fn)(void *ctx, const fleet_record_t *in,
                                  fleet_emitter_t *out);
/* Sets *key and *len to the record's key: bytes inside the record, or
 * memory that lives until the next call on this thread. */
typedef void (*fleet_key_fn)(void *ctx, const fleet_record_t *in,
                             const void **key, size_t *len);
/* Makes generator record `index` (0 <= index < count) by emitting zero or
 * more records; must depend only on index (it may run more than once and
 * in any order). */
typedef void (*fleet_generate_fn)(void *ctx, uint64_t index,
                                  fleet_emitter_t *out);
/* Receives the pipeline's output. */
typedef void (*fleet_sink_fn)(void *ctx, const fleet_record_t *rec);

/* A window's bounds: event time [start, end), or for count windows the
 * positions [start, end) of its elements among its key's elements. */
typedef struct fleet_window_span {
    int64_t start;
    int64_t end;
} fleet_window_span_t;

/*
 * A keyed aggregation (Flink's AggregateFunction): an accumulator of `size`
 * plain bytes per key (per key and window; checkpoints copy it with memcpy,
 * so it must not own memory through pointers), init()ed, records add()ed, two
 * accumulators merge()d (for pre-aggregation and merging sessions; must be
 * associative, and see records in source order: `into` holds the earlier
 * ones), and result() emits the output for a key: for a window when it
 * fires (span != NULL), for reduce at the end of the stream (span NULL).
 */
typedef struct fleet_aggregate {
    size_t size; /* >= 1 */
    void (*init)(void *ctx, void *acc);
    void (*add)(void *ctx, void *acc, const fleet_record_t *in);
    void (*merge)(void *ctx, void *into, const void *acc);
    void (*result)(void *ctx, const void *key, size_t key_len,
                   const fleet_window_span_t *span, const void *acc,
                   fleet_emitter_t *out);
} fleet_aggregate_t;

typedef enum fleet_window_kind {
    FLEET_WINDOW_TUMBLING, /* size */
    FLEET_WINDOW_SLIDING,  /* size, slide (a slide longer than the size
                              leaves gaps: records there are in no window) */
    FLEET_WINDOW_SESSION   /* gap; event time only */
} fleet_window_kind_t;

typedef struct fleet_window {
    fleet_window_kind_t kind;
    /* Count windows measure in elements of the key (a sliding count window
     * fires every `slide` elements with the last `size`), time windows in
     * event-time units. */
    bool count;
    /* Time windows: size, slide, gap and allowed_lateness at most
     * FLEET_SPAN_MAX. */
    int64_t size;  /* >= 1; count windows: <= 2^20, and each key keeps
                      `size` accumulators */
    int64_t slide; /* >= 1, sliding only */
    int64_t gap;   /* >= 1, session only */
    /* Event time only: how long after firing a window still takes late
     * records (and fires again for each). >= 0. */
    int64_t allowed_lateness;
} fleet_window_t;

typedef struct fleet_stream_stats {
    uint64_t records_in;   /* from the source (replays not counted) */
    uint64_t records_out;  /* to the sink */
    uint64_t late_dropped; /* behind the watermark, in no window kept */
    uint64_t epochs;       /* epochs run, replays included */
    uint64_t epochs_replayed;
    uint64_t checkpoints;         /* completed */
    uint64_t checkpoints_aborted; /* a TaskManager failed during one */
    uint64_t restores;            /* partitions restored from a checkpoint */
    uint64_t checkpoint_ns_total; /* time spent taking checkpoints */
    uint64_t state_bytes;         /* keyed state in the last checkpoint (the
                                     final one keeps none: nothing needs it) */
} fleet_stream_stats_t;

typedef struct fleet_stream_config {
    /* Line sources: bytes per batch (whole lines; a longer line is one
     * batch). Default 256 KiB, >= 1. */
    size_t batch_bytes;
    /* Generator sources: indices per batch. Default 16384, >= 1. */
    size_t batch_records;
    /* Batches per epoch. Default 8, >= 1. An epoch holds at most 2^40 bytes
     * (batch_bytes * epoch_batches) and 2^40 indices (batch_records *
     * epoch_batches). Memory for an epoch is taken as its bytes are read,
     * not all at once. */
    unsigned epoch_batches;
    /* Key partitions; 0 = 8 per TaskManager. At most 65536. */
    unsigned partitions;
    /* Checkpoint period, ms. Default 1000. Output waits for the next
     * checkpoint; standard input or a pipe keeps the bytes read since the
     * last one (for replay). 0 = none but the final one: a failure then
     * replays from the start, the output reaches the sink at the end, and
     * standard input is kept whole until then. */
    unsigned checkpoint_ms;
    /* Event time: the watermark's delay behind the largest timestamp,
     * 0 .. FLEET_SPAN_MAX. Default 0. */
    int64_t max_out_of_orderness;
    /* A progress report: progress(progress_ctx, counters so far) about
     * every progress_ms (between epochs, on the thread in
     * fleet_stream_run), and once at the end. NULL (the default): none. */
    void (*progress)(void *ctx, const fleet_stream_stats_t *st);
    void *progress_ctx;
    unsigned progress_ms;
} fleet_stream_config_t;

/* Fills *cfg with the defaults. Thread-safety: any thread. */
FLEET_API void fleet_stream_config_init(fleet_stream_config_t *cfg);

/* Creates an empty pipeline on rt (which must outlive it); cfg NULL = the
 * defaults. Returns 0, -EINVAL (a bad field, or a runtime of more than 64
 * TaskManagers) or -ENOMEM. */
FLEET_API int fleet_stream_create(fleet_stream_t **out, fleet_runtime_t *rt,
                                  const fleet_stream_config_t *cfg);
/* Frees a pipeline (not running). NULL is a no-op. */
FLEET_API void fleet_stream_destroy(fleet_stream_t *s);

/*
 * Sources (exactly one per pipeline; -EEXIST for a second one).
 * Lines of the files in order, as one byte stream (n == 0, paths then may
 * be NULL: standard input; -EINVAL for NULL paths or a NULL path with
 * n > 0); each record is a line without its '\n', ts FLEET_TS_NONE. The
 * paths are copied; files are opened by fleet_stream_run (which returns
 * -errno of open/read). Replay after a failure reads regular files again
 * from the offsets recorded with each epoch (they must not change while the
 * pipeline runs: -EIO if one shrank); standard input and pipes keep their
 * bytes in memory until a checkpoint covers them.
 */
FLEET_API int fleet_stream_source_files(fleet_stream_t *s,
                                        const char *const *paths, size_t n);
/* Records made by gen for indices [0, count). */
FLEET_API int fleet_stream_source_generator(fleet_stream_t *s, uint64_t count,
                                            fleet_generate_fn gen, void *ctx);

/* Stateless operators, appended in order. -EINVAL for a NULL fn, -EPERM
 * after the sink. */
FLEET_API int fleet_stream_map(fleet_stream_t *s, fleet_map_fn fn, void *ctx);
FLEET_API int fleet_stream_filter(fleet_stream_t *s, fleet_filter_fn fn,
                                  void *ctx);
FLEET_API int fleet_stream_flat_map(fleet_stream_t *s, fleet_flat_map_fn fn,
                                    void *ctx);

/* Partitions the stream by key (fn NULL: the whole record is the key).
 * Must be followed by reduce or window. -EEXIST for a second key_by. */
FLEET_API int fleet_stream_key_by(fleet_stream_t *s, fleet_key_fn fn,
                                  void *ctx);
/* Rolling keyed aggregation: result() once per key at the end. */
FLEET_API int fleet_stream_reduce(fleet_stream_t *s, const fleet_aggregate_t *a,
                                  void *ctx);
/* Keyed windows aggregated by a. -EINVAL for bad bounds. */
FLEET_API int fleet_stream_window(fleet_stream_t *s, const fleet_window_t *w,
                                  const fleet_aggregate_t *a, void *ctx);

/* The sink (exactly one; required). fleet_stream_sink_file writes each
 * record's bytes and a '\n' to f. */
FLEET_API int fleet_stream_sink(fleet_stream_t *s, fleet_sink_fn fn, void *ctx);
FLEET_API int fleet_stream_sink_file(fleet_stream_t *s, FILE *f);

/*
 * Runs the pipeline to the end of its source. Returns 0, -EINVAL (no
 * source or sink, key_by without reduce/window, an event-time window on a
 * record without timestamp), -ERANGE (an event-time window on a record
 * whose timestamp is outside [FLEET_TS_MIN, FLEET_TS_MAX]), -EPROTO (a map
 * did not emit exactly once),
 * -ENOMEM, -EIO (writing to a sink file), an error of the runtime
 * (-ECANCELED: no TaskManager left), or -errno of reading the files. A
 * pipeline runs once (-EALREADY after).
 */
FLEET_API int fleet_stream_run(fleet_stream_t *s);

/* Copies the counters to *out. Returns 0 or -EINVAL. Thread-safety: the
 * thread that runs the pipeline, or any thread when it is not running. */
FLEET_API int fleet_stream_stats(const fleet_stream_t *s,
                                 fleet_stream_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* FLEET_STREAM_H */
