/*
 * The options every stream example shares, and running a pipeline with
 * them: --task-managers N, --workers N, --chaos SEED, --chaos-mtbf-ms N,
 * --checkpoint-ms N, --partitions N, --batch N, --epoch-batches N,
 * --metrics.
 *
 * Not a header of the library; header-only, for examples/ only.
 */
#ifndef STREAM_COMMON_H
#define STREAM_COMMON_H

#include <errno.h>
#include <fleet.h>
#include <fleet/metrics.h>
#include <fleet/stream.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EX_COMMON_USAGE                                                        \
    "  --task-managers N  TaskManagers (default, or 0: 2)\n"                   \
    "  --workers N        threads per TaskManager (default, or 0: CPUs / "     \
    "TMs)\n"                                                                   \
    "  --chaos SEED       seeded random TaskManager failures (crash, hang,\n"  \
    "                     slow; one every 20 ms on average) during the run\n"  \
    "  --chaos-mtbf-ms N  with --chaos: one failure every N ms on average\n"   \
    "                     (default 20; a pipeline whose epochs take longer\n"  \
    "                     than that barely progresses)\n"                      \
    "  --checkpoint-ms N  checkpoint period (default 1000, with --chaos 50;\n" \
    "                     0: only at the end)\n"                               \
    "  --partitions N     key partitions (default, or 0: 8 per TaskManager)\n" \
    "  --batch N          records (or bytes, for files) per batch (0: the\n"   \
    "                     library's default)\n"                                \
    "  --epoch-batches N  batches per epoch (micro-batch; 0: the default)\n"   \
    "  --metrics          print the runtime's metrics as JSON to stderr at\n"  \
    "                     exit\n"                                              \
    "  --help             this text\n"

typedef struct ex_opts {
    unsigned long long tms, workers, chaos, ckpt_ms, parts, batch, epoch;
    unsigned long long mtbf_ms; /* 0: the default */
    bool chaos_set, ckpt_set, metrics;
} ex_opts_t;

static inline double ex_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A decimal number in [0, max]: 0, or -1 when it is not one. */
static inline int ex_number(const char *s, unsigned long long max,
                            unsigned long long *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Takes argv[*i] (and its value) if it is a shared option: 1 taken, 0 not
 * one of them, -1 bad value. */
static inline int ex_option(ex_opts_t *o, int argc, char **argv, int *i)
{
    static const struct {
        const char *name;
        unsigned long long min, max;
        size_t off;
    } opts[] = {
        {"--task-managers", 0, 64, offsetof(ex_opts_t, tms)},
        {"--workers", 0, 256, offsetof(ex_opts_t, workers)},
        {"--chaos", 0, UINT64_MAX, offsetof(ex_opts_t, chaos)},
        {"--checkpoint-ms", 0, 3600000, offsetof(ex_opts_t, ckpt_ms)},
        {"--partitions", 0, 65536, offsetof(ex_opts_t, parts)},
        {"--batch", 0, 1ull << 30, offsetof(ex_opts_t, batch)},
        {"--epoch-batches", 0, 1ull << 20, offsetof(ex_opts_t, epoch)},
        /* a failure every 0 ms is no run */
        {"--chaos-mtbf-ms", 1, 3600000, offsetof(ex_opts_t, mtbf_ms)},
    };
    if (strcmp(argv[*i], "--metrics") == 0) {
        o->metrics = true;
        return 1;
    }
    for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
        if (strcmp(argv[*i], opts[k].name) != 0)
            continue;
        unsigned long long *dst =
            (unsigned long long *)((char *)o + opts[k].off);
        if (*i + 1 >= argc || ex_number(argv[*i + 1], opts[k].max, dst) != 0 ||
            *dst < opts[k].min)
            return -1;
        if (k == 2)
            o->chaos_set = true;
        if (k == 3)
            o->ckpt_set = true;
        *i += 1;
        return 1;
    }
    return 0;
}

/* The file arguments as a source. "-" is standard input, as for cat, and
 * stands alone (the file source reads either files or standard input):
 * then no files. Returns 0, or -1 (said on stderr) for "-" among files. */
