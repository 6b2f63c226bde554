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

static const unsigned char *sorted_base;

static void rec_at(size_t off, uint64_t *count, size_t *len,
                   const unsigned char **word)
{
    memcpy(count, sorted_base + off, 8);
    memcpy(len, sorted_base + off + 8, sizeof(*len));
    *word = sorted_base + off + 8 + sizeof(*len);
}

static int by_word(const void *a, const void *b)
{
    uint64_t ca, cb;
    size_t la, lb;
    const unsigned char *wa, *wb;
    rec_at(*(const size_t *)a, &ca, &la, &wa);
    rec_at(*(const size_t *)b, &cb, &lb, &wb);
    int c = memcmp(wa, wb, la < lb ? la : lb);
    return c != 0 ? c : (la > lb) - (la < lb);
}

static int by_count(const void *a, const void *b)
{
    uint64_t ca, cb;
    size_t la, lb;
    const unsigned char *wa, *wb;
    rec_at(*(const size_t *)a, &ca, &la, &wa);
    rec_at(*(const size_t *)b, &cb, &lb, &wb);
    if (ca != cb)
        return ca < cb ? 1 : -1;
    return by_word(a, b);
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--top N] [options] [FILE...]\n"
            "Counts the words of the files (standard input when none) and "
            "prints\n\"word count\" lines sorted by word.\n"
            "  --top N            only the N most frequent words, by count\n"
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
            if (i + 1 >= argc || ex_number(argv[++i], SIZE_MAX, &top) != 0) {
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
    if (err == 0)
        err = fleet_stream_sink(s, collect, &words);
    if (err == 0)
        err = fleet_stream_run(s);
    if (err == 0)
        err = words.err;
    double secs = ex_now() - t0;
    if (err != 0) {
        fprintf(stderr, "wordcount: %s\n", fleet_strerror(err));
    } else {
        sorted_base = words.bytes;
        if (words.n > 0)
            qsort(words.at, words.n, sizeof(*words.at),
                  top ? by_count : by_word);
        uint64_t total = 0;
        size_t shown = top && top < words.n ? (size_t)top : words.n;
        for (size_t i = 0; i < words.n; i++) {
            uint64_t c;
            size_t l;
            const unsigned char *w;
            rec_at(words.at[i], &c, &l, &w);
            total += c;
            if (i < shown) {
                fwrite(w, 1, l, stdout);
                printf(" %llu\n", (unsigned long long)c);
            }
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "wordcount: writing the output failed\n");
            err = -EIO;
        }
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
