/*
 * metrics: counters, snapshot, exporters, reporter (see metrics.h).
 */
#include "metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "runtime.h"

/* --- histograms ---------------------------------------------------------- */

static unsigned bucket_of(uint64_t ns)
{
    if (ns >= UINT64_MAX - 1)
        return FLEET_HIST_BUCKETS - 1;
    unsigned i = 63u - (unsigned)__builtin_clzll(ns + 1);
    return i < FLEET_HIST_BUCKETS ? i : FLEET_HIST_BUCKETS - 1;
}

void fl_max_raise(_Atomic uint64_t *m, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(m, memory_order_relaxed);
    while (cur < v &&
           !atomic_compare_exchange_weak_explicit(
               m, &cur, v, memory_order_relaxed, memory_order_relaxed))
        ;
}

void fl_hist_add1(struct fl_hist *h, uint64_t ns)
{
    fl_count1(&h->bucket[bucket_of(ns)], 1);
    fl_count1(&h->sum, ns);
    if (ns > atomic_load_explicit(&h->max, memory_order_relaxed))
        atomic_store_explicit(&h->max, ns, memory_order_relaxed);
    /* Last: a reader that sees the count sees a bucket for it, mostly;
     * the snapshot is per value anyway. */
    fl_count1(&h->count, 1);
}

