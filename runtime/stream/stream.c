/*
 * stream: the stream layer of fleet/stream.h, as micro-batches on the
 * runtime.
 *
 * An epoch is a run of source batches. Its map phase is one
 * fleet_parallel_for over the batches: each runs the fused chain of
 * stateless operators and leaves, per key partition, either a table of
 * pre-aggregated accumulators (reduce; tumbling and sliding event-time
 * windows without allowed lateness) or the records themselves, in source
 * order (chunk_out). A batch's output is a pure function of its input, so a
 * batch the runtime runs twice (an attempt fenced after a failure) makes an
 * identical copy: the first one published wins, the other is freed. The
 * merge phase is one pinned job per TaskManager (fleet_submit_on) whose
 * items are the partitions it owns: each merges the epoch's batches into
 * its keyed state in batch order, fires the windows the watermark has
 * passed, and marks the epoch applied. A partition that already applied an
 * epoch skips it, so merging is idempotent even if an item runs twice.
 *
 * Watermarks are per record and deterministic: the map phase records, for
 * each record reaching key_by, the largest timestamp before it within its
 * batch (m); the driver then knows each batch's prefix maximum (P, over all
 * earlier batches), and the record's watermark is max(P, m) - delay - 1.
 * A pre-aggregated window entry holds only records with m below the
 * window's lateness bound; the whole entry is late when P reaches it.
 *
 * Failures: when fleet_tm_status reports that a TaskManager was declared
 * failed, the state of its partitions is taken as lost and restored from
 * their last checkpoint; they then replay the retained epochs after it (the
 * map phase runs again, building only their partitions). A checkpoint
 * commits each TaskManager's partitions unless that TaskManager failed
 * while it ran, so partitions may stand at different checkpoints; epochs
 * are retained from the oldest. Output waits in each partition's state
 * until a checkpoint covering it completes.
 *
 * Not here: record-at-a-time pipelining across epochs, more than one keyed
 * stage, state larger than memory.
 */
#include <fleet/stream.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "stab.h"
#include "stream_hooks.h"

/* ---- pipeline description --------------------------------------------- */

enum op_kind { OP_MAP, OP_FILTER, OP_FLAT_MAP };

typedef struct op {
    enum op_kind kind;
    union {
        fleet_map_fn map;
        fleet_filter_fn filter;
        fleet_flat_map_fn flat;
    } fn;
    void *ctx;
} op_t;

enum keyed_kind { K_NONE, K_REDUCE, K_TIME, K_SESSION, K_COUNT };
enum src_kind { SRC_NONE, SRC_FILES, SRC_GEN };

/* The most bytes or indices an epoch holds (stream.h), and the most bytes
 * one read asks for. */
#define EPOCH_MAX ((size_t)1 << 40)
#define READ_MAX ((size_t)1 << 26)

/* Value layouts in the keyed tables. Time window (combiner and state):
 * ws, fired, then the accumulator at TV_ACC. Session key: head node + 1.
 * Session node: start, end, fired_end (the end it last fired at), next node
 * + 1, then the accumulator at SN_ACC. Count window: n, then a ring of
 * `size` accumulators. */
#define TV_ACC 16
#define SN_ACC 32

typedef struct tval {
    int64_t ws;
    uint32_t fired;
    uint32_t nlast; /* combiner: records whose last window this is */
} tval_t;

typedef struct snode {
    int64_t start;
    int64_t end;
    int64_t fired_end;
    uint32_t next;
    uint32_t pad;
} snode_t;

enum timer_kind { T_FIRE, T_PURGE };

typedef struct timer {
    int64_t time;
    uint32_t ent;
    uint32_t kind;
    int64_t tag; /* sessions: the session's end */
} timer_t_;

/* A partition's keyed state: flat, copied whole by a checkpoint. */
typedef struct pstate {
    uint64_t applied; /* epochs merged */
    int64_t wm;
    uint64_t late;
    uint32_t pool_free; /* session node + 1 */
    stab_t st;
    sbuf_t heap; /* timer_t_ */
    sbuf_t pool; /* session nodes */
    sbuf_t out;  /* output waiting for a checkpoint (out records) */
} pstate_t;

typedef struct part {
    pthread_mutex_t lock; /* held while merging or snapshotting */
    pstate_t live, ckpt, next;
    unsigned char *scratch; /* one accumulator, count windows */
    int err;
} part_t;

/* An output record in an sbuf: header, then the bytes, 8-aligned. */
typedef struct orec {
    uint64_t len;
    int64_t ts;
} orec_t;

/* A record bound for a key partition (per-record path). */
typedef struct krec {
    uint64_t hash;
    int64_t ts;
    int64_t m; /* largest timestamp before it in its batch */
    uint32_t klen;
    uint32_t len;
    /* key bytes, then data bytes, each from an 8-aligned offset */
} krec_t;

/* What one batch's map phase made. */
typedef struct chunk_out {
    int64_t maxts;
    uint64_t records;
    uint64_t late; /* combiner: late for every window already */
    stab_t *tabs;  /* combiner, per partition */
    sbuf_t *lists; /* per-record, per partition */
    sbuf_t out;    /* no keyed stage: output */
    int err;
} chunk_out_t;

typedef struct epoch {
    uint64_t id;
    bool final;
    bool seen; /* its map phase ran once (first-run accounting done) */
    unsigned nchunks;
    unsigned char *buf; /* lines; NULL once dropped (seekable inputs) */
    size_t len;
    uint64_t gpos;   /* where buf starts in the inputs' byte stream */
    size_t *cuts;    /* nchunks + 1 */
    uint64_t gbegin; /* generator */
    int64_t *prefix; /* nchunks + 1: P before each batch, and after */
} epoch_t;

struct fleet_stream {
    fleet_runtime_t *rt;
    fleet_stream_config_t cfg;
    unsigned ntm, nparts;

    enum src_kind src;
    char **paths;
    size_t npaths;
    uint64_t gcount;
    fleet_generate_fn gen;
    void *gctx;

    op_t *pre, *post;
    unsigned npre, npost;
    bool keyed;
    fleet_key_fn keyfn;
    void *keyctx;
    enum keyed_kind kkind;
    fleet_window_t win;
    fleet_aggregate_t agg;
    void *aggctx;
    size_t acc8;          /* accumulator size rounded up to 8 */
    bool combine;         /* pre-aggregate in the map phase */
    bool evtime;          /* event-time windows */
    int64_t slide;        /* time windows: slide (size for tumbling) */
    fleet_sink_fn sinkfn; /* the sink: sinkfn, or sinkf written by us */
    void *sinkctx;
    FILE *sinkf;
    bool ran;

