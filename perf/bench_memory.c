/*
 * bench_memory: resident memory of one runtime, each case measured in a
 * fresh child process (this program run again with --child CASE) so that
 * peaks do not mix:
 *   baseline - the process without a runtime (libraries loaded);
 *   idle     - a default runtime created, then 100 ms idle;
 *   load     - a runtime whose PENDING queue holds 16384 jobs, running one
 *              big reduction while 10 000 small jobs are submitted and
 *              kept (handles not yet released), then all waited for.
 * Reported per case: the peak (getrusage ru_maxrss) and the current
 * resident set (VmRSS in /proc/self/status) at the measuring point (idle:
 * after the 100 ms; load: right after the last submit), medians of the runs.
 *
 * "malloc" says how this build of the library allocates: "jemalloc" (the
 * default) or "system" (-DFLEET_SYSTEM_MALLOC=ON); "malloc_symbol_from"
 * names the library the program's own malloc() resolved to.
 * One JSON object per line. Usage: bench_memory [--runs N] [--quick]
 */
#define _GNU_SOURCE
#include <fleet.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifdef BENCH_SYSTEM_MALLOC
#define MALLOC_NAME "system"
#else
#define MALLOC_NAME "jemalloc"
#endif

#define MAX_RUNS 101
#define SMALL_JOBS 10000
#define SMALL_ITEMS 1000

/* --- the child ---------------------------------------------------------- */

static long vm_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; /* kilobytes on Linux */
}

static inline uint64_t cheap(size_t i)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ull;
    return (x ^ (x >> 29)) & 0xffff;
}

static void sum_fold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += cheap(i);
    *(uint64_t *)p += s;
}

static void small_body(void *ctx, size_t b, size_t e)
{
    uint64_t s = 0;
    for (size_t i = b; i < e; i++)
        s += cheap(i);
    atomic_fetch_add_explicit((_Atomic uint64_t *)ctx, s, memory_order_relaxed);
}

struct big {
    fleet_runtime_t *rt;
    size_t n;
    uint64_t got;
    int err;
};

static void *big_reduce(void *arg)
{
    struct big *b = arg;
    fleet_reducer_t r = {sizeof(uint64_t), bench_sum_init, sum_fold,
                         bench_sum_combine};
    b->err = fleet_parallel_reduce(b->rt, &r, NULL, 0, b->n, &b->got);
    return NULL;
}

static const char *malloc_symbol_from(void)
{
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (m == NULL || dladdr(m, &info) == 0 || info.dli_fname == NULL)
        return "unknown";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

/* Runs one case and writes "rss peak library" to stdout. */
static int child(const char *which, bool quick)
{
    long rss = 0;
    if (strcmp(which, "baseline") == 0) {
        pause_ms(100);
        rss = vm_rss_kib();
    } else if (strcmp(which, "idle") == 0) {
        fleet_runtime_t *rt;
        if (fleet_runtime_create(&rt, NULL) != 0)
            return 1;
        pause_ms(100);
        rss = vm_rss_kib();
        fleet_runtime_destroy(rt);
    } else if (strcmp(which, "load") == 0) {
        fleet_config_t c;
        fleet_config_init(&c);
        c.ring_size = 16384; /* every small job fits in PENDING */
        fleet_runtime_t *rt;
        if (fleet_runtime_create(&rt, &c) != 0)
            return 1;
        static fleet_job_t *jobs[SMALL_JOBS];
        _Atomic uint64_t small_sum = 0;
        struct big b = {rt, quick ? 20000000u : 80000000u, 0, 0};
        pthread_t th;
        if (pthread_create(&th, NULL, big_reduce, &b) != 0)
            return 1;
        for (int i = 0; i < SMALL_JOBS; i++)
            if (fleet_submit(rt, small_body, &small_sum,
                             (size_t)i * SMALL_ITEMS,
                             (size_t)(i + 1) * SMALL_ITEMS, &jobs[i]) != 0)
                return 1;
        rss = vm_rss_kib();
        for (int i = 0; i < SMALL_JOBS; i++) {
            if (fleet_job_wait(jobs[i]) != 0)
                return 1;
            fleet_job_release(jobs[i]);
        }
        pthread_join(th, NULL);
        uint64_t want_small = 0, want_big = 0;
        sum_fold(NULL, 0, (size_t)SMALL_JOBS * SMALL_ITEMS, &want_small);
        sum_fold(NULL, 0, b.n, &want_big);
        if (b.err != 0 || b.got != want_big ||
            atomic_load(&small_sum) != want_small) {
            fprintf(stderr, "load: wrong result\n");
            return 1;
        }
        fleet_runtime_destroy(rt);
    } else {
        fprintf(stderr, "unknown case %s\n", which);
        return 2;
    }
    printf("%ld %ld %s\n", rss, peak_rss_kib(), malloc_symbol_from());
    return 0;
}

/* --- the parent --------------------------------------------------------- */

/* Runs this program as a child for one case; fills rss, peak and lib. */
static int spawn(const char *which, bool quick, double *rss, double *peak,
                 char *lib, size_t lib_size)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execl("/proc/self/exe", "bench_memory", "--child", which,
              quick ? "--quick" : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    long r = -1, p = -1;
    char name[128] = "unknown";
    int got = f ? fscanf(f, "%ld %ld %127s", &r, &p, name) : 0;
    if (f)
        fclose(f);
    int status;
    waitpid(pid, &status, 0);
    if (got != 3 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_memory: case %s failed\n", which);
        return -1;
    }
    *rss = (double)r;
    *peak = (double)p;
    snprintf(lib, lib_size, "%s", name);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 5;
    bool quick = false;
    const char *child_case = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--child") == 0 && i + 1 < argc)
            child_case = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--runs N] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (child_case != NULL)
        return child(child_case, quick);
    if (runs < 1 || runs > MAX_RUNS)
        runs = 5;

    static const char *const cases[] = {"baseline", "idle", "load"};
    enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
    double rss[NCASES][MAX_RUNS], peak[NCASES][MAX_RUNS];
    char lib[128] = "unknown";
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < NCASES; k++)
            if (spawn(cases[k], quick, &rss[k][r], &peak[k][r], lib,
                      sizeof(lib)) != 0)
                return 1;
        fprintf(stderr, "[memory/%s] run %d/%d\n", MALLOC_NAME, r + 1, runs);
    }
    double base_peak = 0;
    for (int k = 0; k < NCASES; k++) {
        double p = median(peak[k], runs), c = median(rss[k], runs);
        if (k == 0)
            base_peak = p;
        printf("{\"bench\":\"memory\",\"malloc\":\"%s\",\"case\":\"%s\","
               "\"peak_rss_kib\":%.0f,\"rss_kib\":%.0f,"
               "\"peak_over_baseline_kib\":%.0f,\"small_jobs\":%d,"
               "\"malloc_symbol_from\":\"%s\",\"runs\":%d}\n",
               MALLOC_NAME, cases[k], p, c, p - base_peak,
               k == 2 ? SMALL_JOBS : 0, lib, runs);
    }
    return 0;
}
