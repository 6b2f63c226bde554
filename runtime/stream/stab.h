/*
 * stab: the stream layer's flat containers.
 *
 * sbuf is a growable byte array; stab a hash table from byte-string keys to
 * fixed-size values, its entries kept densely in insertion order (so
 * iterating it is deterministic) and its keys in one byte arena. Both are
 * made of a few flat blocks: copying one (a checkpoint) is a few memcpy.
 * Entries are addressed by index; a removed entry stays as a dead slot
 * until stab_compact, which renumbers them.
 *
 * Not thread-safe: one thread at a time per container. Allocation goes
 * through the library's shim (runtime/alloc.h).
 */
#ifndef FL_STREAM_STAB_H
#define FL_STREAM_STAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sbuf {
    unsigned char *p;
    size_t len;
    size_t cap;
} sbuf_t;

/* n new bytes at the end (uninitialised), or NULL when out of memory. The
 * block may move. */
void *sbuf_push(sbuf_t *b, size_t n);
/* Makes dst a copy of src (reusing dst's block). 0 or -ENOMEM. */
int sbuf_copy(sbuf_t *dst, const sbuf_t *src);
void sbuf_free(sbuf_t *b);

/* Keys up to STAB_INLINE bytes live in the entry itself (as two words:
 * stab_words). */
#define STAB_INLINE 16
_Static_assert(STAB_INLINE == 16, "stab_words makes two 8-byte words");

typedef struct stab_ent {
    uint64_t hash;
    union {
        uint64_t off; /* longer keys: at keys.p + off */
        unsigned char bytes[STAB_INLINE];
    } k;
    uint32_t klen;
    uint32_t dead;
    /* then the value, vsize bytes, 8-aligned */
} stab_ent_t;

typedef struct stab {
    size_t vsize;
    size_t stride; /* bytes per entry */
    size_t n;      /* entries, dead ones included */
    size_t dead;
    sbuf_t ents;
    sbuf_t keys;
    uint32_t *index; /* entry number + 1; 0 = empty */
    size_t mask;     /* index slots - 1; 0 before the first insert */
} stab_t;

void stab_init(stab_t *t, size_t vsize);
/* Makes room for n entries (index and entries) so that inserting that many
 * does not grow anything. 0 or -ENOMEM (nothing changed then). */
int stab_reserve(stab_t *t, size_t n);
void stab_free(stab_t *t);
/* Empties t, keeping its blocks. */
void stab_clear(stab_t *t);
/* Makes dst (initialised, same vsize) a copy of src. 0 or -ENOMEM. */
int stab_copy(stab_t *dst, const stab_t *src);

static inline stab_ent_t *stab_ent(const stab_t *t, size_t i)
{
    return (stab_ent_t *)(t->ents.p + i * t->stride);
}
static inline void *stab_val(const stab_t *t, size_t i)
{
    return (unsigned char *)stab_ent(t, i) + sizeof(stab_ent_t);
}
static inline const void *stab_key(const stab_t *t, size_t i)
{
    const stab_ent_t *e = stab_ent(t, i);
    return e->klen <= STAB_INLINE ? (const void *)e->k.bytes
                                  : (const void *)(t->keys.p + e->k.off);
}

/* A key of up to STAB_INLINE bytes as two little-endian words, zero past
 * its end: the form an entry keeps it in, so that two short keys compare
 * as two words. Reads the key's bytes only. */
typedef struct stab_kw {
    uint64_t w0, w1;
} stab_kw_t;

static inline stab_kw_t stab_words(const void *key, size_t n)
{
    const unsigned char *p = key;
    stab_kw_t w = {0, 0};
    if (n > 8) {
        memcpy(&w.w0, p, 8);
        memcpy(&w.w1, p + n - 8, 8);
        w.w1 >>= 8 * (16 - n); /* bytes 8 .. n - 1 */
    } else if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        w.w0 = lo | (uint64_t)hi << (8 * (n - 4));
    } else if (n > 0) {
        w.w0 = p[0] | (uint64_t)p[n / 2] << (8 * (n / 2)) |
               (uint64_t)p[n - 1] << (8 * (n - 1));
    }
    return w;
}

/* The words of a key, zero for a long one. */
static inline stab_kw_t stab_key_words(const void *key, size_t klen)
{
    stab_kw_t none = {0, 0};
    return klen <= STAB_INLINE ? stab_words(key, klen) : none;
}

static inline uint64_t stab_mix(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    return x ^ (x >> 32);
}

/* a * b folded to 64 bits: the high and low halves of the product xored
 * (wyhash's mixing step). */
