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

size_t fl_grain_auto(size_t n, unsigned workers)
{
    if (workers == 0)
        workers = 1;
    size_t g = n / ((size_t)workers * 64);
    return g == 0 ? 1 : g;
}
