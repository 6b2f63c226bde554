/*
 * bench_metg: Task Bench's METG, the minimum effective task granularity
 * (Slaughter et al., SC'20), of fleet, OpenMP and a plain mutex/condvar
 * thread pool, all on the same number of threads.
 *
 * For each grain g from 100 ns to 1 ms, T independent tasks of g ns of
 * busy work each (busy.h; T * g the same total at every grain) run on
 * `threads` threads; efficiency = (T * g / threads) / measured time. The
 * METG(50%) of an implementation is the smallest grain that still reaches
 * 50% efficiency, interpolated linearly in log(grain) between the two
 * grains around 0.5 (see busy_metg).
 *
 * Implementations:
 *   fleet_jobs    - one fleet_submit of a one-item job per task, all
 *                   submitted, then all waited for and released;
 *   fleet_pfor    - one fleet_parallel_for over [0, T), grain 1;
 *   omp_tasks     - omp parallel + single, one omp task per task;
 *   omp_dynamic1  - omp parallel for schedule(dynamic, 1);
 *   pthread_pool  - a linked queue under one mutex, workers waiting on a
 *                   condition variable, a pending count and a condition
 *                   variable for completion.
 * `threads` is the number of usable CPUs: fleet's worker count (2
 * TaskManagers when it is even), the OpenMP team (its master included)
 * and the pool's workers; fleet's waiting caller helps run work, the
 * pool's sleeps. Each implementation's runtime is created once.
 * The timed region runs from the first submit until every task has run.
 * Each run times every implementation over all grains, one implementation
 * after the other with a pause between them; medians over the runs.
 *
 * Output: one JSON object per line. Usage:
 *   bench_metg [--runs N] [--quick] [--iters-per-ns X] [--only IMPL,...]
 * --quick: a fifth of the work per point; --iters-per-ns: skip the
 * calibration (e.g. to match a bench_tbb run); --only: these
 * implementations (names separated by commas).
 */
#define _GNU_SOURCE
#include <fleet.h>
#include <omp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "busy.h"

/* --- the tasks --------------------------------------------------------- */

struct metg {
    uint64_t iters;      /* busy_work rounds per task */
    unsigned char *seen; /* validation only: runs per task; else NULL */
};

static inline void task(const struct metg *m, size_t i)
{
    busy_work(m->iters, i);
    if (m->seen != NULL)
        m->seen[i]++;
}

static void task_range(void *ctx, size_t b, size_t e)
{
    for (size_t i = b; i < e; i++)
        task(ctx, i);
}

/* --- a plain thread pool, as most C programs write one ----------------- */

struct pool_task {
    void (*fn)(void *arg, size_t i);
    void *arg;
    size_t i;
    struct pool_task *next;
};

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a task was queued, or stop */
    pthread_cond_t idle; /* pending dropped to 0 */
    struct pool_task *head, *tail;
    size_t pending; /* queued or running */
    bool stop;
    int nthreads;
    pthread_t *threads;
};

static void *pool_worker(void *p)
{
    struct pool *pl = p;
    pthread_mutex_lock(&pl->mu);
    for (;;) {
        while (pl->head == NULL && !pl->stop)
            pthread_cond_wait(&pl->work, &pl->mu);
        if (pl->head == NULL)
            break;
        struct pool_task *t = pl->head;
        pl->head = t->next;
        if (pl->head == NULL)
            pl->tail = NULL;
        pthread_mutex_unlock(&pl->mu);
        t->fn(t->arg, t->i);
        free(t);
        pthread_mutex_lock(&pl->mu);
        if (--pl->pending == 0)
            pthread_cond_broadcast(&pl->idle);
    }
    pthread_mutex_unlock(&pl->mu);
    return NULL;
}

static int pool_create(struct pool *pl, int nthreads)
{
    memset(pl, 0, sizeof(*pl));
    pthread_mutex_init(&pl->mu, NULL);
    pthread_cond_init(&pl->work, NULL);
    pthread_cond_init(&pl->idle, NULL);
    pl->threads = calloc((size_t)nthreads, sizeof(*pl->threads));
    if (pl->threads == NULL)
        return -1;
    for (; pl->nthreads < nthreads; pl->nthreads++)
        if (pthread_create(&pl->threads[pl->nthreads], NULL, pool_worker, pl) !=
            0)
            return -1;
    return 0;
}

