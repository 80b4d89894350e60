/* The price-ingest actor against real PostgreSQL and Redis (DATABASE_URL, REDIS_URL), plus a
 * private PostgreSQL (scripts/services.sh) for the outage test. Each test uses its own origin
 * codes, so tests do not see each other's rows. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/price_ingest/price_ingest.h"
#include "actors/price_ingest/rows.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/metrics.h"
#include "runtime/rpc_client.h"
#include "schemas/prices.pb-c.h"
#include "storage/migrate.h"
#include "storage/pg.h"
#include "storage/redis.h"
#include "tests/support/harness.h"

#define DAY_MS 86400000LL

static struct event_base *base;
static struct event *tick;
static fs_actor_system_t *sys;
static PGconn *db;
static char db_url[512];

static void on_tick(evutil_socket_t fd, short what, void *arg) {}

static void spin_ms(int ms)
{
    double end = fs_test_now_ms() + ms;
    while (fs_test_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

static bool spin_until(const int *flag, int timeout_ms)
{
    double end = fs_test_now_ms() + timeout_ms;
    while (!*flag && fs_test_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return *flag;
}

static PGconn *connect_migrated(const char *url)
{
    char *err = NULL;
    PGconn *c = fs_pg_connect_blocking(url, &err);
    cr_assert_not_null(c, "connect: %s", err);
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    cr_assert_eq(fs_migrate_run(c, fs_migrate_default_dir(), NULL, &err), 0, "migrate: %s", err);
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static void loop_start(void)
{
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    sys = fs_actor_system_new(base, NULL);
    fs_price_ingest_register_types();
}

static void setup(void)
{
    snprintf(db_url, sizeof db_url, "%s", fs_test_env("DATABASE_URL"));
    db = connect_migrated(db_url);
    loop_start();
}

static void loop_stop(void)
{
    fs_actor_system_free(sys);
    event_free(tick);
    event_base_free(base);
}

static void teardown(void)
{
    loop_stop();
    PQfinish(db);
}

/* First column of the first row, as text ("" when no row). */
static char *scalar(PGconn *c, const char *sql)
{
    static char buf[256];
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    snprintf(buf, sizeof buf, "%s", PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return buf;
}

static long count(PGconn *c, const char *fmt, const char *origin)
{
    char sql[512];
    snprintf(sql, sizeof sql, fmt, origin);
    return atol(scalar(c, sql));
}

static void forget_origin(PGconn *c, const char *origin)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DELETE FROM price_history WHERE origin_code = '%s'", origin);
    scalar(c, sql);
    snprintf(sql, sizeof sql, "DELETE FROM price_daily WHERE origin_code = '%s'", origin);
    scalar(c, sql);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Noon (UTC) of the day before today: the same observation day for every row of a test. */
static int64_t yesterday_noon(void)
{
    return (now_ms() / DAY_MS - 1) * DAY_MS + DAY_MS / 2;
}

static char *date_in(int days_from_now)
{
    static char buf[4][11];
    static int i;
    char *b = buf[i++ % 4];
    fs_price_format_date((int32_t)(now_ms() / DAY_MS + days_from_now), b);
    return b;
}

static Fs__Prices__PriceObservation *obs(const char *o, const char *d, const char *airline, const char *dep,
                                         const char *cabin, double price, int64_t t_ms)
{
    Fs__Prices__PriceObservation *x = fs_pb_new(&fs__prices__price_observation__descriptor);
    x->origin = o ? fs_strdup(o) : NULL;
    x->destination = d ? fs_strdup(d) : NULL;
    x->airline = airline ? fs_strdup(airline) : NULL;
    x->departure_date = dep ? fs_strdup(dep) : NULL;
    x->cabin_class = cabin ? fs_strdup(cabin) : NULL;
    if (!isnan(price)) {
        x->has_price = true;
        x->price = price;
    }
    if (t_ms) {
        x->has_observed_at_ms = true;
        x->observed_at_ms = t_ms;
    }
    x->source = fs_strdup("test");
    return x;
}

static Fs__Prices__PriceBatch *batch(bool wait_commit, size_t n, Fs__Prices__PriceObservation **rows)
{
    Fs__Prices__PriceBatch *b = fs_pb_new(&fs__prices__price_batch__descriptor);
    b->has_wait_commit = true;
    b->wait_commit = wait_commit;
    b->n_observations = n;
    b->observations = fs_calloc(n ? n : 1, sizeof *b->observations);
    for (size_t i = 0; i < n; i++)
        b->observations[i] = rows[i];
    return b;
}

/* `n` rows of one route with prices base, base+1, ... at distinct observation times. */
static Fs__Prices__PriceBatch *route_batch(bool wait, const char *origin, int n, double base_price, int64_t t0)
{
    Fs__Prices__PriceObservation **rows = fs_calloc((size_t)n, sizeof *rows);
    for (int i = 0; i < n; i++)
        rows[i] = obs(origin, "ZZZ", "FS", date_in(30), "economy", base_price + i, t0 + i * 1000);
    Fs__Prices__PriceBatch *b = batch(wait, (size_t)n, rows);
    free(rows);
    return b;
}

typedef struct {
    int done;
    int transport;
    int status, accepted, duplicates, invalid;
    char error[256];
    double at_ms;
} reply_t;

static void on_reply(int status, fs_msg_t *msg, void *arg)
{
    reply_t *r = arg;
    r->done = 1;
    r->transport = status;
    r->at_ms = fs_test_now_ms();
    Fs__Prices__PriceBatchReply *b = msg ? fs_msg_body(msg, &fs__prices__price_batch_reply__descriptor) : NULL;
    if (!b) {
        r->status = 999;
        return;
    }
    r->status = b->status;
    r->accepted = b->accepted;
    r->duplicates = b->duplicates;
    r->invalid = b->invalid;
    snprintf(r->error, sizeof r->error, "%s", b->error ? b->error : "");
}

static void ask_async(fs_price_ingest_t *pi, Fs__Prices__PriceBatch *b, reply_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = fs_actor_ask(fs_price_ingest_actor(pi), NULL, FS_MSG_PRICE_BATCH, &b->base, 60000, on_reply, out);
    cr_assert_eq(rc, FS_OK);
}

static reply_t ask(fs_price_ingest_t *pi, Fs__Prices__PriceBatch *b)
{
    reply_t r;
    ask_async(pi, b, &r);
    cr_assert(spin_until(&r.done, 30000), "no reply");
    cr_assert_eq(r.transport, FS_OK, "transport %s", fs_status_str(r.transport));
    return r;
}

static fs_price_ingest_t *start(fs_price_ingest_opts_t o)
{
    if (!o.database_url)
        o.database_url = db_url;
    if (!o.retention_delay_ms)
        o.retention_delay_ms = -1;
    fs_price_ingest_t *pi = fs_price_ingest_start(sys, &o);
    cr_assert_not_null(pi);
    return pi;
}

/*--- the happy path ----------------------------------------------------------------------*/

TestSuite(price_ingest, .init = setup, .fini = teardown, .timeout = 60);

Test(price_ingest, ask_is_answered_after_commit_with_daily_aggregate)
{
    forget_origin(db, "QAA");
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){0});
    int64_t t0 = yesterday_noon();
    reply_t r = ask(pi, route_batch(true, "QAA", 4, 100.25, t0)); /* 100.25, 101.25, 102.25, 103.25 */
    cr_assert_eq(r.status, 0, "%s", r.error);
    cr_assert_eq(r.accepted, 4);
    cr_assert_eq(r.duplicates, 0);
    cr_assert_eq(r.invalid, 0);
    /* the reply came after COMMIT: another session sees the rows now */
    cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAA"), 4);
    cr_assert_str_eq(scalar(db, "SELECT airline || ' ' || cabin_class || ' ' || currency || ' ' || source || ' ' || price"
                                " FROM price_history WHERE origin_code = 'QAA' ORDER BY time LIMIT 1"),
                     "FS economy EUR test 100.25");
    cr_assert_str_eq(scalar(db, "SELECT sample_count || ' ' || min_price || ' ' || max_price || ' ' || price_sum || ' '"
                                " || round(price_sum / sample_count, 2) FROM price_daily WHERE origin_code = 'QAA'"),
                     "4 100.25 103.25 407.00 101.75");
    cr_assert_str_eq(scalar(db, "SELECT day::text FROM price_daily WHERE origin_code = 'QAA'"), date_in(-1));
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.committed, 4);
    cr_assert_eq(st.buffered, 0);
    cr_assert_eq(st.pending_asks, 0);
    cr_assert(fs_price_ingest_idle(pi));
    fs_price_ingest_free(pi);
}

