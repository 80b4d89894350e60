/* Metrics registry and Prometheus text exposition (runtime/metrics.c). */
#include "runtime/metrics.h"

#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fs_metrics_t *M;

static void setup(void)
{
    M = fs_metrics_new();
}

static void teardown(void)
{
    fs_metrics_free(M);
}

TestSuite(metrics, .init = setup, .fini = teardown);

static char *render(void)
{
    size_t len;
    char *s = fs_metrics_render(M, &len);
    cr_assert_eq(strlen(s), len);
    return s;
}

static void assert_has(const char *text, const char *line)
{
    cr_assert_not_null(strstr(text, line), "missing line:\n%s\nin:\n%s", line, text);
}

Test(metrics, counter_with_labels)
{
    static const char *const labels[] = {"method", "status", NULL};
    fs_metric_family_t *f =
        fs_metrics_family(M, FS_METRIC_COUNTER, "req_total", "Requests served", labels, NULL, 0);
    const char *a[] = {"GET", "200"}, *b[] = {"POST", "201"};
    fs_metric_series_t *s = fs_metrics_series(f, a);
    fs_metric_inc(s, 1);
    fs_metric_inc(fs_metrics_series(f, a), 2);
    fs_metric_inc(fs_metrics_series(f, b), 1);
    cr_assert_eq(fs_metrics_series(f, a), s, "the same labels give the same series");
    cr_assert_float_eq(fs_metric_value(s), 3.0, 1e-12);
    char *t = render();
    assert_has(t, "# HELP req_total Requests served\n# TYPE req_total counter\n");
    assert_has(t, "req_total{method=\"GET\",status=\"200\"} 3.0\n");
    assert_has(t, "req_total{method=\"POST\",status=\"201\"} 1.0\n");
    cr_assert_lt(strstr(t, "GET") - t, strstr(t, "POST") - t, "series render in creation order");
    free(t);
}

Test(metrics, family_is_created_once)
{
    fs_metric_family_t *a = fs_metrics_family(M, FS_METRIC_GAUGE, "g", "one", NULL, NULL, 0);
    fs_metric_family_t *b = fs_metrics_family(M, FS_METRIC_GAUGE, "g", "two", NULL, NULL, 0);
    cr_assert_eq(a, b);
    fs_metric_set(fs_metrics_simple(M, FS_METRIC_GAUGE, "g", "ignored"), -2.5);
    char *t = render();
    assert_has(t, "# HELP g one\n# TYPE g gauge\ng -2.5\n");
    cr_assert_null(strstr(t, "two"));
    free(t);
}

Test(metrics, label_values_and_help_are_escaped)
{
    static const char *const labels[] = {"path", NULL};
    fs_metric_family_t *f = fs_metrics_family(M, FS_METRIC_COUNTER, "esc_total",
                                              "line one\nback\\slash \"quoted\"", labels, NULL, 0);
    const char *v[] = {"a\"b\\c\nd"};
    fs_metric_inc(fs_metrics_series(f, v), 1);
    char *t = render();
    assert_has(t, "# HELP esc_total line one\\nback\\\\slash \"quoted\"\n");
    assert_has(t, "esc_total{path=\"a\\\"b\\\\c\\nd\"} 1.0\n");
    free(t);
}

Test(metrics, histogram_default_buckets)
{
    static const char *const labels[] = {"endpoint", NULL};
    fs_metric_family_t *f =
        fs_metrics_family(M, FS_METRIC_HISTOGRAM, "lat_seconds", "Latency", labels, NULL, 0);
    const char *v[] = {"/x"};
    fs_metric_series_t *s = fs_metrics_series(f, v);
    fs_metric_observe(s, 0.005); /* on a bound: counts in that bucket */
    fs_metric_observe(s, 0.3);
    fs_metric_observe(s, 42);
    fs_metric_inc(s, 5); /* ignored on a histogram */
    cr_assert_float_eq(fs_metric_value(s), 3.0, 1e-12);
    char *t = render();
    assert_has(t, "# TYPE lat_seconds histogram\n");
    assert_has(t, "lat_seconds_bucket{endpoint=\"/x\",le=\"0.005\"} 1.0\n");
    assert_has(t, "lat_seconds_bucket{endpoint=\"/x\",le=\"0.25\"} 1.0\n");
    assert_has(t, "lat_seconds_bucket{endpoint=\"/x\",le=\"0.5\"} 2.0\n");
    assert_has(t, "lat_seconds_bucket{endpoint=\"/x\",le=\"10.0\"} 2.0\n");
    assert_has(t, "lat_seconds_bucket{endpoint=\"/x\",le=\"+Inf\"} 3.0\n");
    assert_has(t, "lat_seconds_count{endpoint=\"/x\"} 3.0\n");
    assert_has(t, "lat_seconds_sum{endpoint=\"/x\"} 42.305\n");
    /* the 14 default bounds of the Python client, then +Inf */
    size_t n = 0;
    for (const char *p = t; (p = strstr(p, "lat_seconds_bucket")); p++)
        n++;
    cr_assert_eq(n, 15);
    assert_has(t, "le=\"0.075\"");
    assert_has(t, "le=\"7.5\"");
    free(t);
}

