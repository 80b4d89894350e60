#include "bench/hist.h"

#include "runtime/alloc.h"

#include <stdlib.h>
#include <string.h>

#define SUB_COUNT  (1u << FS_HIST_SUB_BITS) /* 2048: values below are exact */
#define HALF_COUNT (SUB_COUNT / 2)          /* buckets per power of two above */
#define MAX_SHIFT  (FS_HIST_MAX_BITS - FS_HIST_SUB_BITS + 1)
#define BUCKETS    (SUB_COUNT + MAX_SHIFT * HALF_COUNT)
#define MAX_VALUE  ((UINT64_C(1) << FS_HIST_MAX_BITS) - 1)

fs_hist_t *fs_hist_new(void)
{
    fs_hist_t *h = FS_NEW(fs_hist_t);
    h->counts = fs_calloc(BUCKETS, sizeof(uint64_t));
    h->min = UINT64_MAX;
    return h;
}

void fs_hist_free(fs_hist_t *h)
{
    if (!h)
        return;
    free(h->counts);
    free(h);
}

void fs_hist_reset(fs_hist_t *h)
{
    memset(h->counts, 0, BUCKETS * sizeof(uint64_t));
    h->count = h->max = h->clamped = 0;
    h->min = UINT64_MAX;
    h->sum = 0;
}

/* Above SUB_COUNT a value v with its top bit at position msb keeps its 11 leading bits:
 * shift = msb - 10 and top = v >> shift lies in [1024, 2047]. */
int fs_hist_index(uint64_t v)
{
    if (v < SUB_COUNT)
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - (FS_HIST_SUB_BITS - 1);
    uint64_t top = v >> shift;
    return (int)(SUB_COUNT + (uint64_t)(shift - 1) * HALF_COUNT + (top - HALF_COUNT));
}

uint64_t fs_hist_lowest(int index)
{
    if (index < (int)SUB_COUNT)
        return (uint64_t)index;
    int rel = index - (int)SUB_COUNT;
    int shift = rel / (int)HALF_COUNT + 1;
    uint64_t top = (uint64_t)(rel % (int)HALF_COUNT) + HALF_COUNT;
    return top << shift;
}

uint64_t fs_hist_highest(int index)
{
    if (index < (int)SUB_COUNT)
        return (uint64_t)index;
    int shift = (index - (int)SUB_COUNT) / (int)HALF_COUNT + 1;
    return fs_hist_lowest(index) + (UINT64_C(1) << shift) - 1;
}

void fs_hist_record_n(fs_hist_t *h, uint64_t v, uint64_t n)
{
    if (n == 0)
        return;
    if (v > MAX_VALUE) {
        h->clamped += n;
        v = MAX_VALUE;
    }
    h->counts[fs_hist_index(v)] += n;
    h->count += n;
    h->sum += (double)v * (double)n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void fs_hist_record(fs_hist_t *h, uint64_t v)
{
    fs_hist_record_n(h, v, 1);
}

void fs_hist_record_corrected(fs_hist_t *h, uint64_t v, uint64_t interval)
{
    fs_hist_record(h, v);
    if (interval == 0)
        return;
    for (uint64_t missing = v; missing >= 2 * interval;) {
        missing -= interval;
        fs_hist_record(h, missing);
    }
}

void fs_hist_merge(fs_hist_t *dst, const fs_hist_t *src)
{
    if (src->count == 0)
        return;
    for (int i = 0; i < (int)BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
    dst->clamped += src->clamped;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t fs_hist_percentile(const fs_hist_t *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p <= 0)
        return h->min;
    double want = p / 100.0 * (double)h->count;
    uint64_t target = (uint64_t)want;
    if ((double)target < want)
        target++;
    if (target == 0)
        target = 1;
    uint64_t seen = 0;
    for (int i = 0; i < (int)BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= target) {
            uint64_t v = fs_hist_highest(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double fs_hist_mean(const fs_hist_t *h)
{
    return h->count ? h->sum / (double)h->count : 0;
}
