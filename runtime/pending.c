/*
 * pending: see pending.h.
 */
#include "pending.h"

#include <string.h>

/* Counts an entry in: the length it leaves is a high-water candidate. */
static void counted_in(struct fl_pending_queue *q)
{
    uint64_t in =
        atomic_fetch_add_explicit(&q->pushed, 1, memory_order_relaxed) + 1;
    uint64_t out = atomic_load_explicit(&q->popped, memory_order_relaxed);
    if (in > out)
        fl_max_raise(&q->hwm, in - out);
}

int fl_pending_init(struct fl_pending_queue *q, unsigned capacity)
{
    fl_event_init(&q->space);
    atomic_init(&q->pushed, 0);
    atomic_init(&q->hwm, 0);
    atomic_init(&q->popped, 0);
    memset(&q->wait, 0, sizeof(q->wait));
    q->backlog = q->backlog_tail = NULL;
    return fl_ring_init(&q->ring, capacity, FL_RING_MP | FL_RING_MC);
}

void fl_pending_fini(struct fl_pending_queue *q)
{
    fl_ring_fini(&q->ring);
}

bool fl_pending_push(struct fl_pending_queue *q, struct fl_pending *p,
                     uint64_t now)
{
    p->t_in = now;
    if (!fl_ring_enqueue(&q->ring, p))
        return false;
    counted_in(q);
    return true;
}

void fl_pending_push_backlog(struct fl_pending_queue *q, struct fl_pending *p)
{
    p->next = NULL;
    p->t_in = fl_now_ns();
    counted_in(q);
    if (q->backlog_tail != NULL)
        q->backlog_tail->next = p;
    else
        q->backlog = p;
    q->backlog_tail = p;
}

/* Counts p out at `now` (role only: the single writer of popped and
 * wait). */
static struct fl_pending *counted_out(struct fl_pending_queue *q,
                                      struct fl_pending *p, uint64_t now)
{
    fl_hist_add1(&q->wait, now > p->t_in ? now - p->t_in : 0);
    fl_count1(&q->popped, 1);
    return p;
}

void fl_pending_direct(struct fl_pending_queue *q, struct fl_pending *p,
                       uint64_t now)
{
    p->t_in = now;
    counted_in(q);
    counted_out(q, p, now); /* a wait of 0 */
}

struct fl_pending *fl_pending_pop(struct fl_pending_queue *q)
{
    struct fl_pending *p = q->backlog;
    if (p != NULL) {
        q->backlog = p->next;
        if (q->backlog == NULL)
            q->backlog_tail = NULL;
        return counted_out(q, p, fl_now_ns());
    }
    void *v;
    if (!fl_ring_dequeue(&q->ring, &v))
        return NULL;
    /* Submitters blocked on a full ring wake once it is half empty, not
     * at every pop: one wake (about 2 us for the waker) lets them refill
     * half a ring instead of one slot. */
    if (fl_ring_size(&q->ring) <= fl_ring_capacity(&q->ring) / 2)
        fl_event_signal(&q->space);
    return counted_out(q, v, fl_now_ns());
}

bool fl_pending_ring_nonempty(const struct fl_pending_queue *q)
{
    return fl_ring_size(&q->ring) != 0;
}

bool fl_pending_nonempty(const struct fl_pending_queue *q)
{
    return q->backlog != NULL || fl_pending_ring_nonempty(q);
}
