/*
 * wc_serial: word count in one plain thread, no fleet: the serial baseline
 * (McSherry's COST) that examples/wordcount is measured against.
 *
 * Usage: wc_serial [FILE...]   (standard input when no FILE; "-" is stdin)
 *
 * A word is a maximal run of ASCII [A-Za-z0-9_], lower-cased; every other
 * byte separates words. The files are one byte stream, as `cat FILE...`
 * makes it (a word may run from the end of one file into the next). Output,
 * on stdout: `word count` per distinct word, sorted by word in byte order.
 * The same bytes as
 *   cat FILE... | LC_ALL=C tr -cs 'A-Za-z0-9_' '\n' | tr A-Z a-z |
 *   grep -v '^$' | LC_ALL=C sort | uniq -c | awk '{print $2" "$1}'
 * On stderr one summary line: words, distinct words, bytes, seconds.
 *
 * How: the input is read in 1 MiB blocks (a word cut by the end of a block
 * is moved to the front and completed by the next read); a byte-class table
 * tells word bytes and lower-cases them in place. Words are counted in two
 * open-addressing tables (linear probing, grown at load 5/8): one for words
 * of up to 8 bytes, which are their own 64-bit key, and one for longer
 * words, hashed eight bytes at a time, the hash stored, the bytes in an
 * arena. At the end the distinct words are radix-sorted on their first 8
 * bytes (ties by comparing the rest) and printed through one large buffer.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "word_sort.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "wc_serial reads words as little-endian 64-bit integers"
#endif

#define BLOCK (1u << 20) /* bytes per read */
#define SLACK 16         /* readable bytes past any key or block end */
#define ARENA_CHUNK (1u << 20)
#define OUT_BUF (1u << 20)

/* ---- small helpers ------------------------------------------------------ */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "wc_serial: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        die("out of memory", NULL);
    return p;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v; /* the bytes at p in order from the lowest (little-endian) */
}

/* ---- byte classes ------------------------------------------------------- */

/* lower[c]: the lower-cased byte for a word byte, 0 for a separator. */
static unsigned char lower[256];

static void classes_init(void)
{
    for (int c = 0; c < 256; c++) {
        bool word =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        lower[c] = word ? (unsigned char)c : 0;
        if (c >= 'A' && c <= 'Z')
            lower[c] = (unsigned char)(c - 'A' + 'a');
    }
}

/* ---- hashing ------------------------------------------------------------ */

/* The first n (< 8) bytes of the 8 at p, the rest zero. */
static inline uint64_t tail64(const unsigned char *p, size_t n)
{
    return n ? load64(p) & (~0ull >> (64 - 8 * n)) : 0;
}

/* 64x64 -> 128 multiply folded to 64 bits (wyhash's mum). */
static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Reads up to 7 bytes past the word (SLACK guarantees they exist). */
static inline uint64_t hash_word(const unsigned char *p, size_t n)
{
    const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull;
    uint64_t h = k0 ^ n;
    for (; n >= 8; n -= 8, p += 8)
        h = mix(h ^ load64(p), k1);
    return mix(h ^ tail64(p, n), k1);
}

/* Equal n-byte keys, compared eight bytes at a time. */
static inline bool same_word(const unsigned char *a, const unsigned char *b,
                             size_t n)
{
    for (; n >= 8; n -= 8, a += 8, b += 8)
        if (load64(a) != load64(b))
            return false;
    return tail64(a, n) == tail64(b, n);
}

/* ---- key arena: chunks that never move ---------------------------------- */

struct arena {
    unsigned char *cur, *end; /* free space of the current chunk */
    unsigned char **chunks;
    size_t nchunks, cap;
};

static const unsigned char *arena_copy(struct arena *a, const unsigned char *p,
                                       size_t n)
{
    if ((size_t)(a->end - a->cur) < n) {
        size_t size = n + SLACK > ARENA_CHUNK ? n + SLACK : ARENA_CHUNK;
        if (a->nchunks == a->cap) {
            a->cap = a->cap ? 2 * a->cap : 16;
            a->chunks = realloc(a->chunks, a->cap * sizeof *a->chunks);
            if (!a->chunks)
                die("out of memory", NULL);
        }
        a->cur = a->chunks[a->nchunks++] = xmalloc(size);
        a->end = a->cur + size - SLACK;
        memset(a->end, 0, SLACK);
    }
    unsigned char *key = a->cur;
    memcpy(key, p, n);
    a->cur += n;
    return key;
}

static void arena_free(struct arena *a)
{
    for (size_t i = 0; i < a->nchunks; i++)
        free(a->chunks[i]);
    free(a->chunks);
}

/* ---- the count tables --------------------------------------------------- */

/*
 * Words of up to 8 bytes (most of them) are their own key: the word's bytes
 * in a uint64_t, zero-padded. Word bytes are never 0, so the key says the
 * length too, and 0 marks an empty slot. Longer words keep their bytes in
 * the arena.
 */
struct short_entry {
    uint64_t key; /* 0: empty slot */
    uint64_t count;
};