static inline int ex_files(const char *name, const char **files, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(files[i], "-") != 0)
            continue;
        if (*n > 1) {
            fprintf(stderr,
                    "%s: - (standard input) cannot be read with files\n", name);
            return -1;
        }
        *n = 0;
    }
    return 0;
}

/* The runtime the options ask for. */
static inline int ex_runtime(const ex_opts_t *o, fleet_runtime_t **rt)
{
    fleet_config_t cfg;
    fleet_config_init(&cfg);
    if (o->tms)
        cfg.task_managers = (unsigned)o->tms;
    cfg.workers_per_tm = (unsigned)o->workers;
    if (o->chaos_set) {
        cfg.chaos_seed = o->chaos ? o->chaos : 1;
        cfg.chaos_mtbf_us = o->mtbf_ms ? (unsigned)o->mtbf_ms * 1000u : 20000;
        cfg.chaos_weight[FLEET_FAIL_CRASH] = 2;
        cfg.chaos_weight[FLEET_FAIL_HANG] = 1;
        cfg.chaos_weight[FLEET_FAIL_SLOW] = 1;
        cfg.chaos_fault_us = 30000;
    }
    return fleet_runtime_create(rt, &cfg);
}

/* After building a pipeline (err: 0 or the first error on the way): sets
 * the sink fn(ctx) and runs it; then the sink's own error, *sink_err. */
static inline int ex_sink_run(int err, fleet_stream_t *s, fleet_sink_fn fn,
                              void *ctx, const int *sink_err)
{
    if (err == 0)
        err = fleet_stream_sink(s, fn, ctx);
    if (err == 0)
        err = fleet_stream_run(s);
    return err != 0 ? err : *sink_err;
}

/* Flushes standard output: 0, or -EIO (said on stderr) when writing the
 * output failed. */
static inline int ex_flush_stdout(const char *name)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    fprintf(stderr, "%s: writing the output failed\n", name);
    return -EIO;
}

/* A progress line a second on a terminal: what the stream counted. */
static inline void ex_progress(void *ctx, const fleet_stream_stats_t *st)
{
    fprintf(stderr,
            "%s: %llu records in, %llu out; epochs %llu (%llu replayed), "
            "checkpoints %llu, restores %llu\n",
            (const char *)ctx, (unsigned long long)st->records_in,
            (unsigned long long)st->records_out, (unsigned long long)st->epochs,
            (unsigned long long)st->epochs_replayed,
            (unsigned long long)st->checkpoints,
            (unsigned long long)st->restores);
}

/* The stream configuration the options ask for (lines: a lines source, so
 * --batch counts bytes); a progress line a second on stderr when it is a
 * terminal and not quiet. */
static inline void ex_stream_config(const ex_opts_t *o, bool lines,
                                    const char *name, bool quiet,
                                    fleet_stream_config_t *c)
{
    fleet_stream_config_init(c);
    if (!quiet && isatty(STDERR_FILENO)) {
        c->progress = ex_progress;
        c->progress_ctx = (void *)name;
        c->progress_ms = 1000;
    }
    if (o->ckpt_set)
        c->checkpoint_ms = (unsigned)o->ckpt_ms;
    else if (o->chaos_set)
        c->checkpoint_ms = 50;
    c->partitions = (unsigned)o->parts;
    if (o->batch && lines)
        c->batch_bytes = (size_t)o->batch;
    else if (o->batch)
        c->batch_records = (size_t)o->batch;
    if (o->epoch)
        c->epoch_batches = (unsigned)o->epoch;
}

/* One line on stderr about the run (unless quiet): what the stream and
 * the runtime counted; then the metrics if asked for. */
