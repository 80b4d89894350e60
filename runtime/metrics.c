/* Metrics registry and Prometheus text exposition (format 0.0.4).
 *
 * Families keep their series in a small chained hash keyed by the label values, plus a list
 * in creation order so that the rendering is stable (scrapes diff cleanly). Histograms store
 * per-bucket counts and accumulate them only when rendering, so an observation is one bucket
 * search and three additions.
 */
#include "runtime/metrics.h"

#include "runtime/alloc.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prometheus Python client defaults (prometheus_client.metrics.Histogram.DEFAULT_BUCKETS). */
static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                         0.5,   0.75, 1.0,   2.5,  5.0,   7.5, 10.0};
#define N_DEFAULT_BUCKETS (sizeof default_buckets / sizeof default_buckets[0])

#define INITIAL_SLOTS 16

struct fs_metric_series {
    fs_metric_family_t *fam;
    char **values; /* one per label name */
    uint64_t hash;
    double value;            /* counter, gauge */
    uint64_t *bucket_counts; /* histogram: n_buckets + 1 (the last is +Inf), not cumulative */
    double sum;
    uint64_t count;
    fs_metric_series_t *chain; /* next in the same hash slot */
    fs_metric_series_t *next;  /* creation order */
};

struct fs_metric_family {
    fs_metric_kind_t kind;
    char *name, *help;
    char **label_names;
    size_t n_labels;
    double *buckets;
    size_t n_buckets;
    fs_metric_series_t **slots;
    size_t n_slots, n_series;
    fs_metric_series_t *first, *last;
    fs_metric_family_t *next;
};

typedef struct collector {
    fs_metrics_collect_fn fn;
    void *arg;
    struct collector *next;
} collector_t;

struct fs_metrics {
    fs_metric_family_t *first, *last;
    collector_t *collectors;
};

/* ---- names and hashing ----------------------------------------------------------------- */

static bool valid_name(const char *s, bool allow_colon)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  (allow_colon && c == ':');
        if (!ok)
            return false;
    }
    return true;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h * 1099511628211ULL; /* separator, so ("ab","") differs from ("a","b") */
}

static uint64_t hash_values(const char *const *values, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = fnv1a(h, values[i] ? values[i] : "");
    return h;
}

/* ---- registry -------------------------------------------------------------------------- */

fs_metrics_t *fs_metrics_new(void)
{
    return FS_NEW(fs_metrics_t);
}

static void series_free(fs_metric_series_t *s, size_t n_labels)
{
    for (size_t i = 0; i < n_labels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->bucket_counts);
    free(s);
}

static void family_free(fs_metric_family_t *f)
{
    for (fs_metric_series_t *s = f->first, *next; s; s = next) {
        next = s->next;
        series_free(s, f->n_labels);
    }
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->label_names[i]);
    free(f->label_names);
    free(f->buckets);
    free(f->slots);
    free(f->name);
    free(f->help);
    free(f);
}

