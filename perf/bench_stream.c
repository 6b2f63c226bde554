/*
 * bench_stream: the stream examples against their serial baselines, in the
 * same run (McSherry's COST question: does fleet on this machine beat one
 * plain thread, and by how much?). Goal: ratio >= 1.5.
 *
 *   wordcount:  wc_serial CORPUS            against  wordcount CORPUS,
 *               wordcount --checkpoint-ms 100 CORPUS (checkpointing on),
 *               wordcount --chaos 1 CORPUS   (random TaskManager failures)
 *   ysb:        ysb_serial --events N --campaigns 100 --seed 1  against
 *               ysb with the same arguments, then with --checkpoint-ms 100,
 *               then with --chaos 1
 *
 * Each command first runs once with its output in a temporary file: every
 * fleet configuration must print exactly what the baseline prints (and the
 * baseline must count as many words as this program finds in the corpus),
 * else it is reported as an error and not timed. Then the configurations
 * run interleaved (the order rotating each run), N runs each, output to
 * /dev/null, timed wall-clock from posix_spawn to the child's exit
 * (CLOCK_MONOTONIC). Throughput = words (or events) / median seconds;
 * ratio = serial median time / fleet median time.
 *
 * A binary or the corpus that does not exist is skipped with a message and
 * a JSON line saying so. One JSON object per line on stdout, a progress
 * line per step on stderr; exits 1 if a command failed or printed a wrong
 * result.
 *
 * Usage: bench_stream [--build-dir DIR] [--corpus FILE] [--events N]
 *                     [--runs N] [--quick] [--timeout S]
 *                     [--wc-serial PATH] [--wordcount PATH]
 *                     [--ysb-serial PATH] [--ysb PATH]
 * DIR defaults to the build directory this binary is in (DIR/perf/...);
 * binaries default to DIR/perf/wc_serial, DIR/examples/wordcount,
 * DIR/perf/ysb_serial, DIR/examples/ysb; FILE to DIR/corpus.txt (written by
 * perf/corpus.sh). N events: 10000000, or 5000000 with --quick.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MAX_RUNS 101
#define MAX_ARGS 16
#define GOAL 1.5
#define CAMPAIGNS "100"
#define SEED "1"

extern char **environ;

/* ---- options ------------------------------------------------------------ */

struct opts {
    char build_dir[PATH_MAX];
    char corpus[PATH_MAX];
    char wc_serial[PATH_MAX], wordcount[PATH_MAX];
    char ysb_serial[PATH_MAX], ysb[PATH_MAX];
    uint64_t events;
    int runs;
    bool quick;
    double timeout_s;
};

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--build-dir DIR] [--corpus FILE] [--events N] "
            "[--runs N] [--quick]\n"
            "       [--timeout S] [--wc-serial PATH] [--wordcount PATH] "
            "[--ysb-serial PATH] [--ysb PATH]\n",
            prog);
    exit(2);
}

static void set_path(char *dst, const char *src, const char *prog)
{
    if (strlen(src) >= PATH_MAX)
        usage(prog);
    strcpy(dst, src);
}

/* The build directory this binary was built in: two levels above it. */
static void default_build_dir(char *dir)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        strcpy(dir, ".");
        return;
    }
    self[n] = '\0';
    snprintf(dir, PATH_MAX, "%s", dirname(dirname(self)));
}

