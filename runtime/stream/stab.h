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

/* Keys up to STAB_INLINE bytes live in the entry itself. */
#define STAB_INLINE 16

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

/* Up to 8 bytes as a number (little-endian bytes beyond n are 0). */
static inline uint64_t stab_load_small(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        v = lo | (uint64_t)hi << ((n - 4) * 8);
    } else if (n > 0) {
        v = p[0] | (uint64_t)p[n / 2] << 8 | (uint64_t)p[n - 1] << 16;
    }
    return v;
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

uint64_t fl_hash_long(const void *p, size_t n);

/* A 64-bit hash of bytes (not cryptographic). */
static inline uint64_t fl_hash_bytes(const void *p, size_t n)
{
    const uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
    const unsigned char *s = p;
    if (n <= 8)
        return stab_mum(stab_load_small(s, n) ^ k0 ^ n, k1 ^ (n << 56));
    if (n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        return stab_mum(a ^ k0 ^ n, b ^ k1);
    }
    return fl_hash_long(p, n);
}

static inline bool stab_key_eq(const stab_t *t, const stab_ent_t *e,
                               const void *key, size_t klen)
{
    if (e->klen != klen || e->dead)
        return false;
    if (klen > STAB_INLINE)
        return memcmp(t->keys.p + e->k.off, key, klen) == 0;
    if (klen >= 8) {
        uint64_t a, b, c, d;
        memcpy(&a, e->k.bytes, 8);
        memcpy(&b, key, 8);
        memcpy(&c, e->k.bytes + klen - 8, 8);
        memcpy(&d, (const unsigned char *)key + klen - 8, 8);
        return a == b && c == d;
    }
    return stab_load_small(e->k.bytes, klen) == stab_load_small(key, klen);
}

/* The entry with this key, or -1. */
static inline ptrdiff_t stab_find(const stab_t *t, uint64_t hash,
                                  const void *key, size_t klen)
{
    if (t->index == NULL)
        return -1;
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        uint32_t e = t->index[i];
        if (e == 0)
            return -1;
        const stab_ent_t *en = stab_ent(t, e - 1);
        if (en->hash == hash && stab_key_eq(t, en, key, klen))
            return (ptrdiff_t)e - 1;
    }
}
ptrdiff_t stab_insert(stab_t *t, uint64_t hash, const void *key, size_t klen);

/* The entry with this key, made (value zeroed, *created = true) if there
 * was none; -1 when out of memory. Moves the blocks: value pointers taken
 * before are stale. */
static inline ptrdiff_t stab_upsert(stab_t *t, uint64_t hash, const void *key,
                                    size_t klen, bool *created)
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
        if (en->hash == hash && stab_key_eq(t, en, key, klen)) {
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
    memset(en->k.bytes, 0, STAB_INLINE);
    if (klen > 0)
        memcpy(en->k.bytes, key, klen);
    en->klen = (uint32_t)klen;
    en->dead = 0;
    memset(en + 1, 0, t->stride - sizeof(*en));
    t->index[i] = (uint32_t)(t->n + 1);
    return (ptrdiff_t)t->n++;
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
