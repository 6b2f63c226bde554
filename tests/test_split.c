/*
 * test_split: the arithmetic of binary scheduling, and a simulated
 * dispatcher driving real batches (split, claim, tail steal) at random:
 * every item of every range is covered exactly once, for random ranges,
 * grains and TaskManager counts, sizes 0 and 1, and ranges that end at
 * SIZE_MAX.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "batches.h"
#include "job.h"
#include "rng.h"
#include "split.h"

static void test_split_take(void **state)
{
    (void)state;
    /* One part, or a range too small to halve: the whole range. */
    assert_int_equal(fl_split_take(10, 20, 1, 1), 20);
    assert_int_equal(fl_split_take(10, 11, 1, 8), 11);
    assert_int_equal(fl_split_take(0, 7, 4, 2), 7);
    /* Halving. */
    assert_int_equal(fl_split_take(0, 100, 1, 2), 50);
    /* A 1/parts share, never below the grain, never leaving a sliver. */
    assert_int_equal(fl_split_take(0, 100, 1, 4), 25);
    assert_int_equal(fl_split_take(0, 100, 40, 4), 40);
    assert_int_equal(fl_split_take(0, 100, 30, 4), 30);
    assert_int_equal(fl_split_take(0, 100, 45, 2), 50);
    /* At the top of size_t, and capped at a batch's maximum. */
    assert_int_equal(fl_split_take(SIZE_MAX - 1, SIZE_MAX, 1, 2), SIZE_MAX);
    assert_int_equal(fl_split_take(SIZE_MAX - 10, SIZE_MAX, 1, 2),
                     SIZE_MAX - 5);
    assert_int_equal(fl_split_take(0, SIZE_MAX, 1, 2), FL_BATCH_MAX);
    assert_int_equal(fl_split_take(0, SIZE_MAX, SIZE_MAX, 2), FL_BATCH_MAX);
    /* Walking all of [0, SIZE_MAX) in maximal pieces never overflows. */
    size_t b = SIZE_MAX - 5 * FL_BATCH_MAX - 3, n = 0;
    while (b < SIZE_MAX) {
        size_t e = fl_split_take(b, SIZE_MAX, 1, 3);
        assert_true(e > b);
        assert_true(e - b <= FL_BATCH_MAX);
        b = e;
        n++;
    }
    assert_int_equal(b, SIZE_MAX);
    assert_true(n >= 6);
}

static void test_tail_and_chunk(void **state)
{
    (void)state;
    assert_int_equal(fl_tail_split(0, 100, 1), 50);
    assert_int_equal(fl_tail_split(0, 101, 1), 51);
    assert_int_equal(fl_tail_split(0, 1, 1), 1);    /* too small */
    assert_int_equal(fl_tail_split(5, 5, 1), 5);    /* empty */
    assert_int_equal(fl_tail_split(0, 19, 10), 19); /* under two grains */
    assert_int_equal(fl_tail_split(0, 20, 10), 10);
    assert_int_equal(fl_tail_split(0, 20, 0), 10); /* grain 0 acts as 1 */
    assert_int_equal(fl_chunk(1, 1, 1), 1);
    assert_int_equal(fl_chunk(1000, 1, 1), 500); /* half, per visitor */
    assert_int_equal(fl_chunk(1000, 5, 1), 100);
    assert_int_equal(fl_chunk(1000, 0, 1), 500);
    assert_int_equal(fl_chunk(10, 1, 64), 10);
    assert_int_equal(fl_chunk(100, 1, 0), 50);
    assert_int_equal(fl_grain_auto(0, 2), 1);
    assert_int_equal(fl_grain_auto(1 << 20, 2), (1 << 20) / 128);
    assert_int_equal(fl_grain_auto(100, 0), 1);
    assert_true(fl_grain_auto(SIZE_MAX, 1) > 0);
}

/* --- simulation ---------------------------------------------------------- */

struct iv {
    size_t b, e;
};

struct sim {
    struct iv *ran;
    size_t nran, capran;
    struct fl_batch **batches;
    unsigned *posts;
    size_t nb, capb;
};

static void add_ran(struct sim *s, size_t b, size_t e)
{
    if (s->nran == s->capran) {
        s->capran = s->capran ? 2 * s->capran : 256;
        s->ran = realloc(s->ran, s->capran * sizeof(*s->ran));
        assert_non_null(s->ran);
    }
    s->ran[s->nran++] = (struct iv){b, e};
}

