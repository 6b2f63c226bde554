/*
 * test_stab: the stream layer's hash table (runtime/stream/stab.h) against
 * a plain list of keys: upserts with and without room reserved (the
 * in-place and the growing insert), inline and arena keys, keys that differ
 * only in length or in a zero byte, removal and compaction, copies and
 * clears; and the spread of fl_hash_bytes over both the low bits (the
 * index) and the high bits (the key partition).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rng.h"
#include "stream/stab.h"

#define MAXK 40

/* The model: every key ever upserted, its value, and whether removed. */
struct model {
    unsigned char key[MAXK];
    size_t len;
    uint64_t val;
    bool dead;
    size_t ent; /* its entry number in the table */
};

/* A random key: often short and from a small alphabet (so that keys repeat
 * and differ only in length or a trailing zero), sometimes long. */
static size_t random_key(uint64_t *rng, unsigned char *k)
{
    size_t len;
    switch (rng_below(rng, 4)) {
    case 0:
        len = rng_below(rng, 4);
        break;
    case 1:
        len = rng_below(rng, 9);
        break;
    case 2:
        len = 9 + rng_below(rng, 8); /* 9..16: inline, two words */
        break;
    default:
        len = rng_below(rng, MAXK + 1);
        break;
    }
    for (size_t i = 0; i < len; i++)
        k[i] = (unsigned char)rng_below(rng, 3); /* 0, 1, 2 */
    return len;
}

static ptrdiff_t model_find(const struct model *m, size_t n,
                            const unsigned char *k, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (!m[i].dead && m[i].len == len && memcmp(m[i].key, k, len) == 0)
            return (ptrdiff_t)i;
    return -1;
}

/* Every live model key is in t with its value and bytes; dead ones are
 * not found. */
static void check_against(const stab_t *t, const struct model *m, size_t n)
{
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = fl_hash_bytes(m[i].key, m[i].len);
        ptrdiff_t e = stab_find(t, h, m[i].key, m[i].len);
        if (m[i].dead) { /* gone, or found again as a later entry */
            assert_true(e < 0 || (size_t)e != m[i].ent);
            continue;
        }
        live++;
        assert_int_equal(e, (ptrdiff_t)m[i].ent);
        assert_int_equal(stab_ent(t, (size_t)e)->klen, m[i].len);
        if (m[i].len > 0)
            assert_memory_equal(stab_key(t, (size_t)e), m[i].key, m[i].len);
        uint64_t v;
        memcpy(&v, stab_val(t, (size_t)e), sizeof(v));
        assert_int_equal(v, m[i].val);
    }
    assert_int_equal(t->n - t->dead, live);
}

/* Random upserts (and removals) on t, mirrored in the model. */
static size_t random_ops(stab_t *t, struct model *m, size_t cap, size_t ops,
                         uint64_t *rng, bool removals)
{
    size_t n = 0;
    for (size_t op = 0; op < ops; op++) {
        unsigned char k[MAXK];
        size_t len = random_key(rng, k);
        ptrdiff_t at = model_find(m, n, k, len);
        if (removals && at >= 0 && rng_below(rng, 4) == 0) {
            stab_remove(t, m[at].ent);
            m[at].dead = true;
            continue;
        }
        bool created;
        ptrdiff_t e = stab_upsert(t, fl_hash_bytes(k, len), k, len, &created);
        assert_true(e >= 0);
        assert_int_equal(created, at < 0);
        uint64_t v;
        memcpy(&v, stab_val(t, (size_t)e), sizeof(v));
        if (at < 0) {
            assert_true(n < cap);
            assert_int_equal(v, 0);                /* a new value is zeroed */
            assert_int_equal((size_t)e, t->n - 1); /* dense, in order */
            at = (ptrdiff_t)n++;
            memcpy(m[at].key, k, len);
            m[at].len = len;
            m[at].val = 0;
            m[at].dead = false;
            m[at].ent = (size_t)e;
        } else {
            assert_int_equal((size_t)e, m[at].ent);
        }
        v += op + 1;
        m[at].val = v;
        memcpy(stab_val(t, (size_t)e), &v, sizeof(v));
    }
    return n;
}