static bool parse_number(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

/* Fills *o from argv, defaults derived from the build directory; exits
 * with the usage on anything it does not know. */
static void parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    uint64_t events = 0, runs = 5, timeout = 120;
    default_build_dir(o->build_dir);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = v != NULL;
        if (strcmp(a, "--quick") == 0) {
            o->quick = true;
            continue;
        } else if (strcmp(a, "--build-dir") == 0 && ok)
            set_path(o->build_dir, v, argv[0]);
        else if (strcmp(a, "--corpus") == 0 && ok)
            set_path(o->corpus, v, argv[0]);
        else if (strcmp(a, "--wc-serial") == 0 && ok)
            set_path(o->wc_serial, v, argv[0]);
        else if (strcmp(a, "--wordcount") == 0 && ok)
            set_path(o->wordcount, v, argv[0]);
        else if (strcmp(a, "--ysb-serial") == 0 && ok)
            set_path(o->ysb_serial, v, argv[0]);
        else if (strcmp(a, "--ysb") == 0 && ok)
            set_path(o->ysb, v, argv[0]);
        else if (strcmp(a, "--events") == 0 && ok)
            ok = parse_number(v, UINT64_MAX, &events) && events > 0;
        else if (strcmp(a, "--runs") == 0 && ok)
            ok = parse_number(v, MAX_RUNS, &runs) && runs > 0;
        else if (strcmp(a, "--timeout") == 0 && ok)
            ok = parse_number(v, 86400, &timeout) && timeout > 0;
        else
            ok = false;
        if (!ok)
            usage(argv[0]);
        i++;
    }
    o->events = events ? events : o->quick ? 5000000 : 10000000;
    o->runs = (int)runs;
    o->timeout_s = (double)timeout;
    const char *d = o->build_dir;
    struct {
        char *path;
        const char *rel;
    } defaults[] = {{o->corpus, "corpus.txt"},
                    {o->wc_serial, "perf/wc_serial"},
                    {o->wordcount, "examples/wordcount"},
                    {o->ysb_serial, "perf/ysb_serial"},
                    {o->ysb, "examples/ysb"}};
    for (size_t k = 0; k < sizeof defaults / sizeof defaults[0]; k++)
        if (!defaults[k].path[0] &&
            snprintf(defaults[k].path, PATH_MAX, "%s/%s", d, defaults[k].rel) >=
                PATH_MAX)
            usage(argv[0]);
}

/* ---- JSON --------------------------------------------------------------- */

/* s as a JSON string. */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* ---- running a command -------------------------------------------------- */

struct cmd {
    char *argv[MAX_ARGS + 1]; /* NULL-terminated; argv[0] is the path */
    char line[4096];          /* the command as one would type it */
};

static void cmd_init(struct cmd *c, char *const *args)
{
    int n = 0, len = 0;
    c->line[0] = '\0';
    for (; args[n] && n < MAX_ARGS; n++) {
        c->argv[n] = args[n];
        len += snprintf(c->line + len, sizeof c->line - (size_t)len, "%s%s",
                        n ? " " : "", args[n]);
        if (len >= (int)sizeof c->line)
            len = (int)sizeof c->line - 1;
    }
    c->argv[n] = NULL;
}

struct outcome {
    double wall_s, cpu_s; /* cpu: the child's user + system time */
    long max_rss_kib;
    char error[256]; /* empty when the command ran and exited 0 */
};

static double tv_s(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec * 1e-6;
}

/* Waits for pid up to timeout_s (SIGCHLD is blocked in this process, so
 * sigtimedwait sees it); kills it after. Fills r; returns the status. */
static int wait_child(pid_t pid, double t0, double timeout_s, struct outcome *r)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int status = 0;
    struct rusage ru;
    for (;;) {
        pid_t got = wait4(pid, &status, WNOHANG, &ru);
        if (got == pid)
            break;
        double left = t0 + timeout_s - now();
        if (left <= 0) {
            kill(pid, SIGKILL);
            wait4(pid, &status, 0, &ru);
            snprintf(r->error, sizeof r->error, "timed out after %.0f s",
                     timeout_s);
            break;
        }
        struct timespec ts = {(time_t)left,
                              (long)((left - (double)(time_t)left) * 1e9)};
        sigtimedwait(&chld, NULL, &ts);
    }
    r->wall_s = now() - t0;
    r->cpu_s = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    r->max_rss_kib = ru.ru_maxrss;
    return status;
}

/* Runs c with stdin from /dev/null, stdout to out_fd, stderr inherited;
 * r->error says what went wrong, if anything. */
