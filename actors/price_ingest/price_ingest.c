/* The price-ingest actor: validation, the bounded buffer, batched COPY transactions, asks
 * answered after commit, the Redis stream, retention and the shutdown drain.
 *
 * Everything lives in fs_price_ingest_t, not in the actor's state, so that a restart of the
 * actor (a bug in a handler) loses neither buffered rows nor waiting asks; the actor's init
 * only re-arms its timers. One operation at a time runs on the connection: a flush
 * (partitions, COPY, insert + aggregate + commit) or the retention job.
 *
 * A flush takes the oldest `batch_rows` rows; they stay in the buffer until COMMIT succeeds,
 * so an outage or an error only delays them. A retry after an unknown COMMIT outcome is safe:
 * the primary key turns re-sent rows into duplicates, and price_daily only counts rows the
 * INSERT actually returned.
 */
#include "actors/price_ingest/price_ingest.h"

#include "actors/price_ingest/ingest_db.h"
#include "actors/price_ingest/rows.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "schemas/prices.pb-c.h"
#include "storage/pg.h"
#include "storage/redis.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PI_MAX_ATTEMPTS 5            /* database errors on one batch before it is given up */
#define PI_RETRY_MIN_MS 200
#define PI_RETRY_MAX_MS 5000
#define PI_REFUSE_LOG_MS 1000        /* refused fire-and-forget batches: one log line per second */
#define PI_SHRINK_ROWS 65536         /* an emptied buffer larger than this gives its memory back */
#define PI_SLOW_BATCHES 16           /* after a duplicate, batches that go the staging way directly */
#define PI_DAY_MS 86400000

static const char STAGE_SQL[] =
    "CREATE TEMP TABLE IF NOT EXISTS price_ingest_stage ("
    " time timestamptz NOT NULL, origin_code varchar(10) NOT NULL, destination_code varchar(10) NOT NULL,"
    " airline varchar(100) NOT NULL, departure_date date NOT NULL, cabin_class varchar(50) NOT NULL,"
    " price numeric(10,2) NOT NULL, currency varchar(3) NOT NULL, source varchar(50), seq integer NOT NULL"
    ") ON COMMIT DELETE ROWS;"
    " CREATE TEMP TABLE IF NOT EXISTS price_ingest_daily ("
    " origin_code varchar(10) NOT NULL, destination_code varchar(10) NOT NULL, day date NOT NULL,"
    " price_sum numeric(14,2) NOT NULL, min_price numeric(10,2) NOT NULL, max_price numeric(10,2) NOT NULL,"
    " sample_count integer NOT NULL"
    ") ON COMMIT DELETE ROWS";

/* The fast way, for a batch without duplicates: COPY straight into price_history (multi-row
 * inserts, no staging), the daily sums computed here from those very rows. A duplicate makes
 * the COPY fail (unique_violation) and the transaction roll back; the batch then goes the
 * staging way below. */
static const char FAST_COPY_SQL[] =
    "BEGIN; COPY price_history (time, origin_code, destination_code, airline, departure_date,"
    " cabin_class, price, currency, source) FROM STDIN";
static const char FAST_DAILY_COPY_SQL[] = "COPY price_ingest_daily FROM STDIN";
static const char FAST_DAILY_SQL[] =
    "INSERT INTO price_daily AS d (origin_code, destination_code, day, price_sum, min_price, max_price, sample_count)"
    " SELECT * FROM price_ingest_daily ORDER BY 1, 2, 3"
    " ON CONFLICT (origin_code, destination_code, day) DO UPDATE SET"
    "   price_sum = d.price_sum + EXCLUDED.price_sum,"
    "   min_price = LEAST(d.min_price, EXCLUDED.min_price),"
    "   max_price = GREATEST(d.max_price, EXCLUDED.max_price),"
    "   sample_count = d.sample_count + EXCLUDED.sample_count;"
    " COMMIT";

static const char COPY_SQL[] =
    "BEGIN; COPY price_ingest_stage (time, origin_code, destination_code, airline, departure_date,"
    " cabin_class, price, currency, source, seq) FROM STDIN";

/* One statement inserts the new rows, folds exactly those into price_daily and returns their
 * seq; COMMIT follows in the same string. Rows are taken in key order (and daily keys
 * upserted in key order) so that concurrent ingests on several hosts lock in one order. */
static const char INSERT_SQL[] =
    "WITH src AS ("
    "  SELECT DISTINCT ON (time, origin_code, destination_code, airline, departure_date, cabin_class) *"
    "  FROM price_ingest_stage"
    "  ORDER BY time, origin_code, destination_code, airline, departure_date, cabin_class, seq"
    "), ins AS ("
    "  INSERT INTO price_history (time, origin_code, destination_code, airline, departure_date, cabin_class,"
    "                             price, currency, source)"
    "  SELECT time, origin_code, destination_code, airline, departure_date, cabin_class, price, currency, source"
    "  FROM src ON CONFLICT DO NOTHING"
    "  RETURNING time, origin_code, destination_code, airline, departure_date, cabin_class, price"
    "), daily AS ("
    "  INSERT INTO price_daily AS d (origin_code, destination_code, day, price_sum, min_price, max_price, sample_count)"
    "  SELECT origin_code, destination_code, (time AT TIME ZONE 'UTC')::date, sum(price), min(price), max(price), count(*)"
    "  FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    "  ON CONFLICT (origin_code, destination_code, day) DO UPDATE SET"
    "    price_sum = d.price_sum + EXCLUDED.price_sum,"
    "    min_price = LEAST(d.min_price, EXCLUDED.min_price),"
    "    max_price = GREATEST(d.max_price, EXCLUDED.max_price),"
    "    sample_count = d.sample_count + EXCLUDED.sample_count"
    ")"
    " SELECT src.seq FROM ins JOIN src USING (time, origin_code, destination_code, airline, departure_date, cabin_class);"
    " COMMIT";

