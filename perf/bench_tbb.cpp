/*
 * bench_tbb: the oneTBB peers of bench_metg and bench_loops, on the same
 * work (busy.h, loops_work.h) and the same number of threads (limited with
 * tbb::global_control::max_allowed_parallelism).
 *
 * METG, as bench_metg (same grains, tasks, calibration and METG rule):
 *   tbb_task_group   - one task_group::run per task, then wait;
 *   tbb_parallel_for - parallel_for over blocked_range(0, T, 1) with
 *                      simple_partitioner: one item per task.
 * The three loops of bench_loops, with the default auto_partitioner
 * (impl tbb_auto) and a plain one-thread loop (impl serial):
 *   balanced   - parallel_reduce over 10^8 cheap items;
 *   unbalanced - parallel_reduce over 24 000 items, item i costing i;
 *   small_jobs - 20 000 back-to-back parallel_for of 512 items.
 * Runs are interleaved with a pause between implementations; medians.
 *
 * Output: one JSON object per line, in the shapes of bench_metg and
 * bench_loops. Usage: bench_tbb [--runs N] [--quick] [--iters-per-ns X]
 */
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>
#include <tbb/partitioner.h>
#include <tbb/task_group.h>
#include <tbb/version.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "busy.h"
#include "loops_work.h"

namespace
{

void pause_ms(int ms)
{
    /* Lets spinning worker threads go to sleep. */
    struct timespec t = {0, (long)ms * 1000000L};
    nanosleep(&t, nullptr);
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

using range_t = tbb::blocked_range<size_t>;

/* --- METG ---------------------------------------------------------------- */

struct metg {
    uint64_t iters;      /* busy_work rounds per task */
    unsigned char *seen; /* validation only: runs per task; else nullptr */
};

inline void task(const metg *m, size_t i)
{
    busy_work(m->iters, i);
    if (m->seen != nullptr)
        m->seen[i]++;
}

enum metg_impl { TBB_TASK_GROUP, TBB_PARALLEL_FOR, NMETG };
const char *const metg_names[NMETG] = {"tbb_task_group", "tbb_parallel_for"};

double run_metg(int im, const metg *m, size_t n)
{
    double t0 = busy_now();
    if (im == TBB_TASK_GROUP) {
        tbb::task_group tg;
        for (size_t i = 0; i < n; i++)
            tg.run([m, i] { task(m, i); });
        tg.wait();
    } else {
        tbb::parallel_for(
            range_t(0, n, 1),
            [m](const range_t &r) {
                for (size_t i = r.begin(); i != r.end(); i++)
                    task(m, i);
            },
            tbb::simple_partitioner());
    }
    return busy_now() - t0;
}

int bench_metg(int threads, int runs, bool quick, double iters_per_ns)
{
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                              (size_t)threads);
    const double ideal_ms = quick ? 10 : 50;
    if (iters_per_ns <= 0)
        iters_per_ns = busy_calibrate();
    std::printf("{\"bench\":\"metg_config\",\"threads\":%d,"
                "\"iters_per_ns\":%.4f,\"ideal_ms\":%.0f,\"runs\":%d,"
                "\"tbb\":\"%s\"}\n",
                threads, iters_per_ns, ideal_ms, runs, TBB_VERSION_STRING);
    std::fflush(stdout);

    /* Validation, untimed: every implementation runs every task once. */
    {
        const size_t n = 4096;
        std::vector<unsigned char> seen(n);
        metg m = {busy_iters(iters_per_ns, busy_grains_ns[0]), seen.data()};
        for (int im = 0; im < NMETG; im++) {
            std::fill(seen.begin(), seen.end(), 0);
            pause_ms(150);
            run_metg(im, &m, n);
            for (size_t i = 0; i < n; i++)
                if (seen[i] != 1) {
                    std::fprintf(stderr, "%s: task %zu ran %d times\n",
                                 metg_names[im], i, seen[i]);
                    return 1;
                }
        }
    }

    std::vector<double> t[NMETG][BUSY_NGRAINS];
    for (int r = 0; r < runs; r++) {
        for (int im = 0; im < NMETG; im++) {
            pause_ms(150);
            for (size_t k = 0; k < BUSY_NGRAINS; k++) {
                double g = busy_grains_ns[k];
                metg m = {busy_iters(iters_per_ns, g), nullptr};
                t[im][k].push_back(
                    run_metg(im, &m, busy_tasks(ideal_ms, threads, g)));
            }
        }
        std::fprintf(stderr, "[metg] run %d/%d\n", r + 1, runs);
    }

    for (int im = 0; im < NMETG; im++) {
        double eff[BUSY_NGRAINS];
        for (size_t k = 0; k < BUSY_NGRAINS; k++) {
            double g = busy_grains_ns[k];
            size_t n = busy_tasks(ideal_ms, threads, g);
            double med = median(t[im][k]);
            eff[k] = (double)n * g * 1e-9 / threads / med;
            std::printf("{\"bench\":\"metg\",\"impl\":\"%s\",\"grain_ns\":%.0f,"
                        "\"tasks\":%zu,\"median_s\":%.6f,\"efficiency\":%.3f}"
                        "\n",
                        metg_names[im], g, n, med, eff[k]);
        }
        busy_metg_how how;
        double v = busy_metg(eff, &how);
        if (how == BUSY_METG_ABOVE)
            std::printf("{\"bench\":\"metg_summary\",\"impl\":\"%s\","
                        "\"metg_ns\":null,\"how\":\"%s\"}\n",
                        metg_names[im], busy_metg_how_name(how));
        else
            std::printf("{\"bench\":\"metg_summary\",\"impl\":\"%s\","
                        "\"metg_ns\":%.0f,\"how\":\"%s\"}\n",
                        metg_names[im], v, busy_metg_how_name(how));
        std::fflush(stdout);
    }
    return 0;
}

/* --- the loops of bench_loops ------------------------------------------- */

enum loop_impl { TBB_AUTO, SERIAL, NLOOP };
const char *const loop_names[NLOOP] = {"tbb_auto", "serial"};

uint64_t reduce(int im, void (*fold)(void *, size_t, size_t, void *), size_t n)
{
    uint64_t s = 0;
    if (im == SERIAL) {
        fold(nullptr, 0, n, &s);
        return s;
    }
    return tbb::parallel_reduce(
        range_t(0, n), uint64_t(0),
        [fold](const range_t &r, uint64_t acc) {
            fold(nullptr, r.begin(), r.end(), &acc);
            return acc;
        },
        std::plus<uint64_t>(), tbb::auto_partitioner());
}

uint64_t run_small(int im, size_t n, int reps, uint32_t *a)
{
    for (int r = 0; r < reps; r++) {
        if (im == SERIAL)
            small_body(a, 0, n);
        else
            tbb::parallel_for(
                range_t(0, n),
                [a](const range_t &rg) { small_body(a, rg.begin(), rg.end()); },
                tbb::auto_partitioner());
    }
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i];
    return s;
}