    /* run state */
    part_t *parts;
    uint64_t *seen; /* per TaskManager: failures seen */
    bool *want;
    int fd;
    size_t file_i;
    bool eof;
    sbuf_t carry;
    /* Replay from the recorded offsets: when every input is a regular file,
     * an epoch's bytes are dropped once merged and read again (pread) if a
     * failure makes it replay; otherwise (standard input, pipes) they are
     * kept until a checkpoint covers them. */
    bool seekable;
    uint64_t gread;   /* bytes read from the inputs so far */
    uint64_t *fstart; /* where each file starts in the byte stream */
    uint64_t gnext;
    epoch_t **eps; /* epochs after the oldest partition checkpoint .. E */
    size_t neps, caps;
    uint64_t E;
    bool src_done;      /* the final epoch has been read */
    size_t tab_hint;    /* entries of the fullest combiner table lately */
    struct merging *mg; /* the merge phase under way, if any */
    uint64_t last_ckpt; /* when the last checkpoint completed */
    int64_t pend;       /* P after the last epoch read */
    uint64_t late_driver;
    fleet_stream_stats_t st;
    uint64_t last_progress;
    uint64_t nl_searched; /* bytes searched for a line's end (tests) */
    void (*ckpt_hook)(void *ctx, unsigned n); /* tests only */
    void *ckpt_hook_ctx;
    unsigned ckpt_attempts;
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN + 1;
    return r;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t max_ts(int64_t a, int64_t b)
{
    return a > b ? a : b; /* FLEET_TS_NONE is INT64_MIN */
}

/* The watermark after a largest timestamp p. */
static int64_t wm_of(const fleet_stream_t *s, int64_t p)
{
    if (p == FLEET_TS_NONE)
        return FLEET_TS_NONE;
    return sat_add(p, -s->cfg.max_out_of_orderness - 1);
}

static uint64_t mix_ws(uint64_t h, int64_t ws)
{
    uint64_t x = h ^ ((uint64_t)ws * 0x9e3779b97f4a7c15ULL);
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    return x ^ (x >> 29);
}

static bool has_sink(const fleet_stream_t *s)
{
    return s->sinkfn != NULL || s->sinkf != NULL;
}

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static int out_push(sbuf_t *b, const fleet_record_t *r)
{
    orec_t *h = sbuf_push(b, sizeof(orec_t) + pad8(r->len));
    if (h == NULL)
        return -ENOMEM;
    h->len = r->len;
    h->ts = r->ts;
    if (r->len > 0)
        memcpy(h + 1, r->data, r->len);
    return 0;
}

/* ---- operators and emitters --------------------------------------------- */

enum tail_kind { TAIL_KEY, TAIL_OUT };

/* Where a chain ends, and what it learned on the way. */
typedef struct tail {
    fleet_stream_t *s;
    enum tail_kind kind;
    chunk_out_t *co; /* TAIL_KEY */
    const bool *want;
    int64_t runmax;
    sbuf_t *out; /* TAIL_OUT */
    int err;
    int64_t wlast; /* the last window start computed, for its slide */
} tail_t;

struct fleet_emitter {
    tail_t *t;
    const op_t *ops;
    unsigned n, at;
    unsigned emitted;
};

static void key_take(tail_t *t, const fleet_record_t *rec)
    __attribute__((noinline));

static void chain_run(tail_t *t, const op_t *ops, unsigned n, unsigned i,
                      const fleet_record_t *rec)
{
    for (; i < n; i++) {
        const op_t *o = &ops[i];
        if (o->kind == OP_FILTER) {
            if (!o->fn.filter(o->ctx, rec))
                return;
            continue;
        }
        fleet_emitter_t em = {t, ops, n, i + 1, 0};
        if (o->kind == OP_MAP) {
            o->fn.map(o->ctx, rec, &em);
            if (em.emitted != 1 && t->err == 0)
                t->err = -EPROTO;
        } else {
            o->fn.flat(o->ctx, rec, &em);
        }
        return;
    }
    if (t->kind == TAIL_KEY) {
        key_take(t, rec);
    } else if (out_push(t->out, rec) != 0 && t->err == 0) {
        t->err = -ENOMEM;
    }
}

void fleet_emit(fleet_emitter_t *out, const void *data, size_t len, int64_t ts)
{
    fleet_record_t r = {data, len, ts};
    out->emitted++;
    chain_run(out->t, out->ops, out->n, out->at, &r);
}

/* ---- map phase ---------------------------------------------------------- */

/* A (key, window start) composite key in buf (or a fresh block). */
static const void *ws_key(const void *k, size_t kl, int64_t ws,
                          unsigned char *buf, size_t cap, void **heap)
{
    unsigned char *p = buf;
    if (kl + 8 > cap) {
        p = fl_realloc(FL_ARENA_DEFAULT, *heap, kl + 8);
        if (p == NULL)
            return NULL;
        *heap = p;
    }
    if (kl == 8) /* a number: no call */
        memcpy(p, k, 8);
    else if (kl > 0)
        memcpy(p, k, kl);
    memcpy(p + kl, &ws, 8);
    return p;
}

static void combine_time(tail_t *t, stab_t *tb, uint64_t h, const void *k,
                         size_t kl, const fleet_record_t *rec, int64_t m)
{
    fleet_stream_t *s = t->s;
    int64_t size = s->win.size, slide = s->slide,
            delay = s->cfg.max_out_of_orderness;
    int64_t last = t->wlast;
    if (last == INT64_MIN || rec->ts < last || rec->ts - last >= slide)
        last = t->wlast = floor_div(rec->ts, slide) * slide;
    int64_t tl = sat_add(sat_add(last, size), delay);
    if (m != FLEET_TS_NONE && m >= tl) {
        t->co->late++; /* late for every window */
        return;
    }
    unsigned char kb[256];
    void *heap = NULL;
    for (int64_t ws = last; ws > rec->ts - size; ws -= slide) {
        int64_t tw = sat_add(sat_add(ws, size), delay);
        if (m != FLEET_TS_NONE && m >= tw)
            break; /* this window and every earlier one are late */
        const void *ck = ws_key(k, kl, ws, kb, sizeof(kb), &heap);
        bool cr;
        ptrdiff_t i = ck ? stab_upsert(tb, mix_ws(h, ws), ck, kl + 8, &cr) : -1;
        if (i < 0) {
            t->err = -ENOMEM;
            break;
        }
        unsigned char *v = stab_val(tb, (size_t)i);
        if (cr) {
            ((tval_t *)v)->ws = ws;
            s->agg.init(s->aggctx, v + TV_ACC);
        }
        if (ws == last)
            ((tval_t *)v)->nlast++;
        s->agg.add(s->aggctx, v + TV_ACC, rec);
    }
    if (heap != NULL) /* a key longer than kb */
        fl_free(FL_ARENA_DEFAULT, heap);
}

static void key_take(tail_t *t, const fleet_record_t *rec)
{
    fleet_stream_t *s = t->s;
    const void *k = rec->data;
    size_t kl = rec->len;
    if (s->keyfn != NULL)
        s->keyfn(s->keyctx, rec, &k, &kl);
    stab_kw_t w = stab_key_words(k, kl);
    uint64_t h = fl_hash_key(k, kl, w);
    unsigned p = (unsigned)(((unsigned __int128)h * s->nparts) >> 64);
    int64_t m = t->runmax;
    if (s->evtime) {
        if (rec->ts < FLEET_TS_MIN || rec->ts > FLEET_TS_MAX) {
            t->err = rec->ts == FLEET_TS_NONE ? -EINVAL : -ERANGE;
            return;
        }
        t->runmax = max_ts(m, rec->ts);
    }
    if (t->want != NULL && !t->want[p])
        return;
    chunk_out_t *co = t->co;
    if (s->combine && s->kkind == K_REDUCE) {
        bool cr;
        ptrdiff_t i = stab_upsert_w(&co->tabs[p], h, k, kl, w, &cr);
        if (i < 0) {
            t->err = -ENOMEM;
            return;
        }
        void *acc = stab_val(&co->tabs[p], (size_t)i);
        if (cr)
            s->agg.init(s->aggctx, acc);
        s->agg.add(s->aggctx, acc, rec);
    } else if (s->combine) {
        combine_time(t, &co->tabs[p], h, k, kl, rec, m);
    } else {
        krec_t *r = sbuf_push(&co->lists[p],
                              sizeof(krec_t) + pad8(kl) + pad8(rec->len));
        if (r == NULL || kl > UINT32_MAX || rec->len > UINT32_MAX) {
            t->err = -ENOMEM;
            return;
        }
        r->hash = h;
        r->ts = rec->ts;
        r->m = m;
        r->klen = (uint32_t)kl;
        r->len = (uint32_t)rec->len;
        if (kl > 0)
            memcpy(r + 1, k, kl);
        if (rec->len > 0)
            memcpy((unsigned char *)(r + 1) + pad8(kl), rec->data, rec->len);
    }
}

static void chunk_free(const fleet_stream_t *s, chunk_out_t *co)
{
    if (co == NULL)
        return;
    for (unsigned p = 0; co->tabs != NULL && p < s->nparts; p++)
        stab_free(&co->tabs[p]);
    for (unsigned p = 0; co->lists != NULL && p < s->nparts; p++)
        sbuf_free(&co->lists[p]);
    fl_free(FL_ARENA_DEFAULT, co->tabs);
    fl_free(FL_ARENA_DEFAULT, co->lists);
    sbuf_free(&co->out);
    fl_free(FL_ARENA_DEFAULT, co);
}

static chunk_out_t *chunk_make(const fleet_stream_t *s)
{
    chunk_out_t *co = fl_calloc(FL_ARENA_DEFAULT, 1, sizeof(*co));
    if (co == NULL)
        return NULL;
    co->maxts = FLEET_TS_NONE;
    if (s->keyed && s->combine) {
        co->tabs = fl_calloc(FL_ARENA_DEFAULT, s->nparts, sizeof(stab_t));
        if (co->tabs == NULL)
            goto fail;
        size_t vs = s->kkind == K_REDUCE ? s->acc8 : TV_ACC + s->acc8;
        for (unsigned p = 0; p < s->nparts; p++) {
            stab_init(&co->tabs[p], vs);
            /* Sized like the last epoch's: no growing on the hot path. */
            if (s->tab_hint > 0 && stab_reserve(&co->tabs[p], s->tab_hint))
                goto fail;
        }
    } else if (s->keyed) {
        co->lists = fl_calloc(FL_ARENA_DEFAULT, s->nparts, sizeof(sbuf_t));
        if (co->lists == NULL)
            goto fail;
    }
    return co;
fail:
    chunk_free(s, co);
    return NULL;
}

typedef struct mapjob {
    fleet_stream_t *s;
    const epoch_t *ep;
    _Atomic(chunk_out_t *) *slots;
    atomic_int err;
} mapjob_t;

static void run_chunk(fleet_stream_t *s, const epoch_t *ep, unsigned c,
                      chunk_out_t *co)
{
    tail_t t = {s,
                s->keyed ? TAIL_KEY : TAIL_OUT,
                co,
                s->want,
                FLEET_TS_NONE,
                &co->out,
                0,
                INT64_MIN};
    if (s->src == SRC_FILES) {
        const unsigned char *p = ep->buf + ep->cuts[c],
                            *end = ep->buf + ep->cuts[c + 1];
        while (p < end && t.err == 0) {
            const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            fleet_record_t r = {p, len, FLEET_TS_NONE};
            co->records++;
            chain_run(&t, s->pre, s->npre, 0, &r);
            if (nl == NULL)
                break;
            p = nl + 1;
        }
    } else {
        uint64_t b = ep->gbegin + (uint64_t)c * s->cfg.batch_records;
        uint64_t e = b + s->cfg.batch_records;
        if (e > s->gcount)
            e = s->gcount;
        fleet_emitter_t em = {&t, s->pre, s->npre, 0, 0};
        for (uint64_t i = b; i < e && t.err == 0; i++)
            s->gen(s->gctx, i, &em);
        co->records += em.emitted;
    }
    co->maxts = t.runmax;
    co->err = t.err;
}

static void map_range(void *ctx, size_t begin, size_t end)
{
    mapjob_t *j = ctx;
    for (size_t c = begin; c < end; c++) {
        if (atomic_load_explicit(&j->slots[c], memory_order_acquire) != NULL)
            continue; /* another attempt made it */
        chunk_out_t *co = chunk_make(j->s);
        if (co == NULL) {
            atomic_store_explicit(&j->err, -ENOMEM, memory_order_relaxed);
            continue;
        }
        run_chunk(j->s, j->ep, (unsigned)c, co);
        chunk_out_t *none = NULL;
        /* Release: the merge phase reads what this attempt wrote. */
        if (!atomic_compare_exchange_strong_explicit(&j->slots[c], &none, co,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire))
            chunk_free(j->s, co); /* an identical copy won */
    }
}

/* ---- keyed state -------------------------------------------------------- */

static int heap_push(pstate_t *ps, int64_t time, uint32_t ent, uint32_t kind,
                     int64_t tag)
{
    timer_t_ *h = sbuf_push(&ps->heap, sizeof(timer_t_));
    if (h == NULL)
        return -ENOMEM;
    timer_t_ *v = (timer_t_ *)ps->heap.p;
    size_t i = ps->heap.len / sizeof(timer_t_) - 1;
    timer_t_ x = {time, ent, kind, tag};
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (v[up].time < x.time || (v[up].time == x.time && v[up].ent <= x.ent))
            break;
        v[i] = v[up];
        i = up;
    }
    v[i] = x;
    return 0;
}

