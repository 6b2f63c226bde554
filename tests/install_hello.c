/* Built against an installed fleet by tests/install.sh. */
#include <fleet.h>
#include <stdint.h>
#include <stdio.h>

static void init(void *ctx, void *p)
{
    (void)ctx;
    *(uint64_t *)p = 0;
}

static void fold(void *ctx, size_t b, size_t e, void *p)
{
    (void)ctx;
    for (size_t i = b; i < e; i++)
        *(uint64_t *)p += i;
}

static void combine(void *ctx, void *into, const void *p)
{
    (void)ctx;
    *(uint64_t *)into += *(const uint64_t *)p;
}

int main(void)
{
    fleet_runtime_t *rt;
    int err = fleet_runtime_create(&rt, NULL);
    if (err != 0) {
        fprintf(stderr, "create: %s\n", fleet_strerror(err));
        return 1;
    }
    fleet_reducer_t r = {sizeof(uint64_t), init, fold, combine};
    uint64_t sum = 0, n = 1000000;
    err = fleet_parallel_reduce(rt, &r, NULL, 0, n, &sum);
    fleet_runtime_destroy(rt);
    if (err != 0 || sum != n * (n - 1) / 2) {
        fprintf(stderr, "wrong: err %d sum %llu\n", err,
                (unsigned long long)sum);
        return 1;
    }
    printf("installed fleet works: sum of 0..%llu = %llu\n",
           (unsigned long long)(n - 1), (unsigned long long)sum);
    return 0;
}