static inline void ex_report(const char *name, fleet_runtime_t *rt,
                             const fleet_stream_t *s, double secs,
                             const ex_opts_t *o, bool quiet)
{
    fleet_stream_stats_t st;
    fleet_failure_stats_t fs;
    if (fleet_stream_stats(s, &st) != 0 || fleet_failure_stats(rt, &fs) != 0)
        return;
    if (!quiet)
        fprintf(
            stderr,
            "%s: %llu records in, %llu out, %llu late, %.3f s; epochs %llu "
            "(%llu replayed), checkpoints %llu (%llu aborted), restores %llu; "
            "failures injected %llu, detected %llu\n",
            name, (unsigned long long)st.records_in,
            (unsigned long long)st.records_out,
            (unsigned long long)st.late_dropped, secs,
            (unsigned long long)st.epochs,
            (unsigned long long)st.epochs_replayed,
            (unsigned long long)st.checkpoints,
            (unsigned long long)st.checkpoints_aborted,
            (unsigned long long)st.restores,
            (unsigned long long)(fs.injected[0] + fs.injected[1] +
                                 fs.injected[2]),
            (unsigned long long)(fs.detected[0] + fs.detected[1] +
                                 fs.detected[2]));
    if (o->metrics) {
        int err = fleet_metrics_write_json(rt, stderr);
        if (err != 0)
            fprintf(stderr, "%s: metrics: %s\n", name, fleet_strerror(err));
    }
}

/* A counter aggregate's init, add and merge (8 bytes: uint64_t). */
static inline void ex_count_init(void *ctx, void *acc)
{
    (void)ctx;
    *(uint64_t *)acc = 0;
}

static inline void ex_count_add(void *ctx, void *acc, const fleet_record_t *in)
{
    (void)ctx;
    (void)in;
    ++*(uint64_t *)acc;
}

static inline void ex_count_merge(void *ctx, void *into, const void *acc)
{
    (void)ctx;
    *(uint64_t *)into += *(const uint64_t *)acc;
}

/* Flink's WordCount tokenizer on bytes: emits every maximal run of ASCII
 * [A-Za-z0-9_], lower-cased; every other byte separates words.
 * ex_lower[c]: the lower-cased byte for a word byte, 0 for a separator. */
#define EX_LOWER(c)                                                            \
    ((c) >= 'A' && (c) <= 'Z' ? (c) + 32                                       \
     : ((c) >= 'a' && (c) <= 'z') || ((c) >= '0' && (c) <= '9') || (c) == '_'  \
         ? (c)                                                                 \
         : 0)
#define EX_LOWER4(c)                                                           \
    EX_LOWER(c), EX_LOWER((c) + 1), EX_LOWER((c) + 2), EX_LOWER((c) + 3)
#define EX_LOWER16(c)                                                          \
    EX_LOWER4(c), EX_LOWER4((c) + 4), EX_LOWER4((c) + 8), EX_LOWER4((c) + 12)
#define EX_LOWER64(c)                                                          \
    EX_LOWER16(c), EX_LOWER16((c) + 16), EX_LOWER16((c) + 32),                 \
        EX_LOWER16((c) + 48)
static const unsigned char ex_lower[256] = {EX_LOWER64(0), EX_LOWER64(64),
                                            EX_LOWER64(128), EX_LOWER64(192)};

static inline void ex_tokenize(void *ctx, const fleet_record_t *in,
                               fleet_emitter_t *out)
{
    (void)ctx;
    const unsigned char *p = in->data, *end = p + in->len;
    unsigned char small[256], *buf = small;
    size_t cap = sizeof(small);
    for (;;) {
        while (p < end && ex_lower[*p] == 0)
            p++;
        if (p == end)
            break;
        size_t n = 0;
        unsigned char c;
        while (p < end && (c = ex_lower[*p]) != 0) {
            if (n == cap) {
                unsigned char *b = realloc(buf == small ? NULL : buf, 2 * cap);
                if (b == NULL)
                    abort(); /* out of memory in an operator: nothing sane */
                if (buf == small)
                    memcpy(b, small, n);
                buf = b;
                cap *= 2;
            }
            buf[n++] = c;
            p++;
        }
        fleet_emit(out, buf, n, FLEET_TS_NONE);
    }
    if (buf != small)
        free(buf);
}

#endif /* STREAM_COMMON_H */