typedef struct pi_ask {
    struct pi_ask *next;
    uint32_t id;
    fs_reply_addr_t to;
    size_t rows_left;
    int accepted, duplicates, invalid;
    int status;
    char *error;
} pi_ask_t;

/* Stream counters outlive the ingest object: XADD callbacks may run after it is freed (the
 * Redis client is freed later and runs its pending callbacks then). */
typedef struct pi_stream {
    size_t refs;
    uint64_t appended, errors;
    fs_metric_series_t *m_errors;
} pi_stream_t;

typedef enum { OP_NONE, OP_FLUSH, OP_RETENTION } pi_op_t;

struct fs_price_ingest {
    fs_actor_system_t *sys;
    fs_actor_t *actor;
    fs_ingest_db_t *db;
    fs_redis_t *redis;
    pi_stream_t *stream;
    /* settings */
    size_t batch_rows, buffer_rows;
    int flush_ms, retention_days, stream_maxlen, retention_delay_ms, retention_interval_ms;
    /* buffer: rows[head, len) wait; the first `inflight` of them are being written */
    fs_price_row_t *rows;
    size_t head, len, cap, inflight;
    /* asks waiting for commit, in buffer order */
    pi_ask_t *asks, *asks_tail;
    size_t n_asks;
    uint32_t next_ask_id;
    /* the operation on the connection */
    pi_op_t op;
    bool flush_due, retry_wait, draining, closing;
    int attempts;
    int slow_batches; /* batches left that skip the fast way (a duplicate was seen lately) */
    int64_t flush_started_ms;
    struct event *retry_timer, *drain_ev;
    char *copybuf;
    size_t copybuf_cap;
    int *months; /* partitions known to exist (year * 12 + month - 1) */
    size_t n_months, cap_months;
    int *new_months; /* months of the batch being written that are not known yet */
    size_t n_new, cap_new;
    /* retention */
    bool retention_pending, ret_locked;
    int ret_step, ret_created, ret_dropped;
    char *ret_error;
    fs_price_retention_fn ret_cb;
    void *ret_arg;
    /* drain */
    void (*drain_done)(void *);
    void *drain_arg;
    /* counters and metrics */
    fs_price_ingest_stats_t st;
    int64_t refuse_logged_ms;
    uint64_t refused_unlogged;
    fs_metric_series_t *m_received, *m_committed, *m_duplicate, *m_invalid, *m_refused, *m_failed;
    fs_metric_series_t *m_batch_seconds, *m_buffer, *m_db_errors, *m_dropped;
};

static void pump(fs_price_ingest_t *pi);

/*--- small helpers ---------------------------------------------------------------------*/

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void inc(fs_metric_series_t *s, double by)
{
    if (s && by > 0)
        fs_metric_inc(s, by);
}

static size_t depth(const fs_price_ingest_t *pi)
{
    return pi->len - pi->head;
}

static void update_depth_gauge(fs_price_ingest_t *pi)
{
    if (pi->m_buffer)
        fs_metric_set(pi->m_buffer, (double)depth(pi));
}

static int cfg_int(int opt, int from_cfg, int dflt)
{
    if (opt)
        return opt;
    return fs_cfg ? from_cfg : dflt;
}

/* Room for `n` more rows at the tail: compacts the consumed head first, then grows. */
static void buffer_reserve(fs_price_ingest_t *pi, size_t n)
{
    if (pi->len + n <= pi->cap)
        return;
    if (pi->head > 0) {
        memmove(pi->rows, pi->rows + pi->head, depth(pi) * sizeof *pi->rows);
        pi->len -= pi->head;
        pi->head = 0;
    }
    if (pi->len + n <= pi->cap)
        return;
    size_t cap = pi->cap ? pi->cap * 2 : 1024;
    while (cap < pi->len + n)
        cap *= 2;
    pi->rows = fs_realloc(pi->rows, cap * sizeof *pi->rows);
    pi->cap = cap;
}

/* Rows [head, head + n) are done (written, duplicate or given up). */
static void buffer_consume(fs_price_ingest_t *pi, size_t n)
{
    pi->head += n;
    if (pi->head == pi->len) {
        pi->head = pi->len = 0;
        if (pi->cap > PI_SHRINK_ROWS) { /* an outage grew it: give the memory back */
            free(pi->rows);
            pi->rows = NULL;
            pi->cap = 0;
        }
    }
    update_depth_gauge(pi);
}

/*--- asks ------------------------------------------------------------------------------*/

static void ask_answer(fs_price_ingest_t *pi, fs_reply_addr_t to, int status, const char *error, int accepted,
                       int duplicates, int invalid)
{
    Fs__Prices__PriceBatchReply *r = fs_pb_new(&fs__prices__price_batch_reply__descriptor);
    r->has_status = r->has_accepted = r->has_duplicates = r->has_invalid = true;
    r->status = status;
    r->accepted = accepted;
    r->duplicates = duplicates;
    r->invalid = invalid;
    if (error)
        r->error = fs_strdup(error);
    fs_actor_reply_to(pi->sys, to, FS_OK, FS_MSG_PRICE_BATCH_REPLY, &r->base);
}

static void ask_free(pi_ask_t *a)
{
    free(a->error);
    free(a);
}

/* Answers the asks at the front whose rows are all done (asks finish in buffer order). */
static void asks_answer_done(fs_price_ingest_t *pi)
{
    while (pi->asks && pi->asks->rows_left == 0) {
        pi_ask_t *a = pi->asks;
        pi->asks = a->next;
        if (!pi->asks)
            pi->asks_tail = NULL;
        pi->n_asks--;
        ask_answer(pi, a->to, a->status, a->error, a->accepted, a->duplicates, a->invalid);
        ask_free(a);
    }
}

