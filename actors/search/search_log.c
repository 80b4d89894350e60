/* The analytics log: one search_logs row per answered search, written in batches (one
 * INSERT ... SELECT FROM unnest(...) per batch) so that analytics never costs a round trip
 * per request. A batch is written when it is full or on the search actor's flush timer; a
 * batch the database refuses is dropped with a warning and counted, because analytics must
 * never hold searches back (and nothing here was acknowledged to a client). */
#include "actors/search/search_int.h"

#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "storage/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_COLUMNS 12

static struct {
    fs_pg_pool_t *pg;
    search_log_row_t *rows;
    size_t n, cap;
    fs_metric_series_t *written, *dropped;
} lg;

static const char insert_sql[] =
    "INSERT INTO search_logs (origin_code, destination_code, departure_date, return_date, passengers, "
    "cabin_class, direct_only, strategy, result_count, cached, response_time_ms, searched_at) "
    "SELECT o, d, dep, ret, p, c, dir, s, n, hit, ms, now() - make_interval(secs => age) FROM unnest("
    "$1::text[], $2::text[], $3::date[], $4::date[], $5::smallint[], $6::text[], $7::boolean[], $8::text[], "
    "$9::integer[], $10::boolean[], $11::real[], $12::float8[]) AS t(o, d, dep, ret, p, c, dir, s, n, hit, ms, age)";

void fsint_search_log_init(fs_pg_pool_t *pg, fs_metrics_t *metrics)
{
    lg.pg = pg;
    if (metrics) {
        lg.written = fs_metrics_simple(metrics, FS_METRIC_COUNTER, "flightshark_search_logs_written_total",
                                       "search_logs rows written");
        lg.dropped = fs_metrics_simple(metrics, FS_METRIC_COUNTER, "flightshark_search_logs_dropped_total",
                                       "search_logs rows lost because the database refused their batch");
    }
}

typedef struct {
    char *cols[N_COLUMNS];
    size_t len[N_COLUMNS], cap[N_COLUMNS];
} arrays_t;

static void col_add(arrays_t *a, int c, const char *v)
{
    size_t n = strlen(v);
    if (a->len[c] + n + 3 > a->cap[c]) {
        a->cap[c] = (a->len[c] + n + 3) * 2;
        a->cols[c] = fs_realloc(a->cols[c], a->cap[c]);
    }
    char sep = a->len[c] == 0 ? '{' : ',';
    a->cols[c][a->len[c]++] = sep;
    memcpy(a->cols[c] + a->len[c], v, n);
    a->len[c] += n;
    a->cols[c][a->len[c]] = '\0';
}

typedef struct {
    size_t n;
} batch_t;

static void on_written(fs_pg_status_t st, PGresult *res, const char *error, void *arg)
{
    batch_t *b = arg;
    if (st == FS_PG_OK) {
        if (lg.written)
            fs_metric_inc(lg.written, (double)b->n);
    } else {
        fs_warn("search_logs: a batch of %zu rows was not written: %s", b->n, error ? error : "unknown error");
        if (lg.dropped)
            fs_metric_inc(lg.dropped, (double)b->n);
    }
    free(b);
}

void fsint_search_log_flush(void)
{
    if (lg.n == 0)
        return;
    if (!lg.pg) {
        lg.n = 0;
        return;
    }
    arrays_t a = {0};
    int64_t now = fs_now_ms();
    for (size_t i = 0; i < lg.n; i++) {
        const search_log_row_t *r = &lg.rows[i];
        char dep[11], ret[11] = "NULL", num[32];
        fs_date_format(r->departure, dep);
        if (r->has_return)
            fs_date_format(r->return_date, ret);
        col_add(&a, 0, r->origin);
        col_add(&a, 1, r->destination);
        col_add(&a, 2, dep);
        col_add(&a, 3, ret);
        snprintf(num, sizeof num, "%d", r->passengers);
        col_add(&a, 4, num);
        col_add(&a, 5, fs_cabin_name(r->cabin));
        col_add(&a, 6, r->direct_only ? "t" : "f");
        col_add(&a, 7, fs_strategy_name(r->strategy));
        snprintf(num, sizeof num, "%d", r->result_count);
        col_add(&a, 8, num);
        col_add(&a, 9, r->cached ? "t" : "f");
        snprintf(num, sizeof num, "%.3f", r->response_ms);
        col_add(&a, 10, num);
        /* the row's age when the batch leaves, so searched_at is the time of the search */
        snprintf(num, sizeof num, "%.3f", (double)(now - r->at_ms) / 1000.0);
        col_add(&a, 11, num);
    }
    const char *params[N_COLUMNS];
    for (int c = 0; c < N_COLUMNS; c++) {
        col_add(&a, c, "");
        a.cols[c][a.len[c] - 1] = '}';
        params[c] = a.cols[c];
    }
    batch_t *b = FS_NEW(batch_t);
    b->n = lg.n;
    fs_pg_query(lg.pg, "search_logs_insert", insert_sql, N_COLUMNS, params, on_written, b);
    for (int c = 0; c < N_COLUMNS; c++)
        free(a.cols[c]);
    lg.n = 0;
}

void fsint_search_log_add(const search_log_row_t *row)
{
    if (lg.n == lg.cap) {
        lg.cap = lg.cap ? lg.cap * 2 : 64;
        lg.rows = fs_realloc(lg.rows, lg.cap * sizeof *lg.rows);
    }
    lg.rows[lg.n++] = *row;
    if ((int)lg.n >= fs_cfg->search_log_batch)
        fsint_search_log_flush();
}

void fsint_search_log_free(void)
{
    free(lg.rows);
    memset(&lg, 0, sizeof lg);
}