static void add_batch(struct sim *s, struct fl_batch *b)
{
    if (s->nb == s->capb) {
        s->capb = s->capb ? 2 * s->capb : 64;
        s->batches = realloc(s->batches, s->capb * sizeof(*s->batches));
        s->posts = realloc(s->posts, s->capb * sizeof(*s->posts));
        assert_non_null(s->batches);
        assert_non_null(s->posts);
    }
    s->posts[s->nb] = 0;
    s->batches[s->nb++] = b;
}

static int cmp_iv(const void *a, const void *b)
{
    const struct iv *x = a, *y = b;
    return x->b < y->b ? -1 : x->b > y->b;
}

/* Splits, claims and steals at random until [B, E) is all run; checks
 * the pieces tile it exactly and every batch was posted exactly once. */
static void simulate(size_t B, size_t E, size_t grain, unsigned ntm,
                     uint64_t seed)
{
    struct sim s;
    memset(&s, 0, sizeof(s));
    struct fleet_job *job =
        fl_job_new(NULL, nop_range, NULL, NULL, B, E, grain);
    assert_non_null(job);
    size_t pb = B;
    size_t min_chunk = 1 + rng_below(&seed, 4) * rng_below(&seed, 50);
    for (;;) {
        bool unclaimed = false;
        for (size_t i = 0; i < s.nb; i++)
            unclaimed |= fl_batch_has_unclaimed(s.batches[i]);
        if (pb == E && !unclaimed)
            break;
        unsigned action = (unsigned)rng_below(&seed, 3);
        if (pb < E && (action == 0 || !unclaimed)) {
            /* Hand a piece to a TaskManager; `rooms` of them wait. */
            unsigned rooms = 1 + (unsigned)rng_below(&seed, 2 * ntm);
            size_t e = fl_split_take(pb, E, grain, rooms);
            assert_true(e > pb && e <= E);
            assert_true(e - pb <= FL_BATCH_MAX);
            if (e < E)
                assert_true(e - pb >= grain || e - pb == FL_BATCH_MAX);
            (void)ntm; /* which TaskManager does not matter to coverage */
            struct fl_batch *b = new_batch(job, pb, e, min_chunk, 1);
            assert_non_null(b);
            add_batch(&s, b);
            pb = e;
        } else if (s.nb > 0) {
            size_t i = rng_below(&seed, s.nb);
            struct fl_batch *b = s.batches[i];
            size_t cs, ce;
            if (action == 2 && fl_batch_steal_tail(b, grain, &cs, &ce)) {
                assert_true(ce - cs >= (grain ? grain : 1));
                struct fl_batch *nb = new_batch(job, cs, ce, min_chunk, 1);
                assert_non_null(nb);
                add_batch(&s, nb);
                if (fl_batch_done(b, ce - cs))
                    s.posts[i]++;
            } else if (fl_batch_claim(b, 0, false, &cs, &ce)) {
                assert_true(cs < ce);
                add_ran(&s, cs, ce);
                if (fl_batch_done(b, ce - cs))
                    s.posts[i]++;
            }
        }
    }
    /* Exactly once: sorted pieces tile [B, E). */
    qsort(s.ran, s.nran, sizeof(*s.ran), cmp_iv);
    size_t at = B;
    for (size_t i = 0; i < s.nran; i++) {
        assert_int_equal(s.ran[i].b, at);
        at = s.ran[i].e;
    }
    assert_int_equal(at, E);
    for (size_t i = 0; i < s.nb; i++) {
        assert_int_equal(s.posts[i], 1);
        assert_int_equal(atomic_load(&s.batches[i]->remaining), 0);
        drop(s.batches[i]);
    }
    free(s.ran);
    free(s.batches);
    free(s.posts);
    fl_job_unref(job);
    fl_job_unref(job);
}