static int pool_submit(struct pool *pl, void (*fn)(void *, size_t), void *arg,
                       size_t i)
{
    struct pool_task *t = malloc(sizeof(*t));
    if (t == NULL)
        return -1;
    t->fn = fn;
    t->arg = arg;
    t->i = i;
    t->next = NULL;
    pthread_mutex_lock(&pl->mu);
    if (pl->tail != NULL)
        pl->tail->next = t;
    else
        pl->head = t;
    pl->tail = t;
    pl->pending++;
    pthread_cond_signal(&pl->work);
    pthread_mutex_unlock(&pl->mu);
    return 0;
}

static void pool_wait(struct pool *pl)
{
    pthread_mutex_lock(&pl->mu);
    while (pl->pending != 0)
        pthread_cond_wait(&pl->idle, &pl->mu);
    pthread_mutex_unlock(&pl->mu);
}

static void pool_destroy(struct pool *pl)
{
    pthread_mutex_lock(&pl->mu);
    pl->stop = true;
    pthread_cond_broadcast(&pl->work);
    pthread_mutex_unlock(&pl->mu);
    for (int k = 0; k < pl->nthreads; k++)
        pthread_join(pl->threads[k], NULL);
    free(pl->threads);
    pthread_cond_destroy(&pl->idle);
    pthread_cond_destroy(&pl->work);
    pthread_mutex_destroy(&pl->mu);
}

static void pool_task_fn(void *arg, size_t i)
{
    task(arg, i);
}

/* --- one timed sweep point per implementation -------------------------- */

enum impl {
    FLEET_JOBS,
    FLEET_PFOR,
    OMP_TASKS,
    OMP_DYNAMIC1,
    PTHREAD_POOL,
    NIMPL
};

static const char *const impl_names[NIMPL] = {
    "fleet_jobs", "fleet_pfor", "omp_tasks", "omp_dynamic1", "pthread_pool"};

struct peers {
    fleet_runtime_t *rt;       /* default grain: one-item jobs */
    fleet_runtime_t *rt_grain; /* grain 1: fleet_pfor */
    fleet_job_t **jobs;
    struct pool pool;
};

/* Runs tasks [0, n) with im; returns the seconds from first submit to all
 * done. */
static double run(enum impl im, struct peers *p, struct metg *m, size_t n)
{
    double t0 = busy_now();
    switch (im) {
    case FLEET_JOBS:
        for (size_t i = 0; i < n; i++)
            if (fleet_submit(p->rt, task_range, m, i, i + 1, &p->jobs[i]) != 0)
                abort();
        for (size_t i = 0; i < n; i++) {
            if (fleet_job_wait(p->jobs[i]) != 0)
                abort();
            fleet_job_release(p->jobs[i]);
        }
        break;
    case FLEET_PFOR:
        if (fleet_parallel_for(p->rt_grain, task_range, m, 0, n) != 0)
            abort();
        break;
    case OMP_TASKS:
#pragma omp parallel
#pragma omp single
        for (size_t i = 0; i < n; i++) {
#pragma omp task firstprivate(i)
            task(m, i);
        }
        break;
    case OMP_DYNAMIC1:
#pragma omp parallel for schedule(dynamic, 1)
        for (size_t i = 0; i < n; i++)
            task(m, i);
        break;
    case PTHREAD_POOL:
        for (size_t i = 0; i < n; i++)
            if (pool_submit(&p->pool, pool_task_fn, m, i) != 0)
                abort();
        pool_wait(&p->pool);
        break;
    case NIMPL:
        abort();
    }
    return busy_now() - t0;
}

