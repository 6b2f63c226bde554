/*
 * test_stream: the stream layer (fleet/stream.h) against a single-threaded
 * reference.
 *
 * The reference below processes a generated stream one record at a time
 * with plain arrays and linear scans - deliberately unlike the library's
 * tables, combiners and micro-batches - following the semantics the header
 * documents: the watermark before record i is the largest earlier timestamp
 * minus the delay minus 1; a window fires when the watermark reaches its end
 * - 1; a record is late for a window whose end - 1 + allowed lateness the
 * watermark has reached; a late record within the lateness fires its window
 * again; the end of the stream fires everything. Every test compares the
 * sorted output lines of the library, under varied parallelism, batch
 * sizes and failures, with the reference's.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <fleet.h>
#include <fleet/stream.h>

#include "rng.h"
#include "stream/stream_hooks.h"

/* Sanitizer builds run ten times slower: the long streams are cut by this. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SLOW 5
#else
#define SLOW 1
#endif

/* ---- the generated stream ------------------------------------------------ */

typedef struct gspec {
    uint64_t n, keys, disorder, seed;
    int64_t base; /* added to every timestamp (negative times too) */
    int64_t step; /* event i is at about i * step */
} gspec_t;

typedef struct ev {
    uint64_t key;
    int64_t value;
} ev_t;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void event(const gspec_t *g, uint64_t i, ev_t *e, int64_t *ts)
{
    uint64_t r = mix(g->seed * 0x100000001b3ULL + i);
    e->key = r % g->keys;
    e->value = (int64_t)((r >> 20) % 100);
    *ts = g->base + (int64_t)i * g->step -
          (int64_t)((r >> 40) % (g->disorder ? g->disorder : 1));
}

/* Failure injection from inside the generator: at index fail_at[j], once,
 * fail TaskManager fail_tm[j] (and sleep so the failure is detected while
 * this epoch runs). */
typedef struct genctx {
    gspec_t g;
    fleet_runtime_t *rt;
    uint64_t fail_at[2];
    unsigned fail_tm[2];
    fleet_fail_t fail_how[2];
    atomic_int fired[2];
} genctx_t;

static void gen(void *ctx, uint64_t i, fleet_emitter_t *out)
{
    genctx_t *c = ctx;
    for (int j = 0; j < 2; j++) {
        int zero = 0;
        if (c->rt != NULL && c->fail_at[j] == i + 1 &&
            atomic_compare_exchange_strong(&c->fired[j], &zero, 1))
            (void)fleet_tm_fail(c->rt, c->fail_tm[j], c->fail_how[j]);
    }
    ev_t e;
    int64_t ts;
    event(&c->g, i, &e, &ts);
    fleet_emit(out, &e, sizeof(e), ts);
}

static void key_of(void *ctx, const fleet_record_t *in, const void **key,
                   size_t *len)
{
    (void)ctx;
    *key = &((const ev_t *)in->data)->key;
    *len = sizeof(uint64_t);
}

/* Keys of many widths for the same events: key k is its decimal digits,
 * then 'x's up to a width picked by k - up to 8 bytes (one word), 9 to 16
 * (two), 17 to 40 (kept outside the entry), about 250 (with a window start
 * appended, more than a combiner's stack buffer) or 600. The memory lives
 * until the next call on this thread, as key_by allows. */
#define WIDE_MAX 600
static void key_wide(void *ctx, const fleet_record_t *in, const void **key,
                     size_t *len)
{
    (void)ctx;
    static _Thread_local char buf[WIDE_MAX];
    static const size_t widths[5] = {5, 13, 40, 250, WIDE_MAX};
    uint64_t k = ((const ev_t *)in->data)->key;
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)k);
    size_t w = widths[k % 5];
    if (w < (size_t)n)
        w = (size_t)n;
    memset(buf + n, 'x', w - (size_t)n);
    *key = buf;
    *len = w;
}

/* ---- output lines -------------------------------------------------------- */

typedef struct lines {
    char **v;
    size_t n, cap;
} lines_t;

static void lines_add(lines_t *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    char *c = malloc(len + 1);
    assert_non_null(c);
    memcpy(c, s, len);
    c[len] = '\0';
    l->v[l->n++] = c;
}

static void lines_addf(lines_t *l, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    lines_add(l, buf, (size_t)n);
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lines_sort(lines_t *l)
{
    if (l->n > 0)
        qsort(l->v, l->n, sizeof(*l->v), by_str);
}

static void lines_free(lines_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Set by the result callbacks, which run in the merge phase on the
 * runtime's workers (no cmocka assertions there) when handed a key they
 * cannot have made; assert_same checks it. */
static atomic_int bad_keys;

static void assert_same(lines_t *got, lines_t *want)
{
    assert_int_equal(atomic_load(&bad_keys), 0);
    lines_sort(got);
    lines_sort(want);
    size_t i = 0;
    while (i < got->n && i < want->n && strcmp(got->v[i], want->v[i]) == 0)
        i++;
    if (i < got->n || i < want->n)
        print_error("first difference at line %zu: got '%s', want '%s' "
                    "(%zu vs %zu lines)\n",
                    i, i < got->n ? got->v[i] : "(end)",
                    i < want->n ? want->v[i] : "(end)", got->n, want->n);
    assert_int_equal(got->n, want->n);
    assert_int_equal(i, want->n);
}

/* The sink: a line per record. */
static void sink_lines(void *ctx, const fleet_record_t *r)
{
    lines_add(ctx, r->data, r->len);
}

/* ---- the aggregate: count and sum of values ------------------------------ */

typedef struct cs {
    int64_t count, sum;
} cs_t;

static void cs_init(void *ctx, void *acc)
{
    (void)ctx;
    memset(acc, 0, sizeof(cs_t));
}

static void cs_add(void *ctx, void *acc, const fleet_record_t *in)
{
    (void)ctx;
    cs_t *a = acc;
    a->count++;
    a->sum += ((const ev_t *)in->data)->value;
}

static void cs_merge(void *ctx, void *into, const void *acc)
{
    (void)ctx;
    cs_t *a = into;
    const cs_t *b = acc;
    a->count += b->count;
    a->sum += b->sum;
}

static void cs_result(void *ctx, const void *key, size_t len,
                      const fleet_window_span_t *span, const void *acc,
                      fleet_emitter_t *out)
{
    (void)ctx;
    if (len != sizeof(uint64_t)) {
        atomic_fetch_add(&bad_keys, 1);
        return;
    }
    uint64_t k;
    memcpy(&k, key, sizeof(k));
    const cs_t *a = acc;
    char buf[160];
    int n = span ? snprintf(buf, sizeof(buf), "%llu %lld %lld %lld %lld",
                            (unsigned long long)k, (long long)span->start,
                            (long long)span->end, (long long)a->count,
                            (long long)a->sum)
                 : snprintf(buf, sizeof(buf), "%llu %lld %lld",
                            (unsigned long long)k, (long long)a->count,
                            (long long)a->sum);
    fleet_emit(out, buf, (size_t)n, FLEET_TS_NONE);
}

/* cs_result for key_wide's keys: the same line, the number read back. */
static void cs_result_wide(void *ctx, const void *key, size_t len,
                           const fleet_window_span_t *span, const void *acc,
                           fleet_emitter_t *out)
{
    if (len < 1 || len > WIDE_MAX) {
        atomic_fetch_add(&bad_keys, 1);
        return;
    }
    uint64_t k = 0;
    for (const char *c = key; c < (const char *)key + len && *c != 'x'; c++)
        k = 10 * k + (uint64_t)(*c - '0');
    cs_result(ctx, &k, sizeof(k), span, acc, out);
}

static const fleet_aggregate_t count_sum_wide = {sizeof(cs_t), cs_init, cs_add,
                                                 cs_merge, cs_result_wide};

static const fleet_aggregate_t count_sum = {sizeof(cs_t), cs_init, cs_add,
                                            cs_merge, cs_result};

/* ---- the reference ------------------------------------------------------- */

typedef struct rwin {
    uint64_t key;
    int64_t start, end;
    cs_t acc;
    int64_t fired_end; /* INT64_MIN: never fired */
    int alive;
} rwin_t;

typedef struct ref {
    rwin_t *w;
    size_t n, cap;
    lines_t out;
    uint64_t late;
} ref_t;

static rwin_t *ref_new(ref_t *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->w = realloc(r->w, r->cap * sizeof(*r->w));
        assert_non_null(r->w);
    }
    rwin_t *w = &r->w[r->n++];
    memset(w, 0, sizeof(*w));
    w->fired_end = INT64_MIN;
    w->alive = 1;
    return w;
}

static void ref_emit(ref_t *r, const rwin_t *w)
{
    lines_addf(&r->out, "%llu %lld %lld %lld %lld", (unsigned long long)w->key,
               (long long)w->start, (long long)w->end, (long long)w->acc.count,
               (long long)w->acc.sum);
}

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Fires what the watermark has reached and forgets what it has passed by
 * more than the lateness. */
static void ref_advance(ref_t *r, int64_t wm, int64_t lat)
{
    for (size_t i = 0; i < r->n; i++) {
        rwin_t *w = &r->w[i];
        if (!w->alive)
            continue;
        if (w->end - 1 <= wm && w->fired_end != w->end) {
            ref_emit(r, w);
            w->fired_end = w->end;
        }
        if (wm != INT64_MAX && w->end - 1 + lat <= wm)
            w->alive = 0;
    }
    size_t live = 0; /* forget the dead, keeping the order */
    for (size_t i = 0; i < r->n; i++)
        if (r->w[i].alive)
            r->w[live++] = r->w[i];
    r->n = live;
}

static rwin_t *ref_find(ref_t *r, uint64_t key, int64_t start)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->w[i].alive && r->w[i].key == key && r->w[i].start == start)
            return &r->w[i];
    return NULL;
}

