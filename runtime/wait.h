/*
 * wait: how fleet's threads wait — a bounded spin, then sleep.
 *
 * fl_event is a Concurrency Kit event count (ck_ec32, multi-producer) on a
 * Linux futex: a waiter snapshots the value, re-checks its condition, and
 * sleeps only if the value has not moved; fl_event_signal() bumps the value
 * and enters the kernel only when somebody sleeps. fl_spin is the bounded
 * spin in front of a sleep: a few pause instructions, then sched_yield() so
 * that on an oversubscribed machine the thread with real work gets the core.
 *
 * The event carries no data: whatever the waiter waits for must be published
 * with C11 atomics of its own (the event's ordering is invisible to
 * ThreadSanitizer). No allocation; every function is thread-safe.
 */
#ifndef FLEET_WAIT_H
#define FLEET_WAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <ck_ec.h>
#include <ck_pr.h>

struct fl_event {
    struct ck_ec32 ec;
};

void fl_event_init(struct fl_event *e);
/* Snapshot to pass to fl_event_wait; take it before re-checking. */
uint32_t fl_event_value(const struct fl_event *e);
/* Wakes every thread sleeping on e. Lock-free; one atomic add when nobody
 * sleeps. */
void fl_event_signal(struct fl_event *e);
/* Sleeps while the value equals `seen`, at most timeout_ns (0: no limit;
 * then ck_ec still re-checks at 50 ms and 400 ms). Returns 0 when the value
 * moved, -ETIMEDOUT otherwise. May return early. */
int fl_event_wait(struct fl_event *e, uint32_t seen, uint64_t timeout_ns);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t fl_now_ns(void);

/* Sleeps about ns nanoseconds (0: returns at once). */
void fl_sleep_ns(uint64_t ns);

static inline void fl_cpu_relax(void)
{
    ck_pr_stall();
}

/* A bounded spin: call fl_spin_step() between checks until it returns
 * false, then sleep. */
struct fl_spin {
    uint64_t deadline;
    unsigned steps;
};

void fl_spin_init(struct fl_spin *s, uint64_t budget_ns);
bool fl_spin_step(struct fl_spin *s);

#endif /* FLEET_WAIT_H */
