/*
 * imagestats: a parallel C program on fleet.
 *
 * Generates a grey-scale image, blurs it with a 5x5 box filter
 * (fleet_parallel_for over rows) and computes its histogram, mean and
 * extremes (fleet_parallel_reduce with a struct partial). Then does the same
 * with one plain thread and checks that both agree, pixel for pixel and bin
 * for bin.
 *
 * usage: imagestats [--size N] [--task-managers N] [--workers N] [--runs N]
 *                   [--metrics]
 */
#define _POSIX_C_SOURCE 200809L
#include <fleet.h>
#include <fleet/metrics.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct image {
    size_t w, h;
    uint8_t *in, *out;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A repeatable test picture: smooth gradients plus noise. */
static void generate(struct image *im)
{
    uint64_t x = 0x243f6a8885a308d3ull;
    for (size_t y = 0; y < im->h; y++)
        for (size_t c = 0; c < im->w; c++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            unsigned v = (unsigned)((c * 255 / im->w + y * 255 / im->h) / 2);
            im->in[y * im->w + c] = (uint8_t)((v + (x & 63)) & 255);
        }
}

/* Rows [b, e) of the 5x5 box blur (edges clamped). */
static void blur_rows(void *ctx, size_t b, size_t e)
{
    const struct image *im = ctx;
    size_t w = im->w, h = im->h;
    for (size_t y = b; y < e; y++)
        for (size_t c = 0; c < w; c++) {
            unsigned sum = 0;
            for (int dy = -2; dy <= 2; dy++) {
                size_t yy = (size_t)((long)y + dy < 0          ? 0
                                     : (long)y + dy >= (long)h ? (long)h - 1
                                                               : (long)y + dy);
                for (int dx = -2; dx <= 2; dx++) {
                    size_t cc =
                        (size_t)((long)c + dx < 0          ? 0
                                 : (long)c + dx >= (long)w ? (long)w - 1
                                                           : (long)c + dx);
                    sum += im->in[yy * w + cc];
                }
            }
            im->out[y * w + c] = (uint8_t)(sum / 25);
        }
}

struct stats {
    uint64_t hist[256];
    uint64_t sum;
    uint8_t min, max;
};

static void stats_init(void *ctx, void *p)
{
    (void)ctx;
    struct stats *s = p;
    memset(s, 0, sizeof(*s));
    s->min = 255;
}

/* Pixels [b, e) of the blurred image. */
static void stats_fold(void *ctx, size_t b, size_t e, void *p)
{
    const struct image *im = ctx;
    struct stats *s = p;
    for (size_t i = b; i < e; i++) {
        uint8_t v = im->out[i];
        s->hist[v]++;
        s->sum += v;
        if (v < s->min)
            s->min = v;
        if (v > s->max)
            s->max = v;
    }
}

static void stats_combine(void *ctx, void *into, const void *p)
{
    (void)ctx;
    struct stats *a = into;
    const struct stats *b = p;
    for (int i = 0; i < 256; i++)
        a->hist[i] += b->hist[i];
    a->sum += b->sum;
    if (b->min < a->min)
        a->min = b->min;
    if (b->max > a->max)
        a->max = b->max;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--size N] [--task-managers N] [--workers N] "
            "[--runs N] [--metrics]\n"
            "  --size N           image is N x N pixels (default 4096)\n"
            "  --task-managers N  worker pools (default 2)\n"
            "  --workers N        threads per pool (default: CPUs / pools)\n"
            "  --runs N           timed repetitions, best kept (default 3)\n"
            "  --metrics          print the runtime's metrics as JSON at exit\n"
            "  --help             this text\n",
            argv0);
    return 2;
}