/* The ask `id` among the waiting ones, searching from `from` (rows and asks share one order). */
static pi_ask_t *ask_find(pi_ask_t *from, uint32_t id)
{
    while (from && from->id != id)
        from = from->next;
    return from;
}

/*--- the Redis stream ------------------------------------------------------------------*/

static void stream_release(pi_stream_t *s)
{
    if (--s->refs == 0)
        free(s);
}

static void on_xadd(redisReply *reply, const char *error, void *arg)
{
    pi_stream_t *s = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        s->errors++;
        inc(s->m_errors, 1);
    } else {
        s->appended++;
    }
    stream_release(s);
}

/* XADD flightshark:prices MAXLEN ~ N * t <ms> o <origin> d <dest> a <airline> dd <date>
 * c <cabin> p <price> cur <currency> [src <source>] */
static void stream_append(fs_price_ingest_t *pi, const fs_price_row_t *r)
{
    if (!pi->redis || pi->stream_maxlen <= 0)
        return;
    char t[24], maxlen[16], dep[11], price[24];
    snprintf(t, sizeof t, "%" PRId64, r->t_ms);
    snprintf(maxlen, sizeof maxlen, "%d", pi->stream_maxlen);
    fs_price_format_date(r->dep_days, dep);
    fs_price_format_cents(r->price_cents, price);
    const char *argv[] = {"XADD", FS_PRICE_STREAM_KEY, "MAXLEN", "~", maxlen, "*", "t", t, "o", r->origin, "d",
                          r->dest, "a", r->airline, "dd", dep, "c", fs_price_cabin_name(r->cabin), "p", price,
                          "cur", r->currency, "src", r->source};
    int argc = (int)(sizeof argv / sizeof *argv) - (r->source[0] ? 0 : 2);
    size_t lens[sizeof argv / sizeof *argv];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    pi->stream->refs++;
    fs_redis_commandargv(pi->redis, on_xadd, pi->stream, argc, argv, lens);
}

/*--- flushing --------------------------------------------------------------------------*/

static bool month_known(const fs_price_ingest_t *pi, int m)
{
    for (size_t i = 0; i < pi->n_months; i++)
        if (pi->months[i] == m)
            return true;
    return false;
}

static void months_add(int **arr, size_t *n, size_t *cap, int m)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *arr = fs_realloc(*arr, *cap * sizeof **arr);
    }
    (*arr)[(*n)++] = m;
}

static void flush_done(fs_price_ingest_t *pi)
{
    pi->op = OP_NONE;
    pi->inflight = 0;
    pump(pi);
}

/* The batch could not be written this time. An outage (`down`) waits for the reconnect and
 * costs no attempt; a refusal is retried with backoff and given up after PI_MAX_ATTEMPTS, so
 * one poisoned batch cannot stall the buffer forever: its asks learn it (FS_EFAIL) and its
 * rows are counted as failed and logged. */
static void flush_failed(fs_price_ingest_t *pi, bool down, const char *error)
{
    pi->st.db_errors++;
    inc(pi->m_db_errors, 1);
    if (down) {
        fs_debug("price-ingest: batch of %zu rows waits for the database: %s", pi->inflight, error);
        flush_done(pi);
        return;
    }
    if (++pi->attempts < PI_MAX_ATTEMPTS) {
        int delay = PI_RETRY_MIN_MS << (pi->attempts - 1);
        if (delay > PI_RETRY_MAX_MS)
            delay = PI_RETRY_MAX_MS;
        fs_warn("price-ingest: batch of %zu rows failed (attempt %d of %d, retry in %d ms): %s", pi->inflight,
                pi->attempts, PI_MAX_ATTEMPTS, delay, error);
        pi->retry_wait = true;
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        evtimer_add(pi->retry_timer, &tv);
        flush_done(pi);
        return;
    }
    fs_error("price-ingest: giving up a batch of %zu rows after %d attempts: %s", pi->inflight, pi->attempts, error);
    pi_ask_t *cursor = pi->asks;
    for (size_t i = 0; i < pi->inflight; i++) {
        const fs_price_row_t *r = &pi->rows[pi->head + i];
        if (!r->ask || !(cursor = ask_find(cursor, r->ask)))
            continue;
        cursor->rows_left--;
        cursor->status = FS_EFAIL;
        if (!cursor->error)
            cursor->error = fs_sprintf("database refused the rows: %s", error);
    }
    pi->st.failed += pi->inflight;
    inc(pi->m_failed, (double)pi->inflight);
    pi->attempts = 0;
    buffer_consume(pi, pi->inflight);
    asks_answer_done(pi);
    flush_done(pi);
}

/* The batch is committed. The next batch is sent before the stream appends run, so that the
 * database works on it while this process formats the XADDs. */
static void flush_committed(fs_price_ingest_t *pi, const bool *inserted)
{
    size_t n = pi->inflight, added = 0;
    bool stream = pi->redis && pi->stream_maxlen > 0;
    fs_price_row_t *appended = stream ? fs_malloc((n ? n : 1) * sizeof *appended) : NULL;
    pi_ask_t *cursor = pi->asks;
    for (size_t i = 0; i < n; i++) {
        const fs_price_row_t *r = &pi->rows[pi->head + i];
        if (inserted[i] && stream)
            appended[added] = *r;
        added += inserted[i];
        if (!r->ask || !(cursor = ask_find(cursor, r->ask)))
            continue;
        cursor->rows_left--;
        if (inserted[i])
            cursor->accepted++;
        else
            cursor->duplicates++;
    }
    pi->st.committed += added;
    pi->st.duplicates += n - added;
    pi->st.batches++;
    inc(pi->m_committed, (double)added);
    inc(pi->m_duplicate, (double)(n - added));
    if (pi->m_batch_seconds)
        fs_metric_observe(pi->m_batch_seconds, (double)(wall_ms() - pi->flush_started_ms) / 1000.0);
    pi->attempts = 0;
    buffer_consume(pi, n);
    asks_answer_done(pi);
    flush_done(pi);
    for (size_t i = 0; stream && i < added; i++)
        stream_append(pi, &appended[i]);
    free(appended);
}