Test(price_ingest, duplicates_are_reported_and_never_counted_twice)
{
    forget_origin(db, "QAB");
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){0});
    int64_t t0 = yesterday_noon();
    reply_t r = ask(pi, route_batch(true, "QAB", 2, 50, t0)); /* 50, 51 */
    cr_assert_eq(r.accepted, 2);
    /* the same two rows again plus a third: only the third is new */
    reply_t again = ask(pi, route_batch(true, "QAB", 3, 50, t0)); /* 50, 51, 52 */
    cr_assert_eq(again.status, 0, "%s", again.error);
    cr_assert_eq(again.accepted, 1);
    cr_assert_eq(again.duplicates, 2);
    /* a duplicate inside one batch: the first wins */
    Fs__Prices__PriceObservation *twice[] = {obs("QAB", "ZZZ", "FS", date_in(10), "business", 900, t0),
                                             obs("QAB", "ZZZ", "FS", date_in(10), "business", 999, t0)};
    reply_t inner = ask(pi, batch(true, 2, twice));
    cr_assert_eq(inner.accepted, 1);
    cr_assert_eq(inner.duplicates, 1);
    cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAB"), 4);
    cr_assert_str_eq(scalar(db, "SELECT sample_count || ' ' || min_price || ' ' || max_price || ' ' || price_sum"
                                " FROM price_daily WHERE origin_code = 'QAB'"),
                     "4 50.00 900.00 1053.00");
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.committed, 4);
    cr_assert_eq(st.duplicates, 3);
    fs_price_ingest_free(pi);
}

