/*
 * bench_dispatch: what one job costs the runtime, and what its rings cost.
 *
 *   dispatch_submit  - 1-item jobs submitted with fleet_submit and released
 *                      at once, from 1 and from 4 threads: jobs per second,
 *                      the timed region ending when every job has run;
 *   dispatch_latency - an empty 1-item job: the time from just before
 *                      fleet_submit to the first instruction of its body,
 *                      p50 and p99, with the workers inside their spin
 *                      window ("spinning": the next job 10 us after the last
 *                      one ended) and asleep ("sleeping": 5 ms apart);
 *   futex_wake       - the same hand-off without the runtime: one thread
 *                      sleeps in FUTEX_WAIT, another stamps the time and
 *                      FUTEX_WAKEs it, the woken thread stamps; sampled
 *                      alternately with the sleeping samples, after the
 *                      same pause, then the ratio sleeping / futex;
 *   ring             - one producer and one consumer thread pushing
 *                      pointers through the runtime's ring wrapper
 *                      (fl_ring_*) and through raw ck_ring, in the three
 *                      modes the wrapper offers, the two threads pinned to
 *                      CPUs 0 and 1: items per second, and the ratio
 *                      wrapper / raw of items per second.
 *
 * The caller of a latency sample does not wait in fleet_job_wait until the
 * body has run (a waiting caller helps, and could run the job itself): it
 * watches the body's timestamp, yielding the CPU as the futex waker does,
 * and counts samples whose body ran on it anyway ("on_caller").
 * Measurements are interleaved and repeated; one JSON object per line.
 * Usage: bench_dispatch [--runs N] [--quick]
 */
#define _GNU_SOURCE
#include <fleet.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "ring.h"

#define MAX_RUNS 101

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void pause_us(unsigned us)
{
    struct timespec t = {us / 1000000, (long)(us % 1000000) * 1000L};
    nanosleep(&t, NULL);
}

/* Busy-waits: shorter gaps than a sleep can give. */
static void spin_us(unsigned us)
{
    uint64_t end = now_ns() + (uint64_t)us * 1000u;
    while (now_ns() < end)
        ;
}

/* Nearest rank; v sorted. */
static double percentile(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static void die(const char *what, int err)
{
    fprintf(stderr, "%s: %s\n", what, fleet_strerror(err));
    exit(1);
}

/* --- submit throughput --------------------------------------------------- */

struct submitters {
    fleet_runtime_t *rt;
    pthread_barrier_t start;
    size_t per_thread;
    atomic_size_t ran;
};

static void count_body(void *ctx, size_t b, size_t e)
{
    struct submitters *s = ctx;
    atomic_fetch_add_explicit(&s->ran, e - b, memory_order_relaxed);
}

static void *submitter(void *arg)
{
    struct submitters *s = arg;
    pthread_barrier_wait(&s->start);
    for (size_t i = 0; i < s->per_thread; i++) {
        fleet_job_t *job;
        int err = fleet_submit(s->rt, count_body, s, 0, 1, &job);
        if (err != 0)
            die("fleet_submit", err);
        fleet_job_release(job);
    }
    return NULL;
}

/* Seconds for `threads` threads to submit `jobs` jobs and the runtime to
 * run them all. */
static double run_submit(fleet_runtime_t *rt, int threads, size_t jobs)
{
    struct submitters s;
    s.rt = rt;
    s.per_thread = jobs / (size_t)threads;
    atomic_init(&s.ran, 0);
    pthread_barrier_init(&s.start, NULL, (unsigned)threads + 1);
    pthread_t th[8];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, submitter, &s) != 0)
            die("pthread_create", -1);
    pthread_barrier_wait(&s.start);
    uint64_t t0 = now_ns();
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    size_t want = s.per_thread * (size_t)threads;
    while (atomic_load_explicit(&s.ran, memory_order_acquire) < want)
        pause_us(20);
    uint64_t t1 = now_ns();
    pthread_barrier_destroy(&s.start);
    return (double)(t1 - t0) * 1e-9;
}

/* --- dispatch latency and futex wake latency ------------------------------
 *
 * Sleeping samples alternate with futex samples, one pause before each
 * pair, so that both see the same machine (others may be using it). */