struct long_entry {
    uint64_t count; /* 0: empty slot */
    const unsigned char *key;
    uint32_t hash; /* low 32 bits of the word's hash */
    uint32_t len;
};

struct table {
    struct short_entry *shorts;
    struct long_entry *longs;
    size_t short_mask, short_used, long_mask, long_used;
    uint64_t words;
    struct arena keys;
};

/* A zeroed array of cap (a power of two) slots of size bytes each. */
static void *slots_alloc(size_t cap, size_t size)
{
    if (cap > SIZE_MAX / size)
        die("out of memory", NULL);
    void *p = calloc(cap, size);
    if (!p)
        die("out of memory", NULL);
    return p;
}

/* Growth at load 5/8. */
static inline bool too_full(size_t used, size_t mask)
{
    return used > (mask + 1) / 8 * 5;
}

static inline size_t short_slot(uint64_t key, size_t mask)
{
    return (size_t)mix(key, 0xe7037ed1a0b428dbull) & mask;
}

static void shorts_grow(struct table *t)
{
    struct short_entry *old = t->shorts;
    size_t n = t->short_mask + 1;
    t->shorts = slots_alloc(2 * n, sizeof *old);
    t->short_mask = 2 * n - 1;
    for (size_t i = 0; i < n; i++) {
        if (!old[i].key)
            continue;
        size_t h = short_slot(old[i].key, t->short_mask);
        while (t->shorts[h].key)
            h = (h + 1) & t->short_mask;
        t->shorts[h] = old[i];
    }
    free(old);
}

static void longs_grow(struct table *t)
{
    struct long_entry *old = t->longs;
    size_t n = t->long_mask + 1;
    t->longs = slots_alloc(2 * n, sizeof *old);
    t->long_mask = 2 * n - 1;
    for (size_t i = 0; i < n; i++) {
        if (!old[i].count)
            continue;
        size_t h = old[i].hash & t->long_mask;
        while (t->longs[h].count)
            h = (h + 1) & t->long_mask;
        t->longs[h] = old[i];
    }
    free(old);
}

static void table_init(struct table *t)
{
    *t = (struct table){0};
    t->short_mask = t->long_mask = (1u << 14) - 1;
    t->shorts = slots_alloc(t->short_mask + 1, sizeof *t->shorts);
    t->longs = slots_alloc(t->long_mask + 1, sizeof *t->longs);
}

static void table_free(struct table *t)
{
    free(t->shorts);
    free(t->longs);
    arena_free(&t->keys);
}

/* Counts a word of 1..8 bytes, given as its key. */
static inline void add_short(struct table *t, uint64_t key)
{
    for (size_t h = short_slot(key, t->short_mask);;
         h = (h + 1) & t->short_mask) {
        struct short_entry *e = &t->shorts[h];
        if (e->key == key) {
            e->count++;
            return;
        }
        if (!e->key) {
            *e = (struct short_entry){key, 1};
            if (too_full(++t->short_used, t->short_mask))
                shorts_grow(t);
            return;
        }
    }
}

/* Counts a word of more than 8 bytes. */
static void add_long(struct table *t, const unsigned char *p, size_t n)
{
    uint32_t hash = (uint32_t)hash_word(p, n);
    for (size_t h = hash & t->long_mask;; h = (h + 1) & t->long_mask) {
        struct long_entry *e = &t->longs[h];
        if (!e->count) {
            if (n > UINT32_MAX)
                die("a word longer than 4 GiB", NULL);
            *e = (struct long_entry){1, arena_copy(&t->keys, p, n), hash,
                                     (uint32_t)n};
            if (too_full(++t->long_used, t->long_mask))
                longs_grow(t);
            return;
        }
        if (e->hash == hash && e->len == n && same_word(e->key, p, n)) {
            e->count++;
            return;
        }
    }
}

/* Counts the word p[0..n) (lower-cased, SLACK readable bytes after it). */
static inline void table_add(struct table *t, const unsigned char *p, size_t n)
{
    t->words++;
    if (n <= 8)
        add_short(t, load64(p) & (~0ull >> (64 - 8 * n)));
    else
        add_long(t, p, n);
}

/* ---- tokenizing --------------------------------------------------------- */

/*
 * Counts every complete word of buf[0..n) and returns the offset of the
 * word cut by the end of the block (n if there is none). Lower-cases the
 * words in place. Needs buf[n] and buf[n + 1] writable; for the scan they
 * hold a word byte then a separator, so neither inner loop tests bounds.
 */
static size_t count_block(struct table *t, unsigned char *buf, size_t n)
{
    unsigned char *p = buf, *end = buf + n;
    end[0] = 'a';
    end[1] = 0;
    for (;;) {
        while (!lower[*p])
            p++;
        if (p >= end)
            return n;
        unsigned char *w = p;
        do
            *p = lower[*p];
        while (lower[*++p]);
        if (p > end)
            return (size_t)(w - buf);
        table_add(t, w, (size_t)(p - w));
    }
}

/* ---- input: every file, as one stream ----------------------------------- */

struct input {
    char **names; /* NULL-terminated; empty: stdin */
    int fd;       /* open file, or -1 */
    const char *name;
};