static void run_cmd(const struct cmd *c, int out_fd, double timeout_s,
                    struct outcome *r)
{
    memset(r, 0, sizeof *r);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none;
    sigemptyset(&none);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawnattr_init(&at);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    double t0 = now();
    int err = posix_spawn(&pid, c->argv[0], &fa, &at, c->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (err) {
        snprintf(r->error, sizeof r->error, "cannot run: %s", strerror(err));
        return;
    }
    int st = wait_child(pid, t0, timeout_s, r);
    if (r->error[0])
        return;
    if (WIFSIGNALED(st))
        snprintf(r->error, sizeof r->error, "killed by signal %d (%s)",
                 WTERMSIG(st), strsignal(WTERMSIG(st)));
    else if (WEXITSTATUS(st) != 0)
        snprintf(r->error, sizeof r->error, "exited with status %d",
                 WEXITSTATUS(st));
}

/* ---- files -------------------------------------------------------------- */

static bool executable(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 && S_ISREG(s.st_mode) && access(path, X_OK) == 0;
}

/* The last part of a path. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* A new empty temporary file (unlinked at once: only the fd is used). */
static int temp_fd(void)
{
    char name[] = "/tmp/bench_stream.XXXXXX";
    int fd = mkstemp(name);
    if (fd < 0) {
        perror("bench_stream: mkstemp");
        exit(1);
    }
    unlink(name);
    return fd;
}

/* Line l (1-based) of f, at most n - 1 bytes, without its newline. */
static void nth_line(FILE *f, uint64_t l, char *buf, size_t n)
{
    rewind(f);
    buf[0] = '\0';
    for (uint64_t k = 1; k <= l; k++)
        if (!fgets(buf, (int)n, f)) {
            snprintf(buf, n, "(end of output)");
            return;
        }
    buf[strcspn(buf, "\n")] = '\0';
}

/* Whether the files behind fds a and b hold the same bytes; if not, why
 * (the first line where they differ). */
static bool same_output(int a, int b, const char *base, char *why, size_t n)
{
    FILE *fa = fdopen(dup(a), "r"), *fb = fdopen(dup(b), "r");
    if (!fa || !fb) {
        perror("bench_stream: fdopen");
        exit(1);
    }
    rewind(fa);
    rewind(fb);
    uint64_t line = 1;
    int ca, cb;
    do {
        ca = getc(fa);
        cb = getc(fb);
        line += ca == '\n';
    } while (ca == cb && ca != EOF);
    bool same = ca == cb;
    if (!same) {
        line -= ca == '\n';
        char la[80], lb[80];
        nth_line(fa, line, la, sizeof la);
        nth_line(fb, line, lb, sizeof lb);
        snprintf(why, n,
                 "output differs from %s's at line %" PRIu64
                 ": \"%s\" instead of \"%s\"",
                 base, line, lb, la);
    }
    fclose(fa);
    fclose(fb);
    return same;
}

/* The sum of the counts (the text after each line's last space) in fd. */
static uint64_t sum_counts(int fd)
{
    FILE *f = fdopen(dup(fd), "r");
    if (!f) {
        perror("bench_stream: fdopen");
        exit(1);
    }
    rewind(f);
    uint64_t sum = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        const char *sp = strrchr(line, ' ');
        sum += sp ? strtoull(sp + 1, NULL, 10) : 0;
    }
    free(line);
    fclose(f);
    return sum;
}

/* Words in the file as wc_serial defines them (maximal runs of
 * [A-Za-z0-9_]); false if it cannot be read. */
static bool count_words(const char *path, uint64_t *words, uint64_t *bytes)
{
    bool in_word[256] = {false};
    for (int ch = 0; ch < 256; ch++)
        in_word[ch] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_';
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    static unsigned char buf[1 << 16];
    bool prev = false;
    ssize_t n;
    *words = *bytes = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            bool w = in_word[buf[i]];
            *words += w && !prev;
            prev = w;
        }
        *bytes += (uint64_t)n;
    }
    close(fd);
    return n == 0;
}