void fl_hist_add(struct fl_hist *h, uint64_t ns)
{
    atomic_fetch_add_explicit(&h->bucket[bucket_of(ns)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, ns, memory_order_relaxed);
    fl_max_raise(&h->max, ns);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void fl_hist_read(const struct fl_hist *h, fleet_hist_t *out)
{
    /* The count is the buckets' sum, so that quantiles add up even when
     * a writer is between two of its stores. */
    for (unsigned i = 0; i < FLEET_HIST_BUCKETS; i++) {
        uint64_t n = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        out->bucket[i] += n;
        out->count += n;
    }
    out->sum_ns += atomic_load_explicit(&h->sum, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&h->max, memory_order_relaxed);
    if (m > out->max_ns)
        out->max_ns = m;
}

uint64_t fleet_hist_bucket_le(unsigned i)
{
    if (i >= 63)
        return UINT64_MAX;
    return ((uint64_t)2 << i) - 2;
}

uint64_t fleet_hist_quantile(const fleet_hist_t *h, double q)
{
    if (h == NULL || h->count == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    /* The rank of the quantile, 1-based: the ceil(q * count)-th value. */
    double r = q * (double)h->count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r || rank == 0)
        rank++;
    uint64_t seen = 0;
    for (unsigned i = 0; i < FLEET_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t le = fleet_hist_bucket_le(i);
            return le < h->max_ns ? le : h->max_ns;
        }
    }
    return h->max_ns;
}

/* --- setup --------------------------------------------------------------- */

int fl_metrics_init(struct fleet_runtime *rt)
{
    struct fl_metrics *m = &rt->metrics;
    memset(m, 0, sizeof(*m));
    m->created_ns = fl_now_ns();
    m->last_ns = m->created_ns;
    m->last_busy = fl_calloc(FL_ARENA_DEFAULT, rt->ntm, sizeof(uint64_t));
    m->last_bp = fl_calloc(FL_ARENA_DEFAULT, rt->ntm, sizeof(uint64_t));
    if (m->last_busy == NULL || m->last_bp == NULL) {
        fl_free(FL_ARENA_DEFAULT, m->last_busy);
        fl_free(FL_ARENA_DEFAULT, m->last_bp);
        return -ENOMEM;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->rep_ctl, NULL);
    pthread_mutex_init(&m->rep_lock, NULL);
    pthread_cond_init(&m->rep_cond, NULL);
    return 0;
}

void fl_metrics_fini(struct fleet_runtime *rt)
{
    struct fl_metrics *m = &rt->metrics;
    pthread_cond_destroy(&m->rep_cond);
    pthread_mutex_destroy(&m->rep_lock);
    pthread_mutex_destroy(&m->rep_ctl);
    pthread_mutex_destroy(&m->lock);
    fl_free(FL_ARENA_DEFAULT, m->last_busy);
    fl_free(FL_ARENA_DEFAULT, m->last_bp);
    m->last_busy = m->last_bp = NULL;
}

/* --- snapshot ------------------------------------------------------------ */

#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void read_queue(fleet_queue_metrics_t *q, uint64_t len, uint64_t hwm)
{
    q->length = len;
    q->high_water = hwm > len ? hwm : len;
}

int fleet_metrics_snapshot(fleet_runtime_t *rt, fleet_metrics_t *out)
{
    if (rt == NULL || out == NULL)
        return -EINVAL;
    struct fl_metrics *m = &rt->metrics;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&m->lock);
    uint64_t now = fl_now_ns();
    out->taken_ns = now;
    out->interval_ns = now - m->last_ns;
    out->task_managers =
        rt->ntm < FLEET_METRICS_MAX_TMS ? rt->ntm : FLEET_METRICS_MAX_TMS;
    for (unsigned i = 0; i < rt->ntm; i++) {
        struct fl_tm *tm = &rt->tms[i];
        fleet_tm_metrics_t scratch,
            *t = i < out->task_managers ? &out->tm[i] : &scratch;
        memset(t, 0, sizeof(*t));
        uint64_t busy = 0, bp = 0;
        for (unsigned w = 0; w < tm->nworkers; w++) {
            struct fl_wmetrics *wm = &tm->workers[w].m;
            busy += GET(wm->busy_ns);
            bp += GET(wm->bp_ns);
            fl_hist_read(&wm->ring_wait, &t->ring.wait);
            fl_hist_read(&wm->latency, &out->dispatch_latency);
        }
        double span = (double)out->interval_ns * tm->nworkers;
        double b = span > 0 ? (double)(busy - m->last_busy[i]) / span : 0;
        double p = span > 0 ? (double)(bp - m->last_bp[i]) / span : 0;
        b = b < 0 ? 0 : b > 1 ? 1 : b;
        p = p < 0 ? 0 : p > 1 - b ? 1 - b : p;
        t->busy_time_ms_per_second = 1000 * b;
        t->back_pressured_time_ms_per_second = 1000 * p;
        t->idle_time_ms_per_second = 1000 * (1 - b - p);
        m->last_busy[i] = busy;
        m->last_bp[i] = bp;
        t->busy_ns_total = busy;
        t->batches_in = GET(tm->counters.batches_in);
        t->batches_out = GET(tm->counters.batches_out);
        t->items_in = GET(tm->counters.items_in);
        t->items_out = GET(tm->counters.items_out);
        t->workers = tm->nworkers;
        t->live = atomic_load_explicit(&tm->live, memory_order_relaxed);
        read_queue(&t->ring, fl_ring_size(&tm->ring),
                   GET(tm->counters.ring_hwm));
        read_queue(&t->pinned, GET(tm->counters.pinned_len),
                   GET(tm->counters.pinned_hwm));
        fl_hist_read(&tm->counters.pinned_wait, &t->pinned.wait);
    }
    m->last_ns = now;
    pthread_mutex_unlock(&m->lock);

    struct fl_pending_queue *pq = &rt->disp.pending;
    uint64_t popped = GET(pq->popped);
    uint64_t pushed = GET(pq->pushed);
    read_queue(&out->pending, pushed > popped ? pushed - popped : 0,
               GET(pq->hwm));
    fl_hist_read(&pq->wait, &out->pending.wait);
    read_queue(&out->scheduled, GET(m->sched_len), GET(m->sched_hwm));
    fl_hist_read(&m->sched_time, &out->scheduled.wait);
    read_queue(&out->completions, fl_ring_size(&rt->disp.completions),
               GET(m->comp_hwm));
    fl_hist_read(&m->comp_wait, &out->completions.wait);

    out->jobs_submitted = GET(m->jobs_submitted);
    out->jobs_completed = GET(m->jobs_completed);
    out->jobs_inline = GET(rt->inlined);
    out->batches_split = GET(m->batches_split);
    out->split_depth_max = GET(m->depth_max);
    out->split_depth_mean =
        out->batches_split != 0
            ? (double)GET(m->depth_sum) / (double)out->batches_split
            : 0;
    fl_hist_read(&m->latency_out, &out->dispatch_latency);
    return fleet_failure_stats(rt, &out->failures);
}

#undef GET

/* --- JSON ---------------------------------------------------------------- */

