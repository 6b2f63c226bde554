/*
 * ring: the one wrapper over Concurrency Kit's ck_ring.
 *
 * A ring of pointers with a capacity the caller asks for: fl_ring_init()
 * rounds the slot count up so that at least `capacity` pointers fit, and
 * fl_ring_capacity() says exactly how many do (ck_ring keeps one slot of
 * its power-of-two buffer empty; that rule stays in here). Under
 * ThreadSanitizer, which does not see ck's inline-assembly atomics, every
 * enqueue releases and every dequeue acquires the payload's address, so a
 * struct handed through a ring is seen as published, and the accesses
 * inside a ring call are not checked (no suppressions file is needed).
 *
 * It does not allocate after init or own what it carries.
 * Progress: single-producer enqueue and single-consumer dequeue are
 * wait-free; multi-consumer dequeue is lock-free. Multi-producer enqueue
 * claims a slot, fills it, then waits until every earlier producer has
 * published: a producer stopped between claim and publish stalls the later
 * ones, so no thread may be stopped inside a ring call. ck's own commit
 * waits by spinning, and on a machine with more runnable threads than
 * cores a spinner can hold the core its preempted predecessor needs for a
 * whole time slice, again and again (a convoy); this wrapper therefore
 * waits for its turn itself, yielding the core after a short spin, and only
 * then lets ck publish.
 */
#ifndef FLEET_RING_H
#define FLEET_RING_H

#include <stdbool.h>
#include <ck_ring.h>

/* FL_RING_TSAN: built with ThreadSanitizer (gcc or clang). */
#if defined(__SANITIZE_THREAD__)
#define FL_RING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FL_RING_TSAN 1
#endif
#endif

#ifdef FL_RING_TSAN
#include <sanitizer/tsan_interface.h>
/* ThreadSanitizer's dynamic annotations (exported by its runtime). */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define FL_RING_RELEASE(p) __tsan_release(p)
#define FL_RING_ACQUIRE(p) __tsan_acquire(p)
/* ck_ring's indices and slots are synchronised by its inline-assembly
 * atomics, which ThreadSanitizer cannot see: it is told not to check the
 * accesses inside a ring call (the payload's hand-off is annotated above).
 * Suppressing the reports instead made it symbolize every new report's
 * stacks to match the suppression, keeping a worker busy for tens of
 * milliseconds while work waited in its ring. */
#define FL_RING_IGNORE_BEGIN()                                                 \
    (AnnotateIgnoreReadsBegin(__FILE__, __LINE__),                             \
     AnnotateIgnoreWritesBegin(__FILE__, __LINE__))
#define FL_RING_IGNORE_END()                                                   \
    (AnnotateIgnoreWritesEnd(__FILE__, __LINE__),                              \
     AnnotateIgnoreReadsEnd(__FILE__, __LINE__))
#else
#define FL_RING_RELEASE(p) ((void)(p))
#define FL_RING_ACQUIRE(p) ((void)(p))
#define FL_RING_IGNORE_BEGIN() ((void)0)
#define FL_RING_IGNORE_END() ((void)0)
#endif

/* Who may use a ring, fixed at init: ck_ring's single-producer enqueue does
 * not move the claim index the multi-producer one uses, so a ring that saw
 * both would hang; the mode keeps each ring on one protocol. */
enum {
    FL_RING_SP = 0,      /* one producer at a time (ordered by the caller) */
    FL_RING_MP = 1 << 0, /* concurrent producers */
    FL_RING_SC = 0,      /* one consumer at a time */
    FL_RING_MC = 1 << 1, /* concurrent consumers */
};

struct fl_ring {
    struct ck_ring ring;
    ck_ring_buffer_t *buf;
    unsigned capacity; /* pointers that fit: slots - 1 */
    unsigned mode;     /* FL_RING_MP | FL_RING_MC bits */
};

/* Largest capacity fl_ring_init accepts. */
#define FL_RING_MAX_CAPACITY (1u << 30)

/* Sets up a ring holding at least `capacity` (>= 1) pointers, used in
 * `mode` (FL_RING_SP or FL_RING_MP, or-ed with FL_RING_SC or FL_RING_MC).
 * Returns 0, -EINVAL or -ENOMEM. Not thread-safe. */
int fl_ring_init(struct fl_ring *r, unsigned capacity, unsigned mode);
/* Frees the buffer; the ring must not be in use. Safe on a zeroed ring. */
void fl_ring_fini(struct fl_ring *r);

static inline unsigned fl_ring_capacity(const struct fl_ring *r)
{
    return r->capacity;
}

/* Approximate when producers or consumers run concurrently. Any thread. */
static inline unsigned fl_ring_size(const struct fl_ring *r)
{
    FL_RING_IGNORE_BEGIN();
    unsigned n = ck_ring_size(&r->ring);
    FL_RING_IGNORE_END();
    return n;
}

/* Waits, spinning then yielding, until the producers that claimed slots
 * before `ticket` have published. Out of line: rarely needed. */
void fl_ring_await_turn(struct fl_ring *r, unsigned ticket);

/* Returns false when full. Single-producer: wait-free. Multi-producer: waits
 * for earlier producers to publish (see above). */
static inline bool fl_ring_enqueue(struct fl_ring *r, void *p)
{
    FL_RING_RELEASE(p);
    FL_RING_IGNORE_BEGIN();
    bool ok;
    if (!(r->mode & FL_RING_MP)) {
        ok = ck_ring_enqueue_spmc(&r->ring, r->buf, p);
    } else {
        unsigned ticket;
        void *slot = ck_ring_enqueue_reserve_mpmc(&r->ring, r->buf, &ticket);
        ok = slot != NULL;
        if (ok) {
            ck_pr_store_ptr((void **)slot, p);
            /* Our turn when p_tail reaches our ticket: the condition ck's
             * commit spins on. */
            if (ck_pr_load_uint(&r->ring.p_tail) != ticket)
                fl_ring_await_turn(r, ticket);
            ck_ring_enqueue_commit_mpmc(&r->ring, ticket);
        }
    }
    FL_RING_IGNORE_END();
    return ok;
}

/* Returns false when empty. Single-consumer: wait-free. Multi-consumer:
 * lock-free. */
static inline bool fl_ring_dequeue(struct fl_ring *r, void **p)
{
    FL_RING_IGNORE_BEGIN();
    bool ok = (r->mode & FL_RING_MC)
                  ? ck_ring_dequeue_mpmc(&r->ring, r->buf, p)
                  : ck_ring_dequeue_mpsc(&r->ring, r->buf, p);
    FL_RING_IGNORE_END();
    if (ok)
        FL_RING_ACQUIRE(*p);
    return ok;
}

#endif /* FLEET_RING_H */