void fs_metrics_free(fs_metrics_t *m)
{
    if (!m)
        return;
    for (fs_metric_family_t *f = m->first, *next; f; f = next) {
        next = f->next;
        family_free(f);
    }
    for (collector_t *c = m->collectors, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(m);
}

static fs_metric_family_t *family_find(fs_metrics_t *m, const char *name)
{
    for (fs_metric_family_t *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static void family_set_buckets(fs_metric_family_t *f, const double *buckets, size_t n)
{
    if (!buckets || n == 0) {
        buckets = default_buckets;
        n = N_DEFAULT_BUCKETS;
    }
    /* +Inf is implied; a trailing explicit one is dropped so it is not rendered twice. */
    while (n > 0 && isinf(buckets[n - 1]))
        n--;
    f->buckets = fs_malloc((n ? n : 1) * sizeof(double));
    memcpy(f->buckets, buckets, n * sizeof(double));
    f->n_buckets = n;
}

/* Invalid names are programming errors: they would make the whole exposition unparseable,
 * so they abort at start-up rather than at the first scrape. */
fs_metric_family_t *fs_metrics_family(fs_metrics_t *m, fs_metric_kind_t kind, const char *name,
                                      const char *help, const char *const *label_names, const double *buckets,
                                      size_t n_buckets)
{
    fs_metric_family_t *f = family_find(m, name);
    if (f)
        return f;
    if (!valid_name(name, true)) {
        fprintf(stderr, "fs_metrics_family: invalid metric name '%s'\n", name ? name : "(null)");
        abort();
    }
    f = FS_NEW(fs_metric_family_t);
    f->kind = kind;
    f->name = fs_strdup(name);
    f->help = fs_strdup(help ? help : "");
    for (const char *const *l = label_names; l && *l; l++)
        f->n_labels++;
    f->label_names = fs_calloc(f->n_labels ? f->n_labels : 1, sizeof(char *));
    for (size_t i = 0; i < f->n_labels; i++) {
        if (!valid_name(label_names[i], false) || strncmp(label_names[i], "__", 2) == 0) {
            fprintf(stderr, "fs_metrics_family: invalid label name '%s' in %s\n", label_names[i], name);
            abort();
        }
        f->label_names[i] = fs_strdup(label_names[i]);
    }
    if (kind == FS_METRIC_HISTOGRAM)
        family_set_buckets(f, buckets, n_buckets);
    f->n_slots = INITIAL_SLOTS;
    f->slots = fs_calloc(f->n_slots, sizeof(fs_metric_series_t *));
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;
}

/* ---- series ---------------------------------------------------------------------------- */

static bool values_equal(const fs_metric_series_t *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
            return false;
    return true;
}

static void family_grow(fs_metric_family_t *f)
{
    size_t n = f->n_slots * 2;
    fs_metric_series_t **slots = fs_calloc(n, sizeof *slots);
    for (fs_metric_series_t *s = f->first; s; s = s->next) {
        size_t i = s->hash & (n - 1);
        s->chain = slots[i];
        slots[i] = s;
    }
    free(f->slots);
    f->slots = slots;
    f->n_slots = n;
}

static fs_metric_series_t *series_new(fs_metric_family_t *f, const char *const *values, uint64_t h)
{
    fs_metric_series_t *s = FS_NEW(fs_metric_series_t);
    s->fam = f;
    s->hash = h;
    s->values = fs_calloc(f->n_labels ? f->n_labels : 1, sizeof(char *));
    for (size_t i = 0; i < f->n_labels; i++)
        s->values[i] = fs_strdup(values[i] ? values[i] : "");
    if (f->kind == FS_METRIC_HISTOGRAM)
        s->bucket_counts = fs_calloc(f->n_buckets + 1, sizeof(uint64_t));
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    if (++f->n_series > f->n_slots * 2)
        family_grow(f);
    else {
        size_t i = h & (f->n_slots - 1);
        s->chain = f->slots[i];
        f->slots[i] = s;
    }
    return s;
}

fs_metric_series_t *fs_metrics_series(fs_metric_family_t *f, const char *const *label_values)
{
    static const char *const none[1] = {NULL};
    if (!label_values)
        label_values = none;
    uint64_t h = hash_values(label_values, f->n_labels);
    for (fs_metric_series_t *s = f->slots[h & (f->n_slots - 1)]; s; s = s->chain)
        if (s->hash == h && values_equal(s, label_values, f->n_labels))
            return s;
    return series_new(f, label_values, h);
}

fs_metric_series_t *fs_metrics_simple(fs_metrics_t *m, fs_metric_kind_t kind, const char *name,
                                      const char *help)
{
    return fs_metrics_series(fs_metrics_family(m, kind, name, help, NULL, NULL, 0), NULL);
}

void fs_metric_inc(fs_metric_series_t *s, double by)
{
    if (s && s->fam->kind != FS_METRIC_HISTOGRAM)
        s->value += by;
}

void fs_metric_set(fs_metric_series_t *s, double value)
{
    if (s && s->fam->kind != FS_METRIC_HISTOGRAM)
        s->value = value;
}

/* A value equal to a bucket's bound counts in that bucket (Prometheus "le"). */
void fs_metric_observe(fs_metric_series_t *s, double value)
{
    if (!s || s->fam->kind != FS_METRIC_HISTOGRAM)
        return;
    const fs_metric_family_t *f = s->fam;
    size_t lo = 0, hi = f->n_buckets;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (value <= f->buckets[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    s->bucket_counts[lo]++;
    s->sum += value;
    s->count++;
}

double fs_metric_value(const fs_metric_series_t *s)
{
    if (!s)
        return 0;
    return s->fam->kind == FS_METRIC_HISTOGRAM ? (double)s->count : s->value;
}

void fs_metrics_on_collect(fs_metrics_t *m, fs_metrics_collect_fn fn, void *arg)
{
    collector_t *c = FS_NEW(collector_t);
    c->fn = fn;
    c->arg = arg;
    collector_t **tail = &m->collectors;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
}

/* ---- rendering ------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = fs_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* HELP text escapes backslash and newline; label values also escape the double quote. */
static void sb_escaped(sbuf_t *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_put(b, "\\\\", 2);
        else if (*s == '\n')
            sb_put(b, "\\n", 2);
        else if (quote && *s == '"')
            sb_put(b, "\\\"", 2);
        else
            sb_put(b, s, 1);
    }
}

/* Floats as the Python client writes them (repr): the shortest digits that read back to the
 * same double, positional between 1e-4 and 1e16 with at least ".0", exponent form outside
 * ("1e+21", "1e-05"), and +Inf / -Inf / NaN. */
static void format_value(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char sci[64];
    int digits = 1;
    for (; digits <= 17; digits++) {
        snprintf(sci, sizeof sci, "%.*e", digits - 1, v);
        if (strtod(sci, NULL) == v)
            break;
    }
    int exp = atoi(strchr(sci, 'e') + 1);
    if (exp < -4 || exp >= 16) {
        snprintf(out, size, "%s", sci);
        return;
    }
    int decimals = digits - 1 - exp;
    snprintf(out, size, "%.*f", decimals > 0 ? decimals : 0, v);
    if (!strchr(out, '.'))
        strncat(out, ".0", size - strlen(out) - 1);
}

static void sb_value(sbuf_t *b, double v)
{
    char num[64];
    format_value(v, num, sizeof num);
    sb_str(b, num);
}

static void sb_labels(sbuf_t *b, const fs_metric_family_t *f, const fs_metric_series_t *s, const char *le)
{
    if (f->n_labels == 0 && !le)
        return;
    sb_put(b, "{", 1);
    for (size_t i = 0; i < f->n_labels; i++) {
        if (i)
            sb_put(b, ",", 1);
        sb_str(b, f->label_names[i]);
        sb_put(b, "=\"", 2);
        sb_escaped(b, s->values[i], true);
        sb_put(b, "\"", 1);
    }
    if (le) {
        if (f->n_labels)
            sb_put(b, ",", 1);
        sb_str(b, "le=\"");
        sb_str(b, le);
        sb_put(b, "\"", 1);
    }
    sb_put(b, "}", 1);
}

static void sb_sample(sbuf_t *b, const fs_metric_family_t *f, const fs_metric_series_t *s, const char *suffix,
                      const char *le, double v)
{
    sb_str(b, f->name);
    sb_str(b, suffix);
    sb_labels(b, f, s, le);
    sb_put(b, " ", 1);
    sb_value(b, v);
    sb_put(b, "\n", 1);
}

static void render_histogram(sbuf_t *b, const fs_metric_family_t *f, const fs_metric_series_t *s)
{
    uint64_t cumulative = 0;
    char le[64];
    for (size_t i = 0; i <= f->n_buckets; i++) {
        cumulative += s->bucket_counts[i];
        if (i < f->n_buckets)
            format_value(f->buckets[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        sb_sample(b, f, s, "_bucket", le, (double)cumulative);
    }
    sb_sample(b, f, s, "_count", NULL, (double)s->count);
    sb_sample(b, f, s, "_sum", NULL, s->sum);
}

static const char *kind_name(fs_metric_kind_t k)
{
    switch (k) {
    case FS_METRIC_COUNTER:
        return "counter";
    case FS_METRIC_GAUGE:
        return "gauge";
    case FS_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

static void render_family(sbuf_t *b, const fs_metric_family_t *f)
{
    sb_str(b, "# HELP ");
    sb_str(b, f->name);
    sb_put(b, " ", 1);
    sb_escaped(b, f->help, false);
    sb_str(b, "\n# TYPE ");
    sb_str(b, f->name);
    sb_put(b, " ", 1);
    sb_str(b, kind_name(f->kind));
    sb_put(b, "\n", 1);
    for (const fs_metric_series_t *s = f->first; s; s = s->next) {
        if (f->kind == FS_METRIC_HISTOGRAM)
            render_histogram(b, f, s);
        else
            sb_sample(b, f, s, "", NULL, s->value);
    }
}

char *fs_metrics_render(fs_metrics_t *m, size_t *len)
{
    for (collector_t *c = m->collectors; c; c = c->next)
        c->fn(m, c->arg);
    sbuf_t b = {0};
    sb_put(&b, "", 0);
    for (const fs_metric_family_t *f = m->first; f; f = f->next)
        render_family(&b, f);
    if (len)
        *len = b.len;
    return b.data;
}