enum { REF_TUMBLING, REF_SLIDING, REF_SESSION };

static void reference_time(const gspec_t *g, int kind, int64_t size,
                           int64_t slide, int64_t gap, int64_t lat,
                           int64_t delay, ref_t *r)
{
    int64_t maxts = INT64_MIN;
    if (kind == REF_TUMBLING)
        slide = size;
    for (uint64_t i = 0; i < g->n; i++) {
        ev_t e;
        int64_t ts;
        event(g, i, &e, &ts);
        int64_t wm = maxts == INT64_MIN ? INT64_MIN : maxts - delay - 1;
        if (wm != INT64_MIN)
            ref_advance(r, wm, lat);
        if (maxts < ts)
            maxts = ts;
        if (kind == REF_SESSION) {
            int64_t s = ts, en = ts + gap;
            for (size_t k = 0; k < r->n; k++) {
                rwin_t *w = &r->w[k];
                if (w->alive && w->key == e.key && w->start <= ts + gap &&
                    w->end >= ts) {
                    s = w->start < s ? w->start : s;
                    en = w->end > en ? w->end : en;
                }
            }
            if (wm != INT64_MIN && en - 1 + lat <= wm) {
                r->late++;
                continue;
            }
            rwin_t *t = NULL;
            for (size_t k = 0; k < r->n; k++) {
                rwin_t *w = &r->w[k];
                if (!(w->alive && w->key == e.key && w->start <= ts + gap &&
                      w->end >= ts))
                    continue;
                if (t == NULL || w->start < t->start) {
                    if (t != NULL) {
                        w->acc.count += t->acc.count;
                        w->acc.sum += t->acc.sum;
                        t->alive = 0;
                    }
                    t = w;
                } else {
                    t->acc.count += w->acc.count;
                    t->acc.sum += w->acc.sum;
                    w->alive = 0;
                }
            }
            if (t == NULL) {
                t = ref_new(r);
                t->key = e.key;
            }
            t->start = s;
            t->end = en;
            t->acc.count++;
            t->acc.sum += e.value;
            if (wm != INT64_MIN && en - 1 <= wm) {
                ref_emit(r, t);
                t->fired_end = en;
            }
            continue;
        }
        int any = 0;
        for (int64_t ws = floordiv(ts, slide) * slide; ws > ts - size;
             ws -= slide) {
            if (wm != INT64_MIN && ws + size - 1 + lat <= wm)
                continue;
            rwin_t *w = ref_find(r, e.key, ws);
            if (w == NULL) {
                w = ref_new(r);
                w->key = e.key;
                w->start = ws;
                w->end = ws + size;
            }
            w->acc.count++;
            w->acc.sum += e.value;
            any = 1;
            if (wm != INT64_MIN && w->end - 1 <= wm) {
                ref_emit(r, w);
                w->fired_end = w->end;
            }
        }
        /* No window at all (gaps: slide > size): late only when behind the
         * watermark by more than the lateness, as Flink's isElementLate. */
        bool inwin = ts - floordiv(ts, slide) * slide < size;
        if (!any && (inwin || (wm != INT64_MIN && ts + lat <= wm)))
            r->late++;
    }
    ref_advance(r, INT64_MAX, lat);
}

static void reference_count(const gspec_t *g, int64_t size, int64_t slide,
                            ref_t *r)
{
    /* Per key, every element's value in order. */
    int64_t **vals = calloc(g->keys, sizeof(*vals));
    size_t *n = calloc(g->keys, sizeof(*n));
    assert_true(vals && n);
    for (uint64_t i = 0; i < g->n; i++) {
        ev_t e;
        int64_t ts;
        event(g, i, &e, &ts);
        vals[e.key] = realloc(vals[e.key], (n[e.key] + 1) * sizeof(int64_t));
        assert_non_null(vals[e.key]);
        vals[e.key][n[e.key]++] = e.value;
        size_t c = n[e.key];
        if (c % (size_t)slide == 0) {
            size_t m = c < (size_t)size ? c : (size_t)size;
            int64_t sum = 0;
            for (size_t j = c - m; j < c; j++)
                sum += vals[e.key][j];
            lines_addf(&r->out, "%llu %zu %zu %zu %lld",
                       (unsigned long long)e.key, c - m, c, m, (long long)sum);
        }
    }
    for (uint64_t k = 0; k < g->keys; k++) {
        size_t c = n[k];
        if (c > 0 && c % (size_t)slide != 0) {
            size_t m = c < (size_t)size ? c : (size_t)size;
            int64_t sum = 0;
            for (size_t j = c - m; j < c; j++)
                sum += vals[k][j];
            lines_addf(&r->out, "%llu %zu %zu %zu %lld", (unsigned long long)k,
                       c - m, c, m, (long long)sum);
        }
        free(vals[k]);
    }
    free(vals);
    free(n);
}

static void reference_reduce(const gspec_t *g, ref_t *r)
{
    cs_t *acc = calloc(g->keys, sizeof(*acc));
    assert_non_null(acc);
    for (uint64_t i = 0; i < g->n; i++) {
        ev_t e;
        int64_t ts;
        event(g, i, &e, &ts);
        acc[e.key].count++;
        acc[e.key].sum += e.value;
    }
    for (uint64_t k = 0; k < g->keys; k++)
        if (acc[k].count > 0)
            lines_addf(&r->out, "%llu %lld %lld", (unsigned long long)k,
                       (long long)acc[k].count, (long long)acc[k].sum);
    free(acc);
}

static void ref_free(ref_t *r)
{
    free(r->w);
    lines_free(&r->out);
}

/* ---- running the library ------------------------------------------------- */

typedef struct shape {
    unsigned tms, workers, parts, epoch_batches, checkpoint_ms;
    size_t batch;
    /* failures injected from the generator */
    uint64_t fail_at[2];
    unsigned fail_tm[2];
    fleet_fail_t fail_how[2];
    unsigned long long chaos_seed;
    bool wide; /* keys of many widths (key_wide) instead of 8 bytes */
} shape_t;

typedef struct result {
    lines_t out;
    fleet_stream_stats_t st;
    fleet_failure_stats_t fs;
} result_t;

static fleet_runtime_t *runtime_for(const shape_t *sh)
{
    fleet_config_t c;
    fleet_config_init(&c);
    c.task_managers = sh->tms ? sh->tms : 2;
    c.workers_per_tm = sh->workers ? sh->workers : 1;
    c.restart.kind = FLEET_RESTART_FIXED_DELAY;
    c.restart.delay_ms = 5;
    if (sh->chaos_seed) {
        c.chaos_seed = sh->chaos_seed;
        c.chaos_mtbf_us = 15000;
        c.chaos_weight[FLEET_FAIL_CRASH] = 2;
        c.chaos_weight[FLEET_FAIL_HANG] = 1;
        c.chaos_weight[FLEET_FAIL_SLOW] = 1;
        c.chaos_fault_us = 25000;
    }
    fleet_runtime_t *rt;
    assert_int_equal(fleet_runtime_create(&rt, &c), 0);
    return rt;
}