Test(price_ingest, a_duplicate_inside_the_first_batch_falls_back_to_staging)
{
    forget_origin(db, "QAN");
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){0});
    int64_t t0 = yesterday_noon();
    /* the direct COPY hits the duplicate, rolls back, and the staging way writes the batch */
    Fs__Prices__PriceObservation *rows[] = {obs("QAN", "ZZZ", "FS", date_in(10), "economy", 10, t0),
                                            obs("QAN", "ZZZ", "FS", date_in(10), "economy", 20, t0 + 1),
                                            obs("QAN", "ZZZ", "FS", date_in(10), "economy", 30, t0)};
    reply_t r = ask(pi, batch(true, 3, rows));
    cr_assert_eq(r.status, 0, "%s", r.error);
    cr_assert_eq(r.accepted, 2);
    cr_assert_eq(r.duplicates, 1);
    cr_assert_str_eq(scalar(db, "SELECT sample_count || ' ' || price_sum || ' ' || max_price FROM price_daily"
                                " WHERE origin_code = 'QAN'"), "2 30.00 20.00");
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.db_errors, 0, "a duplicate is not a database error");
    fs_price_ingest_free(pi);
}

Test(price_ingest, invalid_rows_are_counted_and_the_rest_written)
{
    forget_origin(db, "QAC");
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){0});
    int64_t t = yesterday_noon();
    const char *dep = date_in(20);
    Fs__Prices__PriceObservation *rows[] = {
        obs("qac", "zzz", "fs", dep, "Premium_Economy", 10, t),      /* valid: case is normalised */
        obs("QAC", "ZZZ", "FS", dep, NULL, 0, t + 1),                /* valid: cabin defaults, price 0 */
        obs("QA", "ZZZ", "FS", dep, "economy", 10, t),               /* 2-letter airport */
        obs("QAC", "Z1Z", "FS", dep, "economy", 10, t),              /* digit in airport */
        obs("QAC", "QAC", "FS", dep, "economy", 10, t),              /* same origin and destination */
        obs("QAC", "ZZZ", "TOOLONG", dep, "economy", 10, t),         /* airline */
        obs("QAC", "ZZZ", "FS", "2025-02-30", "economy", 10, t),     /* no such day */
        obs("QAC", "ZZZ", "FS", "20250101", "economy", 10, t),       /* format */
        obs("QAC", "ZZZ", "FS", date_in(-30), "economy", 10, t),     /* departed before observed */
        obs("QAC", "ZZZ", "FS", dep, "luxury", 10, t),               /* cabin */
        obs("QAC", "ZZZ", "FS", dep, "economy", -1, t),              /* negative */
        obs("QAC", "ZZZ", "FS", dep, "economy", NAN, t),             /* missing price */
        obs("QAC", "ZZZ", "FS", dep, "economy", INFINITY, t),        /* not finite */
        obs("QAC", "ZZZ", "FS", dep, "economy", 5e6, t),             /* not sane */
        obs("QAC", "ZZZ", "FS", dep, "economy", 10, now_ms() + 3 * DAY_MS),   /* future */
        obs("QAC", "ZZZ", "FS", dep, "economy", 10, now_ms() - 2000 * DAY_MS), /* past retention */
        obs(NULL, "ZZZ", "FS", dep, "economy", 10, t),               /* missing origin */
    };
    size_t n = sizeof rows / sizeof *rows;
    Fs__Prices__PriceObservation *bad_source = obs("QAC", "ZZZ", "FS", dep, "economy", 10, t + 2);
    free(bad_source->source);
    bad_source->source = fs_strdup("tab\there");
    Fs__Prices__PriceObservation *bad_currency = obs("QAC", "ZZZ", "FS", dep, "economy", 10, t + 3);
    bad_currency->currency = fs_strdup("EURO");
    Fs__Prices__PriceBatch *b = batch(true, n, rows);
    b->observations = fs_realloc(b->observations, (n + 2) * sizeof *b->observations);
    b->observations[n] = bad_source;
    b->observations[n + 1] = bad_currency;
    b->n_observations = n + 2;
    reply_t r = ask(pi, b);
    cr_assert_eq(r.status, 0, "%s", r.error);
    cr_assert_eq(r.accepted, 2);
    cr_assert_eq(r.invalid, (int)n);
    cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s' AND destination_code = 'ZZZ'"
                           " AND airline = 'FS'", "QAC"), 2);
    cr_assert_str_eq(scalar(db, "SELECT string_agg(cabin_class, ',' ORDER BY cabin_class) FROM price_history"
                                " WHERE origin_code = 'QAC'"), "economy,premium_economy");

    /* a batch with nothing valid is answered at once */
    Fs__Prices__PriceObservation *none[] = {obs("Q", "ZZZ", "FS", dep, "economy", 1, t)};
    reply_t all_bad = ask(pi, batch(true, 1, none));
    cr_assert_eq(all_bad.status, 0);
    cr_assert_eq(all_bad.accepted, 0);
    cr_assert_eq(all_bad.invalid, 1);
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.invalid, n + 1);
    cr_assert_eq(st.received, n + 3);
    fs_price_ingest_free(pi);
}

