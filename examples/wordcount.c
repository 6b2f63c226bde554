/*
 * wordcount: Flink's WordCount on fleet's stream layer.
 *
 * Reads the files (standard input when none) as one byte stream, splits it
 * into words - maximal runs of ASCII [A-Za-z0-9_], lower-cased; every other
 * byte separates words - counts each word, and prints one line per distinct
 * word, "word count", sorted by word in byte order: the same bytes as
 *   LC_ALL=C tr -cs 'A-Za-z0-9_' '\n' | tr A-Z a-z | grep -v '^$' |
 *   LC_ALL=C sort | uniq -c | awk '{print $2" "$1}'
 * The pipeline: lines -> flat_map(tokenize) -> key_by(word) -> reduce(sum)
 * -> sink; with --chaos, TaskManagers fail during the run and the output
 * stays the same.
 *
 * usage: wordcount [--top N] [options] [FILE...]   (see --help)
 */
#define _POSIX_C_SOURCE 200809L
#include "stream_common.h"
#include "word_sort.h"

/* Emits the count (8 bytes) followed by the word. */
static void count_result(void *ctx, const void *key, size_t len,
                         const fleet_window_span_t *span, const void *acc,
                         fleet_emitter_t *out)
{
    (void)ctx;
    (void)span;
    unsigned char small[256], *rec = small;
    if (len + 8 > sizeof(small) && (rec = malloc(len + 8)) == NULL)
        abort();
    memcpy(rec, acc, 8);
    memcpy(rec + 8, key, len);
    fleet_emit(out, rec, len + 8, FLEET_TS_NONE);
    if (rec != small)
        free(rec);
}

/* The sink: every (count, word) record, kept for sorting. */
struct words {
    unsigned char *bytes;
    size_t len, cap;
    size_t *at; /* offsets of records: count, length, word */
    size_t n, ncap;
    int err;
};

static void collect(void *ctx, const fleet_record_t *r)
{
    struct words *w = ctx;
    size_t need = r->len + sizeof(size_t);
    if (w->len + need > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1 << 20;
        while (cap < w->len + need)
            cap *= 2;
        unsigned char *b = realloc(w->bytes, cap);
        if (b == NULL) {
            w->err = -ENOMEM;
            return;
        }
        w->bytes = b;
        w->cap = cap;
    }
    if (w->n == w->ncap) {
        size_t cap = w->ncap ? w->ncap * 2 : 4096;
        size_t *a = realloc(w->at, cap * sizeof(*a));
        if (a == NULL) {
            w->err = -ENOMEM;
            return;
        }
        w->at = a;
        w->ncap = cap;
    }
    size_t wl = r->len - 8;
    w->at[w->n++] = w->len;
    memcpy(w->bytes + w->len, r->data, 8);
    memcpy(w->bytes + w->len + 8, &wl, sizeof(wl));
    memcpy(w->bytes + w->len + 8 + sizeof(wl), (const char *)r->data + 8, wl);
    w->len += need;
}

static int by_count(const void *a, const void *b)
{
    const struct word_rec *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return word_rec_cmp(a, b);
}