/* Reads up to n bytes of the stream into p; 0 at the end of all files. */
static size_t input_read(struct input *in, unsigned char *p, size_t n)
{
    for (;;) {
        if (in->fd < 0) {
            if (!*in->names)
                return 0;
            in->name = *in->names++;
            in->fd = strcmp(in->name, "-") == 0 ? 0 : open(in->name, O_RDONLY);
            if (in->fd < 0)
                die(in->name, strerror(errno));
        }
        ssize_t got = read(in->fd, p, n);
        if (got > 0)
            return (size_t)got;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            die(in->name, strerror(errno));
        if (in->fd != 0)
            close(in->fd);
        in->fd = -1;
    }
}

/* Fills p[0..n) from the stream (short only at its end). */
static size_t input_fill(struct input *in, unsigned char *p, size_t n)
{
    size_t have = 0, got;
    while (have < n && (got = input_read(in, p + have, n - have)) > 0)
        have += got;
    return have;
}

/* Counts every word of the input; returns the number of bytes read. */
static uint64_t count_input(struct table *t, struct input *in)
{
    size_t cap = BLOCK, carry = 0;
    unsigned char *buf = xmalloc(cap + SLACK);
    uint64_t bytes = 0;
    for (;;) {
        if (carry == cap) { /* one word fills the buffer: make room */
            cap *= 2;
            buf = realloc(buf, cap + SLACK);
            if (!buf)
                die("out of memory", NULL);
        }
        size_t got = input_fill(in, buf + carry, cap - carry);
        bytes += got;
        if (got == 0)
            break;
        size_t n = carry + got, cut = count_block(t, buf, n);
        carry = n - cut;
        memmove(buf, buf + cut, carry);
    }
    if (carry) { /* the last word ends with the input */
        memset(buf + carry, 0, SLACK);
        table_add(t, buf, carry);
    }
    free(buf);
    return bytes;
}

/* ---- sorting (word_sort.h) --------------------------------------------- */

/* Every distinct word, unsorted; *n gets their number. */
static struct word_rec *table_recs(const struct table *t, size_t *n)
{
    struct word_rec *v =
        xmalloc((t->short_used + t->long_used + 1) * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i <= t->short_mask; i++) {
        const struct short_entry *e = &t->shorts[i];
        if (e->key)
            v[k++] = (struct word_rec){
                __builtin_bswap64(e->key), (const unsigned char *)&e->key,
                e->count, (size_t)(71 - __builtin_clzll(e->key)) / 8};
    }
    for (size_t i = 0; i <= t->long_mask; i++) {
        const struct long_entry *e = &t->longs[i];
        if (e->count)
            v[k++] = (struct word_rec){__builtin_bswap64(load64(e->key)),
                                       e->key, e->count, e->len};
    }
    *n = k;
    return v;
}

/* ---- output ------------------------------------------------------------- */

struct out {
    char *buf;
    size_t len;
};

static void out_flush(struct out *o)
{
    for (size_t done = 0; done < o->len;) {
        ssize_t w = write(1, o->buf + done, o->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            die("stdout", strerror(errno));
        done += (size_t)w;
    }
    o->len = 0;
}

static void out_write(struct out *o, const void *p, size_t n)
{
    if (o->len + n > OUT_BUF)
        out_flush(o);
    if (n > OUT_BUF) { /* a very long word: straight out */
        struct out big = {(char *)p, n};
        out_flush(&big);
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

/* Writes "word count\n". */
static void out_word(struct out *o, const unsigned char *word, size_t len,
                     uint64_t count)
{
    char num[24];
    int k = (int)sizeof num;
    num[--k] = '\n';
    do
        num[--k] = (char)('0' + count % 10);
    while (count /= 10);
    num[--k] = ' ';
    out_write(o, word, len);
    out_write(o, num + k, sizeof num - (size_t)k);
}

static void print_sorted(const struct table *t)
{
    size_t n;
    struct word_rec *v = table_recs(t, &n);
    if (word_sort(v, n) != 0)
        die("out of memory", NULL);
    struct out o = {xmalloc(OUT_BUF), 0};
    for (size_t i = 0; i < n; i++)
        out_word(&o, v[i].key, v[i].len, v[i].count);
    out_flush(&o);
    free(o.buf);
    free(v);
}

int main(int argc, char **argv)
{
    static char *use_stdin[] = {"-", NULL};
    double t0 = now();
    classes_init();
    struct input in = {argc > 1 ? argv + 1 : use_stdin, -1, NULL};
    struct table t;
    table_init(&t);
    uint64_t bytes = count_input(&t, &in);
    print_sorted(&t);
    double secs = now() - t0;
    fprintf(stderr,
            "wc_serial: %llu words, %zu distinct, %llu bytes in %.3f s "
            "(%.1f M words/s)\n",
            (unsigned long long)t.words, t.short_used + t.long_used,
            (unsigned long long)bytes, secs,
            secs > 0 ? (double)t.words / secs / 1e6 : 0.0);
    table_free(&t);
    return 0;
}
