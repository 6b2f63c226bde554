/*
 * test_batch: the claim protocol under contention — several threads claim
 * chunks of the same batches while a thief cuts their tails into new
 * batches; every item runs exactly once, every batch is posted exactly once,
 * and the last reference frees it (ASan checks that).
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "batches.h"
#include "job.h"

#define MAX_BATCHES 4096
#define CLAIMERS 3

struct shared {
    size_t n;
    _Atomic unsigned char *hits;
    pthread_mutex_t lock; /* guards batches[] and nb */
    struct fl_batch *batches[MAX_BATCHES];
    _Atomic unsigned posts[MAX_BATCHES];
    size_t nb;
    _Atomic bool thief_done;
    _Atomic unsigned bad;
    _Atomic unsigned steals;
    pthread_barrier_t start;
};

/* A batch index with unclaimed items, or -1. */
static long pick(struct shared *sh, unsigned salt)
{
    pthread_mutex_lock(&sh->lock);
    long found = -1;
    for (size_t k = 0; k < sh->nb && found < 0; k++) {
        size_t i = (k + salt) % sh->nb;
        if (fl_batch_has_unclaimed(sh->batches[i]))
            found = (long)i;
    }
    pthread_mutex_unlock(&sh->lock);
    return found;
}

/* About a microsecond of work per item, so the thief races the claimers. */
static void work(size_t x)
{
    volatile uint64_t h = x;
    for (int k = 0; k < 200; k++)
        h = h * 6364136223846793005ull + 1442695040888963407ull;
}

static void *claimer(void *arg)
{
    struct shared *sh = arg;
    unsigned salt = (unsigned)(uintptr_t)&salt;
    pthread_barrier_wait(&sh->start);
    for (;;) {
        long i = pick(sh, salt++);
        if (i < 0) {
            if (atomic_load(&sh->thief_done) && pick(sh, 0) < 0)
                return NULL;
            sched_yield();
            continue;
        }
        struct fl_batch *b = sh->batches[i];
        size_t s, e, ran = 0;
        while (fl_batch_claim(b, 0, false, &s, &e)) {
            for (size_t x = s; x < e; x++) {
                work(x);
                if (atomic_fetch_add(&sh->hits[x], 1) != 0)
                    atomic_fetch_add(&sh->bad, 1);
            }
            ran += e - s;
        }
        if (ran != 0 && fl_batch_done(b, ran))
            atomic_fetch_add(&sh->posts[i], 1);
    }
}

static void *thief(void *arg)
{
    struct shared *sh = arg;
    pthread_barrier_wait(&sh->start);
    for (unsigned round = 0; round < 20000; round++) {
        long i = pick(sh, round * 7);
        if (i < 0)
            break;
        struct fl_batch *v = sh->batches[i];
        size_t s, e;
        if (!fl_batch_steal_tail(v, 1 + round % 3, &s, &e)) {
            sched_yield();
            continue;
        }
        struct fl_batch *nb = new_batch(v->job, s, e, 1 + round % 5, 1);
        pthread_mutex_lock(&sh->lock);
        bool room = nb != NULL && sh->nb < MAX_BATCHES;
        if (room)
            sh->batches[sh->nb++] = nb;
        pthread_mutex_unlock(&sh->lock);
        if (!room) {
            atomic_fetch_add(&sh->bad, 1);
            fl_batch_steal_undo(v, s, e);
            if (nb != NULL)
                drop(nb);
            break;
        }
        atomic_fetch_add(&sh->steals, 1);
        if (fl_batch_done(v, e - s))
            atomic_fetch_add(&sh->posts[i], 1);
    }
    atomic_store(&sh->thief_done, true);
    return NULL;
}

static unsigned run(size_t n, unsigned nbatches, uint64_t round)
{
    struct shared *sh = calloc(1, sizeof(*sh));
    assert_non_null(sh);
    sh->n = n;
    sh->hits = calloc(n, 1);
    assert_non_null(sh->hits);
    pthread_mutex_init(&sh->lock, NULL);
    pthread_barrier_init(&sh->start, NULL, CLAIMERS + 1);
    struct fleet_job *job = fl_job_new(NULL, nop_range, NULL, NULL, 0, n, 1);
    assert_non_null(job);
    /* Base the range high so the offsets stay relative. */
    size_t per = n / nbatches;
    for (unsigned k = 0; k < nbatches; k++) {
        size_t b = k * per, e = k + 1 == nbatches ? n : b + per;
        sh->batches[sh->nb++] =
            new_batch(job, b, e, 1 + (size_t)(round % 7), 1);
        assert_non_null(sh->batches[sh->nb - 1]);
    }
    pthread_t th[CLAIMERS + 1];
    for (unsigned t = 0; t < CLAIMERS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, claimer, sh), 0);
    assert_int_equal(pthread_create(&th[CLAIMERS], NULL, thief, sh), 0);
    for (unsigned t = 0; t <= CLAIMERS; t++)
        pthread_join(th[t], NULL);

    assert_int_equal(atomic_load(&sh->bad), 0);
    for (size_t x = 0; x < n; x++)
        assert_int_equal(sh->hits[x], 1);
    for (size_t i = 0; i < sh->nb; i++) {
        assert_int_equal(atomic_load(&sh->posts[i]), 1);
        assert_int_equal(atomic_load(&sh->batches[i]->remaining), 0);
        drop(sh->batches[i]);
    }
    fl_job_unref(job);
    fl_job_unref(job);
    unsigned steals = atomic_load(&sh->steals);
    pthread_mutex_destroy(&sh->lock);
    pthread_barrier_destroy(&sh->start);
    free((void *)sh->hits);
    free(sh);
    return steals;
}

static void test_claim_steal_stress(void **state)
{
    (void)state;
    unsigned steals = 0;
    for (uint64_t round = 0; round < 40; round++)
        steals += run(2000 + round * 97, 1 + (unsigned)(round % 4), round);
    print_message("%u tails stolen\n", steals);
    assert_true(steals >= 40); /* the thief really raced the claimers */
}

static void test_refcount(void **state)
{
    (void)state;
    struct fleet_job *job = fl_job_new(NULL, nop_range, NULL, NULL, 0, 10, 1);
    assert_non_null(job);
    struct fl_batch *b = new_batch(job, 0, 10, 1, 2);
    assert_non_null(b);
    assert_int_equal(atomic_load(&b->refs), 2);
    drop(b); /* the ring's */
    assert_int_equal(atomic_load(&b->refs), 1);
    drop(b); /* the dispatcher's: freed (ASan would see a leak) */
    fl_job_unref(job);
    fl_job_unref(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_steal_stress),
        cmocka_unit_test(test_refcount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