/* The collected words as records to sort. NULL when out of memory. */
static struct word_rec *records(const struct words *w)
{
    struct word_rec *v = malloc((w->n ? w->n : 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < w->n; i++) {
        const unsigned char *r = w->bytes + w->at[i];
        memcpy(&v[i].count, r, 8);
        memcpy(&v[i].len, r + 8, sizeof(size_t));
        v[i].key = r + 8 + sizeof(size_t);
        v[i].prefix = word_prefix(v[i].key, v[i].len);
    }
    return v;
}

/* Prints "word count" lines through one buffer. */
static void print_words(const struct word_rec *e, size_t n)
{
    static char buf[1 << 16];
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (at + e[i].len + 24 > sizeof(buf) || e[i].len > sizeof(buf) / 2) {
            fwrite(buf, 1, at, stdout);
            at = 0;
            if (e[i].len > sizeof(buf) / 2) {
                fwrite(e[i].key, 1, e[i].len, stdout);
                printf(" %llu\n", (unsigned long long)e[i].count);
                continue;
            }
        }
        memcpy(buf + at, e[i].key, e[i].len);
        at += e[i].len;
        buf[at++] = ' ';
        char digits[24];
        size_t d = 0;
        uint64_t c = e[i].count;
        do {
            digits[d++] = (char)('0' + c % 10);
            c /= 10;
        } while (c != 0);
        while (d > 0)
            buf[at++] = digits[--d];
        buf[at++] = '\n';
    }
    fwrite(buf, 1, at, stdout);
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--top N] [options] [FILE...]\n"
            "Counts the words of the files (standard input when none, or "
            "-) and prints\n\"word count\" lines sorted by word.\n"
            "  --top N            only the N (>= 1) most frequent words, by "
            "count\n"
            "  --quiet            no summary line on stderr\n" EX_COMMON_USAGE,
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    ex_opts_t o = {0};
    unsigned long long top = 0;
    bool quiet = false;
    const char **files = calloc((size_t)argc, sizeof(*files));
    size_t nfiles = 0;
    if (files == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        int r = ex_option(&o, argc, argv, &i);
        if (r < 0) {
            free(files);
            return usage(argv[0]);
        }
        if (r > 0)
            continue;
        if (strcmp(argv[i], "--top") == 0) {
            if (i + 1 >= argc || ex_number(argv[++i], SIZE_MAX, &top) != 0 ||
                top == 0) {
                free(files);
                return usage(argv[0]);
            }
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(argv[i], "--help") == 0) {
            free(files);
            usage(argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--") == 0) {
            while (++i < argc)
                files[nfiles++] = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            free(files);
            return usage(argv[0]);
        } else {
            files[nfiles++] = argv[i];
        }
    }

    if (ex_files("wordcount", files, &nfiles) != 0) {
        free(files);
        return 2;
    }

    fleet_runtime_t *rt;
    int err = ex_runtime(&o, &rt);
    if (err != 0) {
        fprintf(stderr, "wordcount: runtime: %s\n", fleet_strerror(err));
        free(files);
        return 1;
    }
    static const fleet_aggregate_t sum = {8, ex_count_init, ex_count_add,
                                          ex_count_merge, count_result};
    struct words words = {0};
    fleet_stream_config_t cfg;
    ex_stream_config(&o, true, "wordcount", quiet, &cfg);
    fleet_stream_t *s = NULL;
    double t0 = ex_now();
    err = fleet_stream_create(&s, rt, &cfg);
    if (err == 0)
        err = fleet_stream_source_files(s, files, nfiles);
    if (err == 0)
        err = fleet_stream_flat_map(s, ex_tokenize, NULL);
    if (err == 0)
        err = fleet_stream_key_by(s, NULL, NULL);
    if (err == 0)
        err = fleet_stream_reduce(s, &sum, NULL);
    err = ex_sink_run(err, s, collect, &words, &words.err);
    double secs = ex_now() - t0;
    if (err != 0) {
        fprintf(stderr, "wordcount: %s\n", fleet_strerror(err));
    } else {
        struct word_rec *e = records(&words);
        uint64_t total = 0;
        if (e == NULL) {
            err = -ENOMEM;
        } else if (top) {
            qsort(e, words.n, sizeof(*e), by_count);
        } else if (word_sort(e, words.n) != 0) {
            err = -ENOMEM;
        }
        if (err == 0) {
            for (size_t i = 0; i < words.n; i++)
                total += e[i].count;
            print_words(e, top && top < words.n ? (size_t)top : words.n);
        }
        free(e);
        if (err != 0)
            fprintf(stderr, "wordcount: %s\n", fleet_strerror(err));
        if (ex_flush_stdout("wordcount") != 0)
            err = -EIO;
        if (!quiet) {
            fprintf(stderr,
                    "wordcount: %llu words, %zu distinct in %.3f s "
                    "(%.1f M words/s)\n",
                    (unsigned long long)total, words.n, secs,
                    secs > 0 ? (double)total / secs / 1e6 : 0.0);
        }
        ex_report("wordcount", rt, s, secs, &o, quiet);
    }
    fleet_stream_destroy(s);
    fleet_runtime_destroy(rt);
    free(words.bytes);
    free(words.at);
    free(files);
    return err != 0;
}