static void json_hist(FILE *f, const char *name, const fleet_hist_t *h)
{
    fprintf(f,
            "\"%s\":{\"count\":%llu,\"sum_ns\":%llu,\"max_ns\":%llu,"
            "\"p50_ns\":%llu,\"p90_ns\":%llu,\"p99_ns\":%llu,\"buckets\":[",
            name, (unsigned long long)h->count, (unsigned long long)h->sum_ns,
            (unsigned long long)h->max_ns,
            (unsigned long long)fleet_hist_quantile(h, 0.5),
            (unsigned long long)fleet_hist_quantile(h, 0.9),
            (unsigned long long)fleet_hist_quantile(h, 0.99));
    bool first = true;
    for (unsigned i = 0; i < FLEET_HIST_BUCKETS; i++) {
        if (h->bucket[i] == 0)
            continue;
        fprintf(f, "%s{\"le_ns\":%llu,\"count\":%llu}", first ? "" : ",",
                (unsigned long long)fleet_hist_bucket_le(i),
                (unsigned long long)h->bucket[i]);
        first = false;
    }
    fputs("]}", f);
}

static void json_queue(FILE *f, const char *name,
                       const fleet_queue_metrics_t *q)
{
    fprintf(f, "\"%s\":{\"length\":%llu,\"high_water\":%llu,", name,
            (unsigned long long)q->length, (unsigned long long)q->high_water);
    json_hist(f, "wait", &q->wait);
    fputc('}', f);
}

static const char *const kind_name[3] = {"crash", "hang", "slow"};

static void json_failures(FILE *f, const fleet_failure_stats_t *s)
{
    fputs("\"failures\":{", f);
    for (int k = 0; k < 3; k++)
        fprintf(f, "\"injected_%s\":%llu,\"detected_%s\":%llu,", kind_name[k],
                (unsigned long long)s->injected[k], kind_name[k],
                (unsigned long long)s->detected[k]);
    fprintf(f,
            "\"suspected\":%llu,\"detection_us_last\":%llu,"
            "\"detection_us_max\":%llu,\"detection_us_total\":%llu,"
            "\"batches_redispatched\":%llu,\"attempts_fenced\":%llu,"
            "\"speculative_launched\":%llu,\"speculative_won\":%llu,"
            "\"restarts\":%llu,\"jobs_cancelled\":%llu,\"recoveries\":%llu,"
            "\"recovery_us_last\":%llu,\"recovery_us_max\":%llu,"
            "\"recovery_us_total\":%llu,\"fencing_ns_total\":%llu,"
            "\"batches_cut\":%llu,\"task_managers_live\":%u}",
            (unsigned long long)s->suspected,
            (unsigned long long)s->detection_us_last,
            (unsigned long long)s->detection_us_max,
            (unsigned long long)s->detection_us_total,
            (unsigned long long)s->batches_redispatched,
            (unsigned long long)s->attempts_fenced,
            (unsigned long long)s->speculative_launched,
            (unsigned long long)s->speculative_won,
            (unsigned long long)s->restarts,
            (unsigned long long)s->jobs_cancelled,
            (unsigned long long)s->recoveries,
            (unsigned long long)s->recovery_us_last,
            (unsigned long long)s->recovery_us_max,
            (unsigned long long)s->recovery_us_total,
            (unsigned long long)s->fencing_ns_total,
            (unsigned long long)s->batches_cut, s->task_managers_live);
}