static timer_t_ heap_pop(pstate_t *ps)
{
    timer_t_ *v = (timer_t_ *)ps->heap.p;
    size_t n = ps->heap.len / sizeof(timer_t_) - 1;
    timer_t_ top = v[0], x = v[n];
    ps->heap.len -= sizeof(timer_t_);
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n &&
            (v[c + 1].time < v[c].time ||
             (v[c + 1].time == v[c].time && v[c + 1].ent < v[c].ent)))
            c++;
        if (x.time < v[c].time || (x.time == v[c].time && x.ent <= v[c].ent))
            break;
        v[i] = v[c];
        i = c;
    }
    if (n > 0)
        v[i] = x;
    return top;
}

static void fire(fleet_stream_t *s, part_t *pt, const void *key, size_t kl,
                 int64_t start, int64_t end, const void *acc, bool span)
{
    tail_t t = {s, TAIL_OUT, NULL, NULL, FLEET_TS_NONE, &pt->live.out,
                0, INT64_MIN};
    fleet_emitter_t em = {&t, s->post, s->npost, 0, 0};
    fleet_window_span_t w = {start, end};
    s->agg.result(s->aggctx, key, kl, span ? &w : NULL, acc, &em);
    if (t.err != 0 && pt->err == 0)
        pt->err = t.err;
}

static snode_t *snode(const fleet_stream_t *s, const pstate_t *ps, uint32_t i)
{
    return (snode_t *)(ps->pool.p + (size_t)i * (SN_ACC + s->acc8));
}

static void on_timer(fleet_stream_t *s, part_t *pt, timer_t_ x)
{
    pstate_t *ps = &pt->live;
    stab_t *st = &ps->st;
    int64_t lat = s->win.allowed_lateness;
    if (x.ent >= st->n || stab_ent(st, x.ent)->dead)
        return;
    if (s->kkind == K_TIME) {
        tval_t *v = stab_val(st, x.ent);
        int64_t end = v->ws + s->win.size;
        if (x.kind == T_FIRE && !v->fired) {
            fire(s, pt, stab_key(st, x.ent), stab_ent(st, x.ent)->klen - 8,
                 v->ws, end, (unsigned char *)v + TV_ACC, true);
            v->fired = 1;
            if (lat == 0)
                stab_remove(st, x.ent);
            else if (heap_push(ps, sat_add(end - 1, lat), x.ent, T_PURGE, 0))
                pt->err = -ENOMEM;
        } else if (x.kind == T_PURGE) {
            stab_remove(st, x.ent);
        }
        return;
    }
    /* Sessions: x.tag is the end the timer was set for. */
    uint32_t *head = stab_val(st, x.ent);
    for (uint32_t *at = head; *at != 0;) {
        snode_t *n = snode(s, ps, *at - 1);
        if (n->end != x.tag) {
            at = &n->next;
            continue;
        }
        if (x.kind == T_FIRE && n->fired_end != n->end) {
            fire(s, pt, stab_key(st, x.ent), stab_ent(st, x.ent)->klen,
                 n->start, n->end, (unsigned char *)n + SN_ACC, true);
            n->fired_end = n->end;
            if (lat > 0) {
                if (heap_push(ps, sat_add(n->end - 1, lat), x.ent, T_PURGE,
                              n->end))
                    pt->err = -ENOMEM;
                return;
            }
        } else if (!(x.kind == T_PURGE && sat_add(n->end - 1, lat) <= ps->wm)) {
            return;
        }
        uint32_t dead = *at - 1;
        *at = n->next;
        n->next = ps->pool_free;
        ps->pool_free = dead + 1;
        return;
    }
}

static void advance(fleet_stream_t *s, part_t *pt, int64_t wm)
{
    pstate_t *ps = &pt->live;
    if (wm == FLEET_TS_NONE || wm <= ps->wm)
        return;
    ps->wm = wm;
    while (ps->heap.len > 0 && ((timer_t_ *)ps->heap.p)->time <= wm)
        on_timer(s, pt, heap_pop(ps));
}

/* After stab_compact renumbered the time-window entries. */
static int heap_rebuild(fleet_stream_t *s, pstate_t *ps)
{
    ps->heap.len = 0;
    for (size_t i = 0; i < ps->st.n; i++) {
        const tval_t *v = stab_val(&ps->st, i);
        int64_t end1 = v->ws + s->win.size - 1;
        int r = v->fired ? heap_push(ps, sat_add(end1, s->win.allowed_lateness),
                                     (uint32_t)i, T_PURGE, 0)
                         : heap_push(ps, end1, (uint32_t)i, T_FIRE, 0);
        if (r != 0)
            return r;
    }
    return 0;
}

static int time_record(fleet_stream_t *s, part_t *pt, const krec_t *r,
                       const fleet_record_t *rec)
{
    pstate_t *ps = &pt->live;
    int64_t size = s->win.size, slide = s->slide, lat = s->win.allowed_lateness,
            wm = ps->wm;
    const unsigned char *k = (const unsigned char *)(r + 1);
    int64_t last = floor_div(r->ts, slide) * slide;
    unsigned char kb[256];
    void *heap = NULL;
    bool any = false;
    int err = 0;
    for (int64_t ws = last; ws > r->ts - size; ws -= slide) {
        int64_t end1 = ws + size - 1;
        if (wm != FLEET_TS_NONE && sat_add(end1, lat) <= wm)
            continue;
        const void *ck = ws_key(k, r->klen, ws, kb, sizeof(kb), &heap);
        bool cr;
        ptrdiff_t i =
            ck ? stab_upsert(&ps->st, mix_ws(r->hash, ws), ck, r->klen + 8, &cr)
               : -1;
        if (i < 0) {
            err = -ENOMEM;
            break;
        }
        tval_t *v = stab_val(&ps->st, (size_t)i);
        bool due = wm != FLEET_TS_NONE && end1 <= wm;
        if (cr) {
            v->ws = ws;
            s->agg.init(s->aggctx, (unsigned char *)v + TV_ACC);
            err =
                due ? heap_push(ps, sat_add(end1, lat), (uint32_t)i, T_PURGE, 0)
                    : heap_push(ps, end1, (uint32_t)i, T_FIRE, 0);
            if (err != 0)
                break;
        }
        s->agg.add(s->aggctx, (unsigned char *)v + TV_ACC, rec);
        any = true;
        if (due) { /* a late record within the allowed lateness */
            fire(s, pt, k, r->klen, ws, ws + size, (unsigned char *)v + TV_ACC,
                 true);
            v->fired = 1;
        }
    }
    fl_free(FL_ARENA_DEFAULT, heap);
    /* Late: every window of it is gone; with none at all (a slide longer
     * than the size leaves gaps), when it is behind the watermark by more
     * than the lateness (as Flink's isElementLate). */
    if (!any && err == 0 &&
        (r->ts - last < size ||
         (wm != FLEET_TS_NONE && sat_add(r->ts, lat) <= wm)))
        ps->late++;
    return err;
}