static void on_inserted(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate, void *arg)
{
    fs_price_ingest_t *pi = arg;
    if (pi->closing)
        return;
    if (st != FS_INGEST_DB_OK || !res) {
        flush_failed(pi, st == FS_INGEST_DB_DOWN, error ? error : "no result");
        return;
    }
    bool *inserted = fs_calloc(pi->inflight ? pi->inflight : 1, sizeof *inserted);
    for (int i = 0; i < PQntuples(res); i++) {
        long seq = strtol(PQgetvalue(res, i, 0), NULL, 10);
        if (seq >= 0 && (size_t)seq < pi->inflight)
            inserted[seq] = true;
    }
    flush_committed(pi, inserted);
    free(inserted);
}

static void on_copied(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate, void *arg)
{
    fs_price_ingest_t *pi = arg;
    if (pi->closing)
        return;
    if (st != FS_INGEST_DB_OK) {
        flush_failed(pi, st == FS_INGEST_DB_DOWN, error);
        return;
    }
    if (fs_ingest_db_exec(pi->db, INSERT_SQL, NULL, 0, on_inserted, pi) != 0)
        flush_failed(pi, true, "connection not idle");
}

/* One price_daily row per (origin, destination, observation day) of the batch. */
typedef struct {
    char origin[4], dest[4];
    int32_t day;
    int64_t sum, min, max;
    int count;
    bool used;
} daily_t;

