/* Metrics registry: counters, gauges and histograms with labels, rendered in the Prometheus
 * text format (version 0.0.4) by GET /metrics.
 *
 * A registry is per process (each worker has its own; the master keeps restart counts and
 * passes them to workers). Families are created once at start; label values are looked up
 * per observation through a small hash, so hot paths should keep the returned series pointer.
 * Not thread-safe: observe from the loop thread only.
 */
#ifndef FS_METRICS_H
#define FS_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fs_metric_family fs_metric_family_t;
typedef struct fs_metric_series fs_metric_series_t;
typedef struct fs_metrics fs_metrics_t;

typedef enum { FS_METRIC_COUNTER, FS_METRIC_GAUGE, FS_METRIC_HISTOGRAM } fs_metric_kind_t;

fs_metrics_t *fs_metrics_new(void);
void fs_metrics_free(fs_metrics_t *m);

/* Creates (or returns the existing) family. `label_names` is a NULL-terminated list (or
 * NULL for none). `buckets` (ascending upper bounds, +Inf implied) only for histograms;
 * NULL gives the Prometheus client default buckets. */
fs_metric_family_t *fs_metrics_family(fs_metrics_t *m, fs_metric_kind_t kind, const char *name, const char *help,
                                      const char *const *label_names, const double *buckets, size_t n_buckets);

/* The series for these label values (same count and order as the family's label names). */
fs_metric_series_t *fs_metrics_series(fs_metric_family_t *f, const char *const *label_values);

void fs_metric_inc(fs_metric_series_t *s, double by);
void fs_metric_set(fs_metric_series_t *s, double value);
void fs_metric_observe(fs_metric_series_t *s, double value);
double fs_metric_value(const fs_metric_series_t *s); /* counter/gauge value, histogram count */

/* A callback run just before rendering, to refresh gauges read from elsewhere. */
typedef void (*fs_metrics_collect_fn)(fs_metrics_t *m, void *arg);
void fs_metrics_on_collect(fs_metrics_t *m, fs_metrics_collect_fn fn, void *arg);

/* Renders every family; the caller frees the result. */
char *fs_metrics_render(fs_metrics_t *m, size_t *len);

/* Convenience for label-less series. */
fs_metric_series_t *fs_metrics_simple(fs_metrics_t *m, fs_metric_kind_t kind, const char *name, const char *help);

#endif
