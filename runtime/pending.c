/*
 * pending: see pending.h.
 */
#include "pending.h"

int fl_pending_init(struct fl_pending_queue *q, unsigned capacity)
{
    fl_event_init(&q->space);
    q->backlog = q->backlog_tail = NULL;
    return fl_ring_init(&q->ring, capacity, FL_RING_MP | FL_RING_MC);
}

void fl_pending_fini(struct fl_pending_queue *q)
{
    fl_ring_fini(&q->ring);
}

bool fl_pending_push(struct fl_pending_queue *q, struct fl_pending *p)
{
    return fl_ring_enqueue(&q->ring, p);
}

void fl_pending_push_backlog(struct fl_pending_queue *q, struct fl_pending *p)
{
    p->next = NULL;
    if (q->backlog_tail != NULL)
        q->backlog_tail->next = p;
    else
        q->backlog = p;
    q->backlog_tail = p;
}

struct fl_pending *fl_pending_pop(struct fl_pending_queue *q)
{
    struct fl_pending *p = q->backlog;
    if (p != NULL) {
        q->backlog = p->next;
        if (q->backlog == NULL)
            q->backlog_tail = NULL;
        return p;
    }
    void *v;
    if (!fl_ring_dequeue(&q->ring, &v))
        return NULL;
    fl_event_signal(&q->space);
    return v;
}

bool fl_pending_ring_nonempty(const struct fl_pending_queue *q)
{
    return fl_ring_size(&q->ring) != 0;
}

bool fl_pending_nonempty(const struct fl_pending_queue *q)
{
    return q->backlog != NULL || fl_pending_ring_nonempty(q);
}
