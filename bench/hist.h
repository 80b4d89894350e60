/* A latency histogram in the style of HdrHistogram: log-linear buckets over microseconds.
 *
 * Values below 2048 µs are kept exactly; above, each power of two is split into 1024 buckets,
 * so any recorded value is known to within 1/1024 (about 0.1 %, three significant digits).
 * The range is 0 .. 2^36 µs (19 hours); larger values are clamped and counted in `clamped`.
 * Memory is fixed (about 230 KB), recording is a few instructions and never allocates, and
 * two histograms merge by adding counts, so every generator thread keeps its own.
 */
#ifndef FS_BENCH_HIST_H
#define FS_BENCH_HIST_H

#include <stdbool.h>
#include <stdint.h>

#define FS_HIST_SUB_BITS 11
#define FS_HIST_MAX_BITS 36

typedef struct fs_hist {
    uint64_t count;    /** values recorded */
    uint64_t min, max; /** exact extremes (min is UINT64_MAX while empty) */
    double sum;        /** for the mean */
    uint64_t clamped;  /** values above the range, recorded as the largest value */
    uint64_t *counts;  /** FS_HIST_BUCKETS counters */
} fs_hist_t;

/* A new empty histogram; free it with fs_hist_free. */
fs_hist_t *fs_hist_new(void);
void fs_hist_free(fs_hist_t *h);
void fs_hist_reset(fs_hist_t *h);

void fs_hist_record(fs_hist_t *h, uint64_t value_us);
void fs_hist_record_n(fs_hist_t *h, uint64_t value_us, uint64_t n);

/* Closed-loop correction for coordinated omission (HdrHistogram's recordValueWithExpectedInterval):
 * records `value_us` and, when it exceeds `interval_us`, the values the requests that a
 * constant-rate client would have sent during the stall would have seen: value - interval,
 * value - 2*interval, ... down to interval. interval_us 0 records the value alone. The open-loop
 * mode of the generator does not need this: it measures from the intended send time. */
void fs_hist_record_corrected(fs_hist_t *h, uint64_t value_us, uint64_t interval_us);

/* Adds every count of `src` into `dst`. */
void fs_hist_merge(fs_hist_t *dst, const fs_hist_t *src);

/* The value at percentile `p` (0..100): the highest value equivalent to the bucket holding the
 * ceil(p% * count)-th smallest value, never above the exact max. 0 when empty. */
uint64_t fs_hist_percentile(const fs_hist_t *h, double p);
double fs_hist_mean(const fs_hist_t *h);

/* Bucket arithmetic, exposed for the tests: index of a value, and the lowest and highest value
 * that map to an index. */
int fs_hist_index(uint64_t value_us);
uint64_t fs_hist_lowest(int index);
uint64_t fs_hist_highest(int index);

#endif
