/*
 * ysb_serial: the Yahoo Streaming Benchmark in one plain thread, no fleet:
 * the serial baseline (McSherry's COST) that examples/ysb is measured
 * against.
 *
 * Usage: ysb_serial [--events N] [--campaigns C] [--seed S]
 *        (defaults: 10000000 events, 100 campaigns, seed 1)
 *
 * Events 0..N-1 come from the seeded generator of examples/ysb_gen.h. The
 * job: keep the views, join each view's ad id to its campaign id through
 * the generator's lookup table (ysb_join_lookup), and count the views per
 * campaign and 10 s tumbling event-time window (window start =
 * floor(time_ms / YSB_WINDOW_MS) * YSB_WINDOW_MS). The generator's events
 * are at most YSB_MAX_DELAY_MS out of order, so with a watermark that far
 * behind no event is late: every view counts. Output, on stdout:
 * `campaign_id window_start_ms count` per non-empty window, sorted by
 * campaign id then window start. On stderr one summary line.
 *
 * How: the counts live in one flat array, a row per campaign and a column
 * per window; a campaign id becomes its row through a direct-mapped table
 * on the id's low bits (the generator puts the campaign's number there),
 * checked against the full id, so a wrong id is caught, not miscounted.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ysb_gen.h"

#define CAMPAIGN_BITS 24 /* the generator's ids are distinct below 2^24 */

struct args {
    uint64_t events, campaigns, seed;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: ysb_serial [--events N] [--campaigns C] "
            "[--seed S]\n"
            "  N >= 0 (default 10000000), 1 <= C <= %llu (default "
            "100), S >= 0 (default 1)\n",
            (unsigned long long)((1ull << CAMPAIGN_BITS) - 1) /
                YSB_ADS_PER_CAMPAIGN);
    exit(2);
}

/* A whole decimal number, or usage(). */
static uint64_t parse_u64(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        usage();
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        usage();
    return v;
}

static struct args parse_args(int argc, char **argv)
{
    struct args a = {10000000, 100, 1};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "--events") == 0)
            a.events = parse_u64(val);
        else if (strcmp(opt, "--campaigns") == 0)
            a.campaigns = parse_u64(val);
        else if (strcmp(opt, "--seed") == 0)
            a.seed = parse_u64(val);
        else
            usage();
        i++;
    }
    if (a.campaigns < 1 ||
        a.campaigns > ((1ull << CAMPAIGN_BITS) - 1) / YSB_ADS_PER_CAMPAIGN)
        usage();
    return a;
}

static void die(const char *what)
{
    fprintf(stderr, "ysb_serial: %s\n", what);
    exit(1);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* floor(t / w), also for negative t. */
static inline int64_t floor_div(int64_t t, int64_t w)
{
    return t / w - (t % w < 0);
}

/* The counts: campaign row r, window column w at cell[r * windows + w];
 * window w starts at (first + w) * YSB_WINDOW_MS. A window holds at most
 * YSB_EVENTS_PER_MS * (YSB_WINDOW_MS + YSB_MAX_DELAY_MS) events, so 32-bit
 * counts cannot overflow. */
struct counts {
    uint32_t *cell;
    uint64_t *ids; /* campaign id of each row */
    uint64_t campaigns, windows, views;
    int64_t first; /* the first window's number */
};

/* Rows for every campaign and columns for every window the generator's
 * event times can fall in. */
static void counts_init(struct counts *c, const struct args *a)
{
    int64_t tmin = 0, tmax = YSB_MAX_DELAY_MS;
    if (a->events)
        tmax =
            (int64_t)((a->events - 1) / YSB_EVENTS_PER_MS) + YSB_MAX_DELAY_MS;
    c->first = floor_div(tmin, YSB_WINDOW_MS);
    c->windows = (uint64_t)(floor_div(tmax, YSB_WINDOW_MS) - c->first + 1);
    c->campaigns = a->campaigns;
    c->views = 0;
    if (c->windows > SIZE_MAX / sizeof *c->cell / a->campaigns)
        die("out of memory");
    c->cell = calloc(a->campaigns * c->windows, sizeof *c->cell);
    c->ids = malloc(a->campaigns * sizeof *c->ids);
    if (!c->cell || !c->ids)
        die("out of memory");
    for (uint64_t k = 0; k < a->campaigns; k++)
        c->ids[k] = ysb_campaign_id(a->seed, k);
}

/* Counts one view of campaign id cid at time t. */
static inline void counts_add(struct counts *c, uint64_t cid, int64_t t)
{
    uint64_t row = cid & ((1ull << CAMPAIGN_BITS) - 1);
    uint64_t col = (uint64_t)(floor_div(t, YSB_WINDOW_MS) - c->first);
    if (row >= c->campaigns || c->ids[row] != cid || col >= c->windows)
        die("an event outside every campaign or window");
    c->cell[row * c->windows + col]++;
    c->views++;
}

/* The whole stream: generate, filter views, join, count. */
static void run(const struct args *a, const ysb_join_t *join,
                const uint64_t *ad_ids, struct counts *c)
{
    for (uint64_t i = 0; i < a->events; i++) {
        ysb_event_t e;
        ysb_event(a->seed, a->campaigns, ad_ids, i, &e);
        if (e.type != YSB_VIEW)
            continue;
        counts_add(c, ysb_join_lookup(join, e.ad), e.time_ms);
    }
}

static const struct counts *sort_ctx;

static int cmp_row(const void *x, const void *y)
{
    uint64_t a = sort_ctx->ids[*(const uint64_t *)x];
    uint64_t b = sort_ctx->ids[*(const uint64_t *)y];
    return (a > b) - (a < b);
}

/* Prints the non-empty windows, by campaign id then window start; returns
 * how many. */
static uint64_t print_windows(const struct counts *c)
{
    uint64_t *rows = malloc(c->campaigns * sizeof *rows), lines = 0;
    if (!rows)
        die("out of memory");
    for (uint64_t r = 0; r < c->campaigns; r++)
        rows[r] = r;
    sort_ctx = c;
    qsort(rows, c->campaigns, sizeof *rows, cmp_row);
    static char buf[1 << 20];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    for (uint64_t k = 0; k < c->campaigns; k++) {
        const uint32_t *row = c->cell + rows[k] * c->windows;
        for (uint64_t w = 0; w < c->windows; w++) {
            if (!row[w])
                continue;
            printf("%" PRIu64 " %" PRId64 " %" PRIu32 "\n", c->ids[rows[k]],
                   (c->first + (int64_t)w) * YSB_WINDOW_MS, row[w]);
            lines++;
        }
    }
    if (fflush(stdout) != 0)
        die("cannot write the output");
    free(rows);
    return lines;
}

int main(int argc, char **argv)
{
    struct args a = parse_args(argc, argv);
    double t0 = now();
    ysb_join_t join;
    uint64_t *ad_ids;
    if (ysb_join_init(&join, a.seed, a.campaigns, &ad_ids) != 0)
        die("out of memory");
    struct counts c;
    counts_init(&c, &a);
    run(&a, &join, ad_ids, &c);
    uint64_t lines = print_windows(&c);
    double secs = now() - t0;
    fprintf(stderr,
            "ysb_serial: %" PRIu64 " events, %" PRIu64 " views, %" PRIu64
            " windows in %.3f s (%.1f M events/s)\n",
            a.events, c.views, lines, secs,
            secs > 0 ? (double)a.events / secs / 1e6 : 0.0);
    free(c.cell);
    free(c.ids);
    ysb_join_free(&join, ad_ids);
    return 0;
}