struct stamp {
    _Atomic uint64_t ran_at; /* 0 until the body ran */
    pthread_t caller;
    atomic_bool on_caller;
};

static void stamp_body(void *ctx, size_t b, size_t e)
{
    uint64_t t = now_ns(); /* first thing */
    struct stamp *s = ctx;
    (void)b;
    (void)e;
    atomic_store_explicit(&s->on_caller,
                          pthread_equal(pthread_self(), s->caller) != 0,
                          memory_order_relaxed);
    atomic_store_explicit(&s->ran_at, t, memory_order_release);
}

/* One latency sample in microseconds; *on_caller: the body ran on the
 * calling thread. */
static double dispatch_sample(fleet_runtime_t *rt, struct stamp *s,
                              bool *on_caller)
{
    atomic_store_explicit(&s->ran_at, 0, memory_order_relaxed);
    atomic_store_explicit(&s->on_caller, false, memory_order_relaxed);
    fleet_job_t *job;
    uint64_t t0 = now_ns();
    int err = fleet_submit(rt, stamp_body, s, 0, 1, &job);
    if (err != 0)
        die("fleet_submit", err);
    uint64_t give_up = t0 + 2000000000u;
    /* Yielding, as the futex waker does: a worker woken onto this CPU
     * must not wait for the end of our time slice. */
    while (atomic_load_explicit(&s->ran_at, memory_order_acquire) == 0) {
        if (now_ns() > give_up)
            break; /* let fleet_job_wait run it */
        sched_yield();
    }
    err = fleet_job_wait(job);
    if (err != 0)
        die("fleet_job_wait", err);
    fleet_job_release(job);
    uint64_t t1 = atomic_load_explicit(&s->ran_at, memory_order_acquire);
    *on_caller = atomic_load_explicit(&s->on_caller, memory_order_relaxed);
    return (double)(t1 - t0) * 1e-3;
}

struct futex_pair {
    _Atomic uint32_t word;  /* the futex; bumped once per sample */
    _Atomic uint64_t woken; /* the sleeper's stamp */
    _Atomic uint32_t acked; /* samples the sleeper has stamped */
    int samples;
};

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

static void *futex_sleeper(void *arg)
{
    struct futex_pair *f = arg;
    for (int i = 0; i < f->samples; i++) {
        uint32_t v = (uint32_t)i;
        while (atomic_load_explicit(&f->word, memory_order_acquire) == v)
            futex(&f->word, FUTEX_WAIT_PRIVATE, v);
        atomic_store_explicit(&f->woken, now_ns(), memory_order_relaxed);
        atomic_store_explicit(&f->acked, (uint32_t)i + 1, memory_order_release);
    }
    return NULL;
}

/* Sample i of the futex hand-off, in microseconds; the sleeper has slept
 * since the previous one. */
static double futex_sample(struct futex_pair *f, int i)
{
    uint64_t t0 = now_ns();
    atomic_store_explicit(&f->word, (uint32_t)i + 1, memory_order_release);
    futex(&f->word, FUTEX_WAKE_PRIVATE, 1);
    while (atomic_load_explicit(&f->acked, memory_order_acquire) !=
           (uint32_t)i + 1)
        sched_yield();
    uint64_t t1 = atomic_load_explicit(&f->woken, memory_order_relaxed);
    return (double)(t1 - t0) * 1e-3;
}

/* Workers inside their spin window: each job `gap_us` (busy-waited) after
 * the last one ended. Returns how many bodies ran on the caller. */
static int run_spinning(fleet_runtime_t *rt, int samples, unsigned gap_us,
                        double *out)
{
    int on_caller = 0;
    struct stamp s;
    s.caller = pthread_self();
    for (int i = 0; i < samples; i++) {
        spin_us(gap_us);
        bool mine;
        out[i] = dispatch_sample(rt, &s, &mine);
        on_caller += mine;
    }
    return on_caller;
}

/* Every worker asleep: `gap_us` slept before each pair of a futex sample
 * and a dispatch sample. Returns how many bodies ran on the caller. */