/* kind: 'r' reduce, 't' tumbling, 's' sliding, 'S' session, 'c' count. */
static void run_lib(const gspec_t *g, char kind, const fleet_window_t *w,
                    int64_t delay, const shape_t *sh, result_t *res)
{
    fleet_runtime_t *rt = runtime_for(sh);
    genctx_t gc = {.g = *g};
    if (sh->fail_at[0] || sh->fail_at[1]) {
        gc.rt = rt;
        memcpy(gc.fail_at, sh->fail_at, sizeof(gc.fail_at));
        memcpy(gc.fail_tm, sh->fail_tm, sizeof(gc.fail_tm));
        memcpy(gc.fail_how, sh->fail_how, sizeof(gc.fail_how));
    }
    fleet_stream_config_t c;
    fleet_stream_config_init(&c);
    c.partitions = sh->parts;
    if (sh->batch)
        c.batch_records = sh->batch;
    if (sh->epoch_batches)
        c.epoch_batches = sh->epoch_batches;
    c.checkpoint_ms = sh->checkpoint_ms;
    c.max_out_of_orderness = delay;
    fleet_stream_t *s;
    memset(res, 0, sizeof(*res));
    assert_int_equal(fleet_stream_create(&s, rt, &c), 0);
    assert_int_equal(fleet_stream_source_generator(s, g->n, gen, &gc), 0);
    assert_int_equal(fleet_stream_key_by(s, sh->wide ? key_wide : key_of, NULL),
                     0);
    const fleet_aggregate_t *agg = sh->wide ? &count_sum_wide : &count_sum;
    if (kind == 'r')
        assert_int_equal(fleet_stream_reduce(s, agg, NULL), 0);
    else
        assert_int_equal(fleet_stream_window(s, w, agg, NULL), 0);
    assert_int_equal(fleet_stream_sink(s, sink_lines, &res->out), 0);
    assert_int_equal(fleet_stream_run(s), 0);
    assert_int_equal(fleet_stream_stats(s, &res->st), 0);
    assert_int_equal(fleet_failure_stats(rt, &res->fs), 0);
    fleet_stream_destroy(s);
    fleet_runtime_destroy(rt);
}

/* Runs one window spec through the library in `sh` and checks it against
 * the reference: output lines, late count, records in and out. */
static void check(const gspec_t *g, char kind, const fleet_window_t *w,
                  int64_t delay, const shape_t *sh, result_t *keep)
{
    ref_t ref = {0};
    if (kind == 'r')
        reference_reduce(g, &ref);
    else if (kind == 'c')
        reference_count(g, w->size,
                        w->kind == FLEET_WINDOW_SLIDING ? w->slide : w->size,
                        &ref);
    else
        reference_time(g,
                       kind == 't'   ? REF_TUMBLING
                       : kind == 's' ? REF_SLIDING
                                     : REF_SESSION,
                       w->size, w->slide, w->gap, w->allowed_lateness, delay,
                       &ref);
    result_t res;
    run_lib(g, kind, w, delay, sh, &res);
    assert_same(&res.out, &ref.out);
    assert_int_equal(res.st.late_dropped, ref.late);
    assert_int_equal(res.st.records_in, g->n);
    assert_int_equal(res.st.records_out, ref.out.n);
    if (keep != NULL)
        *keep = res;
    else
        lines_free(&res.out);
    ref_free(&ref);
}

/* ---- tests --------------------------------------------------------------- */

static void twice(void *ctx, const fleet_record_t *in, fleet_emitter_t *out);

static void test_api_errors(void **state)
{
    (void)state;
    fleet_runtime_t *rt = runtime_for(&(shape_t){0});
    fleet_stream_t *s;
    fleet_stream_config_t c;
    fleet_stream_config_init(&c);
    assert_int_equal(fleet_stream_create(NULL, rt, NULL), -EINVAL);
    assert_int_equal(fleet_stream_create(&s, NULL, NULL), -EINVAL);
    c.batch_bytes = 0;
    assert_int_equal(fleet_stream_create(&s, rt, &c), -EINVAL);
    fleet_stream_config_init(&c);
    c.max_out_of_orderness = -1;
    assert_int_equal(fleet_stream_create(&s, rt, &c), -EINVAL);
    fleet_stream_config_init(&c);
    c.partitions = 65537;
    assert_int_equal(fleet_stream_create(&s, rt, &c), -EINVAL);
    fleet_stream_config_init(&c);
    c.max_out_of_orderness = FLEET_SPAN_MAX + 1;
    assert_int_equal(fleet_stream_create(&s, rt, &c), -EINVAL);
    /* An epoch of more than 2^40 bytes or indices; SIZE_MAX used to wrap
     * around to an epoch of none, and the stream ended at once. */
    size_t big[] = {SIZE_MAX, ((size_t)1 << 37) + 1};
    for (size_t k = 0; k < 2; k++) {
        fleet_stream_config_init(&c);
        c.batch_records = big[k];
        assert_int_equal(fleet_stream_create(&s, rt, &c), -EINVAL);
        fleet_stream_config_init(&c);
        c.batch_bytes = big[k];
        assert_int_equal(fleet_stream_create(&s, rt, &c), -EINVAL);
    }
    fleet_stream_config_init(&c);
    c.batch_records = (size_t)1 << 37; /* 8 per epoch: 2^40 */
    c.batch_bytes = (size_t)1 << 37;
    c.max_out_of_orderness = FLEET_SPAN_MAX;
    assert_int_equal(fleet_stream_create(&s, rt, &c), 0);
    fleet_stream_destroy(s);

    assert_int_equal(fleet_stream_create(&s, rt, NULL), 0);
    assert_int_equal(fleet_stream_run(s), -EINVAL); /* no source, no sink */
    genctx_t gc = {.g = {10, 1, 1, 1, 0, 1}};
    assert_int_equal(fleet_stream_source_generator(s, 10, NULL, &gc), -EINVAL);
    assert_int_equal(fleet_stream_source_generator(s, 10, gen, &gc), 0);
    assert_int_equal(fleet_stream_source_files(s, NULL, 0), -EEXIST);
    assert_int_equal(fleet_stream_map(s, NULL, NULL), -EINVAL);
    assert_int_equal(fleet_stream_reduce(s, &count_sum, NULL), -EINVAL);
    assert_int_equal(fleet_stream_key_by(s, key_of, NULL), 0);
    assert_int_equal(fleet_stream_key_by(s, key_of, NULL), -EEXIST);
    assert_int_equal(fleet_stream_sink(s, sink_lines, NULL), -EINVAL);
    fleet_window_t w = {.kind = FLEET_WINDOW_TUMBLING, .size = 0};
    assert_int_equal(fleet_stream_window(s, &w, &count_sum, NULL), -EINVAL);
    w = (fleet_window_t){.kind = FLEET_WINDOW_SLIDING, .size = 10};
    assert_int_equal(fleet_stream_window(s, &w, &count_sum, NULL), -EINVAL);
    w = (fleet_window_t){.kind = FLEET_WINDOW_SESSION, .gap = 3, .count = 1};
    assert_int_equal(fleet_stream_window(s, &w, &count_sum, NULL), -EINVAL);
    w = (fleet_window_t){
        .kind = FLEET_WINDOW_TUMBLING, .size = 5, .allowed_lateness = -1};
    assert_int_equal(fleet_stream_window(s, &w, &count_sum, NULL), -EINVAL);
    /* Time spans beyond FLEET_SPAN_MAX. */
    const fleet_window_t spans[] = {
        {.kind = FLEET_WINDOW_TUMBLING, .size = FLEET_SPAN_MAX + 1},
        {.kind = FLEET_WINDOW_SLIDING, .size = 10, .slide = INT64_MAX},
        {.kind = FLEET_WINDOW_SESSION, .gap = FLEET_SPAN_MAX + 1},
        {.kind = FLEET_WINDOW_TUMBLING,
         .size = 10,
         .allowed_lateness = FLEET_SPAN_MAX + 1},
    };
    for (size_t k = 0; k < sizeof(spans) / sizeof(spans[0]); k++)
        assert_int_equal(fleet_stream_window(s, &spans[k], &count_sum, NULL),
                         -EINVAL);
    /* Fields a kind does not use are not looked at. */
    const fleet_window_t unused[] = {
        {.kind = FLEET_WINDOW_TUMBLING,
         .size = 10,
         .slide = INT64_MAX,
         .gap = INT64_MAX},
        {.kind = FLEET_WINDOW_SESSION,
         .gap = 3,
         .size = INT64_MAX,
         .slide = INT64_MAX},
    };
    for (size_t k = 0; k < sizeof(unused) / sizeof(unused[0]); k++) {
        fleet_stream_t *u;
        assert_int_equal(fleet_stream_create(&u, rt, NULL), 0);
        assert_int_equal(fleet_stream_key_by(u, key_of, NULL), 0);
        assert_int_equal(fleet_stream_window(u, &unused[k], &count_sum, NULL),
                         0);
        fleet_stream_destroy(u);
    }
    fleet_aggregate_t bad = count_sum;
    bad.merge = NULL;
    assert_int_equal(fleet_stream_reduce(s, &bad, NULL), -EINVAL);
    assert_int_equal(fleet_stream_reduce(s, &count_sum, NULL), 0);
    assert_int_equal(fleet_stream_reduce(s, &count_sum, NULL), -EINVAL);
    lines_t out = {0};
    assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
    assert_int_equal(fleet_stream_sink(s, sink_lines, &out), -EEXIST);
    assert_int_equal(fleet_stream_map(s, twice, NULL), -EPERM);
    assert_int_equal(fleet_stream_run(s), 0);
    ref_t ref = {0};
    reference_reduce(&gc.g, &ref);
    assert_same(&out, &ref.out);
    ref_free(&ref);
    assert_int_equal(fleet_stream_run(s), -EALREADY);
    fleet_stream_destroy(s);
    lines_free(&out);

    /* A missing file: the run fails with open's errno. */
    const char *missing[] = {"/nonexistent/fleet-test-input"};
    assert_int_equal(fleet_stream_create(&s, rt, NULL), 0);
    assert_int_equal(fleet_stream_source_files(s, missing, 1), 0);
    assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
    assert_int_equal(fleet_stream_run(s), -ENOENT);
    fleet_stream_destroy(s);
    lines_free(&out);

    /* The largest epoch (2^40 bytes) over a small file: memory comes as
     * bytes are read (asking for the whole epoch at once failed with the
     * system malloc of the sanitizer builds; jemalloc only reserved it). */
    char path[] = "/tmp/fleet-stream-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "one\ntwo\n", 8), 8);
    close(fd);
    const char *small[] = {path};
    fleet_stream_config_init(&c);
    c.batch_bytes = (size_t)1 << 37;
    assert_int_equal(fleet_stream_create(&s, rt, &c), 0);
    assert_int_equal(fleet_stream_source_files(s, small, 1), 0);
    assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
    assert_int_equal(fleet_stream_run(s), 0);
    assert_int_equal(out.n, 2);
    fleet_stream_destroy(s);
    lines_free(&out);
    unlink(path);

    /* A 4 MiB line read 4 KiB at a time: the search for its end looks at
     * each byte about once (it searched the whole line after every read,
     * 2 GiB here). */
    memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t long_len = (size_t)4 << 20;
    char *line = malloc(long_len + 1);
    assert_non_null(line);
    memset(line, 'a', long_len);
    line[long_len] = '\n';
    assert_int_equal(write(fd, line, long_len + 1), (ssize_t)long_len + 1);
    assert_int_equal(write(fd, "b\n", 2), 2);
    close(fd);
    fleet_stream_config_init(&c);
    c.batch_bytes = 4096;
    assert_int_equal(fleet_stream_create(&s, rt, &c), 0);
    assert_int_equal(fleet_stream_source_files(s, small, 1), 0);
    assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
    assert_int_equal(fleet_stream_run(s), 0);
    assert_int_equal(out.n, 2);
    assert_int_equal(strlen(out.v[0]), long_len);
    assert_string_equal(out.v[1], "b");
    assert_true(fl_stream_nl_searched(s) <= 2 * (long_len + 3));
    fleet_stream_destroy(s);
    lines_free(&out);
    free(line);
    unlink(path);

    fleet_stream_destroy(NULL);
    fleet_runtime_destroy(rt);
}

