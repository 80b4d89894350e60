/* PostgreSQL pool against real servers: the shared test instance (DATABASE_URL) for normal
 * behaviour, a private instance (scripts/services.sh) for anything that breaks the server. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/pg.h"
#include "tests/support/harness.h"

typedef struct {
    int calls;
    fs_pg_status_t status;
    char value[256];
    char error[512];
    char sqlstate[8];
    bool had_res;
    double at_ms;
} result_t;

static struct event_base *base;
static struct event *tick;

static void on_tick(evutil_socket_t fd, short what, void *arg) {}

static void setup(void)
{
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
}

static void teardown(void)
{
    event_free(tick);
    event_base_free(base);
}

static void on_result(fs_pg_status_t st, PGresult *res, const char *err, void *arg)
{
    result_t *r = arg;
    r->calls++;
    r->status = st;
    r->at_ms = fs_test_now_ms();
    r->had_res = res != NULL;
    if (st == FS_PG_OK && PQntuples(res) > 0 && PQnfields(res) > 0)
        snprintf(r->value, sizeof r->value, "%s", PQgetisnull(res, 0, 0) ? "<null>" : PQgetvalue(res, 0, 0));
    if (res && PQresultErrorField(res, PG_DIAG_SQLSTATE))
        snprintf(r->sqlstate, sizeof r->sqlstate, "%s", PQresultErrorField(res, PG_DIAG_SQLSTATE));
    if (err)
        snprintf(r->error, sizeof r->error, "%s", err);
}

/* Runs the loop until *count reaches want or timeout_ms passes. */
static bool spin(const int *count, int want, int timeout_ms)
{
    double end = fs_test_now_ms() + timeout_ms;
    while (*count < want && fs_test_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return *count >= want;
}

static void spin_ms(int ms)
{
    double end = fs_test_now_ms() + ms;
    while (fs_test_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

static fs_pg_pool_t *pool_for(const char *url, int size, int stmt_timeout_ms, int max_queue)
{
    fs_pg_pool_opts_t o = {.url = url, .size = size, .statement_timeout_ms = stmt_timeout_ms,
                           .connect_timeout_ms = 3000, .max_queue = max_queue, .application_name = "test_pg"};
    fs_pg_pool_t *p = fs_pg_pool_new(base, &o);
    cr_assert_not_null(p);
    return p;
}

static fs_pg_pool_t *shared_pool(int size, int stmt_timeout_ms, int max_queue)
{
    return pool_for(fs_test_env("DATABASE_URL"), size, stmt_timeout_ms, max_queue);
}

/* Runs one query to completion and returns its result. */
static result_t run(fs_pg_pool_t *p, const char *name, const char *sql, int n, const char *const *params)
{
    result_t r = {0};
    fs_pg_query(p, name, sql, n, params, on_result, &r);
    cr_assert(spin(&r.calls, 1, 10000), "no answer to %s", sql);
    return r;
}

static bool wait_available(fs_pg_pool_t *p, int timeout_ms)
{
    double end = fs_test_now_ms() + timeout_ms;
    while (!fs_pg_available(p) && fs_test_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return fs_pg_available(p);
}

TestSuite(pg, .init = setup, .fini = teardown, .timeout = 60);

Test(pg, simple_query_waits_for_first_connect)
{
    fs_pg_pool_t *p = shared_pool(2, 5000, 100);
    /* submitted before any connection is up: waits for the first attempt */
    result_t r = run(p, NULL, "SELECT 1 + 1", 0, NULL);
    cr_assert_eq(r.status, FS_PG_OK, "%s", r.error);
    cr_assert_str_eq(r.value, "2");
    cr_assert(fs_pg_available(p));
    fs_pg_pool_free(p);
}

Test(pg, parameters_and_nulls)
{
    fs_pg_pool_t *p = shared_pool(1, 5000, 100);
    const char *params[] = {"40", "2", NULL};
    result_t r = run(p, NULL, "SELECT ($1::int + $2::int)::text || ':' || ($3::text IS NULL)::text", 3, params);
    cr_assert_eq(r.status, FS_PG_OK, "%s", r.error);
    cr_assert_str_eq(r.value, "42:true");
    const char *one_null[] = {NULL};
    r = run(p, NULL, "SELECT $1::text", 1, one_null);
    cr_assert_str_eq(r.value, "<null>");
    const char *quote[] = {"O'Hare; DROP TABLE x"};
    r = run(p, NULL, "SELECT $1::text", 1, quote);
    cr_assert_str_eq(r.value, "O'Hare; DROP TABLE x");
    fs_pg_pool_free(p);
}

Test(pg, prepared_statement_is_prepared_once_per_connection)
{
    fs_pg_pool_t *p = shared_pool(1, 5000, 100);
    for (int i = 0; i < 5; i++) {
        char a[16];
        snprintf(a, sizeof a, "%d", i);
        const char *params[] = {a};
        result_t r = run(p, "double_it", "SELECT ($1::int * 2)::text", 1, params);
        cr_assert_eq(r.status, FS_PG_OK, "%s", r.error);
        char want[16];
        snprintf(want, sizeof want, "%d", i * 2);
        cr_assert_str_eq(r.value, want);
    }
    result_t r = run(p, NULL, "SELECT count(*)::text FROM pg_prepared_statements WHERE name = 'double_it'", 0, NULL);
    cr_assert_str_eq(r.value, "1");
    /* a statement that fails to prepare reports the error and is retried next time */
    r = run(p, "broken", "SELECT * FROM no_such_table_for_prepare", 0, NULL);
    cr_assert_eq(r.status, FS_PG_ERROR);
    cr_assert(strstr(r.error, "no_such_table_for_prepare"), "%s", r.error);
    r = run(p, "broken", "SELECT * FROM no_such_table_for_prepare", 0, NULL);
    cr_assert_eq(r.status, FS_PG_ERROR);
    fs_pg_pool_free(p);
}

Test(pg, server_error_is_reported_and_pool_keeps_working)
{
    fs_pg_pool_t *p = shared_pool(1, 5000, 100);
    result_t r = run(p, NULL, "SELECT * FROM no_such_table", 0, NULL);
    cr_assert_eq(r.status, FS_PG_ERROR);
    cr_assert(r.had_res, "an error result carries the PGresult");
    cr_assert_str_eq(r.sqlstate, "42P01");
    cr_assert(strstr(r.error, "no_such_table"), "%s", r.error);
    cr_assert_eq(r.error[strlen(r.error) - 1] == '\n', 0, "error is trimmed");
    r = run(p, NULL, "SELECT 'still fine'", 0, NULL);
    cr_assert_eq(r.status, FS_PG_OK);
    cr_assert_str_eq(r.value, "still fine");
    fs_pg_stats_t st;
    fs_pg_pool_stats(p, &st);
    cr_assert_eq(st.queries, 2);
    cr_assert_eq(st.errors, 1);
    fs_pg_pool_free(p);
}

Test(pg, statement_timeout_gives_fs_pg_timeout)
{
    fs_pg_pool_t *p = shared_pool(1, 200, 100);
    double t0 = fs_test_now_ms();
    result_t r = run(p, NULL, "SELECT pg_sleep(3)", 0, NULL);
    cr_assert_eq(r.status, FS_PG_TIMEOUT, "status %d: %s", r.status, r.error);
    cr_assert(strstr(r.error, "statement timeout"), "%s", r.error);
    cr_assert_lt(r.at_ms - t0, 2000);
    r = run(p, NULL, "SELECT current_setting('statement_timeout')", 0, NULL);
    cr_assert_str_eq(r.value, "200ms");
    fs_pg_pool_free(p);
}

Test(pg, full_queue_gives_busy)
{
    fs_pg_pool_t *p = shared_pool(1, 5000, 2);
    cr_assert(wait_available(p, 5000));
    result_t r[4] = {0};
    fs_pg_query(p, NULL, "SELECT pg_sleep(0.3)", 0, NULL, on_result, &r[0]); /* in flight */
    fs_pg_query(p, NULL, "SELECT 1", 0, NULL, on_result, &r[1]);             /* queued */
    fs_pg_query(p, NULL, "SELECT 2", 0, NULL, on_result, &r[2]);             /* queued */
    fs_pg_stats_t st;
    fs_pg_pool_stats(p, &st);
    cr_assert_eq(st.queued, 2);
    cr_assert_eq(st.busy, 1);
    double t0 = fs_test_now_ms();
    fs_pg_query(p, NULL, "SELECT 3", 0, NULL, on_result, &r[3]);
    cr_assert(spin(&r[3].calls, 1, 1000));
    cr_assert_eq(r[3].status, FS_PG_BUSY);
    cr_assert_lt(r[3].at_ms - t0, 250, "busy is answered at once");
    cr_assert_eq(r[0].calls, 0);
    for (int i = 0; i < 3; i++) {
        cr_assert(spin(&r[i].calls, 1, 5000));
        cr_assert_eq(r[i].status, FS_PG_OK, "query %d: %s", i, r[i].error);
    }
    cr_assert_str_eq(r[2].value, "2");
    fs_pg_pool_free(p);
}

Test(pg, callbacks_never_run_inside_fs_pg_query)
{
    fs_pg_pool_t *p = shared_pool(1, 5000, 1);
    cr_assert(wait_available(p, 5000));
    result_t ok = {0}, queued = {0}, busy = {0};
    fs_pg_query(p, NULL, "SELECT 1", 0, NULL, on_result, &ok);
    fs_pg_query(p, NULL, "SELECT 1", 0, NULL, on_result, &queued);
    fs_pg_query(p, NULL, "SELECT 1", 0, NULL, on_result, &busy);
    cr_assert_eq(ok.calls + queued.calls + busy.calls, 0);
    cr_assert(spin(&busy.calls, 1, 1000));
    cr_assert_eq(busy.status, FS_PG_BUSY);
    cr_assert(spin(&queued.calls, 1, 5000));
    fs_pg_pool_free(p);

    /* a pool whose server does not exist fails at once, but still not synchronously */
    fs_pg_pool_t *down = pool_for("postgresql:///flightshark?host=/nonexistent-fs-test&user=postgres", 1, 0, 10);
    spin_ms(50);
    result_t r = {0};
    double t0 = fs_test_now_ms();
    fs_pg_query(down, NULL, "SELECT 1", 0, NULL, on_result, &r);
    cr_assert_eq(r.calls, 0);
    cr_assert(spin(&r.calls, 1, 1000));
    cr_assert_eq(r.status, FS_PG_UNAVAILABLE);
    cr_assert_lt(r.at_ms - t0, 300);
    cr_assert(strstr(r.error, "unavailable"), "%s", r.error);
    cr_assert_not(fs_pg_available(down));
    fs_pg_pool_free(down);
}

typedef struct {
    int calls, ok;
    char pids[8][16];
    int npids;
} many_t;

static many_t many;

static void on_many(fs_pg_status_t st, PGresult *res, const char *err, void *arg)
{
    intptr_t i = (intptr_t)arg;
    many.calls++;
    if (st != FS_PG_OK)
        return;
    if (atoi(PQgetvalue(res, 0, 0)) == (int)i * 3)
        many.ok++;
    const char *pid = PQgetvalue(res, 0, 1);
    for (int k = 0; k < many.npids; k++)
        if (strcmp(many.pids[k], pid) == 0)
            return;
    if (many.npids < 8)
        snprintf(many.pids[many.npids++], sizeof many.pids[0], "%s", pid);
}

Test(pg, many_concurrent_queries_over_two_connections)
{
    fs_pg_pool_t *p = shared_pool(2, 5000, 1000);
    fs_pg_stats_t st;
    double end = fs_test_now_ms() + 5000;
    do {
        event_base_loop(base, EVLOOP_ONCE);
        fs_pg_pool_stats(p, &st);
    } while (st.connected < 2 && fs_test_now_ms() < end);
    cr_assert_eq(st.connected, 2);
    enum { N = 300 };
    for (intptr_t i = 0; i < N; i++) {
        char a[16];
        snprintf(a, sizeof a, "%d", (int)i);
        const char *params[] = {a};
        fs_pg_query(p, i % 2 ? "triple" : NULL, "SELECT $1::int * 3, pg_backend_pid()", 1, params, on_many, (void *)i);
    }
    fs_pg_pool_stats(p, &st);
    cr_assert_eq(st.size, 2);
    cr_assert_eq(st.busy, 2);
    cr_assert_eq(st.queued, N - 2);
    cr_assert(spin(&many.calls, N, 20000), "only %d of %d answered", many.calls, N);
    cr_assert_eq(many.ok, N);
    cr_assert_eq(many.npids, 2, "both connections served queries (%d)", many.npids);
    spin_ms(50);
    cr_assert_eq(many.calls, N, "each callback exactly once");
    fs_pg_pool_stats(p, &st);
    cr_assert_eq(st.queries, N);
    cr_assert_eq(st.errors, 0);
    cr_assert_eq(st.connected, 2);
    fs_pg_pool_free(p);
}

Test(pg, free_runs_pending_callbacks)
{
    fs_pg_pool_t *p = shared_pool(1, 5000, 10);
    cr_assert(wait_available(p, 5000));
    result_t r[3] = {0};
    for (int i = 0; i < 3; i++)
        fs_pg_query(p, NULL, "SELECT pg_sleep(0.2)", 0, NULL, on_result, &r[i]);
    fs_pg_pool_free(p);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].status, FS_PG_UNAVAILABLE);
    }
}

static fs_pg_pool_t *reentrant_pool;
static result_t reentrant_second;

static void on_first_then_query(fs_pg_status_t st, PGresult *res, const char *err, void *arg)
{
    on_result(st, res, err, arg);
    fs_pg_query(reentrant_pool, NULL, "SELECT 'second'", 0, NULL, on_result, &reentrant_second);
}

Test(pg, callback_may_submit_queries)
{
    reentrant_pool = shared_pool(1, 5000, 10);
    result_t first = {0};
    fs_pg_query(reentrant_pool, NULL, "SELECT 'first'", 0, NULL, on_first_then_query, &first);
    cr_assert(spin(&reentrant_second.calls, 1, 5000));
    cr_assert_str_eq(first.value, "first");
    cr_assert_str_eq(reentrant_second.value, "second");
    fs_pg_pool_free(reentrant_pool);
}

/*--- private server: outage, recovery, silent server ------------------------------------*/

static char priv_dir[64];
static char priv_url[256];

static void priv_start(void)
{
    setup();
    snprintf(priv_dir, sizeof priv_dir, "/tmp/fs-test-pg-XXXXXX");
    cr_assert_not_null(mkdtemp(priv_dir));
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh pg-start %s >/dev/null", FS_SOURCE_DIR, priv_dir), 0);
    snprintf(priv_url, sizeof priv_url, "postgresql:///flightshark?host=%s/pg&user=%s", priv_dir,
             getuid() == 0 ? "postgres" : getpwuid(getuid())->pw_name);
}

static void priv_stop(void)
{
    fs_test_sh("%s/scripts/services.sh stop %s >/dev/null 2>&1; rm -rf %s", FS_SOURCE_DIR, priv_dir, priv_dir);
    teardown();
}

Test(pg_outage, unavailable_fast_then_recovers_without_new_pool, .init = priv_start, .fini = priv_stop,
     .timeout = 90)
{
    fs_pg_pool_t *p = pool_for(priv_url, 2, 0, 100);
    result_t r = run(p, "ping", "SELECT 'up'", 0, NULL);
    cr_assert_eq(r.status, FS_PG_OK, "%s", r.error);
    cr_assert(wait_available(p, 5000));

    /* a query in flight when the server goes away gets FS_PG_UNAVAILABLE */
    result_t inflight = {0};
    fs_pg_query(p, NULL, "SELECT pg_sleep(30)", 0, NULL, on_result, &inflight);
    spin_ms(100);
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh pg-stop %s", FS_SOURCE_DIR, priv_dir), 0);
    cr_assert(spin(&inflight.calls, 1, 2000));
    cr_assert_eq(inflight.status, FS_PG_UNAVAILABLE, "status %d: %s", inflight.status, inflight.error);

    /* with the server down, queries fail at once */
    spin_ms(100);
    cr_assert_not(fs_pg_available(p));
    for (int i = 0; i < 3; i++) {
        double t0 = fs_test_now_ms();
        result_t down = run(p, i == 0 ? "ping" : NULL, "SELECT 'up'", 0, NULL);
        cr_assert_eq(down.status, FS_PG_UNAVAILABLE, "status %d: %s", down.status, down.error);
        cr_assert_lt(down.at_ms - t0, 1000, "took %.0f ms", down.at_ms - t0);
        spin_ms(300);
    }

    /* back up: the same pool recovers by itself (backoff is at most 5 s) */
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh pg-start %s", FS_SOURCE_DIR, priv_dir), 0);
    double end = fs_test_now_ms() + 15000;
    result_t up = {0};
    while (fs_test_now_ms() < end) {
        up = run(p, "ping", "SELECT 'up'", 0, NULL);
        if (up.status == FS_PG_OK)
            break;
        spin_ms(200);
    }
    cr_assert_eq(up.status, FS_PG_OK, "no recovery: %s", up.error);
    cr_assert_str_eq(up.value, "up", "statement re-prepared after reconnect");
    fs_pg_stats_t st;
    fs_pg_pool_stats(p, &st);
    cr_assert_geq(st.reconnects, 1);
    fs_pg_pool_free(p);
}

Test(pg_outage, silent_server_hits_pool_deadline, .init = priv_start, .fini = priv_stop, .timeout = 60)
{
    fs_pg_pool_t *p = pool_for(priv_url, 1, 300, 100);
    result_t r = run(p, NULL, "SELECT pg_backend_pid()", 0, NULL);
    cr_assert_eq(r.status, FS_PG_OK, "%s", r.error);
    pid_t backend = (pid_t)atoi(r.value);
    cr_assert_gt(backend, 0);
    /* a stopped backend neither answers nor runs its statement_timeout */
    cr_assert_eq(kill(backend, SIGSTOP), 0);
    double t0 = fs_test_now_ms();
    result_t hung = run(p, NULL, "SELECT 1", 0, NULL);
    kill(backend, SIGCONT);
    cr_assert_eq(hung.status, FS_PG_TIMEOUT, "status %d: %s", hung.status, hung.error);
    cr_assert_geq(hung.at_ms - t0, 1200);
    cr_assert_lt(hung.at_ms - t0, 3000);
    /* the connection was replaced */
    double end = fs_test_now_ms() + 10000;
    result_t again = {0};
    while (fs_test_now_ms() < end) {
        again = run(p, NULL, "SELECT pg_backend_pid()", 0, NULL);
        if (again.status == FS_PG_OK)
            break;
        spin_ms(100);
    }
    cr_assert_eq(again.status, FS_PG_OK, "%s", again.error);
    cr_assert_neq(atoi(again.value), backend);
    fs_pg_pool_free(p);
}

/*--- DATABASE_URL ---------------------------------------------------------------------*/

Test(pg_url, asyncpg_scheme_and_name_resolution)
{
    char *err = NULL;
    char *ci = fs_pg_conninfo("postgresql+asyncpg://fs:s3cr%27t@localhost:5433/flights", &err);
    cr_assert_not_null(ci, "%s", err);
    cr_assert(strstr(ci, "host='localhost'"), "%s", ci);
    cr_assert(strstr(ci, "hostaddr='127.0.0.1'") || strstr(ci, "hostaddr='::1'"), "%s", ci);
    cr_assert(strstr(ci, "port='5433'"), "%s", ci);
    cr_assert(strstr(ci, "dbname='flights'"), "%s", ci);
    cr_assert(strstr(ci, "user='fs'"), "%s", ci);
    cr_assert(strstr(ci, "password='s3cr\\'t'"), "%s", ci);
    free(ci);
}

Test(pg_url, ip_literal_and_unix_socket_need_no_lookup)
{
    char *err = NULL;
    char *ci = fs_pg_conninfo("postgres://u@127.0.0.1/db", &err);
    cr_assert_not_null(ci, "%s", err);
    cr_assert(strstr(ci, "host='127.0.0.1'"), "%s", ci);
    cr_assert_null(strstr(ci, "hostaddr"), "%s", ci);
    free(ci);
    ci = fs_pg_conninfo("postgresql:///flightshark?host=/tmp/x/pg&user=postgres", &err);
    cr_assert_not_null(ci, "%s", err);
    cr_assert(strstr(ci, "host='/tmp/x/pg'"), "%s", ci);
    cr_assert(strstr(ci, "dbname='flightshark'"), "%s", ci);
    cr_assert_null(strstr(ci, "hostaddr"), "%s", ci);
    free(ci);
}

Test(pg_url, bad_urls_are_errors)
{
    char *err = NULL;
    cr_assert_null(fs_pg_conninfo("postgresql://u@no-such-host.invalid/db", &err));
    cr_assert(strstr(err, "no-such-host.invalid"), "%s", err);
    free(err);
    err = NULL;
    cr_assert_null(fs_pg_conninfo("postgresql://u@h/db?nonsense_option=1", &err));
    cr_assert_not_null(err);
    free(err);
    err = NULL;
    cr_assert_null(fs_pg_conninfo("", &err));
    free(err);
}

Test(pg, bad_url_gives_a_pool_that_fails_with_the_reason)
{
    fs_pg_pool_t *p = pool_for("postgresql://u@no-such-host.invalid/db", 2, 0, 10);
    result_t r = {0};
    fs_pg_query(p, NULL, "SELECT 1", 0, NULL, on_result, &r);
    cr_assert_eq(r.calls, 0);
    cr_assert(spin(&r.calls, 1, 500));
    cr_assert_eq(r.status, FS_PG_UNAVAILABLE);
    cr_assert(strstr(r.error, "no-such-host.invalid"), "%s", r.error);
    cr_assert_not(fs_pg_available(p));
    fs_pg_pool_free(p);
}

Test(pg_url, connect_blocking)
{
    char *err = NULL;
    PGconn *c = fs_pg_connect_blocking(fs_test_env("DATABASE_URL"), &err);
    cr_assert_not_null(c, "%s", err);
    PGresult *res = PQexec(c, "SELECT 7");
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "7");
    PQclear(res);
    PQfinish(c);
    cr_assert_null(fs_pg_connect_blocking("postgresql:///x?host=/nonexistent-fs-test", &err));
    cr_assert_not_null(err);
    free(err);
}