static int session_record(fleet_stream_t *s, part_t *pt, const krec_t *r,
                          const fleet_record_t *rec)
{
    pstate_t *ps = &pt->live;
    int64_t lat = s->win.allowed_lateness, wm = ps->wm;
    int64_t start = r->ts, end = sat_add(r->ts, s->win.gap);
    bool cr;
    ptrdiff_t ki =
        stab_upsert(&ps->st, r->hash, (const void *)(r + 1), r->klen, &cr);
    if (ki < 0)
        return -ENOMEM;
    (void)cr;
    /* The merged bounds: every session that intersects [start, end]
     * (closed, as Flink's TimeWindow.intersects). */
    int64_t ms = start, me = end;
    for (uint32_t i = *(uint32_t *)stab_val(&ps->st, (size_t)ki); i != 0;) {
        snode_t *n = snode(s, ps, i - 1);
        if (n->start <= end && n->end >= start) {
            ms = n->start < ms ? n->start : ms;
            me = n->end > me ? n->end : me;
        }
        i = n->next;
    }
    if (wm != FLEET_TS_NONE && sat_add(me - 1, lat) <= wm) {
        ps->late++;
        return 0;
    }
    /* Merge into the earliest intersecting session, or a new node; the
     * list stays sorted by start. */
    size_t stride = SN_ACC + s->acc8;
    uint32_t target = 0;
    bool fresh = false;
    for (uint32_t *at = (uint32_t *)stab_val(&ps->st, (size_t)ki); *at != 0;) {
        snode_t *n = snode(s, ps, *at - 1);
        if (!(n->start <= end && n->end >= start)) {
            at = &n->next;
            continue;
        }
        if (target == 0) {
            target = *at;
            at = &n->next;
            continue;
        }
        snode_t *t = snode(s, ps, target - 1);
        s->agg.merge(s->aggctx, (unsigned char *)t + SN_ACC,
                     (unsigned char *)n + SN_ACC);
        uint32_t dead = *at;
        *at = n->next;
        n->next = ps->pool_free;
        ps->pool_free = dead;
    }
    if (target == 0) {
        fresh = true;
        if (ps->pool_free != 0) {
            target = ps->pool_free;
            ps->pool_free = snode(s, ps, target - 1)->next;
        } else {
            if (sbuf_push(&ps->pool, stride) == NULL)
                return -ENOMEM;
            target = (uint32_t)(ps->pool.len / stride);
        }
        snode_t *n = snode(s, ps, target - 1);
        memset(n, 0, stride);
        n->fired_end = INT64_MIN;
        s->agg.init(s->aggctx, (unsigned char *)n + SN_ACC);
        /* Insert sorted by start. */
        uint32_t *at = (uint32_t *)stab_val(&ps->st, (size_t)ki);
        while (*at != 0 && snode(s, ps, *at - 1)->start < ms)
            at = &snode(s, ps, *at - 1)->next;
        n->next = *at;
        *at = target;
    }
    snode_t *n = snode(s, ps, target - 1);
    bool grew = fresh || n->end != me;
    n->start = ms;
    n->end = me;
    s->agg.add(s->aggctx, (unsigned char *)n + SN_ACC, rec);
    if (wm != FLEET_TS_NONE && me - 1 <= wm) {
        fire(s, pt, (const void *)(r + 1), r->klen, ms, me,
             (unsigned char *)n + SN_ACC, true);
        if (n->fired_end != me &&
            heap_push(ps, sat_add(me - 1, lat), (uint32_t)ki, T_PURGE, me))
            return -ENOMEM;
        n->fired_end = me;
    } else if (grew) {
        if (heap_push(ps, me - 1, (uint32_t)ki, T_FIRE, me))
            return -ENOMEM;
    }
    return 0;
}

static void count_fire(fleet_stream_t *s, part_t *pt, size_t ki)
{
    stab_t *st = &pt->live.st;
    unsigned char *v = stab_val(st, ki);
    uint64_t n = *(uint64_t *)v;
    uint64_t size = (uint64_t)s->win.size, m = n < size ? n : size;
    s->agg.init(s->aggctx, pt->scratch);
    for (uint64_t j = n - m; j < n; j++)
        s->agg.merge(s->aggctx, pt->scratch, v + 8 + (j % size) * s->acc8);
    fire(s, pt, stab_key(st, ki), stab_ent(st, ki)->klen, (int64_t)(n - m),
         (int64_t)n, pt->scratch, true);
}

static int count_record(fleet_stream_t *s, part_t *pt, const krec_t *r,
                        const fleet_record_t *rec)
{
    stab_t *st = &pt->live.st;
    bool cr;
    ptrdiff_t ki =
        stab_upsert(st, r->hash, (const void *)(r + 1), r->klen, &cr);
    if (ki < 0)
        return -ENOMEM;
    unsigned char *v = stab_val(st, (size_t)ki);
    uint64_t n = *(uint64_t *)v;
    unsigned char *acc = v + 8 + (n % (uint64_t)s->win.size) * s->acc8;
    s->agg.init(s->aggctx, acc);
    s->agg.add(s->aggctx, acc, rec);
    *(uint64_t *)v = ++n;
    if (n % (uint64_t)s->slide == 0)
        count_fire(s, pt, (size_t)ki);
    return 0;
}

/* Merges one combiner table into the state. */
static int merge_table(fleet_stream_t *s, part_t *pt, const stab_t *tb,
                       int64_t pc)
{
    pstate_t *ps = &pt->live;
    for (size_t i = 0; i < tb->n; i++) {
        const stab_ent_t *e = stab_ent(tb, i);
        const unsigned char *v = stab_val(tb, i);
        if (s->kkind == K_TIME) {
            int64_t ws = ((const tval_t *)v)->ws;
            int64_t tw =
                sat_add(sat_add(ws, s->win.size), s->cfg.max_out_of_orderness);
            if (pc != FLEET_TS_NONE && pc >= tw) {
                /* Every record of it came after the watermark. */
                ps->late += ((const tval_t *)v)->nlast;
                continue;
            }
        }
        bool cr;
        ptrdiff_t j =
            stab_upsert(&ps->st, e->hash, stab_key(tb, i), e->klen, &cr);
        if (j < 0)
            return -ENOMEM;
        unsigned char *sv = stab_val(&ps->st, (size_t)j);
        size_t off = s->kkind == K_TIME ? TV_ACC : 0;
        if (cr) {
            memcpy(sv, v, off + s->agg.size);
            if (s->kkind == K_TIME)
                ((tval_t *)sv)->nlast = 0;
            if (s->kkind == K_TIME &&
                heap_push(ps, ((const tval_t *)v)->ws + s->win.size - 1,
                          (uint32_t)j, T_FIRE, 0))
                return -ENOMEM;
        } else {
            s->agg.merge(s->aggctx, sv + off, v + off);
        }
    }
    return 0;
}

typedef struct mergejob {
    fleet_stream_t *s;
    const epoch_t *ep;
    _Atomic(chunk_out_t *) *slots;
    unsigned tm;
} mergejob_t;

/* A merge phase under way: one epoch's merge jobs, one per TaskManager,
 * running while the driver runs the next epoch's map phase. */
typedef struct merging {
    epoch_t *ep; /* NULL: none under way */
    _Atomic(chunk_out_t *) *slots;
    mergejob_t mj[64];
    fleet_job_t *jobs[64];
    unsigned njobs;
} merging_t;

static int merge_partition(fleet_stream_t *s, part_t *pt, unsigned p,
                           const epoch_t *ep, _Atomic(chunk_out_t *) *slots)
{
    pstate_t *ps = &pt->live;
    int err = 0;
    for (unsigned c = 0; c < ep->nchunks && err == 0; c++) {
        const chunk_out_t *co =
            atomic_load_explicit(&slots[c], memory_order_acquire);
        int64_t pc = ep->prefix[c];
        if (s->combine) {
            err = merge_table(s, pt, &co->tabs[p], pc);
            continue;
        }
        const sbuf_t *l = &co->lists[p];
        for (size_t off = 0; off < l->len && err == 0;) {
            const krec_t *r = (const krec_t *)(l->p + off);
            off += sizeof(krec_t) + pad8(r->klen) + pad8(r->len);
            fleet_record_t rec = {
                (const unsigned char *)(r + 1) + pad8(r->klen), r->len, r->ts};
            if (s->evtime)
                advance(s, pt, wm_of(s, max_ts(pc, r->m)));
            if (s->kkind == K_TIME)
                err = time_record(s, pt, r, &rec);
            else if (s->kkind == K_SESSION)
                err = session_record(s, pt, r, &rec);
            else
                err = count_record(s, pt, r, &rec);
        }
    }
    if (err != 0)
        return err;
    if (s->evtime)
        advance(s, pt,
                ep->final ? INT64_MAX : wm_of(s, ep->prefix[ep->nchunks]));
    if (ep->final) {
        stab_t *st = &ps->st;
        for (size_t i = 0; i < st->n; i++) {
            if (stab_ent(st, i)->dead)
                continue;
            if (s->kkind == K_REDUCE)
                fire(s, pt, stab_key(st, i), stab_ent(st, i)->klen, 0, 0,
                     stab_val(st, i), false);
            else if (s->kkind == K_COUNT &&
                     *(uint64_t *)stab_val(st, i) % (uint64_t)s->slide != 0)
                count_fire(s, pt, i);
        }
    }
    if (s->kkind == K_TIME && stab_compact(&ps->st))
        err = heap_rebuild(s, ps);
    return err;
}

static void merge_range(void *ctx, size_t begin, size_t end)
{
    mergejob_t *j = ctx;
    fleet_stream_t *s = j->s;
    for (size_t i = begin; i < end; i++) {
        unsigned p = j->tm + (unsigned)i * s->ntm;
        part_t *pt = &s->parts[p];
        pthread_mutex_lock(&pt->lock);
        if (pt->live.applied + 1 == j->ep->id) {
            int err = merge_partition(s, pt, p, j->ep, j->slots);
            if (err != 0 && pt->err == 0)
                pt->err = err;
            pt->live.applied = j->ep->id;
        }
        pthread_mutex_unlock(&pt->lock);
    }
}

/* ---- checkpoints -------------------------------------------------------- */

static void pstate_init(pstate_t *ps, size_t vsize)
{
    memset(ps, 0, sizeof(*ps));
    ps->wm = FLEET_TS_NONE;
    stab_init(&ps->st, vsize);
}

static void pstate_free(pstate_t *ps)
{
    stab_free(&ps->st);
    sbuf_free(&ps->heap);
    sbuf_free(&ps->pool);
    sbuf_free(&ps->out);
}