static int run_sleeping(fleet_runtime_t *rt, int samples, unsigned gap_us,
                        double *out, double *out_futex)
{
    int on_caller = 0;
    struct stamp s;
    s.caller = pthread_self();
    struct futex_pair f;
    atomic_init(&f.word, 0);
    atomic_init(&f.woken, 0);
    atomic_init(&f.acked, 0);
    f.samples = samples;
    pthread_t th;
    if (pthread_create(&th, NULL, futex_sleeper, &f) != 0)
        die("pthread_create", -1);
    for (int i = 0; i < samples; i++) {
        pause_us(gap_us);
        out_futex[i] = futex_sample(&f, i);
        bool mine;
        out[i] = dispatch_sample(rt, &s, &mine);
        on_caller += mine;
    }
    pthread_join(th, NULL);
    return on_caller;
}

/* --- rings --------------------------------------------------------------- */

enum ring_mode { SPSC, SPMC, MPMC, NMODES };
static const char *const mode_names[NMODES] = {"spsc", "spmc", "mpmc"};
static const unsigned fl_modes[NMODES] = {
    FL_RING_SP | FL_RING_SC, FL_RING_SP | FL_RING_MC, FL_RING_MP | FL_RING_MC};

#define RING_SLOTS 1024u

/* Each ring sits alone on its own cache lines, away from the read-mostly
 * fields below, so that neither side's stores slow the other's loads. */
struct rings {
    _Alignas(64) struct fl_ring fl;
    _Alignas(64) struct ck_ring ck;
    _Alignas(64) ck_ring_buffer_t *ck_buf;
};

struct ring_run {
    struct rings *rings;
    bool wrapper;
    enum ring_mode mode;
    size_t items;
    pthread_barrier_t start;
    uint64_t sum;
};

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* One loop per implementation and mode, chosen outside the loop. */
#define PRODUCE(put)                                                           \
    for (size_t i = 1; i <= items; i++)                                        \
        while (!(put))                                                         \
            relax();
#define CONSUME(get)                                                           \
    for (size_t i = 0; i < items; i++) {                                       \
        while (!(get))                                                         \
            relax();                                                           \
        sum += (uintptr_t)p;                                                   \
    }

/* Producer and consumer on CPUs of their own when there are two: fewer
 * migrations, steadier figures. */
static void pin_to(int cpu)
{
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *ring_producer(void *arg)
{
    struct ring_run *r = arg;
    pin_to(0);
    struct rings *g = r->rings;
    const size_t items = r->items;
    pthread_barrier_wait(&r->start);
    if (r->wrapper) {
        PRODUCE(fl_ring_enqueue(&g->fl, (void *)(uintptr_t)i));
    } else if (r->mode == SPSC) {
        PRODUCE(ck_ring_enqueue_spsc(&g->ck, g->ck_buf, (void *)(uintptr_t)i));
    } else if (r->mode == SPMC) {
        PRODUCE(ck_ring_enqueue_spmc(&g->ck, g->ck_buf, (void *)(uintptr_t)i));
    } else {
        PRODUCE(ck_ring_enqueue_mpmc(&g->ck, g->ck_buf, (void *)(uintptr_t)i));
    }
    return NULL;
}

static void *ring_consumer(void *arg)
{
    struct ring_run *r = arg;
    pin_to(1);
    struct rings *g = r->rings;
    const size_t items = r->items;
    uint64_t sum = 0;
    void *p;
    pthread_barrier_wait(&r->start);
    if (r->wrapper) {
        CONSUME(fl_ring_dequeue(&g->fl, &p));
    } else if (r->mode == SPSC) {
        CONSUME(ck_ring_dequeue_spsc(&g->ck, g->ck_buf, &p));
    } else if (r->mode == SPMC) {
        CONSUME(ck_ring_dequeue_spmc(&g->ck, g->ck_buf, &p));
    } else {
        CONSUME(ck_ring_dequeue_mpmc(&g->ck, g->ck_buf, &p));
    }
    r->sum = sum;
    return NULL;
}

static double run_ring(bool wrapper, enum ring_mode mode, size_t items)
{
    struct rings *g = aligned_alloc(64, sizeof(*g));
    if (g == NULL)
        die("aligned_alloc", -ENOMEM);
    memset(g, 0, sizeof(*g));
    if (wrapper) {
        if (fl_ring_init(&g->fl, RING_SLOTS - 1, fl_modes[mode]) != 0)
            die("fl_ring_init", -1);
    } else {
        /* As fl_ring_init allocates its buffer. */
        g->ck_buf = calloc(RING_SLOTS, sizeof(*g->ck_buf));
        if (g->ck_buf == NULL)
            die("calloc", -ENOMEM);
        ck_ring_init(&g->ck, RING_SLOTS);
    }
    struct ring_run r = {g, wrapper, mode, items, {{0}}, 0};
    pthread_barrier_init(&r.start, NULL, 3);
    pthread_t prod, cons;
    if (pthread_create(&prod, NULL, ring_producer, &r) != 0 ||
        pthread_create(&cons, NULL, ring_consumer, &r) != 0)
        die("pthread_create", -1);
    pthread_barrier_wait(&r.start);
    uint64_t t0 = now_ns();
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    uint64_t t1 = now_ns();
    pthread_barrier_destroy(&r.start);
    if (r.sum != (uint64_t)items * (items + 1) / 2) {
        fprintf(stderr, "ring %s: wrong checksum\n", mode_names[mode]);
        exit(1);
    }
    if (wrapper)
        fl_ring_fini(&g->fl);
    else
        free(g->ck_buf);
    free(g);
    return (double)(t1 - t0) * 1e-9;
}

/* --- main ---------------------------------------------------------------- */

static size_t count_over(const double *v, size_t n, double limit)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += v[i] > limit;
    return k;
}