/* A map that emits twice: -EPROTO. */
static void twice(void *ctx, const fleet_record_t *in, fleet_emitter_t *out)
{
    (void)ctx;
    fleet_emit(out, in->data, in->len, in->ts);
    fleet_emit(out, in->data, in->len, in->ts);
}

/* Moves every timestamp to *ctx (FLEET_TS_NONE: takes it away). */
static void set_ts(void *ctx, const fleet_record_t *in, fleet_emitter_t *out)
{
    fleet_emit(out, in->data, in->len, *(const int64_t *)ctx);
}

static void test_operator_errors(void **state)
{
    (void)state;
    fleet_runtime_t *rt = runtime_for(&(shape_t){0});
    genctx_t gc = {.g = {1000, 3, 1, 1, 0, 1}};
    lines_t out = {0};
    fleet_stream_t *s;
    assert_int_equal(fleet_stream_create(&s, rt, NULL), 0);
    assert_int_equal(fleet_stream_source_generator(s, 1000, gen, &gc), 0);
    assert_int_equal(fleet_stream_map(s, twice, NULL), 0);
    assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
    assert_int_equal(fleet_stream_run(s), -EPROTO);
    fleet_stream_destroy(s);
    lines_free(&out);

    /* An event-time window on records without a timestamp: -EINVAL; with
     * one outside [FLEET_TS_MIN, FLEET_TS_MAX]: -ERANGE (inside,
     * test_time_bounds). */
    fleet_window_t w = {.kind = FLEET_WINDOW_TUMBLING, .size = 10};
    const struct {
        int64_t ts;
        int err;
    } bad_ts[] = {{FLEET_TS_NONE, -EINVAL},
                  {FLEET_TS_MAX + 1, -ERANGE},
                  {INT64_MAX, -ERANGE},
                  {FLEET_TS_MIN - 1, -ERANGE},
                  {INT64_MIN + 1, -ERANGE}};
    for (size_t k = 0; k < sizeof(bad_ts) / sizeof(bad_ts[0]); k++) {
        assert_int_equal(fleet_stream_create(&s, rt, NULL), 0);
        assert_int_equal(fleet_stream_source_generator(s, 1000, gen, &gc), 0);
        assert_int_equal(fleet_stream_map(s, set_ts, (void *)&bad_ts[k].ts), 0);
        assert_int_equal(fleet_stream_key_by(s, key_of, NULL), 0);
        assert_int_equal(fleet_stream_window(s, &w, &count_sum, NULL), 0);
        assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
        assert_int_equal(fleet_stream_run(s), bad_ts[k].err);
        fleet_stream_destroy(s);
        lines_free(&out);
    }
    fleet_runtime_destroy(rt);
}

/* Stateless: map, filter and flat_map in order; the sink sees the records
 * in source order. */
static void st_map(void *ctx, const fleet_record_t *in, fleet_emitter_t *out)
{
    (void)ctx;
    ev_t e = *(const ev_t *)in->data;
    e.value *= 3;
    fleet_emit(out, &e, sizeof(e), in->ts);
}

static bool st_filter(void *ctx, const fleet_record_t *in)
{
    (void)ctx;
    return ((const ev_t *)in->data)->key % 3 != 0;
}

static void st_flat(void *ctx, const fleet_record_t *in, fleet_emitter_t *out)
{
    (void)ctx;
    const ev_t *e = in->data;
    char buf[64];
    for (uint64_t j = 0; j < e->key % 3; j++) {
        int n = snprintf(buf, sizeof(buf), "%lld.%llu", (long long)in->ts,
                         (unsigned long long)j);
        fleet_emit(out, buf, (size_t)n, in->ts);
    }
}

static void test_stateless_order(void **state)
{
    (void)state;
    gspec_t g = {50000, 7, 1, 3, 0, 1};
    lines_t want = {0};
    for (uint64_t i = 0; i < g.n; i++) {
        ev_t e;
        int64_t ts;
        event(&g, i, &e, &ts);
        for (uint64_t j = 0; e.key % 3 != 0 && j < e.key % 3; j++)
            lines_addf(&want, "%lld.%llu", (long long)ts,
                       (unsigned long long)j);
    }
    shape_t shapes[] = {{.tms = 1}, {.tms = 2, .batch = 7}, {.tms = 3}};
    for (size_t k = 0; k < 3; k++) {
        fleet_runtime_t *rt = runtime_for(&shapes[k]);
        genctx_t gc = {.g = g};
        fleet_stream_config_t c;
        fleet_stream_config_init(&c);
        if (shapes[k].batch)
            c.batch_records = shapes[k].batch;
        lines_t out = {0};
        fleet_stream_t *s;
        assert_int_equal(fleet_stream_create(&s, rt, &c), 0);
        assert_int_equal(fleet_stream_source_generator(s, g.n, gen, &gc), 0);
        assert_int_equal(fleet_stream_map(s, st_map, NULL), 0);
        assert_int_equal(fleet_stream_filter(s, st_filter, NULL), 0);
        assert_int_equal(fleet_stream_flat_map(s, st_flat, NULL), 0);
        assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
        assert_int_equal(fleet_stream_run(s), 0);
        assert_int_equal(out.n, want.n);
        for (size_t i = 0; i < out.n; i++) /* same order, not only set */
            assert_string_equal(out.v[i], want.v[i]);
        fleet_stream_stats_t st;
        assert_int_equal(fleet_stream_stats(s, &st), 0);
        assert_int_equal(st.records_in, g.n);
        assert_int_equal(st.records_out, want.n);
        fleet_stream_destroy(s);
        fleet_runtime_destroy(rt);
        lines_free(&out);
    }
    lines_free(&want);
}

/* Progress reports: counts that only grow, the last one complete. */
typedef struct prog {
    unsigned calls;
    uint64_t last_in, last_epochs;
    bool shrank;
} prog_t;