/* ---- one example: its configurations ------------------------------------ */

enum { SERIAL, FLEET, CHECKPOINT, CHAOS, NCONFIGS };

static const char *const config_names[NCONFIGS] = {"serial", "fleet",
                                                   "checkpoint", "chaos"};
static const char *const config_labels[NCONFIGS] = {
    "", "", ", checkpoints every 100 ms",
    ", chaos (random TaskManager failures)"};

struct config {
    struct cmd cmd;
    char skipped[PATH_MAX + 64]; /* why it is not run; empty if it is */
    char error[512];             /* why it failed; empty if it did not */
    double wall[MAX_RUNS], cpu[MAX_RUNS];
    long max_rss_kib;
};

struct example {
    const char *name, *unit; /* "wordcount", "words" */
    const char *input;       /* a file the commands need, or NULL */
    uint64_t items;          /* words or events */
    bool check_counts;       /* the baseline's counts must sum to items */
    struct config cfg[NCONFIGS];
};

static bool live(const struct config *c)
{
    return !c->skipped[0] && !c->error[0];
}

/* Marks configuration k skipped, saying why. */
static void skip(struct example *ex, int k, const char *why)
{
    snprintf(ex->cfg[k].skipped, sizeof ex->cfg[k].skipped, "%s", why);
    fprintf(stderr, "[stream] %s %s: skipped (%s)\n", ex->name, config_names[k],
            why);
}

/* Skips whatever cannot run: everything without its input or baseline, a
 * fleet configuration whose binary is not built. */
static void check_runnable(struct example *ex)
{
    char why[PATH_MAX + 64];
    const char *base = ex->cfg[SERIAL].cmd.argv[0];
    if (ex->input && access(ex->input, R_OK) != 0)
        snprintf(why, sizeof why, "input not found: %s", ex->input);
    else if (!executable(base))
        snprintf(why, sizeof why, "baseline not built: %s", base);
    else
        why[0] = '\0';
    for (int k = 0; k < NCONFIGS; k++) {
        const char *bin = ex->cfg[k].cmd.argv[0];
        if (why[0])
            skip(ex, k, why);
        else if (!executable(bin)) {
            char not_built[PATH_MAX + 64];
            snprintf(not_built, sizeof not_built, "not built: %s", bin);
            skip(ex, k, not_built);
        }
    }
}

/* Whether configuration k printed the right thing into fd: the
 * baseline's bytes (in base_fd), or for the baseline itself, counts that
 * add up to the words of the input; c->error says why not. */
static void check_output(struct example *ex, int k, int base_fd, int fd)
{
    struct config *c = &ex->cfg[k];
    if (k != SERIAL) {
        same_output(base_fd, fd, base_name(ex->cfg[SERIAL].cmd.argv[0]),
                    c->error, sizeof c->error);
        return;
    }
    uint64_t sum = ex->check_counts ? sum_counts(fd) : ex->items;
    if (sum != ex->items)
        snprintf(c->error, sizeof c->error,
                 "its counts add up to %" PRIu64 ", the input has %" PRIu64
                 " words",
                 sum, ex->items);
}

/* One untimed run of each configuration, its output checked; the
 * baseline's first. */
static void check_outputs(struct example *ex, double timeout_s)
{
    if (!live(&ex->cfg[SERIAL]))
        return;
    int base_fd = temp_fd();
    for (int k = 0; k < NCONFIGS; k++) {
        struct config *c = &ex->cfg[k];
        if (!live(c))
            continue;
        int fd = k == SERIAL ? base_fd : temp_fd();
        struct outcome r;
        fprintf(stderr, "[stream] %s %s: checking %s\n", ex->name,
                config_names[k], c->cmd.line);
        run_cmd(&c->cmd, fd, timeout_s, &r);
        if (r.error[0])
            snprintf(c->error, sizeof c->error, "%s", r.error);
        else
            check_output(ex, k, base_fd, fd);
        if (fd != base_fd)
            close(fd);
        fprintf(stderr, "[stream] %s %s: %s%s\n", ex->name, config_names[k],
                c->error[0] ? "ERROR: " : "output ok",
                c->error[0] ? c->error : "");
        if (k == SERIAL && c->error[0])
            break; /* no baseline: nothing else is checked or timed */
    }
    close(base_fd);
}

