/*
 * wait: futex operations for ck_ec, and the bounded spin.
 */
#define _GNU_SOURCE
#include "wait.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int ops_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
    (void)ops;
    return clock_gettime(CLOCK_MONOTONIC, out);
}

static void ops_wait32(const struct ck_ec_wait_state *st, const uint32_t *addr,
                       uint32_t expected, const struct timespec *deadline)
{
    (void)st;
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected,
            deadline, NULL, FUTEX_BITSET_MATCH_ANY);
}

static void ops_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
    (void)ops;
    syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL,
            NULL, 0);
}

static const struct ck_ec_ops fl_ec_ops = {
    .gettime = ops_gettime,
    .wait32 = ops_wait32,
    .wake32 = ops_wake32,
    /* ck_ec's own spin before sleeping; fl_spin already spun. */
    .busy_loop_iter = 1,
    /* Re-check at 50 ms, then 400 ms, then sleep without a timeout. */
    .initial_wait_ns = 50 * 1000 * 1000,
};

static const struct ck_ec_mode fl_ec_mode = {
    .ops = &fl_ec_ops,
    .single_producer = false,
};

void fl_event_init(struct fl_event *e)
{
    ck_ec32_init(&e->ec, 0);
}

uint32_t fl_event_value(const struct fl_event *e)
{
    return ck_ec32_value(&e->ec);
}

void fl_event_signal(struct fl_event *e)
{
    ck_ec32_inc(&e->ec, &fl_ec_mode);
}

static int ts_after(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec ||
           (a->tv_sec == b->tv_sec && a->tv_nsec >= b->tv_nsec);
}

/* ck_ec checks the caller's deadline only between the iterations of its
 * own back-off (50 ms, then 8x longer each), so a 1 ms timeout would sleep
 * 50 ms: this predicate pulls each iteration's deadline in to ours. */
static int clamp_deadline(const struct ck_ec_wait_state *st,
                          struct timespec *iteration)
{
    const struct timespec *ours = st->data;
    if (ts_after(&st->now, ours))
        return 1; /* ours has passed */
    if (ts_after(iteration, ours))
        *iteration = *ours;
    return 0;
}

int fl_event_wait(struct fl_event *e, uint32_t seen, uint64_t timeout_ns)
{
    if (timeout_ns == 0)
        return ck_ec32_wait(&e->ec, &fl_ec_mode, seen, NULL) == 0 ? 0
                                                                  : -ETIMEDOUT;
    struct timespec deadline, rel;
    rel.tv_sec = (time_t)(timeout_ns / 1000000000u);
    rel.tv_nsec = (long)(timeout_ns % 1000000000u);
    if (ck_ec_deadline(&deadline, &fl_ec_mode, &rel) != 0)
        return -ETIMEDOUT;
    return ck_ec32_wait_pred(&e->ec, &fl_ec_mode, seen, clamp_deadline,
                             &deadline, &deadline) == 0
               ? 0
               : -ETIMEDOUT;
}

uint64_t fl_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void fl_sleep_ns(uint64_t ns)
{
    if (ns == 0)
        return;
    struct timespec t = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

void fl_spin_init(struct fl_spin *s, uint64_t budget_ns)
{
    s->deadline = budget_ns == 0 ? 0 : fl_now_ns() + budget_ns;
    s->steps = 0;
}

bool fl_spin_step(struct fl_spin *s)
{
    if (s->deadline == 0)
        return false;
    s->steps++;
    if (s->steps < 16) {
        for (unsigned i = 0; i < 16; i++)
            fl_cpu_relax();
    } else {
        /* Let a thread with real work have this core. */
        sched_yield();
    }
    return (s->steps & 7) != 0 || fl_now_ns() < s->deadline;
}