static void on_progress(void *ctx, const fleet_stream_stats_t *st)
{
    prog_t *p = ctx;
    p->shrank |= st->records_in < p->last_in || st->epochs < p->last_epochs;
    p->last_in = st->records_in;
    p->last_epochs = st->epochs;
    p->calls++;
}

static void test_progress(void **state)
{
    (void)state;
    gspec_t g = {50000, 9, 1, 5, 0, 1};
    fleet_runtime_t *rt = runtime_for(&(shape_t){.tms = 2});
    genctx_t gc = {.g = g};
    prog_t pr = {0};
    fleet_stream_config_t c;
    fleet_stream_config_init(&c);
    c.batch_records = 1000;
    c.epoch_batches = 2;
    c.progress = on_progress;
    c.progress_ctx = &pr;
    c.progress_ms = 0; /* every epoch */
    lines_t out = {0};
    fleet_stream_t *s;
    assert_int_equal(fleet_stream_create(&s, rt, &c), 0);
    assert_int_equal(fleet_stream_source_generator(s, g.n, gen, &gc), 0);
    assert_int_equal(fleet_stream_key_by(s, key_of, NULL), 0);
    assert_int_equal(fleet_stream_reduce(s, &count_sum, NULL), 0);
    assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
    assert_int_equal(fleet_stream_run(s), 0);
    assert_true(pr.calls >= 25); /* 25 epochs of 2000, then the end */
    assert_int_equal(atomic_load(&bad_keys), 0);
    assert_false(pr.shrank);
    assert_int_equal(pr.last_in, g.n);
    fleet_stream_stats_t st;
    assert_int_equal(fleet_stream_stats(s, &st), 0);
    assert_int_equal(pr.last_epochs, st.epochs);
    fleet_stream_destroy(s);
    fleet_runtime_destroy(rt);
    lines_free(&out);
}

/* fleet_stream_sink_file: each record's bytes and a newline, in order. */
static void num_gen(void *ctx, uint64_t i, fleet_emitter_t *out)
{
    (void)ctx;
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)i);
    fleet_emit(out, buf, (size_t)n, FLEET_TS_NONE);
}

static void test_sink_file(void **state)
{
    (void)state;
    fleet_runtime_t *rt = runtime_for(&(shape_t){.tms = 2});
    fleet_stream_config_t c;
    fleet_stream_config_init(&c);
    c.batch_records = 100;
    FILE *f = tmpfile();
    assert_non_null(f);
    fleet_stream_t *s;
    assert_int_equal(fleet_stream_create(&s, rt, &c), 0);
    assert_int_equal(fleet_stream_source_generator(s, 5000, num_gen, NULL), 0);
    assert_int_equal(fleet_stream_sink_file(s, NULL), -EINVAL);
    assert_int_equal(fleet_stream_sink_file(s, f), 0);
    assert_int_equal(fleet_stream_sink_file(s, f), -EEXIST);
    assert_int_equal(fleet_stream_sink(s, sink_lines, NULL), -EEXIST);
    assert_int_equal(fleet_stream_run(s), 0);
    rewind(f);
    char line[32];
    uint64_t i = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char want[32];
        snprintf(want, sizeof(want), "%llu\n", (unsigned long long)i++);
        assert_string_equal(line, want);
    }
    assert_int_equal(i, 5000);
    fclose(f);
    fleet_stream_destroy(s);
    fleet_runtime_destroy(rt);
}

/*
 * An epoch's map phase runs while the epoch before merges. The merge calls
 * of a reduce (from the second epoch on: its keys repeat) hold `merging`
 * up for 20 ms each; the generator, for each record of the fourth epoch
 * on, waits up to ~50 ms for it and counts the records that saw it. Run
 * one epoch at a time, none does.
 */
typedef struct overlap {
    atomic_int merging;
    atomic_int seen;
} overlap_t;

static overlap_t ov;

static void ov_gen(void *ctx, uint64_t i, fleet_emitter_t *out)
{
    (void)ctx;
    /* A bounded wait: this may run on the worker the merge phase is
     * queued for. */
    for (int waits = 0; i >= 30 && waits < 500; waits++) {
        if (atomic_load(&ov.merging) > 0) {
            atomic_fetch_add(&ov.seen, 1);
            break;
        }
        usleep(100);
    }
    uint64_t k = i % 4;
    fleet_emit(out, &k, sizeof(k), FLEET_TS_NONE);
}

static void ov_add(void *ctx, void *acc, const fleet_record_t *in)
{
    (void)ctx;
    uint64_t k;
    memcpy(&k, in->data, sizeof(k));
    ((cs_t *)acc)->count++;
    ((cs_t *)acc)->sum += (int64_t)k;
}

static void ov_merge(void *ctx, void *into, const void *acc)
{
    atomic_fetch_add(&ov.merging, 1);
    usleep(20000);
    cs_merge(ctx, into, acc);
    atomic_fetch_sub(&ov.merging, 1);
}

static void test_map_overlaps_merge(void **state)
{
    (void)state;
    static const fleet_aggregate_t agg = {sizeof(cs_t), cs_init, ov_add,
                                          ov_merge, cs_result};
    for (unsigned tms = 1; tms <= 2; tms++) {
        atomic_store(&ov.seen, 0);
        fleet_runtime_t *rt = runtime_for(&(shape_t){.tms = tms});
        fleet_stream_config_t c;
        fleet_stream_config_init(&c);
        c.batch_records = 10;
        c.epoch_batches = 1;
        lines_t out = {0};
        fleet_stream_t *s;
        assert_int_equal(fleet_stream_create(&s, rt, &c), 0);
        assert_int_equal(fleet_stream_source_generator(s, 60, ov_gen, NULL), 0);
        assert_int_equal(fleet_stream_key_by(s, NULL, NULL), 0);
        assert_int_equal(fleet_stream_reduce(s, &agg, NULL), 0);
        assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
        assert_int_equal(fleet_stream_run(s), 0);
        lines_t want = {0};
        for (int k = 0; k < 4; k++)
            lines_addf(&want, "%d 15 %d", k, 15 * k);
        assert_same(&out, &want);
        lines_free(&want);
        assert_true(atomic_load(&ov.seen) > 0);
        fleet_stream_destroy(s);
        fleet_runtime_destroy(rt);
        lines_free(&out);
    }
}

static void test_reduce(void **state)
{
    (void)state;
    gspec_t g = {60000 / SLOW, 500, 1, 5, 0, 1};
    check(&g, 'r', NULL, 0, &(shape_t){.tms = 2}, NULL);
    check(&g, 'r', NULL, 0, &(shape_t){.tms = 3, .parts = 1, .batch = 333},
          NULL);
}

/* Tumbling and sliding event-time windows, pre-aggregated (no lateness),
 * with records beyond the watermark's bound (late ones dropped). */
static void test_time_windows(void **state)
{
    (void)state;
    gspec_t g = {40000 / SLOW, 20, 300, 7, 0, 1};
    fleet_window_t tw = {.kind = FLEET_WINDOW_TUMBLING, .size = 100};
    fleet_window_t sw = {
        .kind = FLEET_WINDOW_SLIDING, .size = 100, .slide = 30};
    result_t r;
    check(&g, 't', &tw, 250, &(shape_t){.tms = 2}, &r);
    assert_true(r.st.late_dropped > 0); /* the test has late records */
    lines_free(&r.out);
    check(&g, 's', &sw, 250, &(shape_t){.tms = 2, .batch = 1000}, NULL);
    /* Slide longer than the size: records in the gaps belong to no window
     * (late only if behind the watermark). */
    fleet_window_t gw = {.kind = FLEET_WINDOW_SLIDING, .size = 30, .slide = 50};
    check(&g, 's', &gw, 250, &(shape_t){.tms = 2, .batch = 700}, NULL);
    gw.allowed_lateness = 40;
    check(&g, 's', &gw, 100, &(shape_t){.tms = 3}, NULL);
    check(&g, 't', &tw, 400, &(shape_t){.tms = 1, .batch = 50}, &r);
    assert_int_equal(r.st.late_dropped, 0);
    lines_free(&r.out);
}

/* Allowed lateness: records within it fire their window again. */
static void test_allowed_lateness(void **state)
{
    (void)state;
    gspec_t g = {30000 / SLOW, 10, 400, 11, 0, 1};
    fleet_window_t tw = {
        .kind = FLEET_WINDOW_TUMBLING, .size = 100, .allowed_lateness = 150};
    fleet_window_t sw = {.kind = FLEET_WINDOW_SLIDING,
                         .size = 90,
                         .slide = 40,
                         .allowed_lateness = 60};
    result_t r;
    check(&g, 't', &tw, 200, &(shape_t){.tms = 2}, &r);
    assert_true(r.st.late_dropped > 0);
    lines_free(&r.out);
    check(&g, 's', &sw, 200, &(shape_t){.tms = 2, .batch = 512}, NULL);
}