static void test_upsert_find(void **state)
{
    (void)state;
    enum { OPS = 20000, CAP = OPS };
    struct model *m = calloc(CAP, sizeof(*m));
    assert_non_null(m);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        /* Odd seeds reserve room first: inserts go in place; even ones
         * grow the table as they go. */
        for (size_t vsize = 8; vsize <= 24; vsize += 16) {
            uint64_t rng = seed * 7919 + vsize;
            stab_t t;
            stab_init(&t, vsize);
            if (seed & 1)
                assert_int_equal(stab_reserve(&t, 3000), 0);
            size_t n = random_ops(&t, m, CAP, OPS, &rng, false);
            assert_true(n > 1000);
            check_against(&t, m, n);
            stab_free(&t);
        }
    }
    free(m);
}

static void test_lengths_and_zeros(void **state)
{
    (void)state;
    /* The same bytes at every length from 0 to 20, zeros included: all
     * distinct keys, whichever path inserts them. */
    static const unsigned char bytes[20] = {0};
    static const unsigned char ones[20] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                           1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int reserve = 0; reserve <= 1; reserve++) {
        stab_t t;
        stab_init(&t, 8);
        if (reserve)
            assert_int_equal(stab_reserve(&t, 100), 0);
        /* Zeros of lengths 0..20 are entries 0..20; ones of lengths
         * 1..20 are entries 21..40 ("" is already in). */
        bool cr;
        for (size_t len = 0; len <= 20; len++) {
            assert_int_equal(
                stab_upsert(&t, fl_hash_bytes(bytes, len), bytes, len, &cr),
                (ptrdiff_t)len);
            assert_true(cr);
        }
        for (size_t len = 0; len <= 20; len++) {
            assert_int_equal(
                stab_upsert(&t, fl_hash_bytes(ones, len), ones, len, &cr),
                len == 0 ? 0 : (ptrdiff_t)(20 + len));
            assert_int_equal(cr, len > 0);
        }
        for (size_t len = 0; len <= 20; len++) {
            assert_int_equal(
                stab_find(&t, fl_hash_bytes(bytes, len), bytes, len),
                (ptrdiff_t)len);
            assert_int_equal(stab_ent(&t, len)->klen, len);
            if (len > 0)
                assert_int_equal(
                    stab_find(&t, fl_hash_bytes(ones, len), ones, len),
                    (ptrdiff_t)(20 + len));
        }
        stab_free(&t);
    }
    /* Hashes of zero-filled keys differ by length. */
    for (size_t a = 0; a <= 20; a++)
        for (size_t b = a + 1; b <= 20; b++)
            assert_true(fl_hash_bytes(bytes, a) != fl_hash_bytes(bytes, b));
}

