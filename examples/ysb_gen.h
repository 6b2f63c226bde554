/*
 * The Yahoo Streaming Benchmark's input, generated from a seed: shared by
 * examples/ysb.c and its serial baseline perf/ysb_serial.c, so both see the
 * same events.
 *
 * There are 10 ads per campaign (as in YSB). Ads and campaigns have random
 * 48-bit ids drawn from the seed (ysb_ad_id, ysb_campaign_id); ad number k
 * (0 <= k < 10 * campaigns) belongs to campaign number k / 10, so joining an
 * event's ad id to its campaign takes a real lookup table (ysb_join_*).
 * Event i (0 <= i < events) draws one 64-bit number r = splitmix64(seed + i)
 * and from it an ad number (r % ads), a type
 * (view, click, purchase: (r >> 32) % 3) and an event time: the stream runs
 * at YSB_EVENTS_PER_MS events per millisecond of event time, and each event
 * comes up to YSB_MAX_DELAY_MS - 1 ms late ((r >> 40) % YSB_MAX_DELAY_MS), so
 * a watermark YSB_MAX_DELAY_MS behind the largest time seen loses nothing.
 * Every event is a pure function of (seed, i): any thread can make any part
 * of the stream, in any order, and replay it.
 *
 * Not a header of the library; header-only, static inline.
 */
#ifndef YSB_GEN_H
#define YSB_GEN_H

#include <stdint.h>
#include <stdlib.h>

#define YSB_ADS_PER_CAMPAIGN 10
#define YSB_EVENTS_PER_MS 10
#define YSB_MAX_DELAY_MS 1000
#define YSB_WINDOW_MS 10000

enum { YSB_VIEW = 0, YSB_CLICK = 1, YSB_PURCHASE = 2 };

static const char *const ysb_type_names[3] = {"view", "click", "purchase"};

typedef struct ysb_event {
    int64_t time_ms;
    uint64_t ad; /* the ad's id (ysb_ad_id) */
    unsigned type;
} ysb_event_t;

static inline uint64_t ysb_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Ids: distinct for distinct k as long as there are fewer than 2^24 ads
 * (the low 24 bits are k itself). */
static inline uint64_t ysb_ad_id(uint64_t seed, uint64_t k)
{
    return ((ysb_splitmix64(seed ^ 0xad5eedULL) + k) & 0xffffffULL) << 24 | k;
}

static inline uint64_t ysb_campaign_id(uint64_t seed, uint64_t c)
{
    return (ysb_splitmix64(seed ^ 0xca3a16eULL ^ (c << 20)) &
            0xffffff000000ULL) |
           c;
}

/* Event i; ad_ids[k] = ysb_ad_id(seed, k) for every ad number k. */
static inline void ysb_event(uint64_t seed, uint64_t campaigns,
                             const uint64_t *ad_ids, uint64_t i, ysb_event_t *e)
{
    uint64_t r = ysb_splitmix64(seed + i);
    int64_t t = (int64_t)(i / YSB_EVENTS_PER_MS) + YSB_MAX_DELAY_MS;
    e->ad = ad_ids[r % (campaigns * YSB_ADS_PER_CAMPAIGN)];
    e->type = (unsigned)((r >> 32) % 3);
    e->time_ms = t - (int64_t)((r >> 40) % YSB_MAX_DELAY_MS);
}

/* The ad id -> campaign id table: open addressing on the ad id, built once
 * and only read after (any number of threads). */
typedef struct ysb_join {
    uint64_t mask;
    uint64_t *keys; /* ad id + 1; 0 = empty */
    uint64_t *vals; /* campaign id */
} ysb_join_t;

/* ids[k] = ysb_ad_id(seed, k) for k < n, then the table with every ad.
 * Returns 0 or -1 (out of memory); free with ysb_join_free. */
static inline int ysb_join_init(ysb_join_t *j, uint64_t seed,
                                uint64_t campaigns, uint64_t **ids)
{
    uint64_t n = campaigns * YSB_ADS_PER_CAMPAIGN, cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    j->mask = cap - 1;
    j->keys = (uint64_t *)calloc(cap, sizeof *j->keys);
    j->vals = (uint64_t *)calloc(cap, sizeof *j->vals);
    *ids = (uint64_t *)malloc(n * sizeof **ids);
    if (!j->keys || !j->vals || !*ids) {
        free(j->keys);
        free(j->vals);
        free(*ids);
        return -1;
    }
    for (uint64_t k = 0; k < n; k++) {
        uint64_t id = ysb_ad_id(seed, k), h = ysb_splitmix64(id) & j->mask;
        (*ids)[k] = id;
        while (j->keys[h])
            h = (h + 1) & j->mask;
        j->keys[h] = id + 1;
        j->vals[h] = ysb_campaign_id(seed, k / YSB_ADS_PER_CAMPAIGN);
    }
    return 0;
}

/* The campaign id of an ad id, or UINT64_MAX if it is not an ad. */
static inline uint64_t ysb_join_lookup(const ysb_join_t *j, uint64_t ad)
{
    for (uint64_t h = ysb_splitmix64(ad) & j->mask;; h = (h + 1) & j->mask) {
        if (j->keys[h] == ad + 1)
            return j->vals[h];
        if (!j->keys[h])
            return UINT64_MAX;
    }
}

static inline void ysb_join_free(ysb_join_t *j, uint64_t *ids)
{
    free(j->keys);
    free(j->vals);
    free(ids);
}

#endif /* YSB_GEN_H */
