/*
 * ysb: the Yahoo Streaming Benchmark on fleet's stream layer.
 *
 * A seeded generator (ysb_gen.h) makes ad events (event time, ad id, type).
 * The pipeline keeps the views, joins each ad to its campaign, and counts
 * views per campaign per 10 s tumbling event-time window:
 *   generator -> filter(view) -> map(join ad -> campaign) -> key_by(campaign)
 *   -> window(tumbling 10 s, count) -> sink
 * Output: "campaign_id window_start_ms count" lines sorted by campaign id,
 * then window start. --emit-events / --emit-campaigns write the input as CSV
 * so the result can be recounted with awk.
 *
 * usage: ysb [--events N] [--campaigns C] [--seed S] [--emit-events FILE]
 *            [--emit-campaigns FILE] [options]   (see --help)
 */
#define _POSIX_C_SOURCE 200809L
#include "stream_common.h"
#include "ysb_gen.h"

struct ysb {
    uint64_t seed, campaigns;
    uint64_t *ads;
    ysb_join_t join;
};

static void generate(void *ctx, uint64_t i, fleet_emitter_t *out)
{
    const struct ysb *y = ctx;
    ysb_event_t e;
    ysb_event(y->seed, y->campaigns, y->ads, i, &e);
    fleet_emit(out, &e, sizeof(e), e.time_ms);
}

static bool is_view(void *ctx, const fleet_record_t *in)
{
    (void)ctx;
    return ((const ysb_event_t *)in->data)->type == YSB_VIEW;
}

static void join(void *ctx, const fleet_record_t *in, fleet_emitter_t *out)
{
    const struct ysb *y = ctx;
    const ysb_event_t *e = in->data;
    uint64_t campaign = ysb_join_lookup(&y->join, e->ad);
    fleet_emit(out, &campaign, sizeof(campaign), in->ts);
}

struct row {
    uint64_t campaign;
    int64_t start;
    uint64_t count;
};

static void count_result(void *ctx, const void *key, size_t len,
                         const fleet_window_span_t *span, const void *acc,
                         fleet_emitter_t *out)
{
    (void)ctx;
    (void)len;
    struct row r;
    memcpy(&r.campaign, key, 8);
    r.start = span->start;
    memcpy(&r.count, acc, 8);
    fleet_emit(out, &r, sizeof(r), span->end - 1);
}

struct rows {
    struct row *v;
    size_t n, cap;
    int err;
};

static void collect(void *ctx, const fleet_record_t *rec)
{
    struct rows *rs = ctx;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 1024;
        struct row *v = realloc(rs->v, cap * sizeof(*v));
        if (v == NULL) {
            rs->err = -ENOMEM;
            return;
        }
        rs->v = v;
        rs->cap = cap;
    }
    memcpy(&rs->v[rs->n++], rec->data, sizeof(struct row));
}

static int by_campaign(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->campaign != y->campaign)
        return x->campaign < y->campaign ? -1 : 1;
    return (x->start > y->start) - (x->start < y->start);
}