Test(metrics, histogram_custom_buckets_and_no_labels)
{
    static const double b[] = {1, 2, INFINITY};
    fs_metric_family_t *f = fs_metrics_family(M, FS_METRIC_HISTOGRAM, "h", "H", NULL, b, 3);
    fs_metric_series_t *s = fs_metrics_series(f, NULL);
    fs_metric_observe(s, 1.5);
    fs_metric_observe(s, 3);
    char *t = render();
    assert_has(t, "h_bucket{le=\"1.0\"} 0.0\nh_bucket{le=\"2.0\"} 1.0\nh_bucket{le=\"+Inf\"} 2.0\nh_count "
                  "2.0\nh_sum 4.5\n");
    cr_assert_null(strstr(t, "le=\"inf\""));
    free(t);
}

Test(metrics, many_series_survive_rehash)
{
    static const char *const labels[] = {"id", NULL};
    fs_metric_family_t *f = fs_metrics_family(M, FS_METRIC_COUNTER, "many_total", "Many", labels, NULL, 0);
    char buf[16];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 500; i++) {
            snprintf(buf, sizeof buf, "%d", i);
            const char *v[] = {buf};
            fs_metric_inc(fs_metrics_series(f, v), i);
        }
    const char *v[] = {"499"};
    cr_assert_float_eq(fs_metric_value(fs_metrics_series(f, v)), 998.0, 1e-9);
    char *t = render();
    assert_has(t, "many_total{id=\"0\"} 0.0\n");
    assert_has(t, "many_total{id=\"250\"} 500.0\n");
    free(t);
}

static void refresh(fs_metrics_t *m, void *arg)
{
    (*(int *)arg)++;
    fs_metric_set(fs_metrics_simple(m, FS_METRIC_GAUGE, "collected", "Set by a collector"), 7);
}

Test(metrics, collectors_run_before_render)
{
    int calls = 0;
    fs_metrics_on_collect(M, refresh, &calls);
    char *t = render();
    cr_assert_eq(calls, 1);
    assert_has(t, "collected 7.0\n");
    free(t);
}

Test(metrics, values_format_like_python)
{
    fs_metric_set(fs_metrics_simple(M, FS_METRIC_GAUGE, "a", "a"), 0.1);
    fs_metric_set(fs_metrics_simple(M, FS_METRIC_GAUGE, "b", "b"), 1e21);
    fs_metric_set(fs_metrics_simple(M, FS_METRIC_GAUGE, "c", "c"), NAN);
    fs_metric_set(fs_metrics_simple(M, FS_METRIC_GAUGE, "d", "d"), -INFINITY);
    fs_metric_set(fs_metrics_simple(M, FS_METRIC_GAUGE, "e", "e"), 123456789);
    char *t = render();
    assert_has(t, "\na 0.1\n");
    assert_has(t, "\nb 1e+21\n");
    assert_has(t, "\nc NaN\n");
    assert_has(t, "\nd -Inf\n");
    assert_has(t, "\ne 123456789.0\n");
    free(t);
}

Test(metrics, empty_registry_renders_empty)
{
    char *t = render();
    cr_assert_str_eq(t, "");
    free(t);
}

Test(metrics, invalid_name_aborts, .signal = SIGABRT)
{
    fs_metrics_family(M, FS_METRIC_COUNTER, "bad-name", "x", NULL, NULL, 0);
}