/* The timed runs, interleaved, the order rotating each run. */
static void time_runs(struct example *ex, int runs, double timeout_s)
{
    if (!live(&ex->cfg[SERIAL]))
        return;
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd < 0) {
        perror("bench_stream: /dev/null");
        exit(1);
    }
    for (int run = 0; run < runs; run++) {
        char progress[512];
        int len = snprintf(progress, sizeof progress,
                           "[stream] %s run %d/%d:", ex->name, run + 1, runs);
        for (int i = 0; i < NCONFIGS; i++) {
            int k = (i + run) % NCONFIGS;
            struct config *c = &ex->cfg[k];
            if (!live(c))
                continue;
            struct outcome r;
            pause_ms(20);
            run_cmd(&c->cmd, null_fd, timeout_s, &r);
            if (r.error[0])
                snprintf(c->error, sizeof c->error, "run %d: %s", run + 1,
                         r.error);
            c->wall[run] = r.wall_s;
            c->cpu[run] = r.cpu_s;
            if (r.max_rss_kib > c->max_rss_kib)
                c->max_rss_kib = r.max_rss_kib;
            if (len < (int)sizeof progress)
                len += snprintf(progress + len, sizeof progress - (size_t)len,
                                " %s %.3f s", config_names[k], r.wall_s);
        }
        fprintf(stderr, "%s\n", progress);
    }
    close(null_fd);
}

/* ---- results ------------------------------------------------------------ */

static void print_head(const struct example *ex, int k)
{
    const struct config *c = &ex->cfg[k];
    printf("{\"bench\":\"stream\",\"example\":\"%s\",\"config\":\"%s\","
           "\"impl\":\"%s\",\"label\":\"%s%s\",\"command\":",
           ex->name, config_names[k], k == SERIAL ? "serial" : "fleet",
           ex->name, config_labels[k]);
    json_str(c->cmd.line);
}

/* The rest of a timed configuration's line; returns its median. serial_s:
 * the baseline's median, 0 for the baseline itself or when it failed. */
static double print_timed(const struct example *ex, const struct config *c,
                          int runs, double serial_s)
{
    double wall[MAX_RUNS], cpu[MAX_RUNS];
    memcpy(wall, c->wall, sizeof wall);
    memcpy(cpu, c->cpu, sizeof cpu);
    double med = median(wall, runs); /* sorts wall */
    printf(",\"unit\":\"%s\",\"items\":%" PRIu64 ",\"runs\":%d,"
           "\"median_s\":%.6f,\"min_s\":%.6f,\"mitems_per_s\":%.3f,"
           "\"cpu_s\":%.6f,\"max_rss_kib\":%ld",
           ex->unit, ex->items, runs, med, wall[0],
           (double)ex->items / med / 1e6, median(cpu, runs), c->max_rss_kib);
    if (serial_s > 0)
        printf(",\"serial_median_s\":%.6f,\"serial_mitems_per_s\":%.3f,"
               "\"ratio\":%.3f,\"goal\":%.1f,\"goal_met\":%s",
               serial_s, (double)ex->items / serial_s / 1e6, serial_s / med,
               GOAL, serial_s / med >= GOAL ? "true" : "false");
    printf(",\"wall_s\":[");
    for (int r = 0; r < runs; r++)
        printf("%s%.6f", r ? "," : "", c->wall[r]);
    printf("]");
    return med;
}

