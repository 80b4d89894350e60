#include "bench/report.h"

#include <inttypes.h>

static const double percentiles[] = {50, 90, 99, 99.9};
static const char *const percentile_keys[] = {"p50", "p90", "p99", "p99_9"};

double fs_bench_throughput(const fs_bench_result_t *r)
{
    return r->elapsed_s > 0 ? (double)r->responses / r->elapsed_s : 0;
}

static json_t *hist_json(const fs_hist_t *h)
{
    json_t *o = json_object();
    for (int i = 0; i < 4; i++)
        json_object_set_new(o, percentile_keys[i],
                            json_integer((json_int_t)fs_hist_percentile(h, percentiles[i])));
    json_object_set_new(o, "min", json_integer(h->count ? (json_int_t)h->min : 0));
    json_object_set_new(o, "max", json_integer((json_int_t)h->max));
    json_object_set_new(o, "mean", json_real(fs_hist_mean(h)));
    json_object_set_new(o, "count", json_integer((json_int_t)h->count));
    return o;
}

static json_t *errors_json(const fs_bench_result_t *r)
{
    json_t *o = json_object();
    for (int k = 0; k < FS_BENCH_ERR__COUNT; k++)
        json_object_set_new(o, fs_bench_err_name((fs_bench_err_t)k), json_integer((json_int_t)r->errors[k]));
    json_object_set_new(o, "total", json_integer((json_int_t)fs_bench_error_total(r)));
    return o;
}

static json_t *status_json(const fs_bench_result_t *r)
{
    static const char *const names[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    json_t *o = json_object();
    for (int k = 0; k < 6; k++)
        json_object_set_new(o, names[k], json_integer((json_int_t)r->status_class[k]));
    return o;
}

json_t *fs_bench_report_json(const fs_bench_run_info_t *in, const fs_bench_result_t *r)
{
    const fs_bench_opts_t *o = in->opts;
    json_t *j = json_object();
    json_object_set_new(j, "scenario", json_string(in->scenario));
    json_object_set_new(j, "target", json_string(in->target));
    json_object_set_new(j, "label", in->label ? json_string(in->label) : json_null());
    json_object_set_new(j, "protocol", json_string(in->protocol));
    json_object_set_new(j, "mode", json_string(o->rate > 0 ? "open" : "closed"));
    json_object_set_new(j, "rate", json_real(o->rate));
    json_object_set_new(j, "threads", json_integer(o->threads));
    json_object_set_new(j, "connections", json_integer(o->connections));
    json_object_set_new(j, "duration_s", json_real(r->elapsed_s));
    json_object_set_new(j, "warmup_s", json_real(o->requests ? 0 : o->warmup_s));
    json_object_set_new(j, "requests", json_integer((json_int_t)r->responses));
    json_object_set_new(j, "ok", json_integer((json_int_t)r->ok));
    json_object_set_new(j, "throughput_rps", json_real(fs_bench_throughput(r)));
    json_object_set_new(j, "body_bytes", json_integer((json_int_t)r->bytes));
    json_object_set_new(j, "latency_us", hist_json(r->latency));
    json_object_set_new(j, "service_time_us", hist_json(r->service));
    json_object_set_new(j, "errors", errors_json(r));
    json_object_set_new(j, "status", status_json(r));
    json_object_set_new(j, "generator_cpu_s", json_real(r->cpu_s));
    json_object_set_new(j, "generator_cpu_us_per_request",
                        json_real(r->all_responses ? r->cpu_s * 1e6 / (double)r->all_responses : 0));
    json_object_set_new(j, "late_requests", json_integer((json_int_t)r->late));
    json_object_set_new(j, "warmup_responses", json_integer((json_int_t)r->warmup_responses));
    return j;
}

static void print_ms(FILE *out, const char *name, uint64_t us)
{
    fprintf(out, "  %s %.3f ms", name, (double)us / 1000.0);
}

static void text_latency(FILE *out, const char *title, const fs_hist_t *h)
{
    fprintf(out, "%-13s", title);
    print_ms(out, "p50", fs_hist_percentile(h, 50));
    print_ms(out, "p90", fs_hist_percentile(h, 90));
    print_ms(out, "p99", fs_hist_percentile(h, 99));
    print_ms(out, "p99.9", fs_hist_percentile(h, 99.9));
    print_ms(out, "max", h->max);
    fprintf(out, "\n");
}

void fs_bench_report_text(FILE *out, const fs_bench_run_info_t *in, const fs_bench_result_t *r)
{
    const fs_bench_opts_t *o = in->opts;
    fprintf(out, "%s -> %s%s%s\n", in->scenario, in->target, in->label ? "  " : "",
            in->label ? in->label : "");
    if (o->rate > 0)
        fprintf(out, "  open loop at %.0f req/s", o->rate);
    else
        fprintf(out, "  closed loop");
    fprintf(out, ", %d thread(s), %d connection(s), %.1f s measured (+%.1f s warm-up)\n", o->threads,
            o->connections, r->elapsed_s, o->requests ? 0 : o->warmup_s);
    fprintf(out, "requests     %" PRIu64 " (%" PRIu64 " ok)  %.1f req/s  %.2f MB/s body\n", r->responses,
            r->ok, fs_bench_throughput(r), r->elapsed_s > 0 ? (double)r->bytes / r->elapsed_s / 1e6 : 0);
    text_latency(out, "latency", r->latency);
    if (o->rate > 0)
        text_latency(out, "service time", r->service);
    fprintf(out, "errors      ");
    for (int k = 0; k < FS_BENCH_ERR__COUNT; k++)
        fprintf(out, " %s %" PRIu64, fs_bench_err_name((fs_bench_err_t)k), r->errors[k]);
    fprintf(out, "\n");
    if (r->all_responses)
        fprintf(out, "generator    %.2f s CPU, %.2f µs CPU per request\n", r->cpu_s,
                r->cpu_s * 1e6 / (double)r->all_responses);
    if (o->rate > 0 && r->late)
        fprintf(out, "late sends   %" PRIu64 " (the target could not keep up with the rate)\n", r->late);
}

void fs_bench_report_tsv(FILE *out, const fs_bench_result_t *r)
{
    const fs_hist_t *h = r->latency;
    fprintf(out,
            "%.1f\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
            "\n",
            fs_bench_throughput(r), fs_hist_percentile(h, 50), fs_hist_percentile(h, 90),
            fs_hist_percentile(h, 99), fs_hist_percentile(h, 99.9), h->max, fs_bench_error_total(r),
            r->responses);
}