static void test_remove_compact_copy(void **state)
{
    (void)state;
    enum { OPS = 30000, CAP = OPS };
    struct model *m = calloc(CAP, sizeof(*m));
    assert_non_null(m);
    uint64_t rng = 42;
    stab_t t, c;
    stab_init(&t, 8);
    stab_init(&c, 8);
    size_t n = random_ops(&t, m, CAP, OPS, &rng, true);
    check_against(&t, m, n);
    assert_int_equal(stab_copy(&c, &t), 0);
    check_against(&c, m, n);
    /* Compaction renumbers the live entries in their order. */
    size_t dead = t.dead;
    assert_true(dead > 0);
    for (size_t i = 0; i < n && t.dead <= 1024; i++) {
        if (!m[i].dead) {
            stab_remove(&t, m[i].ent);
            m[i].dead = true;
        }
    }
    while (2 * t.dead <= t.n) {
        for (size_t i = 0; i < n; i++)
            if (!m[i].dead) {
                stab_remove(&t, m[i].ent);
                m[i].dead = true;
                break;
            }
    }
    assert_true(stab_compact(&t));
    size_t next = 0;
    for (size_t i = 0; i < n; i++) {
        /* Model order is insertion order. */
        if (!m[i].dead)
            m[i].ent = next++;
    }
    check_against(&t, m, n);
    assert_int_equal(t.dead, 0);
    /* The copy did not change with the original. */
    assert_int_equal(c.dead, dead);
    /* Upserts after compaction, into a table that is in use. */
    bool cr;
    ptrdiff_t e = stab_upsert(&t, fl_hash_bytes("fresh", 5), "fresh", 5, &cr);
    assert_true(cr);
    assert_int_equal(e, (ptrdiff_t)next);
    /* Clear keeps nothing findable. */
    stab_clear(&t);
    assert_int_equal(t.n, 0);
    assert_true(stab_find(&t, fl_hash_bytes("fresh", 5), "fresh", 5) < 0);
    e = stab_upsert(&t, fl_hash_bytes("fresh", 5), "fresh", 5, &cr);
    assert_true(cr);
    assert_int_equal(e, 0);
    stab_free(&t);
    stab_free(&c);
    free(m);
}

/* Distinct word-like keys: key i is i in four base-26 letters, then
 * i % 9 more letters (lengths 4 to 12). */
static size_t word_key(uint64_t i, unsigned char *k)
{
    size_t len = 4 + i % 9;
    uint64_t x = i;
    for (size_t j = 0; j < 4; j++, x /= 26)
        k[j] = (unsigned char)('a' + x % 26);
    for (size_t j = 4; j < len; j++)
        k[j] = (unsigned char)('a' + (i * 7 + j) % 26);
    return len;
}

static void test_hash_spread(void **state)
{
    (void)state;
    /* 64 buckets from the low bits (as the index uses them) and from the
     * high bits (as key partitions do), for distinct word-like keys and for
     * 8-byte integers counting up (the keys of a generator): no bucket far
     * from the mean. */
    enum { N = 64000, B = 64 };
    for (int kind = 0; kind < 2; kind++) {
        unsigned lo[B] = {0}, hi[B] = {0};
        for (uint64_t i = 0; i < N; i++) {
            unsigned char k[16];
            size_t len;
            if (kind == 0) {
                len = word_key(i, k);
            } else {
                memcpy(k, &i, 8);
                len = 8;
            }
            uint64_t h = fl_hash_bytes(k, len);
            lo[h & (B - 1)]++;
            hi[(unsigned)(((unsigned __int128)h * B) >> 64)]++;
        }
        for (int b = 0; b < B; b++) {
            /* mean 1000, sd ~31: 850..1150 is about five sd. */
            assert_in_range(lo[b], 850, 1150);
            assert_in_range(hi[b], 850, 1150);
        }
    }
}

static void test_sbuf(void **state)
{
    (void)state;
    sbuf_t a = {0}, b = {0};
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = sbuf_push(&a, 7);
        assert_non_null(p);
        memset(p, i & 0xff, 7);
    }
    assert_int_equal(a.len, 7000);
    assert_int_equal(sbuf_copy(&b, &a), 0);
    assert_memory_equal(a.p, b.p, a.len);
    assert_null(sbuf_push(&a, SIZE_MAX / 2)); /* too large: refused */
    assert_int_equal(a.len, 7000);
    sbuf_free(&a);
    sbuf_free(&b);
    assert_int_equal(sbuf_copy(&b, &a), 0); /* empty */
    assert_int_equal(b.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_find),
        cmocka_unit_test(test_lengths_and_zeros),
        cmocka_unit_test(test_remove_compact_copy),
        cmocka_unit_test(test_hash_spread),
        cmocka_unit_test(test_sbuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
