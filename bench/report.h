/* Presenting a run: a human summary, one JSON document, or one tab-separated line. */
#ifndef FS_BENCH_REPORT_H
#define FS_BENCH_REPORT_H

#include "bench/loadgen.h"

#include <jansson.h>
#include <stdio.h>

/* What was asked, for the report header. */
typedef struct fs_bench_run_info {
    const char *scenario, *target, *label, *protocol;
    const fs_bench_opts_t *opts;
} fs_bench_run_info_t;

/* The run as a JSON object (schema in docs/BENCHMARKS.md); caller decrefs. */
json_t *fs_bench_report_json(const fs_bench_run_info_t *info, const fs_bench_result_t *r);
void fs_bench_report_text(FILE *out, const fs_bench_run_info_t *info, const fs_bench_result_t *r);
/* "rps p50_us p90_us p99_us p999_us max_us errors responses" on one line. */
void fs_bench_report_tsv(FILE *out, const fs_bench_result_t *r);
double fs_bench_throughput(const fs_bench_result_t *r);

#endif