static void write_json(FILE *f, const fleet_metrics_t *m)
{
    fprintf(f, "{\"taken_ns\":%llu,\"interval_ns\":%llu,\"task_managers\":[",
            (unsigned long long)m->taken_ns,
            (unsigned long long)m->interval_ns);
    for (unsigned i = 0; i < m->task_managers; i++) {
        const fleet_tm_metrics_t *t = &m->tm[i];
        fprintf(f,
                "%s{\"index\":%u,\"live\":%s,\"workers\":%u,"
                "\"busyTimeMsPerSecond\":%.3f,\"idleTimeMsPerSecond\":%.3f,"
                "\"backPressuredTimeMsPerSecond\":%.3f,\"busy_ns_total\":%llu,"
                "\"batches_in\":%llu,\"batches_out\":%llu,\"items_in\":%llu,"
                "\"items_out\":%llu,",
                i ? "," : "", i, t->live ? "true" : "false", t->workers,
                t->busy_time_ms_per_second, t->idle_time_ms_per_second,
                t->back_pressured_time_ms_per_second,
                (unsigned long long)t->busy_ns_total,
                (unsigned long long)t->batches_in,
                (unsigned long long)t->batches_out,
                (unsigned long long)t->items_in,
                (unsigned long long)t->items_out);
        json_queue(f, "pinned", &t->pinned);
        fputc(',', f);
        json_queue(f, "ring", &t->ring);
        fputc('}', f);
    }
    fputs("],\"queues\":{", f);
    json_queue(f, "pending", &m->pending);
    fputc(',', f);
    json_queue(f, "scheduled", &m->scheduled);
    fputc(',', f);
    json_queue(f, "completions", &m->completions);
    fprintf(f,
            "},\"dispatcher\":{\"jobs_submitted\":%llu,\"jobs_completed\":%llu,"
            "\"jobs_inline\":%llu,\"batches_split\":%llu,"
            "\"split_depth_max\":%llu,\"split_depth_mean\":%.3f,",
            (unsigned long long)m->jobs_submitted,
            (unsigned long long)m->jobs_completed,
            (unsigned long long)m->jobs_inline,
            (unsigned long long)m->batches_split,
            (unsigned long long)m->split_depth_max, m->split_depth_mean);
    json_hist(f, "dispatch_latency", &m->dispatch_latency);
    fputs("},", f);
    json_failures(f, &m->failures);
    fputs("}\n", f);
}

/* Takes a snapshot (too large for a stack) and writes it with `write`;
 * flushes, so that a write failing on what was still buffered is seen. */
static int write_snapshot(fleet_runtime_t *rt, FILE *out,
                          void (*write)(FILE *, const fleet_metrics_t *))
{
    if (rt == NULL || out == NULL)
        return -EINVAL;
    fleet_metrics_t *m = fl_alloc(FL_ARENA_DEFAULT, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    int err = fleet_metrics_snapshot(rt, m);
    if (err == 0) {
        write(out, m);
        if (fflush(out) != 0 || ferror(out))
            err = -EIO;
    }
    fl_free(FL_ARENA_DEFAULT, m);
    return err;
}

int fleet_metrics_write_json(fleet_runtime_t *rt, FILE *out)
{
    return write_snapshot(rt, out, write_json);
}

/* --- Prometheus ---------------------------------------------------------- */

static void prom_head(FILE *f, const char *name, const char *type,
                      const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram series (cumulative buckets in seconds), `labels` either
 * empty or `key="value"`. */
static void prom_hist(FILE *f, const char *name, const char *labels,
                      const fleet_hist_t *h)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    unsigned last = 0;
    for (unsigned i = 0; i < FLEET_HIST_BUCKETS; i++)
        if (h->bucket[i] != 0)
            last = i;
    for (unsigned i = 0; i <= last && h->count != 0; i++) {
        cum += h->bucket[i];
        fprintf(f, "%s_bucket{%s%sle=\"%.9g\"} %llu\n", name, labels, sep,
                (double)fleet_hist_bucket_le(i) * 1e-9,
                (unsigned long long)cum);
    }
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
            (unsigned long long)h->count);
    fprintf(f, "%s_sum{%s} %.9f\n", name, labels, (double)h->sum_ns * 1e-9);
    fprintf(f, "%s_count{%s} %llu\n", name, labels,
            (unsigned long long)h->count);
}