static void test_simulated_cover(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed;
    for (int round = 0; round < 400; round++) {
        size_t n;
        switch (round % 5) {
        case 0:
            n = 1;
            break;
        case 1:
            n = 1 + rng_below(&seed, 64);
            break;
        case 2:
            n = 1 + rng_below(&seed, 5000);
            break;
        default:
            n = 1 + rng_below(&seed, 200000);
        }
        size_t B;
        switch (rng_below(&seed, 3)) {
        case 0:
            B = 0;
            break;
        case 1:
            B = SIZE_MAX - n; /* ends exactly at SIZE_MAX */
            break;
        default:
            B = rng_below(&seed, SIZE_MAX - n);
        }
        size_t grain = rng_below(&seed, 3) == 0 ? 1 + rng_below(&seed, n)
                                                : fl_grain_auto(n, 4);
        unsigned ntm = 1 + (unsigned)rng_below(&seed, 8);
        simulate(B, B + n, grain, ntm, rng_next(&seed));
    }
}

static void test_claim_wishes(void **state)
{
    (void)state;
    assert_int_equal(fl_next_want(0, 0), FL_FIRST_CHUNK);
    assert_int_equal(fl_next_want(100, 1000), 200); /* fast: doubles */
    assert_int_equal(fl_next_want(100, 10 * FL_CHUNK_TARGET_NS), 50);
    assert_int_equal(fl_next_want(1, 10 * FL_CHUNK_TARGET_NS), 1);
    assert_int_equal(fl_next_want(100, FL_CHUNK_TARGET_NS), 100);
    assert_true(fl_next_want(SIZE_MAX, 0) == SIZE_MAX);

    /* A wish is capped by the fair share (unless the last chunk was too
     * fast to share) and raised to the minimum chunk, never past the end. */
    assert_int_equal(fl_claim_size(1000, 1, 1, 0, false), 500);
    assert_int_equal(fl_claim_size(1000, 1, 1, 800, false), 500);
    assert_int_equal(fl_claim_size(1000, 1, 1, 800, true), 800);
    assert_int_equal(fl_claim_size(1000, 1, 1, 5000, true), 1000);
    assert_int_equal(fl_claim_size(1000, 1, 50, 10, true), 50);
    struct fleet_job *job = fl_job_new(NULL, nop_range, NULL, NULL, 0, 100, 1);
    assert_non_null(job);
    struct fl_batch *b = new_batch(job, 0, 10, 8, 1);
    size_t s, e;
    assert_true(fl_batch_claim(b, 1, false, &s, &e)); /* wish 1, minimum 8 */
    assert_int_equal(s, 0);
    assert_int_equal(e, 8);
    assert_true(fl_batch_claim(b, 1, false, &s, &e)); /* only 2 left */
    assert_int_equal(s, 8);
    assert_int_equal(e, 10);
    assert_false(fl_batch_claim(b, 1, false, &s, &e));
    assert_true(fl_batch_done(b, 10));
    drop(b);
    b = new_batch(job, 0, 1000, 1, 1);
    assert_true(fl_batch_claim(b, 100000, false, &s, &e)); /* the share: half */
    assert_int_equal(e - s, 500);
    assert_true(fl_batch_claim(b, 10, false, &s, &e));
    assert_int_equal(e - s, 10);
    assert_true(fl_batch_claim(b, 400, true, &s, &e)); /* past the share */
    assert_int_equal(e - s, 400);
    assert_true(fl_batch_claim(b, 400, true, &s, &e)); /* what is left */
    assert_int_equal(e - s, 90);
    assert_true(fl_batch_done(b, 1000)); /* all claimed: it posts */
    drop(b);
    fl_job_unref(job);
    fl_job_unref(job);
}

static void test_empty_range(void **state)
{
    (void)state;
    /* Size 0 makes no batch: the dispatcher never calls fl_split_take on
     * it, and a claim on an exhausted batch fails. */
    struct fleet_job *job = fl_job_new(NULL, nop_range, NULL, NULL, 5, 6, 1);
    assert_non_null(job);
    struct fl_batch *b = new_batch(job, 5, 6, 1, 1);
    size_t s, e;
    assert_true(fl_batch_claim(b, 0, false, &s, &e));
    assert_int_equal(s, 5);
    assert_int_equal(e, 6);
    assert_false(fl_batch_claim(b, 0, false, &s, &e));
    assert_false(fl_batch_steal_tail(b, 1, &s, &e));
    assert_true(fl_batch_done(b, 1));
    drop(b);
    fl_job_unref(job);
    fl_job_unref(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_take),
        cmocka_unit_test(test_tail_and_chunk),
        cmocka_unit_test(test_simulated_cover),
        cmocka_unit_test(test_claim_wishes),
        cmocka_unit_test(test_empty_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