/*
 * Makes dst a copy of partition state src: a snapshot of the live state
 * for a checkpoint, or the live state restored from one. Without the
 * output waiting in src->out: the sink takes a live state's when the
 * checkpoint commits (and a checkpoint's is always empty), so the copy
 * starts with none. Nor, once src has merged the final epoch, its keyed
 * state: it has fired all it ever will and merges nothing more, and a
 * partition restored from such a checkpoint stays at that epoch, so
 * nothing reads that state again (copying it was the end of a run's
 * largest cost). 0 or -ENOMEM.
 */
static int pstate_copy(const fleet_stream_t *s, pstate_t *dst,
                       const pstate_t *src)
{
    dst->applied = src->applied;
    dst->wm = src->wm;
    dst->late = src->late;
    dst->out.len = 0;
    if (s->src_done && src->applied == s->E) {
        dst->pool_free = 0;
        stab_clear(&dst->st);
        dst->heap.len = dst->pool.len = 0;
        return 0;
    }
    dst->pool_free = src->pool_free;
    if (stab_copy(&dst->st, &src->st) != 0 ||
        sbuf_copy(&dst->heap, &src->heap) != 0 ||
        sbuf_copy(&dst->pool, &src->pool) != 0)
        return -ENOMEM;
    return 0;
}

static size_t pstate_bytes(const pstate_t *ps)
{
    return stab_bytes(&ps->st) + ps->heap.len + ps->pool.len + ps->out.len;
}

typedef struct snapjob {
    fleet_stream_t *s;
    unsigned tm;
} snapjob_t;

static void snap_range(void *ctx, size_t begin, size_t end)
{
    snapjob_t *j = ctx;
    fleet_stream_t *s = j->s;
    for (size_t i = begin; i < end; i++) {
        part_t *pt = &s->parts[j->tm + (unsigned)i * s->ntm];
        pthread_mutex_lock(&pt->lock);
        int err = pstate_copy(s, &pt->next, &pt->live);
        if (err != 0 && pt->err == 0)
            pt->err = err;
        pthread_mutex_unlock(&pt->lock);
    }
}

/* Waits for the jobs and releases them. Returns their first error. */
static int jobs_wait(fleet_job_t *const *jobs, unsigned n)
{
    int err = 0;
    for (unsigned i = 0; i < n; i++) {
        int r = fleet_job_wait(jobs[i]);
        if (r != 0 && err == 0)
            err = r;
        fleet_job_release(jobs[i]);
    }
    return err;
}

/* Submits fn over every TaskManager's partitions, each on its TaskManager,
 * as jobs[0 .. *n). Returns 0 or the first error (*n jobs went out). */
static int pinned_submit(fleet_stream_t *s, fleet_range_fn fn, void *ctxs,
                         size_t ctx_size, fleet_job_t **jobs, unsigned *n)
{
    *n = 0;
    for (unsigned k = 0; k < s->ntm && k < 64; k++) {
        size_t items = (s->nparts - k + s->ntm - 1) / s->ntm;
        int r =
            fleet_submit_on(s->rt, k, fn, (unsigned char *)ctxs + k * ctx_size,
                            0, items, &jobs[*n]);
        if (r != 0)
            return r;
        (*n)++;
    }
    return 0;
}

/* Runs fn over every TaskManager's partitions, each on its TaskManager. */
static int run_pinned(fleet_stream_t *s, fleet_range_fn fn, void *ctxs,
                      size_t ctx_size)
{
    fleet_job_t *jobs[64];
    unsigned n;
    int err = pinned_submit(s, fn, ctxs, ctx_size, jobs, &n);
    int werr = jobs_wait(jobs, n);
    return err != 0 ? err : werr;
}

/* Restores the partitions of TaskManagers declared failed since the last
 * look. Returns how many it restored, or -errno. */
static int check_failures(fleet_stream_t *s, bool *failed)
{
    int restored = 0;
    for (unsigned k = 0; k < s->ntm; k++) {
        fleet_tm_status_t st;
        int r = fleet_tm_status(s->rt, k, &st);
        if (r != 0)
            return r;
        if (failed != NULL)
            failed[k] = st.failures != s->seen[k];
        if (st.failures == s->seen[k])
            continue;
        s->seen[k] = st.failures;
        for (unsigned p = k; p < s->nparts; p += s->ntm) {
            part_t *pt = &s->parts[p];
            /* The state of a failed TaskManager's partitions is lost. */
            if (pstate_copy(s, &pt->live, &pt->ckpt) != 0)
                return -ENOMEM;
            s->st.restores++;
            restored++;
        }
    }
    return restored;
}

static int sink_flush(fleet_stream_t *s, sbuf_t *b)
{
    for (size_t off = 0; off < b->len;) {
        const orec_t *h = (const orec_t *)(b->p + off);
        off += sizeof(orec_t) + pad8(h->len);
        fleet_record_t r = {h + 1, h->len, h->ts};
        if (s->sinkf != NULL) {
            if (fwrite(r.data, 1, r.len, s->sinkf) != r.len ||
                putc('\n', s->sinkf) == EOF)
                return -EIO;
        } else {
            s->sinkfn(s->sinkctx, &r);
        }
        s->st.records_out++;
    }
    b->len = 0;
    return 0;
}

static void epochs_drop_through(fleet_stream_t *s, uint64_t id)
{
    size_t k = 0;
    while (k < s->neps && s->eps[k]->id <= id) {
        epoch_t *ep = s->eps[k];
        fl_free(FL_ARENA_DEFAULT, ep->buf);
        fl_free(FL_ARENA_DEFAULT, ep->cuts);
        fl_free(FL_ARENA_DEFAULT, ep->prefix);
        fl_free(FL_ARENA_DEFAULT, ep);
        k++;
    }
    if (k > 0 && k < s->neps)
        memmove(s->eps, s->eps + k, (s->neps - k) * sizeof(*s->eps));
    s->neps -= k;
}

/* Snapshots every partition at epoch E, each TaskManager's on it, and
 * commits those of every TaskManager that did not fail meanwhile: their
 * output up to E goes to the sink. The partitions of one that failed are
 * restored from their own last checkpoint instead and replay from there;
 * the others need not wait for them. Returns 1 when every partition
 * committed, 0 when some were restored, or -errno. */
static int checkpoint(fleet_stream_t *s)
{
    uint64_t t0 = now_ns();
    if (s->ckpt_hook != NULL)
        s->ckpt_hook(s->ckpt_hook_ctx, s->ckpt_attempts);
    s->ckpt_attempts++;
    snapjob_t sj[64];
    for (unsigned k = 0; k < s->ntm && k < 64; k++)
        sj[k] = (snapjob_t){s, k};
    int err = run_pinned(s, snap_range, sj, sizeof(sj[0]));
    for (unsigned p = 0; p < s->nparts && err == 0; p++)
        err = s->parts[p].err;
    if (err != 0)
        return err;
    bool failed[64] = {false};
    int lost = check_failures(s, failed);
    if (lost < 0)
        return lost;
    size_t bytes = 0;
    uint64_t oldest = UINT64_MAX;
    for (unsigned p = 0; p < s->nparts; p++) {
        part_t *pt = &s->parts[p];
        if (!failed[p % s->ntm]) {
            pstate_t tmp = pt->ckpt;
            pt->ckpt = pt->next;
            pt->next = tmp;
            err = sink_flush(s, &pt->live.out);
            if (err != 0)
                return err;
        }
        bytes += pstate_bytes(&pt->ckpt);
        if (pt->ckpt.applied < oldest)
            oldest = pt->ckpt.applied;
    }
    /* What every partition's checkpoint covers is never replayed. */
    epochs_drop_through(s, oldest);
    if (lost != 0)
        s->st.checkpoints_aborted++;
    else
        s->st.checkpoints++;
    s->st.state_bytes = bytes;
    s->st.checkpoint_ns_total += now_ns() - t0;
    return lost == 0;
}

/* ---- sources ------------------------------------------------------------ */