static void write_prometheus(FILE *f, const fleet_metrics_t *m)
{
    /* Flink's ...TimeMsPerSecond, as the ratios Prometheus names want. */
    static const struct {
        const char *name, *help;
        size_t offset;
    } tmf[] = {
#define TMF(n, field, help) {n, help, offsetof(fleet_tm_metrics_t, field)}
        TMF("fleet_taskmanager_busy_time_ratio", busy_time_ms_per_second,
            "Share of its workers' time spent running task bodies "
            "(busyTimeMsPerSecond / 1000)."),
        TMF("fleet_taskmanager_idle_time_ratio", idle_time_ms_per_second,
            "Share of its workers' time with nothing to run "
            "(idleTimeMsPerSecond / 1000)."),
        TMF("fleet_taskmanager_back_pressured_time_ratio",
            back_pressured_time_ms_per_second,
            "Share of its workers' time spent waiting on a full queue "
            "(backPressuredTimeMsPerSecond / 1000)."),
#undef TMF
    };
    for (size_t k = 0; k < sizeof(tmf) / sizeof(tmf[0]); k++) {
        prom_head(f, tmf[k].name, "gauge", tmf[k].help);
        for (unsigned i = 0; i < m->task_managers; i++)
            fprintf(f, "%s{taskmanager=\"%u\"} %.6f\n", tmf[k].name, i,
                    *(const double *)((const char *)&m->tm[i] + tmf[k].offset) /
                        1000);
    }
    static const struct {
        const char *name, *help;
        size_t offset;
    } tmc[] = {
#define TMC(n, field, help) {n, help, offsetof(fleet_tm_metrics_t, field)}
        TMC("fleet_taskmanager_busy_seconds_total", busy_ns_total,
            "Time its workers ran task bodies."),
        TMC("fleet_taskmanager_batches_in_total", batches_in,
            "Batches handed to it."),
        TMC("fleet_taskmanager_batches_out_total", batches_out,
            "Batches committed from it."),
        TMC("fleet_taskmanager_items_in_total", items_in,
            "Items of the batches handed to it."),
        TMC("fleet_taskmanager_items_out_total", items_out,
            "Items of the batches committed from it."),
#undef TMC
    };
    for (size_t k = 0; k < sizeof(tmc) / sizeof(tmc[0]); k++) {
        prom_head(f, tmc[k].name, "counter", tmc[k].help);
        for (unsigned i = 0; i < m->task_managers; i++) {
            uint64_t v =
                *(const uint64_t *)((const char *)&m->tm[i] + tmc[k].offset);
            if (k == 0)
                fprintf(f, "%s{taskmanager=\"%u\"} %.9f\n", tmc[k].name, i,
                        (double)v * 1e-9);
            else
                fprintf(f, "%s{taskmanager=\"%u\"} %llu\n", tmc[k].name, i,
                        (unsigned long long)v);
        }
    }
    prom_head(f, "fleet_taskmanager_live", "gauge",
              "1 while the TaskManager is live, 0 while declared failed.");
    for (unsigned i = 0; i < m->task_managers; i++)
        fprintf(f, "fleet_taskmanager_live{taskmanager=\"%u\"} %d\n", i,
                m->tm[i].live);

    /* Queues: the three shared ones, then each TaskManager's pinned queue
     * and ring; one label set each. */
    static const char *const shared[3] = {"pending", "scheduled",
                                          "completions"};
    struct {
        char labels[48];
        const fleet_queue_metrics_t *q;
    } qs[3 + 2 * FLEET_METRICS_MAX_TMS];
    size_t nq = 0;
    for (int k = 0; k < 3; k++) {
        snprintf(qs[nq].labels, sizeof(qs[nq].labels), "queue=\"%s\"",
                 shared[k]);
        qs[nq++].q = k == 0   ? &m->pending
                     : k == 1 ? &m->scheduled
                              : &m->completions;
    }
    for (int k = 0; k < 2; k++)
        for (unsigned i = 0; i < m->task_managers; i++) {
            snprintf(qs[nq].labels, sizeof(qs[nq].labels),
                     "queue=\"%s\",taskmanager=\"%u\"",
                     k == 0 ? "pinned" : "ring", i);
            qs[nq++].q = k == 0 ? &m->tm[i].pinned : &m->tm[i].ring;
        }
    prom_head(f, "fleet_queue_length", "gauge", "Entries in the queue now.");
    for (size_t j = 0; j < nq; j++)
        fprintf(f, "fleet_queue_length{%s} %llu\n", qs[j].labels,
                (unsigned long long)qs[j].q->length);
    prom_head(f, "fleet_queue_high_water", "gauge",
              "Most entries the queue ever held.");
    for (size_t j = 0; j < nq; j++)
        fprintf(f, "fleet_queue_high_water{%s} %llu\n", qs[j].labels,
                (unsigned long long)qs[j].q->high_water);
    prom_head(f, "fleet_queue_wait_seconds", "histogram",
              "Time an entry spent in the queue.");
    for (size_t j = 0; j < nq; j++)
        prom_hist(f, "fleet_queue_wait_seconds", qs[j].labels, &qs[j].q->wait);

    /* Dispatcher. */
    const struct {
        const char *name, *help;
        uint64_t v;
    } dc[] = {
        {"fleet_jobs_submitted_total", "Jobs that entered PENDING.",
         m->jobs_submitted},
        {"fleet_jobs_completed_total", "Jobs that ended (cancelled too).",
         m->jobs_completed},
        {"fleet_jobs_inline_total", "Tiny blocking jobs run on their caller.",
         m->jobs_inline},
        {"fleet_batches_split_total", "Batches the dispatcher made.",
         m->batches_split},
    };
    for (size_t k = 0; k < sizeof(dc) / sizeof(dc[0]); k++) {
        prom_head(f, dc[k].name, "counter", dc[k].help);
        fprintf(f, "%s %llu\n", dc[k].name, (unsigned long long)dc[k].v);
    }
    prom_head(f, "fleet_split_depth_max", "gauge",
              "Most halvings from a job to one of its batches.");
    fprintf(f, "fleet_split_depth_max %llu\n",
            (unsigned long long)m->split_depth_max);
    prom_head(f, "fleet_split_depth_mean", "gauge",
              "Mean halvings from a job to its batches.");
    fprintf(f, "fleet_split_depth_mean %.3f\n", m->split_depth_mean);
    prom_head(f, "fleet_dispatch_latency_seconds", "histogram",
              "From submit to the first item of the job running.");
    prom_hist(f, "fleet_dispatch_latency_seconds", "", &m->dispatch_latency);

    /* Failures. */
    const fleet_failure_stats_t *s = &m->failures;
    prom_head(f, "fleet_failures_injected_total", "counter",
              "Simulated failures injected, by kind.");
    for (int k = 0; k < 3; k++)
        fprintf(f, "fleet_failures_injected_total{kind=\"%s\"} %llu\n",
                kind_name[k], (unsigned long long)s->injected[k]);
    prom_head(f, "fleet_failures_detected_total", "counter",
              "TaskManagers declared failed, by the injected kind.");
    for (int k = 0; k < 3; k++)
        fprintf(f, "fleet_failures_detected_total{kind=\"%s\"} %llu\n",
                kind_name[k], (unsigned long long)s->detected[k]);
    const struct {
        const char *name, *help;
        uint64_t v;
    } fc[] = {
        {"fleet_failures_suspected_total",
         "Declared failed with nothing simulated.", s->suspected},
        {"fleet_batches_redispatched_total",
         "Batches of failed TaskManagers sent back to PENDING.",
         s->batches_redispatched},
        {"fleet_attempts_fenced_total", "Attempts whose work was discarded.",
         s->attempts_fenced},
        {"fleet_speculative_launched_total", "Second attempts of stragglers.",
         s->speculative_launched},
        {"fleet_speculative_won_total", "Second attempts that committed first.",
         s->speculative_won},
        {"fleet_restarts_total", "TaskManagers restarted.", s->restarts},
        {"fleet_jobs_cancelled_total", "Jobs ended with -ECANCELED.",
         s->jobs_cancelled},
        {"fleet_recoveries_total",
         "Failures whose lost ranges were all committed again.", s->recoveries},
        {"fleet_batches_cut_total",
         "Long batches cut to bound what a failure loses.", s->batches_cut},
    };
    for (size_t k = 0; k < sizeof(fc) / sizeof(fc[0]); k++) {
        prom_head(f, fc[k].name, "counter", fc[k].help);
        fprintf(f, "%s %llu\n", fc[k].name, (unsigned long long)fc[k].v);
    }
    const struct {
        const char *name, *help;
        double v;
    } ft[] = {
        {"fleet_detection_seconds_total",
         "Injection to declared failed, summed over detections.",
         (double)s->detection_us_total * 1e-6},
        {"fleet_recovery_seconds_total",
         "Injection to lost ranges committed again, summed.",
         (double)s->recovery_us_total * 1e-6},
        {"fleet_fencing_seconds_total",
         "Monitor time spent fencing and requeueing.",
         (double)s->fencing_ns_total * 1e-9},
    };
    for (size_t k = 0; k < sizeof(ft) / sizeof(ft[0]); k++) {
        prom_head(f, ft[k].name, "counter", ft[k].help);
        fprintf(f, "%s %.9f\n", ft[k].name, ft[k].v);
    }
    prom_head(f, "fleet_detection_seconds_max", "gauge",
              "Longest injection to declared failed.");
    fprintf(f, "fleet_detection_seconds_max %.6f\n",
            (double)s->detection_us_max * 1e-6);
    prom_head(f, "fleet_taskmanagers_live", "gauge",
              "TaskManagers not declared failed.");
    fprintf(f, "fleet_taskmanagers_live %u\n", s->task_managers_live);
}

