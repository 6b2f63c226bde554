/*
 * Sorting distinct words in byte order: shared by examples/wordcount.c and
 * its serial baseline perf/wc_serial.c, so both sort the same way.
 *
 * A record carries the word's first 8 bytes as a big-endian number
 * (zero-padded: words hold no NUL byte, so a shorter word sorts first);
 * word_sort() radix-sorts on that prefix, a byte per pass, skipping the
 * passes where every prefix has the same byte, then sorts each run of equal
 * prefixes by comparing the words.
 *
 * Not a header of the library; header-only, static inline.
 */
#ifndef WORD_SORT_H
#define WORD_SORT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct word_rec {
    uint64_t prefix;
    const unsigned char *key;
    uint64_t count;
    size_t len;
};

static inline uint64_t word_prefix(const unsigned char *w, size_t len)
{
    uint64_t p = 0;
    for (size_t j = 0; j < 8; j++)
        p = p << 8 | (j < len ? w[j] : 0);
    return p;
}

/* Byte order of the words (qsort comparator). */
static inline int word_rec_cmp(const void *a, const void *b)
{
    const struct word_rec *x = a, *y = b;
    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Sorts v in byte order of the words. 0, or -1 when out of memory (v is
 * then unchanged). */
static inline int word_sort(struct word_rec *v, size_t n)
{
    struct word_rec *tmp = (struct word_rec *)malloc((n + 1) * sizeof(*tmp));
    if (tmp == NULL)
        return -1;
    struct word_rec *from = v, *to = tmp;
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t pos[256] = {0};
        for (size_t i = 0; i < n; i++)
            pos[(from[i].prefix >> shift) & 0xff]++;
        if (n == 0 || pos[(from[0].prefix >> shift) & 0xff] == n)
            continue;
        for (size_t b = 0, sum = 0; b < 256; b++) {
            size_t c = pos[b];
            pos[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            to[pos[(from[i].prefix >> shift) & 0xff]++] = from[i];
        struct word_rec *swap = from;
        from = to;
        to = swap;
    }
    if (from != v)
        memcpy(v, from, n * sizeof(*v));
    free(tmp);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && v[j].prefix == v[i].prefix; j++)
            ;
        if (j - i > 1)
            qsort(v + i, j - i, sizeof(*v), word_rec_cmp);
    }
    return 0;
}

#endif /* WORD_SORT_H */