Test(price_ingest, fire_and_forget_rows_are_written_within_the_flush_interval)
{
    forget_origin(db, "QAD");
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){.flush_ms = 100});
    cr_assert_eq(fs_actor_send(fs_price_ingest_actor(pi), NULL, FS_MSG_PRICE_BATCH,
                               &route_batch(false, "QAD", 25, 10, yesterday_noon())->base), FS_OK);
    /* an ask without wait_commit is answered at once with what was buffered */
    reply_t r = ask(pi, route_batch(false, "QAD", 5, 500, yesterday_noon() + 60000));
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.accepted, 5);
    double end = fs_test_now_ms() + 5000;
    while (fs_test_now_ms() < end && count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAD") < 30)
        spin_ms(50);
    cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAD"), 30);
    cr_assert_eq(count(db, "SELECT sample_count FROM price_daily WHERE origin_code = '%s'", "QAD"), 30);
    fs_price_ingest_free(pi);
}

Test(price_ingest, batches_larger_than_batch_rows_are_split_and_counted)
{
    forget_origin(db, "QAE");
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){.batch_rows = 100});
    reply_t a, b;
    ask_async(pi, route_batch(true, "QAE", 250, 1, yesterday_noon()), &a);
    ask_async(pi, route_batch(true, "QAE", 30, 1, yesterday_noon() + 240000), &b); /* 10 overlap a's last rows */
    cr_assert(spin_until(&a.done, 20000));
    cr_assert(spin_until(&b.done, 20000));
    cr_assert_eq(a.accepted, 250, "%s", a.error);
    cr_assert_eq(b.accepted, 20);
    cr_assert_eq(b.duplicates, 10);
    cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAE"), 270);
    cr_assert_eq(count(db, "SELECT sample_count FROM price_daily WHERE origin_code = '%s'", "QAE"), 270);
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_geq(st.batches, 3);
    fs_price_ingest_free(pi);
}

Test(price_ingest, a_batch_the_database_keeps_refusing_is_given_up_and_reported, .timeout = 90)
{
    forget_origin(db, "QAL");
    forget_origin(db, "QAM");
    /* a trigger that refuses one origin stands in for any persistent server-side error */
    scalar(db, "CREATE OR REPLACE FUNCTION fs_test_refuse_qal() RETURNS trigger LANGUAGE plpgsql AS $$"
               " BEGIN IF NEW.origin_code = 'QAL' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;"
               " RETURN NEW; END $$");
    scalar(db, "DROP TRIGGER IF EXISTS fs_test_refuse_qal ON price_history");
    scalar(db, "CREATE TRIGGER fs_test_refuse_qal BEFORE INSERT ON price_history"
               " FOR EACH ROW EXECUTE FUNCTION fs_test_refuse_qal()");
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){0});
    reply_t bad;
    ask_async(pi, route_batch(true, "QAL", 3, 1, yesterday_noon()), &bad);
    bool answered = spin_until(&bad.done, 30000);
    scalar(db, "DROP TRIGGER fs_test_refuse_qal ON price_history");
    cr_assert(answered);
    cr_assert_eq(bad.transport, FS_OK);
    cr_assert_eq(bad.status, FS_EFAIL);
    cr_assert(strstr(bad.error, "refused by test trigger"), "%s", bad.error);
    cr_assert_eq(bad.accepted, 0);
    /* rolled back whole: neither rows nor aggregate */
    cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAL"), 0);
    cr_assert_eq(count(db, "SELECT count(*) FROM price_daily WHERE origin_code = '%s'", "QAL"), 0);
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.failed, 3);
    cr_assert_geq(st.db_errors, 5);
    /* the buffer moves on */
    reply_t good = ask(pi, route_batch(true, "QAM", 2, 1, yesterday_noon()));
    cr_assert_eq(good.status, 0, "%s", good.error);
    cr_assert_eq(good.accepted, 2);
    fs_price_ingest_free(pi);
}

/*--- buffer bound, shutdown --------------------------------------------------------------*/