static int emit_csv(const struct ysb *y, uint64_t events, const char *epath,
                    const char *cpath)
{
    if (cpath != NULL) {
        FILE *f = fopen(cpath, "w");
        if (f == NULL)
            return -errno;
        for (uint64_t k = 0; k < y->campaigns * YSB_ADS_PER_CAMPAIGN; k++)
            fprintf(f, "%llu,%llu\n", (unsigned long long)y->ads[k],
                    (unsigned long long)ysb_campaign_id(
                        y->seed, k / YSB_ADS_PER_CAMPAIGN));
        if (fclose(f) != 0)
            return -EIO;
    }
    if (epath != NULL) {
        FILE *f = fopen(epath, "w");
        if (f == NULL)
            return -errno;
        for (uint64_t i = 0; i < events; i++) {
            ysb_event_t e;
            ysb_event(y->seed, y->campaigns, y->ads, i, &e);
            fprintf(f, "%lld,%llu,%s\n", (long long)e.time_ms,
                    (unsigned long long)e.ad, ysb_type_names[e.type]);
        }
        if (fclose(f) != 0)
            return -EIO;
    }
    return 0;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--events N] [--campaigns C] [--seed S] "
            "[--emit-events FILE]\n"
            "          [--emit-campaigns FILE] [options]\n"
            "The Yahoo Streaming Benchmark: views per campaign per 10 s "
            "window.\n"
            "  --events N         events to generate (default 10000000)\n"
            "  --campaigns C      campaigns, 10 ads each (default 100)\n"
            "  --seed S           generator seed (default 1)\n"
            "  --emit-events F    also write the events as CSV\n"
            "                     event_time_ms,ad_id,event_type\n"
            "  --emit-campaigns F also write ad_id,campaign_id as CSV\n"
            "  --quiet            no summary line on stderr\n" EX_COMMON_USAGE,
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    ex_opts_t o = {0};
    unsigned long long events = 10000000, campaigns = 100, seed = 1;
    const char *epath = NULL, *cpath = NULL;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        int r = ex_option(&o, argc, argv, &i);
        if (r < 0)
            return usage(argv[0]);
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0) {
            usage(argv[0]);
            return 0;
        }
        if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
            continue;
        }
        if (i + 1 >= argc)
            return usage(argv[0]);
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--events") == 0) {
            if (ex_number(v, 1ull << 40, &events) != 0)
                return usage(argv[0]);
        } else if (strcmp(argv[i - 1], "--campaigns") == 0) {
            if (ex_number(v, 1000000, &campaigns) != 0 || campaigns == 0)
                return usage(argv[0]);
        } else if (strcmp(argv[i - 1], "--seed") == 0) {
            if (ex_number(v, UINT64_MAX, &seed) != 0)
                return usage(argv[0]);
        } else if (strcmp(argv[i - 1], "--emit-events") == 0) {
            epath = v;
        } else if (strcmp(argv[i - 1], "--emit-campaigns") == 0) {
            cpath = v;
        } else {
            return usage(argv[0]);
        }
    }
    struct ysb y = {seed, campaigns, NULL, {0}};
    if (ysb_join_init(&y.join, seed, campaigns, &y.ads) != 0) {
        fprintf(stderr, "ysb: out of memory\n");
        return 1;
    }
    int err = emit_csv(&y, events, epath, cpath);
    if (err != 0) {
        fprintf(stderr, "ysb: writing the input: %s\n", fleet_strerror(err));
        ysb_join_free(&y.join, y.ads);
        return 1;
    }
    fleet_runtime_t *rt;
    err = ex_runtime(&o, &rt);
    if (err != 0) {
        fprintf(stderr, "ysb: runtime: %s\n", fleet_strerror(err));
        ysb_join_free(&y.join, y.ads);
        return 1;
    }
    static const fleet_aggregate_t count = {8, ex_count_init, ex_count_add,
                                            ex_count_merge, count_result};
    const fleet_window_t win = {.kind = FLEET_WINDOW_TUMBLING,
                                .size = YSB_WINDOW_MS};
    struct rows rows = {0};
    fleet_stream_config_t cfg;
    ex_stream_config(&o, false, "ysb", quiet, &cfg);
    cfg.max_out_of_orderness = YSB_MAX_DELAY_MS;
    fleet_stream_t *s = NULL;
    double t0 = ex_now();
    err = fleet_stream_create(&s, rt, &cfg);
    if (err == 0)
        err = fleet_stream_source_generator(s, events, generate, &y);
    if (err == 0)
        err = fleet_stream_filter(s, is_view, NULL);
    if (err == 0)
        err = fleet_stream_map(s, join, &y);
    if (err == 0)
        err = fleet_stream_key_by(s, NULL, NULL);
    if (err == 0)
        err = fleet_stream_window(s, &win, &count, NULL);
    err = ex_sink_run(err, s, collect, &rows, &rows.err);
    double secs = ex_now() - t0;
    if (err != 0) {
        fprintf(stderr, "ysb: %s\n", fleet_strerror(err));
    } else {
        if (rows.n > 0)
            qsort(rows.v, rows.n, sizeof(*rows.v), by_campaign);
        for (size_t i = 0; i < rows.n; i++)
            printf("%llu %lld %llu\n", (unsigned long long)rows.v[i].campaign,
                   (long long)rows.v[i].start,
                   (unsigned long long)rows.v[i].count);
        if (ex_flush_stdout("ysb") != 0)
            err = -EIO;
        if (!quiet)
            fprintf(stderr, "ysb: %llu events in %.3f s (%.1f M events/s)\n",
                    events, secs, secs > 0 ? (double)events / secs / 1e6 : 0);
        ex_report("ysb", rt, s, secs, &o, quiet);
    }
    fleet_stream_destroy(s);
    fleet_runtime_destroy(rt);
    ysb_join_free(&y.join, y.ads);
    free(rows.v);
    return err != 0;
}