static uint64_t daily_hash(const fs_price_row_t *r, int32_t day)
{
    uint64_t h = 1469598103934665603ULL;
    const char *parts[] = {r->origin, r->dest};
    for (int p = 0; p < 2; p++)
        for (const char *c = parts[p]; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    return (h ^ (uint64_t)(uint32_t)day) * 1099511628211ULL;
}

/* The daily sums of the whole batch as COPY text for price_ingest_daily; caller frees. */
static char *fast_daily_text(const fs_price_ingest_t *pi, size_t *len)
{
    size_t cap = 16;
    while (cap < pi->inflight * 2)
        cap *= 2;
    daily_t *t = fs_calloc(cap, sizeof *t);
    size_t used = 0;
    for (size_t i = 0; i < pi->inflight; i++) {
        const fs_price_row_t *r = &pi->rows[pi->head + i];
        int32_t day = (int32_t)(r->t_ms >= 0 ? r->t_ms / PI_DAY_MS : (r->t_ms - PI_DAY_MS + 1) / PI_DAY_MS);
        size_t k = daily_hash(r, day) & (cap - 1);
        while (t[k].used && !(t[k].day == day && strcmp(t[k].origin, r->origin) == 0 && strcmp(t[k].dest, r->dest) == 0))
            k = (k + 1) & (cap - 1);
        daily_t *d = &t[k];
        if (!d->used) {
            *d = (daily_t){.day = day, .min = r->price_cents, .max = r->price_cents, .used = true};
            memcpy(d->origin, r->origin, 4);
            memcpy(d->dest, r->dest, 4);
            used++;
        }
        d->sum += r->price_cents;
        d->min = r->price_cents < d->min ? r->price_cents : d->min;
        d->max = r->price_cents > d->max ? r->price_cents : d->max;
        d->count++;
    }
    char *out = fs_malloc(used * 96 + 1), *p = out;
    for (size_t k = 0; k < cap; k++) {
        if (!t[k].used)
            continue;
        char date[11], sum[24], min[24], max[24];
        fs_price_format_date(t[k].day, date);
        fs_price_format_cents(t[k].sum, sum);
        fs_price_format_cents(t[k].min, min);
        fs_price_format_cents(t[k].max, max);
        p += sprintf(p, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", t[k].origin, t[k].dest, date, sum, min, max, t[k].count);
    }
    free(t);
    *len = (size_t)(p - out);
    return out;
}

static void flush_copy(fs_price_ingest_t *pi);

static void on_fast_committed(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate,
                              void *arg)
{
    fs_price_ingest_t *pi = arg;
    if (pi->closing)
        return;
    if (st != FS_INGEST_DB_OK) {
        flush_failed(pi, st == FS_INGEST_DB_DOWN, error);
        return;
    }
    bool *all = fs_malloc((pi->inflight ? pi->inflight : 1) * sizeof *all);
    memset(all, 1, (pi->inflight ? pi->inflight : 1) * sizeof *all);
    flush_committed(pi, all);
    free(all);
}

static void on_fast_daily_copied(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate,
                                 void *arg)
{
    fs_price_ingest_t *pi = arg;
    if (pi->closing)
        return;
    if (st != FS_INGEST_DB_OK) {
        flush_failed(pi, st == FS_INGEST_DB_DOWN, error);
        return;
    }
    if (fs_ingest_db_exec(pi->db, FAST_DAILY_SQL, NULL, 0, on_fast_committed, pi) != 0)
        flush_failed(pi, true, "connection not idle");
}

static void on_fast_copied(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate,
                           void *arg)
{
    fs_price_ingest_t *pi = arg;
    if (pi->closing)
        return;
    if (st == FS_INGEST_DB_ERROR && strcmp(sqlstate, "23505") == 0) {
        /* a duplicate: the transaction is rolled back; the staging way sorts them out */
        pi->slow_batches = PI_SLOW_BATCHES;
        flush_copy(pi);
        return;
    }
    if (st != FS_INGEST_DB_OK) {
        flush_failed(pi, st == FS_INGEST_DB_DOWN, error);
        return;
    }
    size_t len;
    char *daily = fast_daily_text(pi, &len);
    int rc = fs_ingest_db_exec(pi->db, FAST_DAILY_COPY_SQL, daily, len, on_fast_daily_copied, pi);
    free(daily);
    if (rc != 0)
        flush_failed(pi, true, "connection not idle");
}

/* Writes the batch: the fast way unless a duplicate was seen in the last PI_SLOW_BATCHES
 * batches, else through the staging table. */
static void flush_copy(fs_price_ingest_t *pi)
{
    size_t need = pi->inflight * FS_PRICE_LINE_MAX;
    if (need > pi->copybuf_cap) {
        free(pi->copybuf);
        pi->copybuf = fs_malloc(need);
        pi->copybuf_cap = need;
    }
    bool fast = pi->slow_batches == 0;
    size_t len = 0;
    for (size_t i = 0; i < pi->inflight; i++) {
        size_t n = fs_price_row_copy_line(&pi->rows[pi->head + i], (int)i, pi->copybuf + len);
        if (fast) { /* price_history has no seq column: cut it */
            char *tab = memrchr(pi->copybuf + len, '\t', n);
            *tab = '\n';
            n = (size_t)(tab - (pi->copybuf + len)) + 1;
        }
        len += n;
    }
    if (!fast)
        pi->slow_batches--;
    int rc = fast ? fs_ingest_db_exec(pi->db, FAST_COPY_SQL, pi->copybuf, len, on_fast_copied, pi)
                  : fs_ingest_db_exec(pi->db, COPY_SQL, pi->copybuf, len, on_copied, pi);
    if (rc != 0)
        flush_failed(pi, true, "connection not idle");
}

static void on_partitions(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate,
                          void *arg)
{
    fs_price_ingest_t *pi = arg;
    if (pi->closing)
        return;
    if (st != FS_INGEST_DB_OK) {
        /* a concurrent creation by another host (42P07, 23505) succeeds on the retry */
        flush_failed(pi, st == FS_INGEST_DB_DOWN, error);
        return;
    }
    int created = res && PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
    pi->st.partitions_created += (uint64_t)created;
    for (size_t i = 0; i < pi->n_new; i++)
        months_add(&pi->months, &pi->n_months, &pi->cap_months, pi->new_months[i]);
    pi->n_new = 0;
    flush_copy(pi);
}

/* Before COPY: the monthly partitions of every month in the batch that this process has not
 * ensured yet (fs_price_history_ensure_partitions from 004, one call per month). */
static bool flush_ensure_partitions(fs_price_ingest_t *pi)
{
    pi->n_new = 0;
    for (size_t i = 0; i < pi->inflight; i++) {
        int m = fs_price_row_month(&pi->rows[pi->head + i]);
        bool seen = month_known(pi, m);
        for (size_t j = 0; !seen && j < pi->n_new; j++)
            seen = pi->new_months[j] == m;
        if (!seen)
            months_add(&pi->new_months, &pi->n_new, &pi->cap_new, m);
    }
    if (pi->n_new == 0)
        return false;
    char *sql = fs_strdup("SELECT 0");
    for (size_t i = 0; i < pi->n_new; i++) {
        int y = pi->new_months[i] / 12, mo = pi->new_months[i] % 12 + 1;
        char *next = fs_sprintf("%s + fs_price_history_ensure_partitions('%04d-%02d-01 00:00:00+00', "
                                "'%04d-%02d-01 00:00:00+00')", sql, y, mo, y, mo);
        free(sql);
        sql = next;
    }
    if (fs_ingest_db_exec(pi->db, sql, NULL, 0, on_partitions, pi) != 0)
        flush_failed(pi, true, "connection not idle");
    free(sql);
    return true;
}

static void flush_start(fs_price_ingest_t *pi, size_t n)
{
    pi->op = OP_FLUSH;
    pi->inflight = n;
    pi->flush_started_ms = wall_ms();
    if (!flush_ensure_partitions(pi))
        flush_copy(pi);
}

/*--- retention -------------------------------------------------------------------------*/

enum { RET_LOCK, RET_AHEAD, RET_LIST, RET_DROP, RET_UNLOCK };

static void retention_step(fs_price_ingest_t *pi, int step);

static void retention_finish(fs_price_ingest_t *pi, bool skipped)
{
    if (pi->ret_error)
        fs_warn("price-ingest: retention failed: %s", pi->ret_error);
    else if (!skipped)
        fs_info("price-ingest: retention created %d and dropped %d partitions (retention %d days)",
                pi->ret_created, pi->ret_dropped, pi->retention_days);
    pi->n_months = 0; /* dropped months must be ensured again if ever written */
    pi->op = OP_NONE;
    fs_price_retention_fn cb = pi->ret_cb;
    void *arg = pi->ret_arg;
    char *error = pi->ret_error;
    pi->ret_cb = NULL;
    pi->ret_error = NULL;
    if (cb)
        cb(pi->ret_created, pi->ret_dropped, skipped, error, arg);
    free(error);
    pump(pi);
}

static void on_retention(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate, void *arg)
{
    fs_price_ingest_t *pi = arg;
    if (pi->closing)
        return;
    if (st != FS_INGEST_DB_OK) {
        if (!pi->ret_error)
            pi->ret_error = fs_strdup(error ? error : "database error");
        if (st == FS_INGEST_DB_DOWN) { /* the session lock went with the session; run again when up */
            pi->ret_locked = false;
            pi->retention_pending = true;
        }
        if (pi->ret_locked && pi->ret_step != RET_UNLOCK)
            retention_step(pi, RET_UNLOCK);
        else
            retention_finish(pi, false);
        return;
    }
    switch (pi->ret_step) {
    case RET_LOCK:
        pi->ret_locked = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
        if (!pi->ret_locked) {
            fs_info("price-ingest: retention skipped: another process holds the lock");
            retention_finish(pi, true);
            return;
        }
        retention_step(pi, RET_AHEAD);
        return;
    case RET_AHEAD:
        pi->ret_created = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
        pi->st.partitions_created += (uint64_t)pi->ret_created;
        retention_step(pi, RET_LIST);
        return;
    case RET_LIST: {
        int n = PQntuples(res);
        if (n == 0) {
            retention_step(pi, RET_UNLOCK);
            return;
        }
        /* the names matched ^price_history_[0-9]{4}_[0-9]{2}$: quoting is enough */
        char *sql = fs_strdup("DROP TABLE IF EXISTS ");
        for (int i = 0; i < n; i++) {
            char *next = fs_sprintf("%s%s\"%s\"", sql, i ? ", " : "", PQgetvalue(res, i, 0));
            free(sql);
            sql = next;
        }
        pi->ret_dropped = n;
        pi->ret_step = RET_DROP;
        if (fs_ingest_db_exec(pi->db, sql, NULL, 0, on_retention, pi) != 0)
            abort(); /* the connection was idle: we are its callback */
        free(sql);
        return;
    }
    case RET_DROP:
        pi->st.partitions_dropped += (uint64_t)pi->ret_dropped;
        inc(pi->m_dropped, pi->ret_dropped);
        retention_step(pi, RET_UNLOCK);
        return;
    default:
        pi->ret_locked = false;
        retention_finish(pi, false);
        return;
    }
}

static void retention_step(fs_price_ingest_t *pi, int step)
{
    char *sql;
    switch (step) {
    case RET_LOCK:
        sql = fs_sprintf("SELECT pg_try_advisory_lock(%lld)", (long long)FS_PRICE_RETENTION_LOCK_KEY);
        break;
    case RET_AHEAD:
        sql = fs_strdup("SELECT fs_price_history_ensure_partitions(now(), now() + interval '2 months')");
        break;
    case RET_LIST:
        /* a partition goes when its whole month (upper bound, UTC) is older than the cutoff */
        sql = fs_sprintf("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                         " WHERE i.inhparent = 'price_history'::regclass"
                         " AND c.relname ~ '^price_history_[0-9]{4}_[0-9]{2}$'"
                         " AND to_date(right(c.relname, 7), 'YYYY_MM') + interval '1 month'"
                         "     <= (now() AT TIME ZONE 'UTC') - interval '%d days'"
                         " ORDER BY 1",
                         pi->retention_days);
        break;
    default:
        sql = fs_sprintf("SELECT pg_advisory_unlock(%lld)", (long long)FS_PRICE_RETENTION_LOCK_KEY);
        break;
    }
    pi->ret_step = step;
    int rc = fs_ingest_db_exec(pi->db, sql, NULL, 0, on_retention, pi);
    free(sql);
    if (rc != 0)
        abort(); /* only called with the connection idle */
}

static void retention_start(fs_price_ingest_t *pi)
{
    pi->retention_pending = false;
    pi->op = OP_RETENTION;
    pi->ret_created = pi->ret_dropped = 0;
    pi->ret_locked = false;
    retention_step(pi, RET_LOCK);
}

/*--- the pump: what the connection does next -------------------------------------------*/

static bool is_idle(const fs_price_ingest_t *pi)
{
    return depth(pi) == 0 && pi->op == OP_NONE && !pi->asks;
}

static void check_drained(fs_price_ingest_t *pi)
{
    if (pi->draining && pi->drain_done && is_idle(pi))
        event_active(pi->drain_ev, EV_TIMEOUT, 1);
}

static void pump(fs_price_ingest_t *pi)
{
    if (pi->closing || pi->op != OP_NONE || !fs_ingest_db_idle(pi->db)) {
        check_drained(pi);
        return;
    }
    if (pi->retention_pending && !pi->draining) {
        retention_start(pi);
        return;
    }
    size_t n = depth(pi);
    if (n == 0 || pi->retry_wait) {
        check_drained(pi);
        return;
    }
    if (n < pi->batch_rows && !pi->flush_due && !pi->draining)
        return;
    if (n <= pi->batch_rows)
        pi->flush_due = false;
    flush_start(pi, n < pi->batch_rows ? n : pi->batch_rows);
}

static void on_db_up(void *arg)
{
    pump(arg);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    fs_price_ingest_t *pi = arg;
    pi->retry_wait = false;
    pump(pi);
}

static void on_drain_event(evutil_socket_t fd, short what, void *arg)
{
    fs_price_ingest_t *pi = arg;
    if (!pi->drain_done || !is_idle(pi))
        return;
    void (*done)(void *) = pi->drain_done;
    pi->drain_done = NULL;
    done(pi->drain_arg);
}

/*--- the actor -------------------------------------------------------------------------*/

static void refuse_log(fs_price_ingest_t *pi, size_t rows)
{
    int64_t now = wall_ms();
    pi->refused_unlogged += rows;
    if (now - pi->refuse_logged_ms < PI_REFUSE_LOG_MS)
        return;
    fs_warn("price-ingest: buffer full (%zu of %zu rows): refused %" PRIu64 " observations", depth(pi),
            pi->buffer_rows, pi->refused_unlogged);
    pi->refuse_logged_ms = now;
    pi->refused_unlogged = 0;
}

static int on_batch(fs_price_ingest_t *pi, fs_msg_t *msg)
{
    bool is_ask = msg->reply_to.corr_id != 0;
    Fs__Prices__PriceBatch *b = fs_msg_body(msg, &fs__prices__price_batch__descriptor);
    if (!b) {
        if (is_ask)
            ask_answer(pi, msg->reply_to, FS_EINVAL, "not a PriceBatch", 0, 0, 0);
        return FS_OK;
    }
    size_t n = b->n_observations, valid = 0, invalid = 0;
    const char *reason = NULL;
    int64_t now = wall_ms();
    pi->st.received += n;
    inc(pi->m_received, (double)n);
    buffer_reserve(pi, n);
    for (size_t i = 0; i < n; i++) {
        const char *why = fs_price_row_parse(&pi->rows[pi->len + valid], b->observations[i], now, pi->retention_days);
        if (why) {
            invalid++;
            reason = reason ? reason : why;
        } else {
            valid++;
        }
    }
    pi->st.invalid += invalid;
    inc(pi->m_invalid, (double)invalid);
    if (invalid)
        fs_debug("price-ingest: %zu of %zu observations invalid (first: %s)", invalid, n, reason);
    if (depth(pi) + valid > pi->buffer_rows) {
        pi->st.refused += valid;
        inc(pi->m_refused, (double)valid);
        if (is_ask) {
            char *err = fs_sprintf("resource exhausted: the price buffer holds %zu of %zu rows", depth(pi),
                                   pi->buffer_rows);
            ask_answer(pi, msg->reply_to, FS_EFULL, err, 0, 0, (int)invalid);
            free(err);
        } else {
            refuse_log(pi, valid);
        }
        return FS_OK;
    }
    bool wait = is_ask && b->has_wait_commit && b->wait_commit;
    if (wait && valid > 0) {
        pi_ask_t *a = FS_NEW(pi_ask_t);
        if (++pi->next_ask_id == 0) /* 0 means "no ask" */
            pi->next_ask_id = 1;
        a->id = pi->next_ask_id;
        a->to = msg->reply_to;
        a->rows_left = valid;
        a->invalid = (int)invalid;
        for (size_t i = 0; i < valid; i++)
            pi->rows[pi->len + i].ask = a->id;
        if (pi->asks_tail)
            pi->asks_tail->next = a;
        else
            pi->asks = a;
        pi->asks_tail = a;
        pi->n_asks++;
    }
    pi->len += valid;
    update_depth_gauge(pi);
    if (is_ask && !(wait && valid > 0))
        ask_answer(pi, msg->reply_to, FS_OK, NULL, wait ? 0 : (int)valid, 0, (int)invalid);
    if (depth(pi) >= pi->batch_rows || pi->draining)
        pump(pi);
    return FS_OK;
}

static int pi_behaviour(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    fs_price_ingest_t *pi = state;
    switch (msg->type) {
    case FS_MSG_PRICE_BATCH:
        return on_batch(pi, msg);
    case FS_MSG_PRICE_FLUSH_TICK:
        if (depth(pi) > 0)
            pi->flush_due = true;
        pump(pi);
        return FS_OK;
    case FS_MSG_PRICE_RETENTION_TICK:
        pi->retention_pending = true;
        pump(pi);
        return FS_OK;
    default:
        fs_warn("price-ingest: unexpected message type %u", msg->type);
        if (msg->reply_to.corr_id)
            fs_actor_reply_to(pi->sys, msg->reply_to, FS_EINVAL, 0, NULL);
        return FS_OK;
    }
}

/* Every incarnation gets the same object and re-arms its timers (a restart cancels them). */
static void *pi_init(fs_actor_t *self, void *arg)
{
    fs_price_ingest_t *pi = arg;
    pi->actor = self;
    fs_actor_timer_start(self, FS_MSG_PRICE_FLUSH_TICK, pi->flush_ms, pi->flush_ms);
    if (pi->retention_delay_ms >= 0)
        fs_actor_timer_start(self, FS_MSG_PRICE_RETENTION_TICK, pi->retention_delay_ms, pi->retention_interval_ms);
    return pi;
}

/*--- public ----------------------------------------------------------------------------*/

void fs_price_ingest_register_types(void)
{
    fs_msg_type_register(FS_MSG_PRICE_BATCH, &fs__prices__price_batch__descriptor);
    fs_msg_type_register(FS_MSG_PRICE_BATCH_REPLY, &fs__prices__price_batch_reply__descriptor);
}

static void install_metrics(fs_price_ingest_t *pi, fs_metrics_t *m)
{
    if (!m)
        return;
    static const char *const labels[] = {"outcome", NULL};
    fs_metric_family_t *rows = fs_metrics_family(m, FS_METRIC_COUNTER, "flightshark_price_ingest_rows_total",
                                                 "Price observations by outcome", labels, NULL, 0);
    fs_metric_series_t **series[] = {&pi->m_received, &pi->m_committed, &pi->m_duplicate,
                                     &pi->m_invalid, &pi->m_refused, &pi->m_failed};
    static const char *const outcomes[] = {"received", "committed", "duplicate", "invalid", "refused", "failed"};
    for (size_t i = 0; i < 6; i++)
        *series[i] = fs_metrics_series(rows, (const char *const[]){outcomes[i]});
    static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    pi->m_batch_seconds = fs_metrics_series(
        fs_metrics_family(m, FS_METRIC_HISTOGRAM, "flightshark_price_ingest_batch_seconds",
                          "Time from the start of a batch write to its commit", NULL, buckets, 12),
        NULL);
    pi->m_buffer = fs_metrics_simple(m, FS_METRIC_GAUGE, "flightshark_price_ingest_buffer_rows",
                                     "Observations waiting to be written");
    pi->m_db_errors = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_price_ingest_db_errors_total",
                                        "Batch writes that failed and were retried or given up");
    pi->m_dropped = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_price_retention_dropped_partitions_total",
                                      "price_history partitions dropped by the retention job");
    pi->stream->m_errors = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_price_stream_errors_total",
                                             "Committed observations not appended to the Redis stream");
}