int fleet_metrics_write_prometheus(fleet_runtime_t *rt, FILE *out)
{
    return write_snapshot(rt, out, write_prometheus);
}

/* --- reporter ------------------------------------------------------------ */

/* Writes one snapshot to path.tmp, then renames it over path. */
static void report_once(struct fleet_runtime *rt, const char *path,
                        const char *tmp, fleet_metrics_format_t format)
{
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    int err = format == FLEET_METRICS_JSON
                  ? fleet_metrics_write_json(rt, f)
                  : fleet_metrics_write_prometheus(rt, f);
    if (fclose(f) != 0 || err != 0) {
        remove(tmp);
        return;
    }
    rename(tmp, path);
}

static void *reporter_main(void *arg)
{
    struct fleet_runtime *rt = arg;
    struct fl_metrics *m = &rt->metrics;
    size_t n = strlen(m->rep_path);
    char *tmp = fl_alloc(FL_ARENA_DEFAULT, n + 5);
    if (tmp != NULL) {
        memcpy(tmp, m->rep_path, n);
        memcpy(tmp + n, ".tmp", 5);
    }
    pthread_mutex_lock(&m->rep_lock);
    while (tmp != NULL) {
        bool stop = m->rep_stop;
        pthread_mutex_unlock(&m->rep_lock);
        report_once(rt, m->rep_path, tmp, m->rep_format);
        pthread_mutex_lock(&m->rep_lock);
        if (stop)
            break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec +
                      (uint64_t)m->rep_period_ms % 1000u * 1000000u;
        until.tv_sec += (time_t)(m->rep_period_ms / 1000u + ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        while (!m->rep_stop &&
               pthread_cond_timedwait(&m->rep_cond, &m->rep_lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&m->rep_lock);
    fl_free(FL_ARENA_DEFAULT, tmp);
    return NULL;
}

int fleet_metrics_reporter_start(fleet_runtime_t *rt, const char *path,
                                 unsigned period_ms,
                                 fleet_metrics_format_t format)
{
    if (rt == NULL || path == NULL || path[0] == '\0' || period_ms == 0 ||
        (format != FLEET_METRICS_JSON && format != FLEET_METRICS_PROMETHEUS))
        return -EINVAL;
    struct fl_metrics *m = &rt->metrics;
    pthread_mutex_lock(&m->rep_ctl);
    pthread_mutex_lock(&m->rep_lock);
    int err = 0;
    if (m->rep_running) {
        err = -EBUSY;
    } else if ((m->rep_path = fl_alloc(FL_ARENA_DEFAULT, strlen(path) + 1)) ==
               NULL) {
        err = -ENOMEM;
    } else {
        memcpy(m->rep_path, path, strlen(path) + 1);
        m->rep_period_ms = period_ms;
        m->rep_format = format;
        m->rep_stop = false;
        err = -pthread_create(&m->rep_thread, NULL, reporter_main, rt);
        if (err == 0) {
            m->rep_running = true;
        } else {
            fl_free(FL_ARENA_DEFAULT, m->rep_path);
            m->rep_path = NULL;
        }
    }
    pthread_mutex_unlock(&m->rep_lock);
    pthread_mutex_unlock(&m->rep_ctl);
    return err;
}

int fleet_metrics_reporter_stop(fleet_runtime_t *rt)
{
    if (rt == NULL)
        return -EINVAL;
    struct fl_metrics *m = &rt->metrics;
    pthread_mutex_lock(&m->rep_ctl);
    pthread_mutex_lock(&m->rep_lock);
    if (!m->rep_running) {
        pthread_mutex_unlock(&m->rep_lock);
        pthread_mutex_unlock(&m->rep_ctl);
        return -ENOENT;
    }
    m->rep_stop = true;
    m->rep_running = false;
    pthread_cond_signal(&m->rep_cond);
    pthread_t th = m->rep_thread;
    pthread_mutex_unlock(&m->rep_lock);
    pthread_join(th, NULL);
    pthread_mutex_lock(&m->rep_lock);
    fl_free(FL_ARENA_DEFAULT, m->rep_path);
    m->rep_path = NULL;
    pthread_mutex_unlock(&m->rep_lock);
    pthread_mutex_unlock(&m->rep_ctl);
    return 0;
}