static inline uint64_t stab_mum(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The hash of an n-byte key (n <= STAB_INLINE) from its words. */
static inline uint64_t fl_hash_words(stab_kw_t w, size_t n)
{
    return stab_mum(w.w0 ^ 0xa0761d6478bd642fULL ^ n,
                    w.w1 ^ 0xe7037ed1a0b428dbULL ^ ((uint64_t)n << 56));
}

uint64_t fl_hash_long(const void *p, size_t n);

/* The hash of an n-byte key whose words (stab_key_words) are w. */
static inline uint64_t fl_hash_key(const void *p, size_t n, stab_kw_t w)
{
    return n <= STAB_INLINE ? fl_hash_words(w, n) : fl_hash_long(p, n);
}

/* A 64-bit hash of bytes (not cryptographic). */
static inline uint64_t fl_hash_bytes(const void *p, size_t n)
{
    return fl_hash_key(p, n, stab_key_words(p, n));
}

/* Whether entry e holds the key (w: its words when klen <= STAB_INLINE). */
static inline bool stab_key_eq(const stab_t *t, const stab_ent_t *e,
                               const void *key, size_t klen, stab_kw_t w)
{
    if (e->klen != klen || e->dead)
        return false;
    if (klen > STAB_INLINE)
        return memcmp(t->keys.p + e->k.off, key, klen) == 0;
    uint64_t a, b;
    memcpy(&a, e->k.bytes, 8);
    memcpy(&b, e->k.bytes + 8, 8);
    return a == w.w0 && b == w.w1;
}

/* The entry with this key, or -1. */
static inline ptrdiff_t stab_find(const stab_t *t, uint64_t hash,
                                  const void *key, size_t klen)
{
    if (t->index == NULL)
        return -1;
    stab_kw_t w = stab_key_words(key, klen);
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        uint32_t e = t->index[i];
        if (e == 0)
            return -1;
        const stab_ent_t *en = stab_ent(t, e - 1);
        if (en->hash == hash && stab_key_eq(t, en, key, klen, w))
            return (ptrdiff_t)e - 1;
    }
}
ptrdiff_t stab_insert(stab_t *t, uint64_t hash, const void *key, size_t klen);

/* stab_upsert for a caller that has the key's words (stab_key_words)
 * already. */
static inline ptrdiff_t stab_upsert_w(stab_t *t, uint64_t hash, const void *key,
                                      size_t klen, stab_kw_t w, bool *created)
{
    *created = true;
    if (t->index == NULL)
        return stab_insert(t, hash, key, klen);
    size_t i = hash & t->mask;
    for (;; i = (i + 1) & t->mask) {
        uint32_t e = t->index[i];
        if (e == 0)
            break;
        const stab_ent_t *en = stab_ent(t, e - 1);
        if (en->hash == hash && stab_key_eq(t, en, key, klen, w)) {
            *created = false;
            return (ptrdiff_t)e - 1;
        }
    }
    /* Not there; slot i is free. Room made beforehand (stab_reserve, or
     * growth by earlier inserts) lets a short key go in right here. */
    if (klen > STAB_INLINE || 2 * (t->n + 1) > t->mask + 1 ||
        t->ents.len + t->stride > t->ents.cap || t->n >= UINT32_MAX - 1)
        return stab_insert(t, hash, key, klen);
    stab_ent_t *en = (stab_ent_t *)(t->ents.p + t->ents.len);
    t->ents.len += t->stride;
    en->hash = hash;
    memcpy(en->k.bytes, &w.w0, 8);
    memcpy(en->k.bytes + 8, &w.w1, 8);
    en->klen = (uint32_t)klen;
    en->dead = 0;
    memset(en + 1, 0, t->stride - sizeof(*en));
    t->index[i] = (uint32_t)(t->n + 1);
    return (ptrdiff_t)t->n++;
}

/* The entry with this key, made (value zeroed, *created = true) if there
 * was none; -1 when out of memory. Moves the blocks: value pointers taken
 * before are stale. */
static inline ptrdiff_t stab_upsert(stab_t *t, uint64_t hash, const void *key,
                                    size_t klen, bool *created)
{
    return stab_upsert_w(t, hash, key, klen, stab_key_words(key, klen),
                         created);
}
/* Marks entry i dead: lookups no longer see it. */
void stab_remove(stab_t *t, size_t i);
/* Drops dead entries when they are many (more than 1024 and than half);
 * returns true when it did (entry numbers changed), false when it did
 * nothing or ran out of memory (nothing changed then). */
bool stab_compact(stab_t *t);
/* Bytes held. */
size_t stab_bytes(const stab_t *t);

#endif /* FL_STREAM_STAB_H */
