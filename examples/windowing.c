/*
 * windowing: fleet's stream windows, after Flink's windowing examples.
 *
 *   windowing session
 *       Flink's SessionWindowing: seven (key, time, 1) events, watermark one
 *       behind each event time, event-time session windows with a gap of 3,
 *       summed; prints Flink's expected lines (a,1,1) (b,1,3) (c,6,1)
 *       (a,10,1) (c,11,1), sorted.
 *   windowing count [--size N] [--slide N] [FILE...]
 *       Flink's WindowWordCount: words (as in wordcount) counted in sliding
 *       count windows of the last --size (250) occurrences, every --slide
 *       (150); prints "word first last+1 count" per firing, sorted.
 *   windowing tumbling|sliding [--events N] [--keys K] [--size S]
 *             [--slide L] [--disorder D] [--delay W] [--lateness A]
 *             [--seed S]
 *       A generated out-of-order stream: event i has key r % K, value
 *       (r >> 20) % 100 and time i - (r >> 40) % D (r a hash of seed and i);
 *       the watermark is W behind the largest time; records behind it are
 *       dropped unless within the allowed lateness A. Prints
 *       "key start end count sum" per firing, sorted; the late count goes to
 *       stderr.
 * Every mode takes the shared options (--chaos SEED ...; see --help) and
 * prints the same lines with and without failures.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>

#include "stream_common.h"

/* ---- output: lines collected by the sink, sorted at the end ------------- */

struct lines {
    char **v;
    size_t n, cap;
    int err;
};

static void collect(void *ctx, const fleet_record_t *r)
{
    struct lines *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            l->err = -ENOMEM;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    char *s = malloc(r->len + 1);
    if (s == NULL) {
        l->err = -ENOMEM;
        return;
    }
    memcpy(s, r->data, r->len);
    s[r->len] = '\0';
    l->v[l->n++] = s;
}