static void load_settings(fs_price_ingest_t *pi, const fs_price_ingest_opts_t *o)
{
    const fs_config_t *c = fs_cfg;
    pi->batch_rows = (size_t)cfg_int(o->batch_rows, c ? c->price_ingest_batch_rows : 0, 5000);
    pi->flush_ms = cfg_int(o->flush_ms, c ? c->price_ingest_flush_ms : 0, 200);
    pi->buffer_rows = (size_t)cfg_int(o->buffer_rows, c ? c->price_ingest_buffer_rows : 0, 1000000);
    pi->retention_days = cfg_int(o->retention_days, c ? c->price_retention_days : 0, 1461);
    pi->stream_maxlen = cfg_int(o->stream_maxlen, c ? c->price_stream_maxlen : 0, 1000000);
    pi->retention_delay_ms = o->retention_delay_ms ? o->retention_delay_ms : 60000;
    pi->retention_interval_ms = o->retention_interval_ms > 0 ? o->retention_interval_ms : PI_DAY_MS;
}

fs_price_ingest_t *fs_price_ingest_start(fs_actor_system_t *sys, const fs_price_ingest_opts_t *opts)
{
    static const fs_price_ingest_opts_t none = {0};
    const fs_price_ingest_opts_t *o = opts ? opts : &none;
    if (fs_actor_lookup(sys, FS_PRICE_INGEST_ACTOR))
        return NULL;
    fs_price_ingest_t *pi = FS_NEW(fs_price_ingest_t);
    pi->sys = sys;
    pi->redis = o->redis;
    pi->stream = FS_NEW(pi_stream_t);
    pi->stream->refs = 1;
    load_settings(pi, o);
    install_metrics(pi, o->metrics);
    struct event_base *base = fs_actor_system_base(sys);
    pi->retry_timer = evtimer_new(base, on_retry_timer, pi);
    pi->drain_ev = event_new(base, -1, 0, on_drain_event, pi);

    const char *url = o->database_url ? o->database_url : fs_cfg ? fs_cfg->database_url : "";
    char *err = NULL, *conninfo = fs_pg_conninfo(url, &err);
    if (!conninfo) {
        fs_error("price-ingest: DATABASE_URL: %s", err);
        free(err);
        conninfo = fs_strdup("host=/nonexistent-invalid-database-url");
    }
    int stmt_timeout = o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 60000;
    char *init = fs_sprintf("SET application_name = 'flightshark-price-ingest'; SET statement_timeout = %d; %s",
                            stmt_timeout, STAGE_SQL);
    fs_ingest_db_opts_t dbo = {.conninfo = conninfo, .init_sql = init,
                               .connect_timeout_ms = fs_cfg ? fs_cfg->db_connect_timeout_ms : 5000,
                               .exec_timeout_ms = stmt_timeout + 10000, .on_up = on_db_up, .arg = pi};
    pi->db = fs_ingest_db_new(base, &dbo);
    free(conninfo);
    free(init);

    pi->actor = fs_actor_spawn(sys, &(fs_actor_spec_t){.name = FS_PRICE_INGEST_ACTOR, .behaviour = pi_behaviour,
                                                        .init = pi_init, .arg = pi});
    if (!pi->actor) {
        fs_price_ingest_free(pi);
        return NULL;
    }
    return pi;
}

