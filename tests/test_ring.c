/*
 * test_ring: the ck_ring wrapper — capacity rule, full/empty, FIFO order,
 * and many-producer/many-consumer hand-off of heap structs with checksums.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "ring.h"

static void test_init_errors(void **state)
{
    (void)state;
    struct fl_ring r;
    assert_int_equal(fl_ring_init(NULL, 4, FL_RING_SP), -EINVAL);
    assert_int_equal(fl_ring_init(&r, 0, FL_RING_SP), -EINVAL);
    assert_int_equal(fl_ring_init(&r, FL_RING_MAX_CAPACITY + 1, FL_RING_MP),
                     -EINVAL);
    assert_int_equal(fl_ring_init(&r, 4, 1u << 5), -EINVAL);
}

static void test_capacity_rule(void **state)
{
    (void)state;
    static const unsigned asks[] = {1, 2, 3, 4, 5, 7, 8, 63, 64, 65, 1000};
    static const unsigned modes[] = {
        FL_RING_SP | FL_RING_SC, FL_RING_SP | FL_RING_MC,
        FL_RING_MP | FL_RING_SC, FL_RING_MP | FL_RING_MC};
    for (size_t m = 0; m < 4; m++) {
        for (size_t k = 0; k < sizeof(asks) / sizeof(asks[0]); k++) {
            struct fl_ring r;
            assert_int_equal(fl_ring_init(&r, asks[k], modes[m]), 0);
            unsigned cap = fl_ring_capacity(&r);
            assert_true(cap >= asks[k]);
            /* Slots are a power of two and one stays empty. */
            assert_int_equal((cap + 1) & cap, 0);
            assert_int_equal(fl_ring_size(&r), 0);
            void *p;
            assert_false(fl_ring_dequeue(&r, &p));
            for (uintptr_t i = 0; i < cap; i++)
                assert_true(fl_ring_enqueue(&r, (void *)(i + 1)));
            assert_int_equal(fl_ring_size(&r), cap);
            assert_false(fl_ring_enqueue(&r, (void *)1));
            for (uintptr_t i = 0; i < cap; i++) {
                assert_true(fl_ring_dequeue(&r, &p));
                assert_ptr_equal(p, (void *)(i + 1)); /* FIFO */
            }
            assert_false(fl_ring_dequeue(&r, &p));
            /* Wrap around the buffer a few times. */
            for (uintptr_t i = 0; i < 5 * (uintptr_t)cap + 3; i++) {
                assert_true(fl_ring_enqueue(&r, (void *)(i + 7)));
                assert_true(fl_ring_dequeue(&r, &p));
                assert_ptr_equal(p, (void *)(i + 7));
            }
            assert_int_equal(fl_ring_size(&r), 0);
            fl_ring_fini(&r);
        }
    }
}

/* Many producers hand heap structs to many consumers. */
struct item {
    uint64_t value;
    unsigned producer;
    uint64_t seq; /* written by the producer, checked by the consumer */
};

#define PRODUCERS 4
#define CONSUMERS 4
/* ThreadSanitizer makes every ring call tens of times slower. */
#ifdef FL_RING_TSAN
#define PER_PRODUCER 10000
#else
#define PER_PRODUCER 50000
#endif

struct stress {
    struct fl_ring ring;
    bool multi_producer, multi_consumer;
    _Atomic unsigned producers_left;
    _Atomic uint64_t consumed_sum;
    _Atomic uint64_t consumed_count;
    _Atomic unsigned bad; /* recorded on worker threads, asserted after join */
    _Atomic unsigned char *seen;
};

struct role {
    struct stress *st;
    unsigned id;
};

static void *producer(void *arg)
{
    struct role *ro = arg;
    struct stress *st = ro->st;
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        struct item *it = malloc(sizeof(*it));
        if (it == NULL) {
            atomic_fetch_add(&st->bad, 1);
            break;
        }
        it->producer = ro->id;
        it->seq = i;
        it->value = (uint64_t)ro->id * PER_PRODUCER + i;
        bool ok;
        while (!(ok = fl_ring_enqueue(&st->ring, it)))
            sched_yield();
    }
    atomic_fetch_sub(&st->producers_left, 1);
    return NULL;
}