static void test_sessions(void **state)
{
    (void)state;
    /* Sparse keys so that sessions end: event i at 3 * i, 40 keys. */
    gspec_t g = {20000 / SLOW, 40, 90, 13, 0, 3};
    fleet_window_t w = {.kind = FLEET_WINDOW_SESSION, .gap = 100};
    check(&g, 'S', &w, 50, &(shape_t){.tms = 2}, NULL);
    w.allowed_lateness = 40;
    check(&g, 'S', &w, 30, &(shape_t){.tms = 3, .batch = 256}, NULL);
}

static void test_count_windows(void **state)
{
    (void)state;
    gspec_t g = {30000 / SLOW, 37, 1, 17, 0, 1};
    fleet_window_t sw = {
        .kind = FLEET_WINDOW_SLIDING, .count = true, .size = 25, .slide = 15};
    fleet_window_t tw = {
        .kind = FLEET_WINDOW_TUMBLING, .count = true, .size = 40};
    check(&g, 'c', &sw, 0, &(shape_t){.tms = 2}, NULL);
    check(&g, 'c', &tw, 0, &(shape_t){.tms = 1, .batch = 100}, NULL);
}

/* Edge cases: times exactly at window bounds, negative times, a stream
 * whose time stands still (the watermark stalls until the end), empty
 * windows, a stream of one record and an empty stream. */
static void test_window_edges(void **state)
{
    (void)state;
    fleet_window_t tw = {.kind = FLEET_WINDOW_TUMBLING, .size = 10};
    fleet_window_t sw = {.kind = FLEET_WINDOW_SLIDING, .size = 10, .slide = 5};
    /* step 10, no disorder: every record starts a window exactly; base -55:
     * negative times and bounds. */
    gspec_t g = {2000, 3, 0, 2, -55, 10};
    check(&g, 't', &tw, 0, &(shape_t){.tms = 2}, NULL);
    check(&g, 's', &sw, 0, &(shape_t){.tms = 2, .batch = 3}, NULL);
    /* Gaps between records longer than a window: empty windows give no
     * output. step 25, windows of 10. */
    g = (gspec_t){3000, 2, 0, 4, 0, 25};
    check(&g, 't', &tw, 5, &(shape_t){.tms = 2, .batch = 64}, NULL);
    /* Time stands still: nothing fires before the end. */
    g = (gspec_t){5000, 5, 1, 6, 1000, 0};
    result_t r;
    check(&g, 't', &tw, 0, &(shape_t){.tms = 2, .batch = 100}, &r);
    assert_int_equal(r.out.n, 5);
    lines_free(&r.out);
    /* One record; none. */
    g = (gspec_t){1, 1, 1, 7, 9, 1};
    check(&g, 't', &tw, 0, &(shape_t){0}, NULL);
    g.n = 0;
    check(&g, 's', &sw, 0, &(shape_t){0}, NULL);
    check(&g, 'r', NULL, 0, &(shape_t){0}, NULL);
}

/* Event times at both ends of [FLEET_TS_MIN, FLEET_TS_MAX], windows and
 * delays up to FLEET_SPAN_MAX: the window arithmetic stays in range (UBSan
 * checks it in its build) and the results equal the reference's. */
static void test_time_bounds(void **state)
{
    (void)state;
    const int64_t big = FLEET_SPAN_MAX;
    const struct {
        char kind;
        fleet_window_t w;
        int64_t delay;
    } cases[] = {
        {'t', {.kind = FLEET_WINDOW_TUMBLING, .size = 10}, 3},
        {'s', {.kind = FLEET_WINDOW_SLIDING, .size = 10, .slide = 5}, 0},
        {'t', /* record by record: allowed lateness */
         {.kind = FLEET_WINDOW_TUMBLING, .size = 10, .allowed_lateness = 4},
         2},
        {'S', {.kind = FLEET_WINDOW_SESSION, .gap = 3}, 1},
        {'t', {.kind = FLEET_WINDOW_TUMBLING, .size = big}, big},
        {'s',
         {.kind = FLEET_WINDOW_SLIDING,
          .size = big,
          .slide = big / 2,
          .allowed_lateness = big},
         big},
        {'S',
         {.kind = FLEET_WINDOW_SESSION, .gap = big, .allowed_lateness = big},
         big},
    };
    const uint64_t n = 3000, disorder = 7;
    /* step 1: about n * step of time from base; disorder subtracts up to
     * disorder - 1. */
    const int64_t bases[] = {FLEET_TS_MAX - (int64_t)n, FLEET_TS_MIN + 7};
    for (size_t b = 0; b < 2; b++)
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            gspec_t g = {n, 5, disorder, 40 + k, bases[b], 1};
            check(&g, cases[k].kind, &cases[k].w, cases[k].delay,
                  &(shape_t){.tms = 2, .batch = 100}, NULL);
        }
}

/* WindFlow's idea: any parallelism, batch size, epoch size and partition
 * count gives the same result. */
static void test_random_shapes(void **state)
{
    (void)state;
    uint64_t rng = 20261125;
    for (int it = 0; it < 12; it++) {
        shape_t sh = {
            .tms = 1 + (unsigned)rng_below(&rng, 3),
            .workers = 1 + (unsigned)rng_below(&rng, 2),
            .parts = (unsigned)rng_below(&rng, 20),
            .batch = 1 + (size_t)rng_below(&rng, 3000),
            .epoch_batches = 1 + (unsigned)rng_below(&rng, 6),
            .checkpoint_ms = (unsigned)rng_below(&rng, 3),
        };
        gspec_t g = {
            5000 + rng_below(&rng, 20000), 1 + rng_below(&rng, 60),
            1 + rng_below(&rng, 200),      rng_below(&rng, 1000),
            -(int64_t)rng_below(&rng, 99), 1 + (int64_t)rng_below(&rng, 3)};
        int64_t delay = (int64_t)rng_below(&rng, 150);
        fleet_window_t w = {0};
        char kind = "rtsSc"[it % 5];
        switch (kind) {
        case 't':
            w.kind = FLEET_WINDOW_TUMBLING;
            w.size = 1 + (int64_t)rng_below(&rng, 200);
            w.allowed_lateness = (int64_t)rng_below(&rng, 2) * 50;
            break;
        case 's':
            w.kind = FLEET_WINDOW_SLIDING;
            w.slide = 1 + (int64_t)rng_below(&rng, 50);
            w.size = 1 + (int64_t)rng_below(&rng, 150); /* gaps too */
            w.allowed_lateness = (int64_t)rng_below(&rng, 2) * 30;
            break;
        case 'S':
            w.kind = FLEET_WINDOW_SESSION;
            w.gap = 1 + (int64_t)rng_below(&rng, 100);
            w.allowed_lateness = (int64_t)rng_below(&rng, 2) * 20;
            break;
        case 'c':
            w.kind = rng_below(&rng, 2) ? FLEET_WINDOW_SLIDING
                                        : FLEET_WINDOW_TUMBLING;
            w.count = true;
            w.size = 1 + (int64_t)rng_below(&rng, 30);
            w.slide = 1 + (int64_t)rng_below(&rng, 30);
            break;
        }
        check(&g, kind, &w, delay, &sh, NULL);
    }
}

/* ---- failures ------------------------------------------------------------ */

/* A TaskManager crashes mid-window (its partitions' state is lost and
 * restored from the checkpoint): the output is still exact. */
static void test_crash_mid_window(void **state)
{
    (void)state;
    gspec_t g = {400000 / SLOW, 50, 200, 21, 0, 1};
    fleet_window_t w = {.kind = FLEET_WINDOW_TUMBLING, .size = 5000};
    shape_t sh = {.tms = 2,
                  .batch = 2000,
                  .epoch_batches = 4,
                  .checkpoint_ms = 1,
                  .fail_at = {150000 / SLOW},
                  .fail_tm = {1},
                  .fail_how = {FLEET_FAIL_CRASH}};
    result_t r;
    check(&g, 't', &w, 300, &sh, &r);
    assert_int_equal(r.fs.detected[FLEET_FAIL_CRASH], 1);
    assert_true(r.st.restores > 0);
    assert_true(r.st.epochs_replayed > 0);
    lines_free(&r.out);
    /* The same with the per-record path (allowed lateness) and sessions. */
    w.allowed_lateness = 100;
    sh.fail_tm[0] = 0;
    check(&g, 't', &w, 300, &sh, &r);
    assert_true(r.st.restores > 0);
    lines_free(&r.out);
    fleet_window_t sw = {.kind = FLEET_WINDOW_SESSION, .gap = 30};
    g.keys = 5000;
    check(&g, 'S', &sw, 100, &sh, &r);
    assert_true(r.st.restores > 0);
    lines_free(&r.out);
}

