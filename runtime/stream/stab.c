/*
 * stab: growable arrays and the byte-keyed hash table (see stab.h).
 * Open addressing with linear probing over an index of entry numbers, at
 * most half full; the entries themselves stay dense.
 */
#include "stab.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"

void *sbuf_push(sbuf_t *b, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len)
        return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = fl_realloc(FL_ARENA_DEFAULT, b->p, cap);
        if (p == NULL)
            return NULL;
        b->p = p;
        b->cap = cap;
    }
    void *at = b->p + b->len;
    b->len += n;
    return at;
}

int sbuf_copy(sbuf_t *dst, const sbuf_t *src)
{
    dst->len = 0;
    if (src->len == 0)
        return 0;
    void *p = sbuf_push(dst, src->len);
    if (p == NULL)
        return -ENOMEM;
    memcpy(p, src->p, src->len);
    return 0;
}

void sbuf_free(sbuf_t *b)
{
    fl_free(FL_ARENA_DEFAULT, b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

uint64_t fl_hash_long(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    return stab_mix(h ^ stab_words(s, n).w0);
}

void stab_init(stab_t *t, size_t vsize)
{
    memset(t, 0, sizeof(*t));
    t->vsize = vsize;
    t->stride = sizeof(stab_ent_t) + ((vsize + 7) & ~(size_t)7);
}

static int reindex(stab_t *t, size_t slots);

int stab_reserve(stab_t *t, size_t n)
{
    size_t slots = 64;
    while (slots < 2 * (n + 1))
        slots *= 2;
    if (t->mask + 1 < slots && reindex(t, slots) != 0)
        return -ENOMEM;
    size_t want = n * t->stride;
    if (want > t->ents.cap) {
        unsigned char *p = fl_realloc(FL_ARENA_DEFAULT, t->ents.p, want);
        if (p == NULL)
            return -ENOMEM;
        t->ents.p = p;
        t->ents.cap = want;
    }
    return 0;
}

void stab_free(stab_t *t)
{
    sbuf_free(&t->ents);
    sbuf_free(&t->keys);
    fl_free(FL_ARENA_DEFAULT, t->index);
    t->index = NULL;
    t->mask = 0;
    t->n = t->dead = 0;
}

void stab_clear(stab_t *t)
{
    t->ents.len = t->keys.len = 0;
    t->n = t->dead = 0;
    if (t->index != NULL)
        memset(t->index, 0, (t->mask + 1) * sizeof(*t->index));
}

int stab_copy(stab_t *dst, const stab_t *src)
{
    if (sbuf_copy(&dst->ents, &src->ents) != 0 ||
        sbuf_copy(&dst->keys, &src->keys) != 0)
        return -ENOMEM;
    if (dst->mask != src->mask) {
        fl_free(FL_ARENA_DEFAULT, dst->index);
        dst->index = NULL;
        dst->mask = 0;
        if (src->index != NULL) {
            dst->index = fl_alloc(FL_ARENA_DEFAULT,
                                  (src->mask + 1) * sizeof(*dst->index));
            if (dst->index == NULL)
                return -ENOMEM;
            dst->mask = src->mask;
        }
    }
    if (src->index != NULL)
        memcpy(dst->index, src->index, (src->mask + 1) * sizeof(*dst->index));
    dst->n = src->n;
    dst->dead = src->dead;
    return 0;
}

/* Rebuilds the index with `slots` slots from the live entries. */
static int reindex(stab_t *t, size_t slots)
{
    /* Zeroed by writing, not calloc: fresh pages from calloc are the
     * shared zero page until written, and the probes below read before
     * they write, so each page would fault twice, the second time with a
     * TLB shootdown to every CPU running a thread of the process. */
    uint32_t *ix = fl_alloc(FL_ARENA_DEFAULT, slots * sizeof(*ix));
    if (ix == NULL)
        return -ENOMEM;
    memset(ix, 0, slots * sizeof(*ix));
    size_t mask = slots - 1;
    for (size_t e = 0; e < t->n; e++) {
        const stab_ent_t *en = stab_ent(t, e);
        if (en->dead)
            continue;
        size_t i = en->hash & mask;
        while (ix[i] != 0)
            i = (i + 1) & mask;
        ix[i] = (uint32_t)(e + 1);
    }
    fl_free(FL_ARENA_DEFAULT, t->index);
    t->index = ix;
    t->mask = mask;
    return 0;
}

ptrdiff_t stab_insert(stab_t *t, uint64_t hash, const void *key, size_t klen)
{
    if (klen > UINT32_MAX || t->n >= UINT32_MAX - 1)
        return -1;
    if (t->index == NULL || 2 * (t->n + 1) > t->mask + 1) {
        size_t slots = t->index == NULL ? 64 : 2 * (t->mask + 1);
        while (2 * (t->n + 1) > slots)
            slots *= 2;
        if (reindex(t, slots) != 0)
            return -1;
    }
    size_t koff = t->keys.len;
    if (klen > STAB_INLINE && sbuf_push(&t->keys, klen) == NULL)
        return -1;
    stab_ent_t *en = sbuf_push(&t->ents, t->stride);
    if (en == NULL) {
        t->keys.len = koff;
        return -1;
    }
    memset(en, 0, t->stride);
    en->hash = hash;
    en->klen = (uint32_t)klen;
    if (klen > STAB_INLINE) {
        memcpy(t->keys.p + koff, key, klen);
        en->k.off = koff;
    } else if (klen > 0) {
        memcpy(en->k.bytes, key, klen);
    }
    size_t i = hash & t->mask;
    while (t->index[i] != 0)
        i = (i + 1) & t->mask;
    t->index[i] = (uint32_t)(t->n + 1);
    return (ptrdiff_t)t->n++;
}

void stab_remove(stab_t *t, size_t i)
{
    stab_ent_t *en = stab_ent(t, i);
    if (!en->dead) {
        en->dead = 1;
        t->dead++;
    }
}

bool stab_compact(stab_t *t)
{
    if (t->dead <= 1024 || 2 * t->dead <= t->n)
        return false;
    sbuf_t keys = {0};
    size_t live = t->n - t->dead, kbytes = 0;
    for (size_t e = 0; e < t->n; e++)
        if (!stab_ent(t, e)->dead && stab_ent(t, e)->klen > STAB_INLINE)
            kbytes += stab_ent(t, e)->klen;
    if (kbytes > 0 && sbuf_push(&keys, kbytes) == NULL)
        return false;
    keys.len = 0;
    size_t out = 0;
    for (size_t e = 0; e < t->n; e++) {
        stab_ent_t *en = stab_ent(t, e);
        if (en->dead)
            continue;
        if (en->klen > STAB_INLINE) {
            memcpy(keys.p + keys.len, t->keys.p + en->k.off, en->klen);
            en->k.off = keys.len;
            keys.len += en->klen;
        }
        if (out != e)
            memmove(stab_ent(t, out), en, t->stride);
        out++;
    }
    sbuf_free(&t->keys);
    t->keys = keys;
    t->n = live;
    t->dead = 0;
    t->ents.len = live * t->stride;
    size_t slots = 64;
    while (2 * (live + 1) > slots)
        slots *= 2;
    if (reindex(t, slots) != 0) {
        /* Keep the old index size: clear and refill it in place. */
        memset(t->index, 0, (t->mask + 1) * sizeof(*t->index));
        for (size_t e = 0; e < t->n; e++) {
            size_t i = stab_ent(t, e)->hash & t->mask;
            while (t->index[i] != 0)
                i = (i + 1) & t->mask;
            t->index[i] = (uint32_t)(e + 1);
        }
    }
    return true;
}

size_t stab_bytes(const stab_t *t)
{
    return t->ents.len + t->keys.len +
           (t->index ? (t->mask + 1) * sizeof(*t->index) : 0);
}