static int by_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void emit_line(fleet_emitter_t *out, int64_t ts, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void emit_line(fleet_emitter_t *out, int64_t ts, const char *fmt, ...)
{
    char small[512], *buf = small;
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(small)) { /* a long key: the whole line */
        buf = malloc((size_t)n + 1);
        if (buf == NULL)
            abort(); /* out of memory in an operator: nothing sane */
        vsnprintf(buf, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    fleet_emit(out, buf, n > 0 ? (size_t)n : 0, ts);
    if (buf != small)
        free(buf);
}

/* ---- session: Flink's SessionWindowing ----------------------------------- */

struct sev {
    char key;
    int64_t ts;
    int64_t value;
};

static const struct sev session_input[] = {
    {'a', 1, 1}, {'b', 1, 1},  {'b', 3, 1},  {'b', 5, 1},
    {'c', 6, 1}, {'a', 10, 1}, {'c', 11, 1},
};

static void session_gen(void *ctx, uint64_t i, fleet_emitter_t *out)
{
    (void)ctx;
    fleet_emit(out, &session_input[i], sizeof(session_input[i]),
               session_input[i].ts);
}

static void session_key(void *ctx, const fleet_record_t *in, const void **key,
                        size_t *len)
{
    (void)ctx;
    *key = &((const struct sev *)in->data)->key;
    *len = 1;
}

/* Flink's sum(2): the first element's fields, field 2 summed. */
struct first_sum {
    int64_t first_ts;
    int64_t sum;
    int64_t has;
};

static void fs_init(void *ctx, void *acc)
{
    (void)ctx;
    memset(acc, 0, sizeof(struct first_sum));
}

static void fs_add(void *ctx, void *acc, const fleet_record_t *in)
{
    (void)ctx;
    struct first_sum *a = acc;
    if (!a->has)
        a->first_ts = in->ts;
    a->has = 1;
    a->sum += ((const struct sev *)in->data)->value;
}

static void fs_merge(void *ctx, void *into, const void *acc)
{
    (void)ctx;
    struct first_sum *a = into;
    const struct first_sum *b = acc;
    if (!a->has)
        a->first_ts = b->first_ts;
    a->has |= b->has;
    a->sum += b->sum;
}

static void fs_result(void *ctx, const void *key, size_t len,
                      const fleet_window_span_t *span, const void *acc,
                      fleet_emitter_t *out)
{
    (void)ctx;
    const struct first_sum *a = acc;
    emit_line(out, span->end - 1, "(%.*s,%lld,%lld)", (int)len,
              (const char *)key, (long long)a->first_ts, (long long)a->sum);
}

/* ---- count: Flink's WindowWordCount ------------------------------------- */

static void cnt_result(void *ctx, const void *key, size_t len,
                       const fleet_window_span_t *span, const void *acc,
                       fleet_emitter_t *out)
{
    (void)ctx;
    emit_line(out, FLEET_TS_NONE, "%.*s %lld %lld %llu", (int)len,
              (const char *)key, (long long)span->start, (long long)span->end,
              (unsigned long long)*(const uint64_t *)acc);
}

/* ---- tumbling / sliding: a generated out-of-order stream ---------------- */

struct gen {
    uint64_t seed, keys, disorder;
};

struct gev {
    uint64_t key;
    int64_t value;
};

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void gen_event(void *ctx, uint64_t i, fleet_emitter_t *out)
{
    const struct gen *g = ctx;
    uint64_t r = mix(g->seed * 0x100000001b3ULL + i);
    struct gev e = {r % g->keys, (int64_t)((r >> 20) % 100)};
    int64_t ts = (int64_t)i - (int64_t)((r >> 40) % g->disorder);
    fleet_emit(out, &e, sizeof(e), ts);
}

static void gen_key(void *ctx, const fleet_record_t *in, const void **key,
                    size_t *len)
{
    (void)ctx;
    *key = &((const struct gev *)in->data)->key;
    *len = sizeof(uint64_t);
}

struct cs {
    int64_t count, sum;
};

static void cs_init(void *ctx, void *acc)
{
    (void)ctx;
    memset(acc, 0, sizeof(struct cs));
}

static void cs_add(void *ctx, void *acc, const fleet_record_t *in)
{
    (void)ctx;
    struct cs *a = acc;
    a->count++;
    a->sum += ((const struct gev *)in->data)->value;
}

static void cs_merge(void *ctx, void *into, const void *acc)
{
    (void)ctx;
    struct cs *a = into;
    const struct cs *b = acc;
    a->count += b->count;
    a->sum += b->sum;
}

static void cs_result(void *ctx, const void *key, size_t len,
                      const fleet_window_span_t *span, const void *acc,
                      fleet_emitter_t *out)
{
    (void)ctx;
    (void)len;
    uint64_t k;
    memcpy(&k, key, sizeof(k));
    const struct cs *a = acc;
    emit_line(out, span->end - 1, "%llu %lld %lld %lld %lld",
              (unsigned long long)k, (long long)span->start,
              (long long)span->end, (long long)a->count, (long long)a->sum);
}

/* ---- main ---------------------------------------------------------------- */

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s session [options]\n"
            "       %s count [--size N] [--slide N] [options] [FILE...]\n"
            "       %s tumbling|sliding [--events N] [--keys K] [--size S]\n"
            "                [--slide L] [--disorder D] [--delay W]\n"
            "                [--lateness A] [--seed S] [options]\n"
            "Runs one of fleet's window examples and prints its lines, "
            "sorted\n(count: of the files, or of standard input when none or "
            "-).\n"
            "  --quiet            no summary line on stderr\n" EX_COMMON_USAGE,
            argv0, argv0, argv0);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(argv[0]);
    if (strcmp(argv[1], "--help") == 0) {
        usage(argv[0]);
        return 0;
    }
    const char *mode = argv[1];
    bool session = strcmp(mode, "session") == 0,
         count = strcmp(mode, "count") == 0,
         tumbling = strcmp(mode, "tumbling") == 0,
         sliding = strcmp(mode, "sliding") == 0;
    if (!session && !count && !tumbling && !sliding)
        return usage(argv[0]);
    ex_opts_t o = {0};
    bool quiet = false;
    unsigned long long size = count ? 250 : 1000, slide = count ? 150 : 250,
                       events = 1000000, keys = 100, disorder = 500,
                       delay = 200, lateness = 0, seed = 1;
    const char **files = calloc((size_t)argc, sizeof(*files));
    size_t nfiles = 0;
    if (files == NULL)
        return 1;
    for (int i = 2; i < argc; i++) {
        int r = ex_option(&o, argc, argv, &i);
        if (r < 0)
            goto bad;
        if (r > 0)
            continue;
        static const char *names[] = {"--size",     "--slide",    "--events",
                                      "--keys",     "--disorder", "--delay",
                                      "--lateness", "--seed"};
        unsigned long long *dst[] = {&size,     &slide, &events,   &keys,
                                     &disorder, &delay, &lateness, &seed};
        size_t k = 0;
        while (k < 8 && strcmp(argv[i], names[k]) != 0)
            k++;
        if (k < 8) {
            if (i + 1 >= argc ||
                ex_number(argv[++i], k == 7 ? UINT64_MAX : 1ull << 40,
                          dst[k]) != 0)
                goto bad;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(argv[i], "--help") == 0) {
            free(files);
            usage(argv[0]);
            return 0;
        } else if (count && (argv[i][0] != '-' || argv[i][1] == '\0')) {
            files[nfiles++] = argv[i];
        } else {
            goto bad;
        }
    }
    if (size == 0 || slide == 0 || keys == 0 || disorder == 0)
        goto bad;
    if (ex_files("windowing", files, &nfiles) != 0) {
        free(files);
        return 2;
    }

    fleet_runtime_t *rt;
    int err = ex_runtime(&o, &rt);
    if (err != 0) {
        fprintf(stderr, "windowing: runtime: %s\n", fleet_strerror(err));
        free(files);
        return 1;
    }
    static const fleet_aggregate_t first_sum = {
        sizeof(struct first_sum), fs_init, fs_add, fs_merge, fs_result};
    static const fleet_aggregate_t words = {8, ex_count_init, ex_count_add,
                                            ex_count_merge, cnt_result};
    static const fleet_aggregate_t count_sum = {sizeof(struct cs), cs_init,
                                                cs_add, cs_merge, cs_result};
    struct gen g = {seed, keys, disorder};
    struct lines out = {0};
    fleet_stream_config_t cfg;
    ex_stream_config(&o, count, "windowing", quiet, &cfg);
    if (tumbling || sliding)
        cfg.max_out_of_orderness = (int64_t)delay;
    fleet_window_t w = {0};
    fleet_stream_t *s = NULL;
    double t0 = ex_now();
    err = fleet_stream_create(&s, rt, &cfg);
    if (err == 0 && session) {
        w.kind = FLEET_WINDOW_SESSION;
        w.gap = 3;
        err = fleet_stream_source_generator(
            s, sizeof(session_input) / sizeof(session_input[0]), session_gen,
            NULL);
        if (err == 0)
            err = fleet_stream_key_by(s, session_key, NULL);
        if (err == 0)
            err = fleet_stream_window(s, &w, &first_sum, NULL);
    } else if (err == 0 && count) {
        w.kind = FLEET_WINDOW_SLIDING;
        w.count = true;
        w.size = (int64_t)size;
        w.slide = (int64_t)slide;
        err = fleet_stream_source_files(s, files, nfiles);
        if (err == 0)
            err = fleet_stream_flat_map(s, ex_tokenize, NULL);
        if (err == 0)
            err = fleet_stream_key_by(s, NULL, NULL);
        if (err == 0)
            err = fleet_stream_window(s, &w, &words, NULL);
    } else if (err == 0) {
        w.kind = tumbling ? FLEET_WINDOW_TUMBLING : FLEET_WINDOW_SLIDING;
        w.size = (int64_t)size;
        w.slide = (int64_t)slide;
        w.allowed_lateness = (int64_t)lateness;
        err = fleet_stream_source_generator(s, events, gen_event, &g);
        if (err == 0)
            err = fleet_stream_key_by(s, gen_key, NULL);
        if (err == 0)
            err = fleet_stream_window(s, &w, &count_sum, NULL);
    }
    err = ex_sink_run(err, s, collect, &out, &out.err);
    double secs = ex_now() - t0;
    if (err != 0) {
        fprintf(stderr, "windowing: %s\n", fleet_strerror(err));
    } else {
        if (out.n > 0)
            qsort(out.v, out.n, sizeof(*out.v), by_line);
        for (size_t i = 0; i < out.n; i++)
            puts(out.v[i]);
        if (ex_flush_stdout("windowing") != 0)
            err = -EIO;
        ex_report("windowing", rt, s, secs, &o, quiet);
    }
    for (size_t i = 0; i < out.n; i++)
        free(out.v[i]);
    free(out.v);
    fleet_stream_destroy(s);
    fleet_runtime_destroy(rt);
    free(files);
    return err != 0;
bad:
    free(files);
    return usage(argv[0]);
}