fs_actor_t *fs_price_ingest_actor(const fs_price_ingest_t *pi)
{
    return pi->actor;
}

void fs_price_ingest_drain(fs_price_ingest_t *pi, void (*done)(void *arg), void *arg)
{
    pi->draining = true;
    pi->drain_done = done;
    pi->drain_arg = arg;
    fs_info("price-ingest: draining %zu buffered rows", depth(pi));
    fs_ingest_db_kick(pi->db);
    pump(pi);
    check_drained(pi);
}

bool fs_price_ingest_idle(const fs_price_ingest_t *pi)
{
    return is_idle(pi);
}

void fs_price_ingest_run_retention(fs_price_ingest_t *pi, fs_price_retention_fn done, void *arg)
{
    if (pi->ret_cb) { /* one job at a time: the earlier caller keeps its callback */
        if (done)
            done(0, 0, true, "retention already running", arg);
        return;
    }
    pi->ret_cb = done;
    pi->ret_arg = arg;
    pi->retention_pending = true;
    pump(pi);
}

void fs_price_ingest_get_stats(const fs_price_ingest_t *pi, fs_price_ingest_stats_t *out)
{
    *out = pi->st;
    out->stream_appended = pi->stream->appended;
    out->stream_errors = pi->stream->errors;
    out->buffered = depth(pi);
    out->pending_asks = pi->n_asks;
    out->db_up = fs_ingest_db_up(pi->db);
}

void fs_price_ingest_free(fs_price_ingest_t *pi)
{
    if (!pi)
        return;
    pi->closing = true;
    if (pi->actor)
        fs_actor_stop(pi->actor);
    fs_ingest_db_free(pi->db); /* our callbacks see `closing` and do nothing */
    size_t lost = depth(pi);
    if (lost) {
        fs_error("price-ingest: stopping with %zu observations not written (database unavailable)", lost);
        pi->st.failed += lost;
        inc(pi->m_failed, (double)lost);
    }
    while (pi->asks) {
        pi_ask_t *a = pi->asks;
        pi->asks = a->next;
        ask_answer(pi, a->to, FS_EUNAVAIL, "shutting down before the rows were committed", a->accepted,
                   a->duplicates, a->invalid);
        ask_free(a);
    }
    if (pi->ret_cb)
        pi->ret_cb(pi->ret_created, pi->ret_dropped, false, "shutting down", pi->ret_arg);
    free(pi->ret_error);
    event_free(pi->retry_timer);
    event_free(pi->drain_ev);
    pi->stream->m_errors = NULL;
    stream_release(pi->stream);
    free(pi->rows);
    free(pi->copybuf);
    free(pi->months);
    free(pi->new_months);
    free(pi);
}