Test(price_ingest, full_buffer_answers_resource_exhausted_and_refuses_sends)
{
    /* a database that is never there: everything stays buffered */
    fs_metrics_t *m = fs_metrics_new();
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){
        .database_url = "postgresql:///flightshark?host=/nonexistent-fs-ingest-test", .buffer_rows = 10,
        .metrics = m});
    cr_assert_eq(fs_actor_send(fs_price_ingest_actor(pi), NULL, FS_MSG_PRICE_BATCH,
                               &route_batch(false, "QAF", 8, 1, yesterday_noon())->base), FS_OK);
    reply_t full = ask(pi, route_batch(true, "QAF", 5, 1, yesterday_noon() + 60000));
    cr_assert_eq(full.status, FS_EFULL);
    cr_assert(strstr(full.error, "resource exhausted"), "%s", full.error);
    cr_assert_eq(full.accepted, 0);
    /* a send that does not fit is refused whole and counted */
    cr_assert_eq(fs_actor_send(fs_price_ingest_actor(pi), NULL, FS_MSG_PRICE_BATCH,
                               &route_batch(false, "QAF", 3, 1, yesterday_noon() + 120000)->base), FS_OK);
    /* what still fits is taken, and waits */
    reply_t fits;
    ask_async(pi, route_batch(true, "QAF", 2, 1, yesterday_noon() + 180000), &fits);
    spin_ms(300);
    cr_assert_eq(fits.done, 0, "answered before any commit");
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.buffered, 10);
    cr_assert_eq(st.refused, 8);
    cr_assert_eq(st.pending_asks, 1);
    cr_assert_not(st.db_up);
    cr_assert_not(fs_price_ingest_idle(pi));
    size_t len = 0;
    char *text = fs_metrics_render(m, &len);
    cr_assert(strstr(text, "flightshark_price_ingest_rows_total{outcome=\"refused\"} 8"), "%s", text);
    cr_assert(strstr(text, "flightshark_price_ingest_buffer_rows 10"), "%s", text);
    free(text);
    /* stopping with rows unwritten: the waiting ask learns it, nothing is silently dropped */
    fs_price_ingest_free(pi);
    cr_assert(spin_until(&fits.done, 2000));
    cr_assert_eq(fits.transport, FS_OK);
    cr_assert_eq(fits.status, FS_EUNAVAIL);
    fs_metrics_free(m);
}

static void on_drained(void *arg)
{
    *(int *)arg = 1;
}

Test(price_ingest, drain_writes_everything_buffered)
{
    forget_origin(db, "QAG");
    /* neither size nor time would flush these rows soon */
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){.flush_ms = 600000, .batch_rows = 100000});
    for (int i = 0; i < 4; i++)
        cr_assert_eq(fs_actor_send(fs_price_ingest_actor(pi), NULL, FS_MSG_PRICE_BATCH,
                                   &route_batch(false, "QAG", 50, 1, yesterday_noon() + i * 100000)->base),
                     FS_OK);
    spin_ms(500);
    cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAG"), 0);
    cr_assert_not(fs_price_ingest_idle(pi));
    int drained = 0;
    fs_price_ingest_drain(pi, on_drained, &drained);
    cr_assert(spin_until(&drained, 10000), "drain did not finish");
    cr_assert(fs_price_ingest_idle(pi));
    cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAG"), 200);
    fs_price_ingest_free(pi);
}

/*--- partitions and retention ------------------------------------------------------------*/

Test(price_ingest, an_old_month_gets_its_partition)
{
    /* three years back: inside the retention, outside the partitions 004 creates */
    int64_t t = now_ms() - 3 * 365 * DAY_MS;
    char part[64], sql[256];
    time_t secs = (time_t)(t / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(part, sizeof part, "price_history_%04d_%02d", tm.tm_year + 1900, tm.tm_mon + 1);
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", part);
    scalar(db, sql);
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){0});
    char dep[11];
    fs_price_format_date((int32_t)(t / DAY_MS + 14), dep);
    Fs__Prices__PriceObservation *row[] = {obs("QAH", "ZZZ", "FS", dep, "first", 1234.5, t)};
    reply_t r = ask(pi, batch(true, 1, row));
    cr_assert_eq(r.status, 0, "%s", r.error);
    cr_assert_eq(r.accepted, 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE origin_code = 'QAH'", part);
    cr_assert_str_eq(scalar(db, sql), "1");
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_geq(st.partitions_created, 1);
    fs_price_ingest_free(pi);
}

typedef struct {
    int done, created, dropped;
    bool skipped;
    char error[256];
} retention_t;

static void on_retention(int created, int dropped, bool skipped, const char *error, void *arg)
{
    retention_t *r = arg;
    r->done = 1;
    r->created = created;
    r->dropped = dropped;
    r->skipped = skipped;
    snprintf(r->error, sizeof r->error, "%s", error ? error : "");
}

static bool partition_exists(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT to_regclass('%s') IS NOT NULL", name);
    return strcmp(scalar(db, sql), "t") == 0;
}

static void month_name(int months_from_now, char *out, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int m = tm.tm_year * 12 + tm.tm_mon + months_from_now;
    snprintf(out, size, "price_history_%04d_%02d", m / 12 + 1900, m % 12 + 1);
}