static void *consumer(void *arg)
{
    struct role *ro = arg;
    struct stress *st = ro->st;
    uint64_t last_seq[PRODUCERS];
    for (unsigned i = 0; i < PRODUCERS; i++)
        last_seq[i] = UINT64_MAX;
    for (;;) {
        void *p;
        bool ok = fl_ring_dequeue(&st->ring, &p);
        if (!ok) {
            if (atomic_load(&st->producers_left) == 0 &&
                fl_ring_size(&st->ring) == 0)
                break;
            sched_yield();
            continue;
        }
        struct item *it = p;
        /* The payload must be complete and consistent. */
        if (it->value != (uint64_t)it->producer * PER_PRODUCER + it->seq)
            atomic_fetch_add(&st->bad, 1);
        /* One consumer sees each producer's items in order. */
        if (!st->multi_consumer) {
            if (last_seq[it->producer] != UINT64_MAX &&
                it->seq <= last_seq[it->producer])
                atomic_fetch_add(&st->bad, 1);
            last_seq[it->producer] = it->seq;
        }
        if (atomic_fetch_add(&st->seen[it->value], 1) != 0)
            atomic_fetch_add(&st->bad, 1);
        atomic_fetch_add(&st->consumed_sum, it->value);
        atomic_fetch_add(&st->consumed_count, 1);
        free(it);
    }
    return NULL;
}

static void run_stress(unsigned nprod, unsigned ncons, unsigned capacity)
{
    struct stress st;
    st.multi_producer = nprod > 1;
    st.multi_consumer = ncons > 1;
    assert_int_equal(
        fl_ring_init(&st.ring, capacity,
                     (st.multi_producer ? FL_RING_MP : FL_RING_SP) |
                         (st.multi_consumer ? FL_RING_MC : FL_RING_SC)),
        0);
    atomic_init(&st.producers_left, nprod);
    atomic_init(&st.consumed_sum, 0);
    atomic_init(&st.consumed_count, 0);
    atomic_init(&st.bad, 0);
    st.seen = calloc((size_t)PRODUCERS * PER_PRODUCER, 1);
    assert_non_null(st.seen);
    pthread_t th[PRODUCERS + CONSUMERS];
    struct role roles[PRODUCERS + CONSUMERS];
    for (unsigned i = 0; i < nprod + ncons; i++) {
        roles[i].st = &st;
        roles[i].id = i < nprod ? i : i - nprod;
        assert_int_equal(pthread_create(&th[i], NULL,
                                        i < nprod ? producer : consumer,
                                        &roles[i]),
                         0);
    }
    for (unsigned i = 0; i < nprod + ncons; i++)
        pthread_join(th[i], NULL);
    uint64_t n = (uint64_t)nprod * PER_PRODUCER;
    assert_int_equal(atomic_load(&st.bad), 0);
    assert_int_equal(atomic_load(&st.consumed_count), n);
    assert_int_equal(atomic_load(&st.consumed_sum), n * (n - 1) / 2);
    for (uint64_t v = 0; v < n; v++)
        assert_int_equal(st.seen[v], 1);
    assert_int_equal(fl_ring_size(&st.ring), 0);
    free(st.seen);
    fl_ring_fini(&st.ring);
}

static void test_spsc(void **state)
{
    (void)state;
    run_stress(1, 1, 8);
}

static void test_mpsc(void **state)
{
    (void)state;
    run_stress(PRODUCERS, 1, 16);
}

static void test_spmc(void **state)
{
    (void)state;
    run_stress(1, CONSUMERS, 16);
}

static void test_mpmc(void **state)
{
    (void)state;
    run_stress(PRODUCERS, CONSUMERS, 4);
    run_stress(PRODUCERS, CONSUMERS, 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_capacity_rule),
        cmocka_unit_test(test_spsc),
        cmocka_unit_test(test_mpsc),
        cmocka_unit_test(test_spmc),
        cmocka_unit_test(test_mpmc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