static int parse_size(const char *s, size_t max, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0 || v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = 4096, runs = 3, tms = 2, workers = 0;
    bool metrics = false;
    for (int i = 1; i < argc; i++) {
        size_t *dst = NULL, max = 0;
        if (strcmp(argv[i], "--metrics") == 0) {
            metrics = true;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0) {
            usage(argv[0]);
            return 0;
        }
        if (strcmp(argv[i], "--size") == 0)
            dst = &n, max = 1 << 15;
        else if (strcmp(argv[i], "--task-managers") == 0)
            dst = &tms, max = 64;
        else if (strcmp(argv[i], "--workers") == 0)
            dst = &workers, max = 256;
        else if (strcmp(argv[i], "--runs") == 0)
            dst = &runs, max = 100;
        else
            return usage(argv[0]);
        if (i + 1 >= argc || parse_size(argv[++i], max, dst) != 0)
            return usage(argv[0]);
    }

    fleet_config_t cfg;
    fleet_config_init(&cfg);
    cfg.task_managers = (unsigned)tms;
    cfg.workers_per_tm = (unsigned)workers;
    fleet_runtime_t *rt;
    int err = fleet_runtime_create(&rt, &cfg);
    if (err != 0) {
        fprintf(stderr, "fleet_runtime_create: %s\n", fleet_strerror(err));
        return 1;
    }

    struct image im = {n, n, malloc(n * n), malloc(n * n)};
    uint8_t *serial_out = malloc(n * n);
    if (im.in == NULL || im.out == NULL || serial_out == NULL) {
        fprintf(stderr, "out of memory for a %zu x %zu image\n", n, n);
        return 1;
    }
    generate(&im);
    fleet_reducer_t red = {sizeof(struct stats), stats_init, stats_fold,
                           stats_combine};

    /* One plain thread first: the reference and the time to beat. */
    double t_serial = 1e30;
    struct stats want;
    for (size_t r = 0; r < runs; r++) {
        double t0 = now();
        blur_rows(&im, 0, n);
        stats_init(NULL, &want);
        stats_fold(&im, 0, n * n, &want);
        double t = now() - t0;
        if (t < t_serial)
            t_serial = t;
    }
    memcpy(serial_out, im.out, n * n);

    double t_fleet = 1e30;
    struct stats got;
    for (size_t r = 0; r < runs; r++) {
        memset(im.out, 0, n * n);
        double t0 = now();
        err = fleet_parallel_for(rt, blur_rows, &im, 0, n);
        if (err == 0)
            err = fleet_parallel_reduce(rt, &red, &im, 0, n * n, &got);
        double t = now() - t0;
        if (err != 0) {
            fprintf(stderr, "fleet: %s\n", fleet_strerror(err));
            return 1;
        }
        if (t < t_fleet)
            t_fleet = t;
    }

    bool same = memcmp(serial_out, im.out, n * n) == 0 &&
                memcmp(&got, &want, sizeof(got)) == 0;
    unsigned mode = 0;
    for (unsigned v = 1; v < 256; v++)
        if (got.hist[v] > got.hist[mode])
            mode = v;
    printf("imagestats: %zu x %zu image, 5x5 box blur + histogram\n", n, n);
    fleet_runtime_config(rt, &cfg); /* with the defaults resolved */
    printf("  fleet:  %u TaskManagers x %u workers, best of %zu: %.1f ms\n",
           cfg.task_managers, cfg.workers_per_tm, runs, t_fleet * 1e3);
    printf("  serial: one thread, best of %zu: %.1f ms  (speed-up %.2fx)\n",
           runs, t_serial * 1e3, t_serial / t_fleet);
    printf("  result: mean %.2f, min %u, max %u, most common %u (%llu px)\n",
           (double)got.sum / (double)(n * n), got.min, got.max, mode,
           (unsigned long long)got.hist[mode]);
    printf("  check:  blurred image and histogram %s the serial run\n",
           same ? "match" : "DIFFER FROM");

    free(im.in);
    free(im.out);
    free(serial_out);
    int merr = metrics ? fleet_metrics_write_json(rt, stdout) : 0;
    fleet_runtime_destroy(rt);
    if (merr != 0)
        fprintf(stderr, "imagestats: metrics: %s\n", fleet_strerror(merr));
    return same && merr == 0 ? 0 : 1;
}
