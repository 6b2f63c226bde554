/*
 * split: see split.h.
 */
#include "split.h"

size_t fl_split_take(size_t b, size_t e, size_t grain, unsigned parts)
{
    size_t n = e - b;
    size_t piece = n;
    if (parts > 1 && n / 2 >= grain) {
        piece = n / parts;
        if (piece < grain)
            piece = grain;
        /* Never leave a sliver below the grain behind. */
        if (n - piece < grain)
            piece = n;
    }
    if (piece > FL_BATCH_MAX)
        piece = FL_BATCH_MAX;
    return b + piece;
}

size_t fl_tail_split(size_t next, size_t end, size_t grain)
{
    size_t n = end - next;
    if (grain == 0)
        grain = 1;
    if (n / 2 < grain)
        return end;
    /* The thief takes the back half, rounded down. */
    return end - n / 2;
}

size_t fl_chunk(size_t remaining, unsigned visitors, size_t min_chunk)
{
    if (visitors == 0)
        visitors = 1;
    size_t c = remaining / (2 * (size_t)visitors);
    if (c < min_chunk)
        c = min_chunk;
    if (c == 0)
        c = 1;
    return c < remaining ? c : remaining;
}

size_t fl_claim_size(size_t left, unsigned visitors, size_t min_chunk,
                     size_t want, bool beyond)
{
    size_t c = fl_chunk(left, visitors, min_chunk); /* <= left */
    if (want == 0 || (want > c && !beyond))
        return c;
    if (want < min_chunk)
        want = min_chunk;
    return want < left ? want : left;
}

size_t fl_next_want(size_t last, uint64_t last_ns)
{
    if (last == 0)
        return FL_FIRST_CHUNK;
    if (last_ns < FL_CHUNK_TARGET_NS / 2)
        return last > SIZE_MAX / 2 ? last : 2 * last;
    if (last_ns > 2 * (uint64_t)FL_CHUNK_TARGET_NS)
        return last / 2 ? last / 2 : 1;
    /* Within a factor of two of the target: scale to it. */
    double want = (double)last * FL_CHUNK_TARGET_NS / (double)last_ns;
    return want < 1 ? 1 : (size_t)want;
}

size_t fl_grain_auto(size_t n, unsigned workers)
{
    if (workers == 0)
        workers = 1;
    size_t g = n / ((size_t)workers * 64);
    return g == 0 ? 1 : g;
}