/* Keys of every width (key_wide: one word, two, kept outside the entry,
 * longer than a combiner's stack buffer once the window start is appended)
 * through every keyed kind - reduce and time windows pre-aggregated,
 * allowed lateness, sessions and count windows record by record - and
 * through a crash and restore, against the reference on the same events. */
static void test_wide_keys(void **state)
{
    (void)state;
    gspec_t g = {20000 / SLOW, 50, 300, 41, 0, 1};
    fleet_window_t tw = {.kind = FLEET_WINDOW_TUMBLING, .size = 100};
    fleet_window_t sw = {
        .kind = FLEET_WINDOW_SLIDING, .size = 100, .slide = 30};
    fleet_window_t lw = {
        .kind = FLEET_WINDOW_TUMBLING, .size = 100, .allowed_lateness = 50};
    fleet_window_t cw = {
        .kind = FLEET_WINDOW_SLIDING, .count = true, .size = 5, .slide = 2};
    shape_t sh = {.tms = 2, .batch = 700, .wide = true};
    check(&g, 'r', &tw, 0, &sh, NULL);
    check(&g, 't', &tw, 250, &sh, NULL);
    check(&g, 's', &sw, 250, &(shape_t){.tms = 3, .wide = true}, NULL);
    check(&g, 't', &lw, 100, &sh, NULL);
    check(&g, 'c', &cw, 0, &sh, NULL);
    gspec_t sg = {10000 / SLOW, 40, 90, 13, 0, 3};
    fleet_window_t ses = {.kind = FLEET_WINDOW_SESSION, .gap = 100};
    check(&sg, 'S', &ses, 50, &sh, NULL);
    shape_t crash = {.tms = 2,
                     .batch = 500,
                     .epoch_batches = 4,
                     .checkpoint_ms = 1,
                     .fail_at = {12000 / SLOW},
                     .fail_tm = {1},
                     .fail_how = {FLEET_FAIL_CRASH},
                     .wide = true};
    result_t r;
    check(&g, 't', &tw, 250, &crash, &r);
    assert_true(r.st.restores > 0);
    lines_free(&r.out);
}

/* Twice in a row: the second failure comes while the first is being
 * recovered from (no checkpoint in between). */
static void test_crash_twice(void **state)
{
    (void)state;
    gspec_t g = {400000 / SLOW, 300, 100, 23, 0, 1};
    shape_t sh = {.tms = 2,
                  .batch = 2000,
                  .epoch_batches = 4,
                  .checkpoint_ms = 0,
                  .fail_at = {100000 / SLOW, 100000 / SLOW + 1},
                  .fail_tm = {1, 0},
                  .fail_how = {FLEET_FAIL_CRASH, FLEET_FAIL_CRASH}};
    result_t r;
    check(&g, 'r', NULL, 0, &sh, &r);
    assert_true(r.fs.detected[FLEET_FAIL_CRASH] >= 2);
    assert_true(r.st.restores >= 2 * 8); /* 8 partitions per TaskManager */
    lines_free(&r.out);
    /* A hang, then a crash of the other TaskManager. */
    fleet_window_t w = {
        .kind = FLEET_WINDOW_SLIDING, .size = 4000, .slide = 1000};
    sh.fail_how[0] = FLEET_FAIL_HANG;
    sh.fail_at[1] = 250000 / SLOW;
    sh.checkpoint_ms = 2;
    check(&g, 's', &w, 100, &sh, &r);
    assert_true(r.st.restores > 0);
    lines_free(&r.out);
}

/* Mid-checkpoint: a TaskManager crashes as a checkpoint starts, so its
 * snapshot waits until the failure is detected; the checkpoint is aborted,
 * its partitions are restored from the previous one and replayed. Twice in
 * a row: the next checkpoint attempt loses the other TaskManager. */
typedef struct ckfail {
    fleet_runtime_t *rt;
    unsigned at[2]; /* checkpoint attempts */
    unsigned tm[2];
} ckfail_t;

static void fail_in_checkpoint(void *ctx, unsigned n)
{
    ckfail_t *c = ctx;
    for (int j = 0; j < 2; j++)
        if (n == c->at[j])
            assert_int_equal(fleet_tm_fail(c->rt, c->tm[j], FLEET_FAIL_CRASH),
                             0);
}

/* Runs g's events by key_of through window w (NULL: reduce) with config c
 * on rt, hook(hook_ctx, attempt) called as each checkpoint attempt starts;
 * *sp is the stream while it runs (for the hook). */
static void run_hooked(fleet_runtime_t *rt, const fleet_stream_config_t *c,
                       const gspec_t *g, const fleet_window_t *w,
                       void (*hook)(void *, unsigned), void *hook_ctx,
                       fleet_stream_t **sp, result_t *res)
{
    genctx_t gc = {.g = *g};
    fleet_stream_t *s;
    memset(res, 0, sizeof(*res));
    assert_int_equal(fleet_stream_create(&s, rt, c), 0);
    *sp = s;
    fl_stream_checkpoint_hook(s, hook, hook_ctx);
    assert_int_equal(fleet_stream_source_generator(s, g->n, gen, &gc), 0);
    assert_int_equal(fleet_stream_key_by(s, key_of, NULL), 0);
    if (w != NULL)
        assert_int_equal(fleet_stream_window(s, w, &count_sum, NULL), 0);
    else
        assert_int_equal(fleet_stream_reduce(s, &count_sum, NULL), 0);
    assert_int_equal(fleet_stream_sink(s, sink_lines, &res->out), 0);
    assert_int_equal(fleet_stream_run(s), 0);
    assert_int_equal(fleet_stream_stats(s, &res->st), 0);
    fleet_stream_destroy(s);
    *sp = NULL;
}

static void test_fail_mid_checkpoint(void **state)
{
    (void)state;
    gspec_t g = {300000 / SLOW, 100, 100, 29, 0, 1};
    fleet_window_t w = {.kind = FLEET_WINDOW_TUMBLING, .size = 3000};
    ref_t ref = {0};
    reference_time(&g, REF_TUMBLING, w.size, 0, 0, 0, 100, &ref);
    for (int twice = 0; twice < 2; twice++) {
        fleet_runtime_t *rt = runtime_for(&(shape_t){.tms = 2});
        ckfail_t cf = {rt, {3, twice ? 4 : 1000}, {1, 0}};
        fleet_stream_config_t c;
        fleet_stream_config_init(&c);
        c.batch_records = 4096 / SLOW;
        c.epoch_batches = 2;
        c.checkpoint_ms = 1;
        c.max_out_of_orderness = 100;
        fleet_stream_t *s;
        result_t r;
        run_hooked(rt, &c, &g, &w, fail_in_checkpoint, &cf, &s, &r);
        assert_int_equal(r.st.checkpoints_aborted, twice ? 2 : 1);
        assert_int_equal(r.st.restores, twice ? 16 : 8);
        assert_true(r.st.epochs_replayed > 0);
        assert_same(&r.out, &ref.out);
        assert_int_equal(r.st.late_dropped, ref.late);
        fleet_runtime_destroy(rt);
        lines_free(&r.out);
    }
    ref_free(&ref);
}

/* A checkpoint commits TaskManager by TaskManager: when one fails during
 * it, the partitions of the others still commit, and their output up to
 * that epoch reaches the sink at once; only the failed one's partitions
 * replay and wait for the next attempt. */
typedef struct ckwatch {
    fleet_runtime_t *rt;
    fleet_stream_t *s;
    unsigned fail_at;   /* attempt during which TaskManager 1 fails */
    uint64_t out_at[8]; /* records_out as attempt n starts */
} ckwatch_t;

static void watch_checkpoint(void *ctx, unsigned n)
{
    ckwatch_t *c = ctx;
    fleet_stream_stats_t st;
    assert_int_equal(fleet_stream_stats(c->s, &st), 0);
    if (n < 8)
        c->out_at[n] = st.records_out;
    if (n == c->fail_at)
        assert_int_equal(fleet_tm_fail(c->rt, 1, FLEET_FAIL_CRASH), 0);
}