Test(price_ingest, retention_drops_old_partitions_and_creates_ahead)
{
    char old[64], kept[64], ahead[64], sql[256];
    month_name(-5 * 12, old, sizeof old);   /* older than 4 years: dropped */
    month_name(-3 * 12, kept, sizeof kept); /* inside the retention: kept */
    month_name(2, ahead, sizeof ahead);
    scalar(db, "SELECT fs_price_history_ensure_partitions(now() - interval '5 years', now() - interval '5 years')");
    scalar(db, "SELECT fs_price_history_ensure_partitions(now() - interval '3 years', now() - interval '3 years')");
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", ahead);
    scalar(db, sql);
    cr_assert(partition_exists(old));
    cr_assert_not(partition_exists(ahead));

    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){.retention_days = 1461});
    /* another process holds the lock: this one skips */
    char lock[128];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%lld)", (long long)FS_PRICE_RETENTION_LOCK_KEY);
    scalar(db, lock);
    retention_t skipped = {0};
    fs_price_ingest_run_retention(pi, on_retention, &skipped);
    cr_assert(spin_until(&skipped.done, 10000));
    cr_assert(skipped.skipped);
    cr_assert(partition_exists(old));
    snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%lld)", (long long)FS_PRICE_RETENTION_LOCK_KEY);
    scalar(db, lock);

    retention_t r = {0};
    fs_price_ingest_run_retention(pi, on_retention, &r);
    cr_assert(spin_until(&r.done, 10000));
    cr_assert_str_eq(r.error, "");
    cr_assert_not(r.skipped);
    cr_assert_geq(r.dropped, 1);
    cr_assert_geq(r.created, 1);
    cr_assert_not(partition_exists(old));
    cr_assert(partition_exists(kept));
    cr_assert(partition_exists(ahead));
    /* the lock was released */
    snprintf(lock, sizeof lock, "SELECT pg_try_advisory_lock(%lld)", (long long)FS_PRICE_RETENTION_LOCK_KEY);
    cr_assert_str_eq(scalar(db, lock), "t");
    fs_price_ingest_free(pi);
}

/*--- the Redis stream and metrics --------------------------------------------------------*/

typedef struct {
    int done;
    long long n;
    char last[512];
} xres_t;

static void on_xlen(redisReply *reply, const char *error, void *arg)
{
    xres_t *x = arg;
    x->done = 1;
    x->n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
}

/* XREVRANGE key + - COUNT 1: the last entry's fields as "k=v " pairs. */
static void on_xlast(redisReply *reply, const char *error, void *arg)
{
    xres_t *x = arg;
    x->done = 1;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 1)
        return;
    redisReply *fields = reply->element[0]->element[1];
    size_t off = 0;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        off += (size_t)snprintf(x->last + off, sizeof x->last - off, "%s=%s ", fields->element[i]->str,
                                fields->element[i + 1]->str);
}

static long long xlen(fs_redis_t *r)
{
    xres_t x = {0};
    fs_redis_command(r, on_xlen, &x, "XLEN %s", FS_PRICE_STREAM_KEY);
    cr_assert(spin_until(&x.done, 5000));
    return x.n;
}

Test(price_ingest, committed_rows_are_appended_to_the_stream_once)
{
    forget_origin(db, "QAI");
    fs_redis_t *redis = fs_redis_new(base, &(fs_redis_opts_t){.url = fs_test_env("REDIS_URL"), .timeout_ms = 2000});
    long long before = xlen(redis);
    cr_assert_geq(before, 0);
    fs_metrics_t *m = fs_metrics_new();
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){.redis = redis, .metrics = m});
    int64_t t = yesterday_noon();
    reply_t r = ask(pi, route_batch(true, "QAI", 3, 70.5, t));
    cr_assert_eq(r.accepted, 3);
    reply_t dup = ask(pi, route_batch(true, "QAI", 3, 70.5, t));
    cr_assert_eq(dup.duplicates, 3);
    double end = fs_test_now_ms() + 3000;
    while (xlen(redis) < before + 3 && fs_test_now_ms() < end)
        spin_ms(20);
    spin_ms(100);
    cr_assert_eq(xlen(redis), before + 3, "duplicates are not appended again");
    xres_t last = {0};
    fs_redis_command(redis, on_xlast, &last, "XREVRANGE %s + - COUNT 1", FS_PRICE_STREAM_KEY);
    cr_assert(spin_until(&last.done, 5000));
    char want[256];
    snprintf(want, sizeof want, "t=%lld o=QAI d=ZZZ a=FS dd=%s c=economy p=72.50 cur=EUR src=test ",
             (long long)(t + 2000), date_in(30));
    cr_assert_str_eq(last.last, want);
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.stream_appended, 3);
    cr_assert_eq(st.stream_errors, 0);
    size_t len;
    char *text = fs_metrics_render(m, &len);
    cr_assert(strstr(text, "flightshark_price_ingest_rows_total{outcome=\"committed\"} 3"), "%s", text);
    cr_assert(strstr(text, "flightshark_price_ingest_rows_total{outcome=\"duplicate\"} 3"), "%s", text);
    cr_assert(strstr(text, "flightshark_price_ingest_batch_seconds_count 2"), "%s", text);
    free(text);
    fs_price_ingest_free(pi);
    fs_redis_free(redis);
    fs_metrics_free(m);
}