/* One JSON line per configuration. */
static void print_results(const struct example *ex, int runs)
{
    double serial_s = 0;
    for (int k = 0; k < NCONFIGS; k++) {
        const struct config *c = &ex->cfg[k];
        print_head(ex, k);
        if (live(c)) {
            double med = print_timed(ex, c, runs, serial_s);
            if (k == SERIAL)
                serial_s = med;
        } else {
            printf(",\"%s\":", c->skipped[0] ? "skipped" : "error");
            json_str(c->skipped[0] ? c->skipped : c->error);
        }
        printf("}\n");
    }
    fflush(stdout);
}

/* Checks, times and prints one example; false if any command failed. */
static bool run_example(struct example *ex, const struct opts *o)
{
    fprintf(stderr, "[stream] %s: %" PRIu64 " %s, %d runs\n", ex->name,
            ex->items, ex->unit, o->runs);
    check_runnable(ex);
    check_outputs(ex, o->timeout_s);
    time_runs(ex, o->runs, o->timeout_s);
    print_results(ex, o->runs);
    for (int k = 0; k < NCONFIGS; k++)
        if (ex->cfg[k].error[0])
            return false;
    return true;
}

/* ---- the two examples --------------------------------------------------- */

/* cmd of configuration k: bin, the variant's options, then args. */
static void set_cmd(struct config *cfg, int k, char *bin, char **args)
{
    char *argv[MAX_ARGS + 1] = {bin};
    int n = 1;
    if (k == CHECKPOINT) {
        argv[n++] = "--checkpoint-ms";
        argv[n++] = "100";
    } else if (k == CHAOS) {
        argv[n++] = "--chaos";
        argv[n++] = "1";
    }
    while (*args && n < MAX_ARGS)
        argv[n++] = *args++;
    argv[n] = NULL;
    cmd_init(&cfg[k].cmd, argv);
}

static bool wordcount(struct opts *o, uint64_t words)
{
    static struct example ex;
    ex = (struct example){.name = "wordcount",
                          .unit = "words",
                          .input = o->corpus,
                          .items = words,
                          .check_counts = true};
    char *args[] = {o->corpus, NULL};
    for (int k = 0; k < NCONFIGS; k++)
        set_cmd(ex.cfg, k, k == SERIAL ? o->wc_serial : o->wordcount, args);
    return run_example(&ex, o);
}

static bool ysb(struct opts *o)
{
    static struct example ex;
    static char events[24];
    snprintf(events, sizeof events, "%" PRIu64, o->events);
    ex = (struct example){.name = "ysb", .unit = "events", .items = o->events};
    char *args[] = {"--events", events, "--campaigns", CAMPAIGNS,
                    "--seed",   SEED,   NULL};
    for (int k = 0; k < NCONFIGS; k++)
        set_cmd(ex.cfg, k, k == SERIAL ? o->ysb_serial : o->ysb, args);
    return run_example(&ex, o);
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    /* SIGCHLD stays pending for sigtimedwait in wait_child. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    uint64_t words = 0, bytes = 0;
    bool have_corpus = count_words(o.corpus, &words, &bytes);
    printf("{\"bench\":\"stream_config\",\"corpus\":");
    json_str(o.corpus);
    printf(",\"corpus_bytes\":%" PRIu64 ",\"words\":%" PRIu64
           ",\"events\":%" PRIu64 ",\"campaigns\":%s,\"seed\":%s,"
           "\"runs\":%d,\"cpus\":%ld,\"goal_ratio\":%.1f}\n",
           bytes, words, o.events, CAMPAIGNS, SEED, o.runs,
           sysconf(_SC_NPROCESSORS_ONLN), GOAL);
    fflush(stdout);
    if (!have_corpus)
        fprintf(stderr, "[stream] corpus %s: %s\n", o.corpus, strerror(errno));

    bool ok = wordcount(&o, words);
    ok = ysb(&o) && ok;
    return ok ? 0 : 1;
}