static void test_checkpoint_per_tm(void **state)
{
    (void)state;
    /* Windows fire in every epoch, in every partition. */
    gspec_t g = {60000 / SLOW, 64, 20, 37, 0, 1};
    fleet_window_t w = {.kind = FLEET_WINDOW_TUMBLING, .size = 200};
    ref_t ref = {0};
    reference_time(&g, REF_TUMBLING, w.size, 0, 0, 0, 20, &ref);
    fleet_runtime_t *rt = runtime_for(&(shape_t){.tms = 2});
    ckwatch_t cw = {.rt = rt, .fail_at = 3};
    fleet_stream_config_t c;
    fleet_stream_config_init(&c);
    c.batch_records = 1000 / SLOW;
    c.epoch_batches = 2;
    c.checkpoint_ms = 1;
    c.max_out_of_orderness = 20;
    result_t r;
    run_hooked(rt, &c, &g, &w, watch_checkpoint, &cw, &cw.s, &r);
    assert_int_equal(r.st.checkpoints_aborted, 1);
    assert_int_equal(r.st.restores, 8);
    /* Attempt 3 lost TaskManager 1, yet TaskManager 0's partitions
     * committed their output: the sink had more as attempt 4 began. */
    assert_true(cw.out_at[2] < cw.out_at[3]);
    assert_true(cw.out_at[3] < cw.out_at[4]);
    assert_same(&r.out, &ref.out);
    assert_int_equal(r.st.late_dropped, ref.late);
    fleet_runtime_destroy(rt);
    lines_free(&r.out);
    ref_free(&ref);

    /* At the end of the stream, each TaskManager fails during one of the
     * two final checkpoint attempts: the first commits TaskManager 0's
     * partitions, the second TaskManager 1's - after which every
     * checkpoint covers the last epoch while TaskManager 0's partitions
     * were just restored (from that very checkpoint). The stream must end
     * there, each result once. */
    g = (gspec_t){40000 / SLOW, 300, 0, 43, 0, 1};
    ref = (ref_t){0};
    reference_reduce(&g, &ref);
    rt = runtime_for(&(shape_t){.tms = 2});
    ckfail_t cf = {rt, {0, 1}, {1, 0}};
    fleet_stream_config_init(&c);
    c.batch_records = 1000 / SLOW;
    c.checkpoint_ms = 0; /* only the final checkpoint: attempts 0, 1, 2 */
    fleet_stream_t *s;
    run_hooked(rt, &c, &g, NULL, fail_in_checkpoint, &cf, &s, &r);
    assert_int_equal(r.st.checkpoints_aborted, 2);
    assert_int_equal(r.st.checkpoints, 1);
    assert_int_equal(r.st.restores, 16);
    assert_same(&r.out, &ref.out);
    assert_int_equal(r.st.records_out, ref.out.n);
    fleet_runtime_destroy(rt);
    lines_free(&r.out);
    ref_free(&ref);
}

/* A lines source over several files (one byte stream: a file without a
 * final newline joins the next one's first line), a crash inside a
 * checkpoint: the restored partitions replay epochs whose bytes were
 * dropped and are read again from the files at their recorded offsets. */
static void line_key(void *ctx, const fleet_record_t *in, const void **key,
                     size_t *len)
{
    (void)ctx;
    *key = in->data;
    *len = in->len < 2 ? in->len : 2;
}

static void lc_add(void *ctx, void *acc, const fleet_record_t *in)
{
    (void)ctx;
    cs_t *a = acc;
    a->count++;
    a->sum += (int64_t)in->len;
}

static void lc_result(void *ctx, const void *key, size_t len,
                      const fleet_window_span_t *span, const void *acc,
                      fleet_emitter_t *out)
{
    (void)ctx;
    (void)span;
    const cs_t *a = acc;
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%zu:%.*s %lld %lld", len, (int)len,
                     (const char *)key, (long long)a->count, (long long)a->sum);
    fleet_emit(out, buf, (size_t)n, FLEET_TS_NONE);
}

static const fleet_aggregate_t line_count = {sizeof(cs_t), cs_init, lc_add,
                                             cs_merge, lc_result};

static void test_file_replay(void **state)
{
    (void)state;
    char dir[] = "/tmp/fleet-test-stream-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char paths[4][64];
    const char *pv[4];
    uint64_t r = 77;
    /* The whole byte stream, to count from. */
    size_t cap = 4u << 20, total = 0;
    char *all = malloc(cap);
    assert_non_null(all);
    for (int f = 0; f < 4; f++) {
        snprintf(paths[f], sizeof(paths[f]), "%s/in%d", dir, f);
        pv[f] = paths[f];
        FILE *fp = fopen(paths[f], "w");
        assert_non_null(fp);
        size_t lines = f == 1 ? 0 : 20000 + 5000 * (size_t)f; /* 1: empty */
        for (size_t i = 0; i < lines; i++) {
            char line[64];
            size_t n = 1 + rng_below(&r, 40);
            for (size_t j = 0; j < n; j++)
                line[j] = (char)('a' + rng_below(&r, 5));
            /* file 2 ends without a newline */
            bool nl = !(f == 2 && i + 1 == lines);
            if (nl)
                line[n++] = '\n';
            assert_int_equal(fwrite(line, 1, n, fp), n);
            memcpy(all + total, line, n);
            total += n;
        }
        assert_int_equal(fclose(fp), 0);
    }
    /* The reference: lines of the stream, keyed by their first 2 bytes. */
    lines_t want = {0};
    {
        int64_t cnt[5][6] = {{0}}, sum[5][6] = {{0}};
        size_t start = 0;
        for (size_t i = 0; i <= total; i++) {
            if (i < total && all[i] != '\n')
                continue;
            if (i == total && start == total)
                break;
            size_t n = i - start;
            int a = all[start] - 'a', b = n > 1 ? all[start + 1] - 'a' + 1 : 0;
            cnt[a][b]++;
            sum[a][b] += (int64_t)n;
            start = i + 1;
        }
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 6; b++)
                if (cnt[a][b] > 0)
                    lines_addf(&want, "%d:%c%.*s %lld %lld", b ? 2 : 1, 'a' + a,
                               b ? 1 : 0, (char[]){(char)('a' + b - 1)},
                               (long long)cnt[a][b], (long long)sum[a][b]);
    }
    free(all);

    fleet_runtime_t *rt = runtime_for(&(shape_t){.tms = 2});
    ckfail_t cf = {rt, {2, 1000}, {1, 0}};
    fleet_stream_config_t c;
    fleet_stream_config_init(&c);
    c.batch_bytes = 16384;
    c.epoch_batches = 2;
    c.checkpoint_ms = 1;
    lines_t out = {0};
    fleet_stream_t *s;
    assert_int_equal(fleet_stream_create(&s, rt, &c), 0);
    fl_stream_checkpoint_hook(s, fail_in_checkpoint, &cf);
    assert_int_equal(fleet_stream_source_files(s, pv, 4), 0);
    assert_int_equal(fleet_stream_key_by(s, line_key, NULL), 0);
    assert_int_equal(fleet_stream_reduce(s, &line_count, NULL), 0);
    assert_int_equal(fleet_stream_sink(s, sink_lines, &out), 0);
    assert_int_equal(fleet_stream_run(s), 0);
    fleet_stream_stats_t st;
    assert_int_equal(fleet_stream_stats(s, &st), 0);
    assert_int_equal(st.checkpoints_aborted, 1);
    assert_true(st.epochs_replayed > 0);
    assert_same(&out, &want);
    fleet_stream_destroy(s);
    fleet_runtime_destroy(rt);
    lines_free(&out);
    lines_free(&want);
    for (int f = 0; f < 4; f++)
        unlink(paths[f]);
    rmdir(dir);
}

/* Seeded chaos: crashes, hangs and slow TaskManagers at random. */
static void test_chaos(void **state)
{
    (void)state;
    gspec_t g = {600000 / SLOW, 200, 300, 31, 0, 1};
    fleet_window_t tw = {.kind = FLEET_WINDOW_TUMBLING, .size = 2000};
    fleet_window_t sw = {.kind = FLEET_WINDOW_SESSION, .gap = 10};
    uint64_t injected = 0, restores = 0;
    for (unsigned long long seed = 1; seed <= 4; seed++) {
        shape_t sh = {.tms = 2 + (unsigned)(seed % 2),
                      .batch = 1024,
                      .epoch_batches = 4,
                      .checkpoint_ms = (unsigned)(seed % 3) * 5,
                      .chaos_seed = seed};
        result_t r;
        check(&g, seed % 2 ? 't' : 'S', seed % 2 ? &tw : &sw, 200, &sh, &r);
        injected += r.fs.injected[0] + r.fs.injected[1] + r.fs.injected[2];
        restores += r.st.restores;
        lines_free(&r.out);
    }
    print_message("chaos: %llu failures injected, %llu partitions restored\n",
                  (unsigned long long)injected, (unsigned long long)restores);
    assert_true(injected > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_operator_errors),
        cmocka_unit_test(test_stateless_order),
        cmocka_unit_test(test_sink_file),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_map_overlaps_merge),
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_time_windows),
        cmocka_unit_test(test_allowed_lateness),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_count_windows),
        cmocka_unit_test(test_window_edges),
        cmocka_unit_test(test_time_bounds),
        cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_crash_mid_window),
        cmocka_unit_test(test_wide_keys),
        cmocka_unit_test(test_crash_twice),
        cmocka_unit_test(test_fail_mid_checkpoint),
        cmocka_unit_test(test_checkpoint_per_tm),
        cmocka_unit_test(test_file_replay),
        cmocka_unit_test(test_chaos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