/* Is name one of the comma-separated names in list? */
static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p != NULL; p = strchr(p, ',')) {
        if (*p == ',')
            p++;
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    int runs = 5;
    bool quick = false;
    double iters_per_ns = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--iters-per-ns") == 0 && i + 1 < argc)
            iters_per_ns = atof(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--runs N] [--quick] [--iters-per-ns X] "
                    "[--only IMPL,...]\n",
                    argv[0]);
            return 2;
        }
    }
    bool on[NIMPL];
    for (int im = 0; im < NIMPL; im++)
        on[im] = only == NULL || listed(only, impl_names[im]);
    if (only != NULL && !on[FLEET_JOBS] && !on[FLEET_PFOR] && !on[OMP_TASKS] &&
        !on[OMP_DYNAMIC1] && !on[PTHREAD_POOL]) {
        fprintf(stderr, "no known implementation in %s\n", only);
        return 2;
    }
    if (runs < 1 || runs > 101)
        runs = 5;
    /* The ideal time of every sweep point: the same total work. */
    const double ideal_ms = quick ? 10 : 50;

    const int threads = busy_cpus();
    fleet_config_t cfg;
    fleet_config_init(&cfg);
    /* fleet's default of 2 TaskManagers, when the CPUs split evenly. */
    cfg.task_managers = threads % 2 == 0 ? 2 : 1;
    cfg.workers_per_tm = (unsigned)threads / cfg.task_managers;
    struct peers p;
    int err = fleet_runtime_create(&p.rt, &cfg);
    if (err == 0) {
        fleet_config_t g1 = cfg;
        g1.grain = 1;
        err = fleet_runtime_create(&p.rt_grain, &g1);
    }
    if (err != 0) {
        fprintf(stderr, "fleet_runtime_create: %s\n", fleet_strerror(err));
        return 1;
    }
    if (pool_create(&p.pool, threads) != 0) {
        fprintf(stderr, "pool_create failed\n");
        return 1;
    }
    omp_set_num_threads(threads);
    size_t max_tasks = busy_tasks(ideal_ms, threads, busy_grains_ns[0]);
    p.jobs = malloc(max_tasks * sizeof(*p.jobs));
    if (p.jobs == NULL)
        return 1;

    if (iters_per_ns <= 0)
        iters_per_ns = busy_calibrate();
    printf("{\"bench\":\"metg_config\",\"threads\":%d,\"task_managers\":%u,"
           "\"workers_per_tm\":%u,\"iters_per_ns\":%.4f,\"ideal_ms\":%.0f,"
           "\"runs\":%d}\n",
           threads, cfg.task_managers, cfg.workers_per_tm, iters_per_ns,
           ideal_ms, runs);
    fflush(stdout);

    /* Validation, untimed: every implementation runs every task once. */
    {
        size_t n = 4096;
        struct metg m = {busy_iters(iters_per_ns, busy_grains_ns[0]),
                         calloc(n, 1)};
        if (m.seen == NULL)
            return 1;
        for (int im = 0; im < NIMPL; im++) {
            if (!on[im])
                continue;
            memset(m.seen, 0, n);
            pause_ms(150);
            run(im, &p, &m, n);
            for (size_t i = 0; i < n; i++)
                if (m.seen[i] != 1) {
                    fprintf(stderr, "%s: task %zu ran %d times\n",
                            impl_names[im], i, m.seen[i]);
                    return 1;
                }
        }
        free(m.seen);
    }

    static double t[NIMPL][BUSY_NGRAINS][101];
    for (int r = 0; r < runs; r++) {
        for (int im = 0; im < NIMPL; im++) {
            if (!on[im])
                continue;
            pause_ms(150); /* longer than fleet's dispatcher linger */
            for (size_t k = 0; k < BUSY_NGRAINS; k++) {
                double g = busy_grains_ns[k];
                struct metg m = {busy_iters(iters_per_ns, g), NULL};
                t[im][k][r] = run(im, &p, &m, busy_tasks(ideal_ms, threads, g));
            }
        }
        fprintf(stderr, "[metg] run %d/%d\n", r + 1, runs);
    }

    for (int im = 0; im < NIMPL; im++) {
        if (!on[im])
            continue;
        double eff[BUSY_NGRAINS];
        for (size_t k = 0; k < BUSY_NGRAINS; k++) {
            double g = busy_grains_ns[k];
            size_t n = busy_tasks(ideal_ms, threads, g);
            double med = median(t[im][k], runs);
            eff[k] = (double)n * g * 1e-9 / threads / med;
            printf("{\"bench\":\"metg\",\"impl\":\"%s\",\"grain_ns\":%.0f,"
                   "\"tasks\":%zu,\"median_s\":%.6f,\"efficiency\":%.3f}\n",
                   impl_names[im], g, n, med, eff[k]);
        }
        enum busy_metg_how how;
        double metg = busy_metg(eff, &how);
        if (how == BUSY_METG_ABOVE)
            printf("{\"bench\":\"metg_summary\",\"impl\":\"%s\","
                   "\"metg_ns\":null,\"how\":\"%s\"}\n",
                   impl_names[im], busy_metg_how_name(how));
        else
            printf("{\"bench\":\"metg_summary\",\"impl\":\"%s\","
                   "\"metg_ns\":%.0f,\"how\":\"%s\"}\n",
                   impl_names[im], metg, busy_metg_how_name(how));
        fflush(stdout);
    }

    free(p.jobs);
    pool_destroy(&p.pool);
    fleet_runtime_destroy(p.rt_grain);
    fleet_runtime_destroy(p.rt);
    return 0;
}