int bench_loops(int threads, int runs, bool quick)
{
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                              (size_t)threads);
    struct loop {
        const char *name;
        size_t n;
        int reps;
    } loops[] = {
        {"balanced", quick ? LOOPS_BALANCED_N_QUICK : LOOPS_BALANCED_N, 1},
        {"unbalanced", quick ? LOOPS_UNBALANCED_N_QUICK : LOOPS_UNBALANCED_N,
         1},
        {"small_jobs", LOOPS_SMALL_N,
         quick ? LOOPS_SMALL_REPS_QUICK : LOOPS_SMALL_REPS},
    };
    std::vector<uint32_t> a(LOOPS_SMALL_N);
    std::printf("{\"bench\":\"config\",\"threads\":%d,\"runs\":%d,"
                "\"tbb\":\"%s\"}\n",
                threads, runs, TBB_VERSION_STRING);
    for (size_t k = 0; k < sizeof(loops) / sizeof(loops[0]); k++) {
        const loop &b = loops[k];
        std::vector<double> t[NLOOP];
        uint64_t check[NLOOP] = {0, 0};
        for (int r = 0; r < runs; r++) {
            for (int im = 0; im < NLOOP; im++) {
                if (k == 2)
                    std::fill(a.begin(), a.end(), 0);
                pause_ms(150);
                double t0 = busy_now();
                uint64_t s = k == 0   ? reduce(im, cheap_fold, b.n)
                             : k == 1 ? reduce(im, costly_fold, b.n)
                                      : run_small(im, b.n, b.reps, a.data());
                t[im].push_back(busy_now() - t0);
                if (r == 0)
                    check[im] = s;
                else if (check[im] != s)
                    std::fprintf(stderr, "%s/%s: result changed\n", b.name,
                                 loop_names[im]);
            }
            std::fprintf(stderr, "[%s] run %d/%d\n", b.name, r + 1, runs);
        }
        double med[NLOOP];
        for (int im = 0; im < NLOOP; im++) {
            med[im] = median(t[im]);
            if (check[im] != check[SERIAL])
                std::fprintf(stderr, "%s/%s: wrong result\n", b.name,
                             loop_names[im]);
            std::printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"items\":%zu,"
                        "\"loops\":%d,\"median_s\":%.6f,\"per_loop_us\":%.3f}"
                        "\n",
                        b.name, loop_names[im], b.n, b.reps, med[im],
                        med[im] / b.reps * 1e6);
        }
        std::printf("{\"bench\":\"%s\",\"ratio_tbb_over_serial\":%.3f}\n",
                    b.name, med[TBB_AUTO] / med[SERIAL]);
        std::fflush(stdout);
    }
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    int runs = 5;
    bool quick = false;
    double iters_per_ns = 0;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = std::atoi(argv[++i]);
        else if (std::strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (std::strcmp(argv[i], "--iters-per-ns") == 0 && i + 1 < argc)
            iters_per_ns = std::atof(argv[++i]);
        else {
            std::fprintf(stderr,
                         "usage: %s [--runs N] [--quick] [--iters-per-ns X]\n",
                         argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 101)
        runs = 5;
    /* METG: every usable CPU, as bench_metg. Loops: the thread count of
     * bench_loops, fleet's default of 2 TaskManagers x (CPUs / 2). */
    const int cpus = busy_cpus();
    const int loop_threads = 2 * std::max(1, cpus / 2);
    if (bench_metg(cpus, runs, quick, iters_per_ns) != 0)
        return 1;
    return bench_loops(loop_threads, runs, quick);
}