Test(price_ingest, redis_down_costs_only_the_stream)
{
    forget_origin(db, "QAJ");
    fs_redis_t *redis = fs_redis_new(base, &(fs_redis_opts_t){.url = "unix:///nonexistent-fs-ingest/redis.sock",
                                                               .timeout_ms = 500});
    spin_ms(100);
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){.redis = redis});
    reply_t r = ask(pi, route_batch(true, "QAJ", 4, 10, yesterday_noon()));
    cr_assert_eq(r.status, 0, "%s", r.error);
    cr_assert_eq(r.accepted, 4);
    spin_ms(100);
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.stream_errors, 4);
    cr_assert_eq(st.stream_appended, 0);
    fs_price_ingest_free(pi);
    fs_redis_free(redis);
}

/*--- another worker's view, registration -------------------------------------------------*/

Test(price_ingest, types_registered_and_name_unique)
{
    cr_assert_eq(fs_msg_type_descriptor(FS_MSG_PRICE_BATCH), &fs__prices__price_batch__descriptor);
    cr_assert_eq(fs_msg_type_descriptor(FS_MSG_PRICE_BATCH_REPLY), &fs__prices__price_batch_reply__descriptor);
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){0});
    cr_assert_eq(fs_actor_lookup(sys, FS_PRICE_INGEST_ACTOR), fs_price_ingest_actor(pi));
    cr_assert_null(fs_price_ingest_start(sys, &(fs_price_ingest_opts_t){.database_url = db_url}));
    /* a body of another type is answered, not fatal */
    reply_t r;
    memset(&r, 0, sizeof r);
    void *wrong = fs_pb_new(&fs__prices__price_observation__descriptor);
    cr_assert_eq(fs_actor_ask(fs_price_ingest_actor(pi), NULL, 399, wrong, 5000, on_reply, &r), FS_OK);
    cr_assert(spin_until(&r.done, 5000));
    cr_assert_eq(r.transport, FS_EINVAL);
    fs_actor_stats_t ast;
    fs_actor_get_stats(fs_price_ingest_actor(pi), &ast);
    cr_assert_eq(ast.restarts, 0);
    fs_price_ingest_free(pi);
}

/*--- rows ----------------------------------------------------------------------------------*/

Test(price_rows, copy_line_and_dates)
{
    Fs__Prices__PriceObservation *o = obs("mad", "bcn", "ib", "2024-03-01", "business", 99.999, 1709294400123LL);
    free(o->source);
    o->source = fs_strdup("rpc:a\\b");
    fs_price_row_t r;
    cr_assert_null(fs_price_row_parse(&r, o, 1709294400123LL + 1000, 1461));
    char line[FS_PRICE_LINE_MAX];
    fs_price_row_copy_line(&r, 7, line);
    cr_assert_str_eq(line, "2024-03-01 12:00:00.123+00\tMAD\tBCN\tIB\t2024-03-01\tbusiness\t100.00\tEUR\trpc:a\\\\b\t7\n");
    cr_assert_eq(fs_price_row_month(&r), 2024 * 12 + 2);
    char d[11];
    fs_price_format_date(0, d);
    cr_assert_str_eq(d, "1970-01-01");
    fs_price_format_date(11016, d); /* leap day */
    cr_assert_str_eq(d, "2000-02-29");
    protobuf_c_message_free_unpacked(&o->base, NULL);
}

/*--- PostgreSQL down, then up (private server) -------------------------------------------*/

static char priv_dir[64];

static void priv_start(void)
{
    snprintf(priv_dir, sizeof priv_dir, "/tmp/fs-test-ingest-XXXXXX");
    cr_assert_not_null(mkdtemp(priv_dir));
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh pg-start %s >/dev/null", FS_SOURCE_DIR, priv_dir), 0);
    snprintf(db_url, sizeof db_url, "postgresql:///flightshark?host=%s/pg&user=%s", priv_dir,
             getuid() == 0 ? "postgres" : getpwuid(getuid())->pw_name);
    db = connect_migrated(db_url);
    loop_start();
}

static void priv_stop(void)
{
    teardown();
    fs_test_sh("%s/scripts/services.sh stop %s >/dev/null 2>&1; rm -rf %s", FS_SOURCE_DIR, priv_dir, priv_dir);
}