static void print_latency(const char *cond, unsigned gap_us, double *v,
                          size_t n, int on_caller, double *p50, double *p99)
{
    qsort(v, n, sizeof(*v), cmp_double);
    *p50 = percentile(v, n, 0.50);
    *p99 = percentile(v, n, 0.99);
    printf("{\"bench\":\"dispatch_latency\",\"condition\":\"%s\","
           "\"gap_us\":%u,\"samples\":%zu,\"p50_us\":%.2f,\"p99_us\":%.2f,"
           "\"max_us\":%.2f,\"over_100us\":%zu,\"on_caller\":%d}\n",
           cond, gap_us, n, *p50, *p99, v[n - 1], count_over(v, n, 100),
           on_caller);
}

int main(int argc, char **argv)
{
    int runs;
    bool quick;
    if (!bench_args(argc, argv, MAX_RUNS, &runs, &quick))
        return 2;

    const size_t submit_jobs = quick ? 40000 : 200000;
    static const int submit_threads[] = {1, 4};
    enum { NSUB = sizeof(submit_threads) / sizeof(submit_threads[0]) };
    const int spin_samples = quick ? 1000 : 4000;
    const int sleep_samples = quick ? 100 : 400;
    const unsigned spin_gap_us = 10, sleep_gap_us = 5000;
    /* The multi-consumer modes are several times slower. */
    const size_t ring_items[NMODES] = {quick ? 2000000 : 10000000,
                                       quick ? 500000 : 2000000,
                                       quick ? 500000 : 2000000};
    const int ring_reps = 2 * runs; /* short and noisy: more of them */

    fleet_config_t cfg;
    fleet_config_init(&cfg);
    fleet_runtime_t *rt;
    int err = fleet_runtime_create(&rt, &cfg);
    if (err != 0)
        die("fleet_runtime_create", err);
    fleet_runtime_config(rt, &cfg);
    double load[1] = {-1};
    getloadavg(load, 1); /* others using the machine show here */
    printf("{\"bench\":\"dispatch_config\",\"task_managers\":%u,"
           "\"workers_per_tm\":%u,\"spin_us\":%u,\"cpus\":%ld,\"runs\":%d,"
           "\"loadavg_1m\":%.2f}\n",
           cfg.task_managers, cfg.workers_per_tm, cfg.spin_us,
           sysconf(_SC_NPROCESSORS_ONLN), runs, load[0]);
    fflush(stdout);

    double t_sub[NSUB][MAX_RUNS];
    double *lat_spin = malloc(sizeof(double) * (size_t)spin_samples * runs);
    double *lat_sleep = malloc(sizeof(double) * (size_t)sleep_samples * runs);
    double *lat_futex = malloc(sizeof(double) * (size_t)sleep_samples * runs);
    double t_ring[NMODES][2][2 * MAX_RUNS];
    if (lat_spin == NULL || lat_sleep == NULL || lat_futex == NULL)
        return 1;
    int on_caller_spin = 0, on_caller_sleep = 0;

    /* Warm-up: threads started, first batches allocated, spins settled. */
    run_submit(rt, 1, 1000);
    pause_us(150000);
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < NSUB; k++) {
            t_sub[k][r] = run_submit(rt, submit_threads[k], submit_jobs);
            pause_us(150000); /* longer than the dispatcher's linger */
        }
        on_caller_spin += run_spinning(rt, spin_samples, spin_gap_us,
                                       lat_spin + (size_t)r * spin_samples);
        pause_us(150000);
        on_caller_sleep += run_sleeping(rt, sleep_samples, sleep_gap_us,
                                        lat_sleep + (size_t)r * sleep_samples,
                                        lat_futex + (size_t)r * sleep_samples);
        /* Wrapper first, then raw first: neither always runs warm. */
        for (int q = 2 * r; q < 2 * r + 2; q++)
            for (int m = 0; m < NMODES; m++)
                for (int k = 0; k < 2; k++) {
                    int w = (k + q) % 2;
                    t_ring[m][w][q] =
                        run_ring(w, (enum ring_mode)m, ring_items[m]);
                }
        fprintf(stderr, "[dispatch] run %d/%d\n", r + 1, runs);
    }

    for (int k = 0; k < NSUB; k++) {
        double m = median(t_sub[k], runs);
        printf("{\"bench\":\"dispatch_submit\",\"submitters\":%d,"
               "\"jobs\":%zu,\"items_per_job\":1,\"median_s\":%.6f,"
               "\"mjobs_per_s\":%.4f}\n",
               submit_threads[k], submit_jobs, m,
               (double)submit_jobs / m / 1e6);
    }
    double spin50, spin99, sleep50, sleep99, fut50, fut99;
    print_latency("spinning", spin_gap_us, lat_spin,
                  (size_t)spin_samples * runs, on_caller_spin, &spin50,
                  &spin99);
    print_latency("sleeping", sleep_gap_us, lat_sleep,
                  (size_t)sleep_samples * runs, on_caller_sleep, &sleep50,
                  &sleep99);
    size_t nf = (size_t)sleep_samples * runs;
    qsort(lat_futex, nf, sizeof(double), cmp_double);
    fut50 = percentile(lat_futex, nf, 0.50);
    fut99 = percentile(lat_futex, nf, 0.99);
    printf("{\"bench\":\"futex_wake\",\"gap_us\":%u,\"samples\":%zu,"
           "\"p50_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f,"
           "\"over_100us\":%zu}\n",
           sleep_gap_us, nf, fut50, fut99, lat_futex[nf - 1],
           count_over(lat_futex, nf, 100));
    printf("{\"bench\":\"dispatch_vs_futex\",\"sleeping_p50_us\":%.2f,"
           "\"futex_p50_us\":%.2f,\"ratio_p50\":%.3f,\"ratio_p99\":%.3f,"
           "\"spinning_p50_us\":%.2f}\n",
           sleep50, fut50, sleep50 / fut50, sleep99 / fut99, spin50);
    for (int m = 0; m < NMODES; m++) {
        double med[2];
        for (int w = 1; w >= 0; w--) {
            med[w] = median(t_ring[m][w], ring_reps);
            printf("{\"bench\":\"ring\",\"mode\":\"%s\",\"impl\":\"%s\","
                   "\"items\":%zu,\"median_s\":%.6f,\"mitems_per_s\":%.3f}\n",
                   mode_names[m], w ? "fl_ring" : "ck_ring", ring_items[m],
                   med[w], (double)ring_items[m] / med[w] / 1e6);
        }
        printf("{\"bench\":\"ring\",\"mode\":\"%s\","
               "\"ratio_wrapper_over_raw\":%.3f}\n",
               mode_names[m], med[0] / med[1]);
    }
    /* A TaskManager whose heartbeat thread got no CPU for a timeout is
     * declared failed: on a busy machine that shows in the tails above. */
    fleet_failure_stats_t st;
    fleet_failure_stats(rt, &st);
    printf("{\"bench\":\"dispatch_health\",\"suspected_failures\":%llu,"
           "\"restarts\":%llu}\n",
           (unsigned long long)st.suspected, (unsigned long long)st.restarts);
    free(lat_spin);
    free(lat_sleep);
    free(lat_futex);
    fleet_runtime_destroy(rt);
    return 0;
}