static int read_some(fleet_stream_t *s, sbuf_t *b, size_t want)
{
    while (!s->eof) {
        if (s->fd < 0) {
            if (s->npaths == 0) {
                s->fd = STDIN_FILENO;
                s->seekable = false;
            } else {
                s->fd = open(s->paths[s->file_i], O_RDONLY);
                if (s->fd < 0)
                    return -errno;
                struct stat sb;
                if (fstat(s->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
                    s->seekable = false;
                s->fstart[s->file_i] = s->gread;
            }
        }
        size_t at = b->len;
        if (want > READ_MAX)
            want = READ_MAX; /* memory as the bytes come, for large epochs */
        if (sbuf_push(b, want) == NULL)
            return -ENOMEM;
        ssize_t r = read(s->fd, b->p + at, want);
        if (r < 0) {
            b->len = at;
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b->len = at + (size_t)r;
        s->gread += (uint64_t)r;
        if (r > 0)
            return 0;
        if (s->fd != STDIN_FILENO)
            close(s->fd);
        s->fd = -1;
        if (s->npaths == 0 || ++s->file_i == s->npaths)
            s->eof = true;
    }
    return 0;
}

static const unsigned char *last_nl(const unsigned char *p, size_t n)
{
    while (n-- > 0)
        if (p[n] == '\n')
            return p + n;
    return NULL;
}

/* Whether b holds a '\n', searching only the bytes after the first *seen
 * (searched before) - a long line arrives read by read, and searching it
 * whole after each read took time quadratic in its length. */
static bool has_nl(fleet_stream_t *s, const sbuf_t *b, size_t *seen)
{
    size_t n = b->len - *seen;
    bool found = n > 0 && memchr(b->p + *seen, '\n', n) != NULL;
    s->nl_searched += n;
    *seen = b->len;
    return found;
}

/* The next epoch of lines in *ep; ep->nchunks 0 at the end. */
static int read_lines(fleet_stream_t *s, epoch_t *ep)
{
    size_t target = s->cfg.batch_bytes * s->cfg.epoch_batches;
    sbuf_t b = s->carry;
    s->carry = (sbuf_t){0};
    int err = 0;
    while (err == 0 && !s->eof && b.len < target)
        err = read_some(s, &b, target - b.len);
    size_t seen = 0;
    while (err == 0 && !s->eof && !has_nl(s, &b, &seen))
        err = read_some(s, &b, s->cfg.batch_bytes);
    if (err != 0) {
        sbuf_free(&b);
        return err;
    }
    size_t len = b.len;
    ep->gpos = s->gread - b.len;
    if (!s->eof) {
        len = (size_t)(last_nl(b.p, b.len) - b.p) + 1;
        if (b.len > len) {
            if (sbuf_push(&s->carry, b.len - len) == NULL) {
                sbuf_free(&b);
                return -ENOMEM;
            }
            memcpy(s->carry.p, b.p + len, b.len - len);
        }
    }
    ep->buf = b.p;
    ep->len = len;
    if (len == 0)
        return 0;
    size_t n = len / s->cfg.batch_bytes + 2;
    ep->cuts = fl_alloc(FL_ARENA_DEFAULT, (n + 1) * sizeof(size_t));
    if (ep->cuts == NULL)
        return -ENOMEM;
    size_t pos = 0;
    ep->cuts[0] = 0;
    while (pos < len) {
        size_t end = len;
        if (len - pos > s->cfg.batch_bytes) {
            const unsigned char *nl =
                memchr(b.p + pos + s->cfg.batch_bytes - 1, '\n',
                       len - pos - s->cfg.batch_bytes + 1);
            end = nl ? (size_t)(nl - b.p) + 1 : len;
        }
        if (ep->nchunks + 1 >= n + 1) {
            size_t *c = fl_realloc(FL_ARENA_DEFAULT, ep->cuts,
                                   (2 * n + 1) * sizeof(size_t));
            if (c == NULL)
                return -ENOMEM;
            ep->cuts = c;
            n *= 2;
        }
        ep->cuts[++ep->nchunks] = end;
        pos = end;
    }
    return 0;
}

/* Reads the next epoch (or the final, empty one) as epoch E + 1. Returns
 * 0 or -errno. */
static int next_epoch(fleet_stream_t *s)
{
    epoch_t *ep = fl_calloc(FL_ARENA_DEFAULT, 1, sizeof(*ep));
    if (ep == NULL)
        return -ENOMEM;
    ep->id = s->E + 1;
    int err = 0;
    if (s->src == SRC_FILES) {
        err = read_lines(s, ep);
    } else if (s->gnext < s->gcount) {
        uint64_t n = s->gcount - s->gnext,
                 per = (uint64_t)s->cfg.batch_records * s->cfg.epoch_batches;
        if (n > per)
            n = per;
        ep->gbegin = s->gnext;
        ep->nchunks =
            (unsigned)((n + s->cfg.batch_records - 1) / s->cfg.batch_records);
        s->gnext += n;
    }
    if (err == 0 && ep->nchunks == 0)
        ep->final = s->src_done = true;
    if (err == 0) {
        ep->prefix =
            fl_alloc(FL_ARENA_DEFAULT, (ep->nchunks + 1) * sizeof(int64_t));
        if (ep->prefix == NULL)
            err = -ENOMEM;
    }
    if (err == 0 && s->neps == s->caps) {
        size_t cap = s->caps ? 2 * s->caps : 16;
        epoch_t **e = fl_realloc(FL_ARENA_DEFAULT, s->eps, cap * sizeof(*e));
        if (e == NULL) {
            err = -ENOMEM;
        } else {
            s->eps = e;
            s->caps = cap;
        }
    }
    if (err != 0) {
        fl_free(FL_ARENA_DEFAULT, ep->buf);
        fl_free(FL_ARENA_DEFAULT, ep->cuts);
        fl_free(FL_ARENA_DEFAULT, ep->prefix);
        fl_free(FL_ARENA_DEFAULT, ep);
        return err;
    }
    s->eps[s->neps++] = ep;
    s->E = ep->id;
    return 0;
}

/* Reads ep's bytes again from the files (seekable inputs only). */
static int reread(fleet_stream_t *s, epoch_t *ep)
{
    ep->buf = fl_alloc(FL_ARENA_DEFAULT, ep->len ? ep->len : 1);
    if (ep->buf == NULL)
        return -ENOMEM;
    size_t got = 0;
    size_t f = 0;
    while (f + 1 < s->npaths && s->fstart[f + 1] <= ep->gpos)
        f++;
    while (got < ep->len && f < s->npaths) {
        int fd = open(s->paths[f], O_RDONLY);
        if (fd < 0)
            return -errno;
        uint64_t off = ep->gpos + got - s->fstart[f];
        for (;;) {
            ssize_t r = pread(fd, ep->buf + got, ep->len - got, (off_t)off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                int err = -errno;
                close(fd);
                return err;
            }
            if (r == 0 || (got += (size_t)r) == ep->len)
                break;
            off += (uint64_t)r;
        }
        close(fd);
        f++;
    }
    return got == ep->len ? 0 : -EIO; /* a file shrank meanwhile */
}

/* ---- epochs ------------------------------------------------------------- */

static epoch_t *epoch_get(const fleet_stream_t *s, uint64_t id)
{
    for (size_t i = 0; i < s->neps; i++)
        if (s->eps[i]->id == id)
            return s->eps[i];
    return NULL;
}

static bool checkpoint_due(const fleet_stream_t *s)
{
    return s->cfg.checkpoint_ms != 0 &&
           now_ns() - s->last_ckpt >= (uint64_t)s->cfg.checkpoint_ms * 1000000u;
}

/* Map phase of ep into slots (nchunks of them, zeroed). */
static int map_epoch(fleet_stream_t *s, epoch_t *ep,
                     _Atomic(chunk_out_t *) *slots)
{
    if (!ep->seen)
        ep->prefix[0] = s->pend; /* epochs first run in order */
    if (ep->nchunks == 0)
        return 0;
    mapjob_t j = {s, ep, slots, 0};
    fleet_job_t *job;
    int err = fleet_submit(s->rt, map_range, &j, 0, ep->nchunks, &job);
    if (err != 0)
        return err;
    /* While the workers map this epoch, read the next one (only when going
     * forward, with the source not at its end). */
    if (ep->id == s->E && !s->src_done && !checkpoint_due(s))
        err = next_epoch(s);
    int werr = fleet_job_wait(job);
    fleet_job_release(job);
    if (err == 0)
        err = werr;
    if (err == 0)
        err = atomic_load_explicit(&j.err, memory_order_relaxed);
    for (unsigned c = 0; c < ep->nchunks && err == 0; c++)
        err = atomic_load_explicit(&slots[c], memory_order_acquire)->err;
    if (err != 0)
        return err;
    /* Prefix maxima, the first run's counts, and the size of the tables
     * for the next epoch. */
    size_t hint = 0;
    for (unsigned c = 0; c < ep->nchunks; c++) {
        chunk_out_t *co = atomic_load_explicit(&slots[c], memory_order_relaxed);
        for (unsigned p = 0; co->tabs != NULL && p < s->nparts; p++)
            if (co->tabs[p].n > hint)
                hint = co->tabs[p].n;
        ep->prefix[c + 1] = max_ts(ep->prefix[c], co->maxts);
        if (ep->seen)
            continue;
        s->st.records_in += co->records;
        s->late_driver += co->late;
    }
    if (!ep->seen)
        s->pend = ep->prefix[ep->nchunks];
    s->tab_hint = hint + hint / 4;
    return 0;
}

static void slots_free(fleet_stream_t *s, _Atomic(chunk_out_t *) *slots,
                       unsigned n)
{
    for (unsigned c = 0; c < n; c++)
        chunk_free(s, atomic_load_explicit(&slots[c], memory_order_relaxed));
    fl_free(FL_ARENA_DEFAULT, (void *)slots);
}

static uint64_t min_applied(const fleet_stream_t *s)
{
    uint64_t m = UINT64_MAX;
    for (unsigned p = 0; p < s->nparts; p++)
        if (s->parts[p].live.applied < m)
            m = s->parts[p].live.applied;
    return m;
}

static void stats_fill(const fleet_stream_t *s, fleet_stream_stats_t *out)
{
    *out = s->st;
    if (s->keyed && s->parts != NULL) {
        out->late_dropped = s->late_driver;
        for (unsigned p = 0; p < s->nparts; p++)
            out->late_dropped += s->parts[p].live.late;
    }
}

/* Reports progress when progress_ms has passed (or `now`). */
static void progress(fleet_stream_t *s, bool now)
{
    if (s->cfg.progress == NULL)
        return;
    uint64_t t = now_ns();
    if (!now && t - s->last_progress < (uint64_t)s->cfg.progress_ms * 1000000u)
        return;
    s->last_progress = t;
    fleet_stream_stats_t st;
    stats_fill(s, &st);
    s->cfg.progress(s->cfg.progress_ctx, &st);
}

/* Which partitions take epoch id: those that have not merged it yet. No
 * merge phase may be under way. */
static void want_for(fleet_stream_t *s, uint64_t id)
{
    for (unsigned p = 0; p < s->nparts; p++)
        s->want[p] = s->parts[p].live.applied < id;
}

/* The map phase of ep (for the partitions in s->want): its chunk outputs
 * in *slots. Returns 0 or -errno (*slots, if not NULL, to free then). */
static int map_phase(fleet_stream_t *s, epoch_t *ep,
                     _Atomic(chunk_out_t *) **slots)
{
    *slots = fl_calloc(FL_ARENA_DEFAULT, ep->nchunks + 1, sizeof(**slots));
    if (*slots == NULL)
        return -ENOMEM;
    if (ep->buf == NULL && ep->len > 0) {
        int err = reread(s, ep);
        if (err != 0)
            return err;
    }
    if (ep->seen)
        s->st.epochs_replayed++;
    s->st.epochs++;
    int err = map_epoch(s, ep, *slots);
    ep->seen = true;
    if (s->seekable) { /* read again from its offset if it must replay */
        fl_free(FL_ARENA_DEFAULT, ep->buf);
        ep->buf = NULL;
    }
    return err;
}

/* Starts ep's merge phase over slots (which it frees when it ends). */
static int merge_start(fleet_stream_t *s, epoch_t *ep,
                       _Atomic(chunk_out_t *) *slots)
{
    merging_t *mg = s->mg;
    mg->ep = ep;
    mg->slots = slots;
    for (unsigned k = 0; k < s->ntm && k < 64; k++)
        mg->mj[k] = (mergejob_t){s, ep, slots, k};
    return pinned_submit(s, merge_range, mg->mj, sizeof(mg->mj[0]), mg->jobs,
                         &mg->njobs);
}

/* Waits for the merge phase under way, if any, to end. Returns 0 or
 * -errno. */
static int merge_end(fleet_stream_t *s)
{
    merging_t *mg = s->mg;
    if (mg->ep == NULL)
        return 0;
    int err = jobs_wait(mg->jobs, mg->njobs);
    for (unsigned p = 0; p < s->nparts && err == 0; p++)
        err = s->parts[p].err;
    slots_free(s, mg->slots, mg->ep->nchunks);
    mg->ep = NULL;
    mg->njobs = 0;
    return err;
}

/*
 * Runs the epochs from min_applied + 1 through E (E may grow meanwhile:
 * the map phase reads ahead), each epoch's map phase while the previous
 * epoch's merge phase runs: a map phase needs no keyed state, only which
 * partitions take the epoch, and those the previous merge phase does not
 * change (it brings partitions to the epoch before). Failures are looked
 * at with no merge phase under way; when partitions were restored, the
 * epochs run again from the oldest one a partition lacks. Returns 0 with
 * every partition at E, or -errno.
 */
static int run_epochs(fleet_stream_t *s)
{
    uint64_t e = min_applied(s) + 1;
    want_for(s, e);
    for (;;) {
        epoch_t *ep = e <= s->E ? epoch_get(s, e) : NULL;
        _Atomic(chunk_out_t *) *slots = NULL;
        int err = ep != NULL ? map_phase(s, ep, &slots) : 0;
        int merr = merge_end(s); /* the previous epoch's */
        int r = 0;
        if (err == 0)
            err = merr;
        if (err == 0 && (r = check_failures(s, NULL)) < 0)
            err = r;
        if (err == 0)
            progress(s, false);
        if (err != 0 || r > 0 || ep == NULL) {
            if (slots != NULL)
                slots_free(s, slots, ep->nchunks);
            if (err != 0 || r == 0) /* r == 0 here: no epoch left */
                return err;
            /* Restored: the epochs the restored partitions lack first. */
            e = min_applied(s) + 1;
            want_for(s, e);
            continue;
        }
        want_for(s, e + 1); /* before ep's merge phase: see above */
        err = merge_start(s, ep, slots);
        if (err != 0) {
            merge_end(s);
            return err;
        }
        e++;
    }
}

/* A pipeline without key_by: epochs in order, output at each epoch's end
 * (nothing is kept between epochs, so nothing needs restoring). */
static int run_stateless(fleet_stream_t *s)
{
    for (;;) {
        int err = s->neps == 0 ? next_epoch(s) : 0;
        if (err != 0)
            return err;
        epoch_t *ep = s->eps[0];
        if (ep->final)
            return 0;
        _Atomic(chunk_out_t *) *slots =
            fl_calloc(FL_ARENA_DEFAULT, ep->nchunks + 1, sizeof(*slots));
        if (slots == NULL)
            return -ENOMEM;
        s->st.epochs++;
        err = map_epoch(s, ep, slots);
        ep->seen = true;
        for (unsigned c = 0; c < ep->nchunks && err == 0; c++)
            err = sink_flush(
                s, &atomic_load_explicit(&slots[c], memory_order_relaxed)->out);
        slots_free(s, slots, ep->nchunks);
        epochs_drop_through(s, ep->id);
        if (err != 0)
            return err;
        progress(s, false);
    }
}

static int run_keyed(fleet_stream_t *s)
{
    s->last_ckpt = now_ns();
    for (;;) {
        int err = run_epochs(s);
        if (err < 0)
            return err;
        /* Every partition has applied E: at the end of the stream, done
         * once a checkpoint commits all of them (one that commits only
         * some - a TaskManager failed - may leave no epoch retained, but
         * the stream has no more). */
        bool done = s->src_done;
        if (done || checkpoint_due(s)) {
            int r = checkpoint(s);
            if (r < 0)
                return r;
            if (r == 0)
                continue; /* aborted: replay, then try again */
            s->last_ckpt = now_ns();
            if (done)
                return 0;
        }
        if (min_applied(s) == s->E && !s->src_done) { /* nothing ahead */
            int err = next_epoch(s);
            if (err != 0)
                return err;
        }
    }
}

/* ---- public API --------------------------------------------------------- */

void fleet_stream_config_init(fleet_stream_config_t *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->batch_bytes = 256 * 1024;
    cfg->batch_records = 16384;
    cfg->epoch_batches = 8;
    cfg->checkpoint_ms = 1000;
}

int fleet_stream_create(fleet_stream_t **out, fleet_runtime_t *rt,
                        const fleet_stream_config_t *cfg)
{
    if (out == NULL || rt == NULL)
        return -EINVAL;
    fleet_stream_config_t c;
    if (cfg != NULL)
        c = *cfg;
    else
        fleet_stream_config_init(&c);
    fleet_config_t rc;
    int err = fleet_runtime_config(rt, &rc);
    if (err != 0)
        return err;
    if (c.batch_bytes == 0 || c.batch_records == 0 || c.epoch_batches == 0 ||
        c.batch_bytes > EPOCH_MAX / c.epoch_batches ||
        c.batch_records > EPOCH_MAX / c.epoch_batches || c.partitions > 65536 ||
        c.max_out_of_orderness < 0 || c.max_out_of_orderness > FLEET_SPAN_MAX ||
        rc.task_managers > 64)
        return -EINVAL;
    fleet_stream_t *s = fl_calloc(FL_ARENA_DEFAULT, 1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->rt = rt;
    s->cfg = c;
    s->ntm = rc.task_managers;
    s->nparts = c.partitions ? c.partitions : 8 * s->ntm;
    s->fd = -1;
    *out = s;
    return 0;
}

static void run_state_free(fleet_stream_t *s)
{
    for (unsigned p = 0; s->parts != NULL && p < s->nparts; p++) {
        part_t *pt = &s->parts[p];
        pthread_mutex_destroy(&pt->lock);
        pstate_free(&pt->live);
        pstate_free(&pt->ckpt);
        pstate_free(&pt->next);
        fl_free(FL_ARENA_DEFAULT, pt->scratch);
    }
    fl_free(FL_ARENA_DEFAULT, s->parts);
    s->parts = NULL;
    fl_free(FL_ARENA_DEFAULT, s->mg);
    s->mg = NULL;
    fl_free(FL_ARENA_DEFAULT, s->seen);
    fl_free(FL_ARENA_DEFAULT, s->want);
    fl_free(FL_ARENA_DEFAULT, s->fstart);
    s->fstart = NULL;
    s->seen = NULL;
    s->want = NULL;
    epochs_drop_through(s, UINT64_MAX);
    fl_free(FL_ARENA_DEFAULT, s->eps);
    s->eps = NULL;
    sbuf_free(&s->carry);
    if (s->fd > STDIN_FILENO)
        close(s->fd);
    s->fd = -1;
}

void fleet_stream_destroy(fleet_stream_t *s)
{
    if (s == NULL)
        return;
    run_state_free(s);
    for (size_t i = 0; i < s->npaths; i++)
        fl_free(FL_ARENA_DEFAULT, s->paths[i]);
    fl_free(FL_ARENA_DEFAULT, s->paths);
    fl_free(FL_ARENA_DEFAULT, s->pre);
    fl_free(FL_ARENA_DEFAULT, s->post);
    fl_free(FL_ARENA_DEFAULT, s);
}

int fleet_stream_source_files(fleet_stream_t *s, const char *const *paths,
                              size_t n)
{
    if (s == NULL || (n > 0 && paths == NULL))
        return -EINVAL;
    if (s->src != SRC_NONE)
        return -EEXIST;
    char **v = NULL;
    if (n > 0) {
        v = fl_calloc(FL_ARENA_DEFAULT, n, sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = paths[i] ? strlen(paths[i]) : 0;
        v[i] = paths[i] ? fl_alloc(FL_ARENA_DEFAULT, len + 1) : NULL;
        if (v[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                fl_free(FL_ARENA_DEFAULT, v[j]);
            fl_free(FL_ARENA_DEFAULT, v);
            return paths[i] ? -ENOMEM : -EINVAL;
        }
        memcpy(v[i], paths[i], len + 1);
    }
    s->paths = v;
    s->npaths = n;
    s->src = SRC_FILES;
    return 0;
}

int fleet_stream_source_generator(fleet_stream_t *s, uint64_t count,
                                  fleet_generate_fn gen, void *ctx)
{
    if (s == NULL || gen == NULL)
        return -EINVAL;
    if (s->src != SRC_NONE)
        return -EEXIST;
    s->src = SRC_GEN;
    s->gcount = count;
    s->gen = gen;
    s->gctx = ctx;
    return 0;
}

static int add_op(fleet_stream_t *s, const op_t *o, bool have_fn)
{
    if (s == NULL || !have_fn)
        return -EINVAL;
    if (has_sink(s))
        return -EPERM;
    if (s->keyed && s->kkind == K_NONE)
        return -EINVAL; /* key_by must be followed by reduce or window */
    op_t **v = s->keyed ? &s->post : &s->pre;
    unsigned *n = s->keyed ? &s->npost : &s->npre;
    op_t *w = fl_realloc(FL_ARENA_DEFAULT, *v, (*n + 1) * sizeof(op_t));
    if (w == NULL)
        return -ENOMEM;
    *v = w;
    w[(*n)++] = *o;
    return 0;
}

int fleet_stream_map(fleet_stream_t *s, fleet_map_fn fn, void *ctx)
{
    op_t o = {.kind = OP_MAP, .fn.map = fn, .ctx = ctx};
    return add_op(s, &o, fn != NULL);
}

int fleet_stream_filter(fleet_stream_t *s, fleet_filter_fn fn, void *ctx)
{
    op_t o = {.kind = OP_FILTER, .fn.filter = fn, .ctx = ctx};
    return add_op(s, &o, fn != NULL);
}

int fleet_stream_flat_map(fleet_stream_t *s, fleet_flat_map_fn fn, void *ctx)
{
    op_t o = {.kind = OP_FLAT_MAP, .fn.flat = fn, .ctx = ctx};
    return add_op(s, &o, fn != NULL);
}

int fleet_stream_key_by(fleet_stream_t *s, fleet_key_fn fn, void *ctx)
{
    if (s == NULL)
        return -EINVAL;
    if (has_sink(s))
        return -EPERM;
    if (s->keyed)
        return -EEXIST;
    s->keyed = true;
    s->keyfn = fn;
    s->keyctx = ctx;
    return 0;
}

static int set_keyed(fleet_stream_t *s, enum keyed_kind kind,
                     const fleet_aggregate_t *a, void *ctx)
{
    if (s == NULL || a == NULL || a->size == 0 || a->init == NULL ||
        a->add == NULL || a->merge == NULL || a->result == NULL)
        return -EINVAL;
    if (has_sink(s))
        return -EPERM;
    if (!s->keyed || s->kkind != K_NONE)
        return -EINVAL;
    s->kkind = kind;
    s->agg = *a;
    s->aggctx = ctx;
    s->acc8 = pad8(a->size);
    return 0;
}

int fleet_stream_reduce(fleet_stream_t *s, const fleet_aggregate_t *a,
                        void *ctx)
{
    int err = set_keyed(s, K_REDUCE, a, ctx);
    if (err == 0)
        s->combine = true;
    return err;
}

int fleet_stream_window(fleet_stream_t *s, const fleet_window_t *w,
                        const fleet_aggregate_t *a, void *ctx)
{
    if (w == NULL || w->allowed_lateness < 0 ||
        (!w->count &&
         ((w->kind != FLEET_WINDOW_SESSION && w->size > FLEET_SPAN_MAX) ||
          (w->kind == FLEET_WINDOW_SLIDING && w->slide > FLEET_SPAN_MAX) ||
          (w->kind == FLEET_WINDOW_SESSION && w->gap > FLEET_SPAN_MAX) ||
          w->allowed_lateness > FLEET_SPAN_MAX)) ||
        (w->kind != FLEET_WINDOW_SESSION && w->size < 1) ||
        (w->kind == FLEET_WINDOW_SLIDING && w->slide < 1) ||
        (w->kind == FLEET_WINDOW_SESSION && (w->gap < 1 || w->count)) ||
        (unsigned)w->kind > FLEET_WINDOW_SESSION ||
        (w->count && (w->allowed_lateness != 0 || w->size > (1 << 20))))
        return -EINVAL;
    enum keyed_kind kind = w->count                          ? K_COUNT
                           : w->kind == FLEET_WINDOW_SESSION ? K_SESSION
                                                             : K_TIME;
    int err = set_keyed(s, kind, a, ctx);
    if (err != 0)
        return err;
    s->win = *w;
    s->slide = w->kind == FLEET_WINDOW_SLIDING ? w->slide : w->size;
    s->evtime = !w->count;
    /* Pre-aggregation for time windows without lateness that cover every
     * instant (slide <= size); the rest go record by record. */
    s->combine =
        kind == K_TIME && w->allowed_lateness == 0 && s->slide <= w->size;
    return 0;
}

static int set_sink(fleet_stream_t *s, fleet_sink_fn fn, void *ctx, FILE *f)
{
    if (s == NULL || (fn == NULL && f == NULL))
        return -EINVAL;
    if (has_sink(s))
        return -EEXIST;
    if (s->keyed && s->kkind == K_NONE)
        return -EINVAL;
    s->sinkfn = fn;
    s->sinkctx = ctx;
    s->sinkf = f;
    return 0;
}

int fleet_stream_sink(fleet_stream_t *s, fleet_sink_fn fn, void *ctx)
{
    return fn == NULL ? -EINVAL : set_sink(s, fn, ctx, NULL);
}

int fleet_stream_sink_file(fleet_stream_t *s, FILE *f)
{
    return f == NULL ? -EINVAL : set_sink(s, NULL, NULL, f);
}

static int run_setup(fleet_stream_t *s)
{
    s->seekable = s->src == SRC_FILES && s->npaths > 0;
    if (s->npaths > 0) {
        s->fstart = fl_alloc(FL_ARENA_DEFAULT, s->npaths * sizeof(*s->fstart));
        if (s->fstart == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < s->npaths; i++)
            s->fstart[i] = UINT64_MAX; /* not opened yet */
    }
    s->seen = fl_calloc(FL_ARENA_DEFAULT, s->ntm, sizeof(*s->seen));
    s->want = fl_calloc(FL_ARENA_DEFAULT, s->nparts, sizeof(*s->want));
    if (s->seen == NULL || s->want == NULL)
        return -ENOMEM;
    for (unsigned k = 0; k < s->ntm; k++) {
        fleet_tm_status_t st;
        int err = fleet_tm_status(s->rt, k, &st);
        if (err != 0)
            return err;
        s->seen[k] = st.failures;
    }
    if (!s->keyed)
        return 0;
    size_t vs = s->kkind == K_REDUCE    ? s->acc8
                : s->kkind == K_TIME    ? TV_ACC + s->acc8
                : s->kkind == K_SESSION ? sizeof(uint32_t)
                                        : 8 + (size_t)s->win.size * s->acc8;
    s->parts = fl_calloc(FL_ARENA_DEFAULT, s->nparts, sizeof(part_t));
    s->mg = fl_calloc(FL_ARENA_DEFAULT, 1, sizeof(*s->mg));
    if (s->parts == NULL || s->mg == NULL)
        return -ENOMEM;
    for (unsigned p = 0; p < s->nparts; p++) {
        part_t *pt = &s->parts[p];
        pthread_mutex_init(&pt->lock, NULL);
        pstate_init(&pt->live, vs);
        pstate_init(&pt->ckpt, vs);
        pstate_init(&pt->next, vs);
        pt->scratch = fl_alloc(FL_ARENA_DEFAULT, s->acc8);
        if (pt->scratch == NULL)
            return -ENOMEM;
    }
    return 0;
}

int fleet_stream_run(fleet_stream_t *s)
{
    if (s == NULL)
        return -EINVAL;
    if (s->ran)
        return -EALREADY;
    if (s->src == SRC_NONE || !has_sink(s) || (s->keyed && s->kkind == K_NONE))
        return -EINVAL;
    s->ran = true;
    s->pend = FLEET_TS_NONE;
    s->last_progress = now_ns();
    int err = run_setup(s);
    if (err == 0)
        err = s->keyed ? run_keyed(s) : run_stateless(s);
    if (err == 0 && s->sinkf != NULL && fflush(s->sinkf) != 0)
        err = -EIO;
    stats_fill(s, &s->st);
    if (err == 0)
        progress(s, true);
    run_state_free(s);
    return err;
}

uint64_t fl_stream_nl_searched(const fleet_stream_t *s)
{
    return s->nl_searched;
}

void fl_stream_checkpoint_hook(fleet_stream_t *s,
                               void (*fn)(void *ctx, unsigned n), void *ctx)
{
    s->ckpt_hook = fn;
    s->ckpt_hook_ctx = ctx;
}

int fleet_stream_stats(const fleet_stream_t *s, fleet_stream_stats_t *out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    stats_fill(s, out);
    return 0;
}