Test(price_ingest_outage, rows_wait_for_the_database_and_none_is_lost, .init = priv_start, .fini = priv_stop,
     .timeout = 120)
{
    fs_price_ingest_t *pi = start((fs_price_ingest_opts_t){.flush_ms = 50});
    reply_t first = ask(pi, route_batch(true, "QAK", 10, 1, yesterday_noon()));
    cr_assert_eq(first.accepted, 10, "%s", first.error);

    PQfinish(db);
    db = NULL;
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh pg-stop %s", FS_SOURCE_DIR, priv_dir), 0);
    spin_ms(300);
    reply_t during;
    ask_async(pi, route_batch(true, "QAK", 40, 1, yesterday_noon() + 100000), &during);
    cr_assert_eq(fs_actor_send(fs_price_ingest_actor(pi), NULL, FS_MSG_PRICE_BATCH,
                               &route_batch(false, "QAK", 50, 1, yesterday_noon() + 200000)->base), FS_OK);
    spin_ms(1500);
    cr_assert_eq(during.done, 0, "answered while the database was down");
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.buffered, 90);
    cr_assert_not(st.db_up);

    cr_assert_eq(fs_test_sh("%s/scripts/services.sh pg-start %s", FS_SOURCE_DIR, priv_dir), 0);
    cr_assert(spin_until(&during.done, 30000), "no reply after the database came back");
    cr_assert_eq(during.status, 0, "%s", during.error);
    cr_assert_eq(during.accepted, 40);
    double end = fs_test_now_ms() + 5000;
    while (!fs_price_ingest_idle(pi) && fs_test_now_ms() < end)
        spin_ms(20);
    cr_assert(fs_price_ingest_idle(pi));
    char *err = NULL;
    db = fs_pg_connect_blocking(db_url, &err);
    cr_assert_not_null(db, "%s", err);
    cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAK"), 100);
    cr_assert_eq(count(db, "SELECT sample_count FROM price_daily WHERE origin_code = '%s'", "QAK"), 100);
    fs_price_ingest_get_stats(pi, &st);
    cr_assert_eq(st.committed, 100);
    cr_assert_eq(st.failed, 0);
    fs_price_ingest_free(pi);
}

/*--- end to end: IngestPrices through the RPC, kill -9 right after the OK ------------------*/

/* Every OK from IngestPrices means committed: the worker is killed (SIGKILL, no drain) the
 * moment the answer arrives, and the rows must be in price_history all the same. */
Test(price_ingest_e2e, rpc_ok_survives_kill_9_of_the_worker, .init = setup, .fini = teardown, .timeout = 120)
{
    forget_origin(db, "QAO");
    fs_test_server_t srv;
    const char *env[] = {"LOG_LEVEL=warn", "PRICE_INGEST_FLUSH_MS=50", NULL};
    cr_assert_eq(fs_test_server_start(&srv, 1, env), 0, "server did not start (log %s)", srv.log_path);
    long committed = 0;
    for (int round = 0; round < 3; round++) {
        char *err = NULL;
        fs_rpc_client_t *c = NULL;
        double end = fs_test_now_ms() + 20000; /* after a kill the master starts a new worker */
        while (!c && fs_test_now_ms() < end) {
            c = fs_rpc_client_connect("127.0.0.1", srv.rpc_port, 1000, &err);
            if (!c) {
                free(err);
                usleep(100000);
            }
        }
        cr_assert_not_null(c, "no RPC listener (log %s)", srv.log_path);
        if (round == 0) { /* until the workers serve the RPC port, there is nothing to test */
            char *perr = NULL;
            ProtobufCMessage *pong = NULL;
            if (fs_rpc_client_call(c, "Ping", NULL, NULL, 3000, &pong, &perr) < 0) {
                fs_rpc_client_close(c);
                fs_test_server_stop(&srv);
                cr_skip_test("the workers do not serve the RPC port yet: %s", perr);
            }
            free(perr);
            if (pong)
                protobuf_c_message_free_unpacked(pong, NULL);
        }
        Fs__Prices__PriceBatch *b = route_batch(true, "QAO", 200, 1, yesterday_noon() + round * 1000000);
        ProtobufCMessage *reply = NULL;
        char *error = NULL;
        int st = -1;
        /* the new worker may still be connecting to the database: UNAVAILABLE is retried */
        for (int tries = 0; tries < 100; tries++) {
            st = fs_rpc_client_call(c, "IngestPrices", &b->base, &fs__prices__price_batch_reply__descriptor, 10000,
                                    &reply, &error);
            if (st != FS__RPC__STATUS__UNAVAILABLE)
                break;
            if (error && strstr(error, "not running")) {
                fs_test_server_stop(&srv);
                cr_skip_test("price-ingest is not spawned in worker 0 yet: %s", error);
            }
            free(error);
            error = NULL;
            usleep(100000);
        }
        cr_assert_eq(st, FS__RPC__STATUS__OK, "status %d: %s (log %s)", st, error ? error : "", srv.log_path);
        pid_t workers[8];
        int n = fs_test_server_workers(&srv, workers, 8);
        for (int i = 0; i < n; i++)
            kill(workers[i], SIGKILL);
        Fs__Prices__PriceBatchReply *r = (Fs__Prices__PriceBatchReply *)reply;
        cr_assert_eq(r->accepted, 200);
        committed += r->accepted;
        cr_assert_eq(count(db, "SELECT count(*) FROM price_history WHERE origin_code = '%s'", "QAO"), committed);
        cr_assert_eq(count(db, "SELECT sample_count FROM price_daily WHERE origin_code = '%s'", "QAO"), committed);
        protobuf_c_message_free_unpacked(reply, NULL);
        protobuf_c_message_free_unpacked(&b->base, NULL);
        fs_rpc_client_close(c);
    }
    fs_test_server_stop(&srv);
}
