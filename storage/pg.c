/* PostgreSQL pool on non-blocking libpq, driven by the worker's event_base.
 *
 * Rules this file keeps (see docs/STORAGE.md for the full contract):
 *  1. One query in flight per connection. A named statement costs one extra round trip the
 *     first time it runs on a connection (PREPARE, then EXECUTE); after that it is one round
 *     trip. Pipelining is left for a batch API: the single-query path stays simple and
 *     cannot deadlock on unread results (LIBRARY-NOTES libpq item 4).
 *  2. Every callback runs from `deliver_ev`, never inside fs_pg_query or inside the pool's
 *     own bookkeeping, so a callback may submit new queries freely.
 *  3. A connection's event is re-created on every PQconnectPoll (the socket may change), and
 *     once connected it watches EV_READ always and EV_WRITE only while PQflush returns 1.
 *  4. A broken connection fails its in-flight query with FS_PG_UNAVAILABLE, is finished
 *     and is replaced by a fresh PQconnectStartParams after an exponential backoff.
 *  5. When no connection is up, queries fail at once; the exception is the very first
 *     connect attempt of a connection, which queued queries wait for.
 */
#include "storage/pg.h"
#include "storage/resolve.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000
#define PG_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define PG_DEFAULT_MAX_QUEUE 1024
/* The pool's own deadline for an answer is statement_timeout plus this grace: the server
 * cancels a slow statement itself, so only a silent server or network trips our timer. */
#define PG_DEADLINE_GRACE_MS 1000

typedef struct pg_query {
    struct pg_query *next;
    char *stmt_name;
    char *sql;
    int nparams;
    char **params;
    fs_pg_cb cb;
    void *arg;
    fs_pg_status_t status; /* outcome, set by query_finish */
    PGresult *res;
    char *error;
} pg_query_t;

typedef struct {
    pg_query_t *head, *tail;
    size_t len;
} qlist_t;

typedef enum { CONN_DOWN, CONN_CONNECTING, CONN_READY } conn_state_t;

typedef struct pg_conn {
    fs_pg_pool_t *pool;
    int id;
    PGconn *pc;
    conn_state_t state;
    bool tried;   /* one connect attempt has finished, successfully or not */
    bool ever_up; /* distinguishes a reconnect from the first connect */
    int failures; /* consecutive failed attempts: only the first is logged as a warning */
    struct event *io;
    int io_fd;
    short io_what;
    /* one timer, meaning follows state: DOWN backoff, CONNECTING connect timeout,
     * READY with `cur` the query deadline */
    struct event *timer;
    int backoff_ms;
    pg_query_t *cur;
    bool preparing; /* cur's PREPARE is in flight; its EXECUTE follows */
    PGresult *cur_res;
    char **prepared;
    size_t nprepared;
} pg_conn_t;

struct fs_pg_pool {
    struct event_base *base;
    const char **keywords; /* NULL-terminated, owned strings */
    const char **values;
    int size;
    pg_conn_t *conns;
    int statement_timeout_ms;
    int connect_timeout_ms;
    size_t max_queue;
    qlist_t queue; /* waiting for a connection */
    qlist_t done;  /* finished; callbacks not yet run */
    struct event *deliver_ev;
    int delivering;
    bool closing;
    bool free_pending;
    char last_error[256];
    unsigned long long queries, errors, reconnects;
};

static void conn_start(pg_conn_t *c);
static void conn_broken(pg_conn_t *c, const char *why);
static void pool_pump(fs_pg_pool_t *pool);

/*--- small helpers ---------------------------------------------------------------------*/

static void qlist_push(qlist_t *l, pg_query_t *q)
{
    q->next = NULL;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->len++;
}

static pg_query_t *qlist_pop(qlist_t *l)
{
    pg_query_t *q = l->head;
    if (!q)
        return NULL;
    l->head = q->next;
    if (!l->head)
        l->tail = NULL;
    l->len--;
    q->next = NULL;
    return q;
}

/* libpq messages span lines ("...\n\tIs the server running...\n"); logs and HTTP details
 * want one line. */
static char *trimmed(const char *msg)
{
    if (!msg || !*msg)
        return fs_strdup("unknown error");
    char *out = fs_malloc(strlen(msg) + 1), *p = out;
    for (const char *m = msg; *m; m++) {
        bool space = *m == '\n' || *m == '\t' || *m == ' ';
        if (space && (p == out || p[-1] == ' '))
            continue;
        *p++ = space ? ' ' : *m;
    }
    while (p > out && p[-1] == ' ')
        p--;
    *p = '\0';
    return out;
}

static struct timeval ms_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/*--- queries ---------------------------------------------------------------------------*/

static pg_query_t *query_new(const char *stmt_name, const char *sql, int nparams,
                             const char *const *params, fs_pg_cb cb, void *arg)
{
    pg_query_t *q = FS_NEW(pg_query_t);
    q->stmt_name = stmt_name ? fs_strdup(stmt_name) : NULL;
    q->sql = fs_strdup(sql ? sql : "");
    q->nparams = nparams > 0 ? nparams : 0;
    if (q->nparams) {
        q->params = fs_calloc((size_t)q->nparams, sizeof *q->params);
        for (int i = 0; i < q->nparams; i++)
            q->params[i] = params && params[i] ? fs_strdup(params[i]) : NULL;
    }
    q->cb = cb;
    q->arg = arg;
    return q;
}

static void query_free(pg_query_t *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->stmt_name);
    free(q->sql);
    free(q->error);
    PQclear(q->res);
    free(q);
}

/* Records the outcome and queues the callback; `res` is owned by the query from here. */
static void query_finish(fs_pg_pool_t *pool, pg_query_t *q, fs_pg_status_t status, PGresult *res,
                         const char *error)
{
    q->status = status;
    q->res = res;
    q->error = status == FS_PG_OK ? NULL : trimmed(error);
    if (status != FS_PG_OK)
        pool->errors++;
    qlist_push(&pool->done, q);
    event_active(pool->deliver_ev, EV_TIMEOUT, 1);
}

static void fail_all(fs_pg_pool_t *pool, qlist_t *l, fs_pg_status_t status, const char *why)
{
    pg_query_t *q;
    while ((q = qlist_pop(l)))
        query_finish(pool, q, status, NULL, why);
}

/* Runs finished callbacks. A callback may submit queries (they land on the lists and run
 * in this same loop when they fail at once) or free the pool (deferred until the loop ends). */
static void pool_run_callbacks(fs_pg_pool_t *pool)
{
    pg_query_t *q;
    pool->delivering++;
    while ((q = qlist_pop(&pool->done))) {
        if (q->cb)
            q->cb(q->status, q->res, q->error, q->arg);
        query_free(q);
    }
    pool->delivering--;
}

static void pool_on_deliver(evutil_socket_t fd, short what, void *arg)
{
    fs_pg_pool_t *pool = arg;
    pool_run_callbacks(pool);
    if (pool->free_pending && pool->delivering == 0)
        fs_pg_pool_free(pool);
}

/*--- one connection --------------------------------------------------------------------*/

static void conn_on_io(evutil_socket_t fd, short what, void *arg);

/* Registers the connection's socket for `what`. The event is re-created whenever the socket
 * or the interest changes; during connect that is every poll (LIBRARY-NOTES libpq 1). */
static void conn_watch(pg_conn_t *c, short what)
{
    int fd = PQsocket(c->pc);
    if (c->io && c->io_fd == fd && c->io_what == what && (what & EV_PERSIST))
        return;
    if (c->io)
        event_free(c->io);
    c->io = event_new(c->pool->base, fd, what, conn_on_io, c);
    c->io_fd = fd;
    c->io_what = what;
    event_add(c->io, NULL);
}

static void conn_forget_prepared(pg_conn_t *c)
{
    for (size_t i = 0; i < c->nprepared; i++)
        free(c->prepared[i]);
    free(c->prepared);
    c->prepared = NULL;
    c->nprepared = 0;
}

static bool conn_has_prepared(const pg_conn_t *c, const char *name)
{
    for (size_t i = 0; i < c->nprepared; i++)
        if (strcmp(c->prepared[i], name) == 0)
            return true;
    return false;
}

static void conn_add_prepared(pg_conn_t *c, const char *name)
{
    c->prepared = fs_realloc(c->prepared, (c->nprepared + 1) * sizeof *c->prepared);
    c->prepared[c->nprepared++] = fs_strdup(name);
}

/* Drops the libpq connection and its event; leaves the timer to the caller. */
static void conn_close(pg_conn_t *c)
{
    if (c->io)
        event_free(c->io);
    c->io = NULL;
    c->io_fd = -1;
    if (c->pc)
        PQfinish(c->pc);
    c->pc = NULL;
    PQclear(c->cur_res);
    c->cur_res = NULL;
    c->preparing = false;
    conn_forget_prepared(c);
    c->state = CONN_DOWN;
}

static int pool_connected(const fs_pg_pool_t *pool)
{
    int n = 0;
    for (int i = 0; i < pool->size; i++)
        n += pool->conns[i].state == CONN_READY;
    return n;
}

/* True while some connection has not finished its first attempt and none is up: queries
 * then wait for that attempt instead of failing. */
static bool pool_starting(const fs_pg_pool_t *pool)
{
    for (int i = 0; i < pool->size; i++)
        if (!pool->conns[i].tried)
            return true;
    return false;
}

/* With no connection up and none about to come up, waiting queries can only time out:
 * fail them now so callers answer 503 at once. */
static void pool_check_outage(fs_pg_pool_t *pool)
{
    if (pool_connected(pool) == 0 && !pool_starting(pool))
        fail_all(pool, &pool->queue, FS_PG_UNAVAILABLE, pool->last_error);
}

static void conn_on_notice(void *arg, const char *message)
{
    pg_conn_t *c = arg;
    char *m = trimmed(message);
    fs_debug("pg[%d]: %s", c->id, m);
    free(m);
}

static void conn_schedule_retry(pg_conn_t *c)
{
    int delay = c->backoff_ms + (int)(random() % (c->backoff_ms / 5 + 1));
    c->backoff_ms = c->backoff_ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : c->backoff_ms * 2;
    struct timeval tv = ms_tv(delay);
    evtimer_add(c->timer, &tv);
}

/* The connection failed or broke: fail its query, close it, retry after the backoff. */
static void conn_broken(pg_conn_t *c, const char *why)
{
    fs_pg_pool_t *pool = c->pool;
    char *msg = trimmed(why);
    bool was_ready = c->state == CONN_READY;
    snprintf(pool->last_error, sizeof pool->last_error, "database unavailable: %s", msg);
    if (was_ready)
        fs_warn("pg[%d]: connection lost: %s", c->id, msg);
    else if (c->failures++ == 0)
        fs_warn("pg[%d]: connect failed (retrying with backoff up to %d ms): %s", c->id, PG_BACKOFF_MAX_MS, msg);
    else
        fs_debug("pg[%d]: connect failed again (retry in %d ms): %s", c->id, c->backoff_ms, msg);
    free(msg);
    evtimer_del(c->timer);
    if (c->cur) {
        query_finish(pool, c->cur, FS_PG_UNAVAILABLE, NULL, pool->last_error);
        c->cur = NULL;
    }
    conn_close(c);
    c->tried = true;
    if (!pool->closing)
        conn_schedule_retry(c);
    pool_check_outage(pool);
}

static void conn_ready(pg_conn_t *c)
{
    fs_pg_pool_t *pool = c->pool;
    evtimer_del(c->timer);
    if (PQsetnonblocking(c->pc, 1) != 0) {
        conn_broken(c, PQerrorMessage(c->pc));
        return;
    }
    c->state = CONN_READY;
    c->tried = true;
    c->backoff_ms = PG_BACKOFF_MIN_MS;
    c->failures = 0;
    if (c->ever_up)
        pool->reconnects++;
    if (c->ever_up || c->id == 0)
        fs_info("pg[%d]: connected", c->id);
    c->ever_up = true;
    conn_watch(c, EV_READ | EV_PERSIST);
    pool_pump(pool);
}

/* Advances the connect state machine by one PQconnectPoll. */
static void conn_poll(pg_conn_t *c)
{
    switch (PQconnectPoll(c->pc)) {
    case PGRES_POLLING_READING:
        conn_watch(c, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        conn_watch(c, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        conn_ready(c);
        break;
    default:
        conn_broken(c, PQerrorMessage(c->pc));
        break;
    }
}

static void conn_start(pg_conn_t *c)
{
    fs_pg_pool_t *pool = c->pool;
    c->pc = PQconnectStartParams(pool->keywords, pool->values, 0);
    if (!c->pc)
        abort(); /* libpq returns NULL only when out of memory */
    c->state = CONN_CONNECTING;
    if (PQstatus(c->pc) == CONNECTION_BAD) {
        conn_broken(c, PQerrorMessage(c->pc));
        return;
    }
    PQsetNoticeProcessor(c->pc, conn_on_notice, c);
    struct timeval tv = ms_tv(pool->connect_timeout_ms);
    evtimer_add(c->timer, &tv);
    /* libpq: behave as if the first poll had returned PGRES_POLLING_WRITING */
    conn_watch(c, EV_WRITE);
}

/* Pushes buffered output; watches EV_WRITE only while some remains. 0, or -1 if broken. */
static int conn_flush(pg_conn_t *c)
{
    int r = PQflush(c->pc);
    if (r < 0) {
        conn_broken(c, PQerrorMessage(c->pc));
        return -1;
    }
    conn_watch(c, (short)(EV_READ | EV_PERSIST | (r == 1 ? EV_WRITE : 0)));
    return 0;
}

static void conn_arm_deadline(pg_conn_t *c)
{
    if (c->pool->statement_timeout_ms <= 0)
        return;
    struct timeval tv = ms_tv(c->pool->statement_timeout_ms + PG_DEADLINE_GRACE_MS);
    evtimer_add(c->timer, &tv);
}

/* Sends the next protocol step of c->cur (PREPARE, EXECUTE or a one-shot query). */
static void conn_send_step(pg_conn_t *c)
{
    pg_query_t *q = c->cur;
    const char *const *params = (const char *const *)q->params;
    int ok;
    if (q->stmt_name && !conn_has_prepared(c, q->stmt_name)) {
        c->preparing = true;
        ok = PQsendPrepare(c->pc, q->stmt_name, q->sql, q->nparams, NULL);
    } else if (q->stmt_name) {
        ok = PQsendQueryPrepared(c->pc, q->stmt_name, q->nparams, params, NULL, NULL, 0);
    } else {
        ok = PQsendQueryParams(c->pc, q->sql, q->nparams, NULL, params, NULL, NULL, 0);
    }
    if (ok) {
        conn_flush(c);
        return;
    }
    if (PQstatus(c->pc) == CONNECTION_BAD) {
        conn_broken(c, PQerrorMessage(c->pc));
        return;
    }
    /* refused on the client side (e.g. too many parameters): the connection is fine */
    evtimer_del(c->timer);
    c->cur = NULL;
    c->preparing = false;
    query_finish(c->pool, q, FS_PG_ERROR, NULL, PQerrorMessage(c->pc));
}

static void conn_send(pg_conn_t *c, pg_query_t *q)
{
    c->cur = q;
    conn_arm_deadline(c);
    conn_send_step(c);
}

static fs_pg_status_t classify(const pg_conn_t *c, const PGresult *res)
{
    if (PQstatus(c->pc) == CONNECTION_BAD)
        return FS_PG_UNAVAILABLE;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return FS_PG_OK;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "57014") == 0) /* query_canceled: statement_timeout */
        return FS_PG_TIMEOUT;
    if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))
        return FS_PG_UNAVAILABLE; /* connection exception, server shutting down */
    return FS_PG_ERROR;
}

/* All results of c->cur are in (PQgetResult returned NULL). */
static void conn_query_done(pg_conn_t *c)
{
    pg_query_t *q = c->cur;
    PGresult *res = c->cur_res;
    c->cur_res = NULL;
    if (c->preparing && PQresultStatus(res) == PGRES_COMMAND_OK) {
        c->preparing = false;
        PQclear(res);
        conn_add_prepared(c, q->stmt_name);
        conn_send_step(c);
        return;
    }
    c->preparing = false;
    evtimer_del(c->timer);
    c->cur = NULL;
    fs_pg_status_t st = classify(c, res);
    const char *err = res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res) : PQerrorMessage(c->pc);
    if (!res)
        err = "no result from the server";
    query_finish(c->pool, q, st, res, err);
    if (PQstatus(c->pc) == CONNECTION_BAD)
        conn_broken(c, PQerrorMessage(c->pc));
    else
        pool_pump(c->pool);
}

/* Keeps the first error result, otherwise the last result of the query. */
static void conn_keep_result(pg_conn_t *c, PGresult *r)
{
    if (c->cur_res && PQresultStatus(c->cur_res) == PGRES_FATAL_ERROR) {
        PQclear(r);
        return;
    }
    PQclear(c->cur_res);
    c->cur_res = r;
}

static void conn_collect(pg_conn_t *c)
{
    while (!PQisBusy(c->pc)) {
        PGresult *r = PQgetResult(c->pc);
        if (!r) {
            conn_query_done(c);
            return;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            /* the connection is now inside COPY; it cannot serve the pool any more */
            PQclear(r);
            pg_query_t *q = c->cur;
            c->cur = NULL;
            query_finish(c->pool, q, FS_PG_ERROR, NULL, "COPY is not supported on pooled connections");
            conn_broken(c, "COPY left the connection unusable");
            return;
        }
        conn_keep_result(c, r);
    }
    if (PQstatus(c->pc) == CONNECTION_BAD)
        conn_broken(c, PQerrorMessage(c->pc));
}

static void conn_on_ready_io(pg_conn_t *c, short what)
{
    if ((what & EV_READ) && !PQconsumeInput(c->pc)) {
        conn_broken(c, PQerrorMessage(c->pc));
        return;
    }
    if (conn_flush(c) < 0)
        return;
    PGnotify *n;
    while ((n = PQnotifies(c->pc)))
        PQfreemem(n);
    if (c->cur)
        conn_collect(c);
    else if (PQstatus(c->pc) == CONNECTION_BAD)
        conn_broken(c, PQerrorMessage(c->pc));
}

static void conn_on_io(evutil_socket_t fd, short what, void *arg)
{
    pg_conn_t *c = arg;
    if (c->state == CONN_CONNECTING)
        conn_poll(c);
    else if (c->state == CONN_READY)
        conn_on_ready_io(c, what);
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    pg_conn_t *c = arg;
    fs_pg_pool_t *pool = c->pool;
    if (c->state == CONN_DOWN) {
        conn_start(c);
    } else if (c->state == CONN_CONNECTING) {
        conn_broken(c, "connect timeout");
    } else if (c->cur) {
        pg_query_t *q = c->cur;
        c->cur = NULL;
        char *msg = fs_sprintf("no answer from the database within %d ms",
                               pool->statement_timeout_ms + PG_DEADLINE_GRACE_MS);
        query_finish(pool, q, FS_PG_TIMEOUT, NULL, msg);
        conn_broken(c, msg);
        free(msg);
    }
}

/*--- the pool --------------------------------------------------------------------------*/

static pg_conn_t *pool_idle_conn(fs_pg_pool_t *pool)
{
    for (int i = 0; i < pool->size; i++)
        if (pool->conns[i].state == CONN_READY && !pool->conns[i].cur)
            return &pool->conns[i];
    return NULL;
}

static void pool_pump(fs_pg_pool_t *pool)
{
    pg_conn_t *c;
    while (pool->queue.head && (c = pool_idle_conn(pool)))
        conn_send(c, qlist_pop(&pool->queue));
}

/* Appends `key=value` to the keyword arrays (they stay NULL-terminated). */
static void kw_add(fs_pg_pool_t *pool, size_t *n, const char *key, const char *val)
{
    pool->keywords = fs_realloc(pool->keywords, (*n + 2) * sizeof *pool->keywords);
    pool->values = fs_realloc(pool->values, (*n + 2) * sizeof *pool->values);
    pool->keywords[*n] = fs_strdup(key);
    pool->values[*n] = fs_strdup(val);
    (*n)++;
    pool->keywords[*n] = NULL;
    pool->values[*n] = NULL;
}

static PQconninfoOption *conninfo_options(const char *url, char **err);

/* Builds the keyword arrays once: the URL's settings (host names already resolved), plus
 * statement_timeout appended to `options` and the application name. */
static int pool_build_params(fs_pg_pool_t *pool, const fs_pg_pool_opts_t *opts, char **err)
{
    PQconninfoOption *info = conninfo_options(opts->url, err);
    if (!info)
        return -1;
    size_t n = 0;
    const char *url_options = "";
    for (PQconninfoOption *o = info; o->keyword; o++) {
        if (!o->val || !o->val[0])
            continue;
        if (strcmp(o->keyword, "options") == 0)
            url_options = o->val;
        else if (strcmp(o->keyword, "application_name") != 0 || !opts->application_name)
            kw_add(pool, &n, o->keyword, o->val);
    }
    char *options = opts->statement_timeout_ms > 0
                        ? fs_sprintf("%s%s-c statement_timeout=%d", url_options, url_options[0] ? " " : "",
                                     opts->statement_timeout_ms)
                        : fs_strdup(url_options);
    if (options[0])
        kw_add(pool, &n, "options", options);
    free(options);
    if (opts->application_name)
        kw_add(pool, &n, "application_name", opts->application_name);
    PQconninfoFree(info);
    return 0;
}

static void pool_free_params(fs_pg_pool_t *pool)
{
    for (size_t i = 0; pool->keywords && pool->keywords[i]; i++) {
        free((char *)pool->keywords[i]);
        free((char *)pool->values[i]);
    }
    free(pool->keywords);
    free(pool->values);
}

/* Never returns NULL. When the URL cannot be parsed or its host resolved, the pool has no
 * connections and every query fails with FS_PG_UNAVAILABLE carrying that reason, so a worker
 * with a bad DATABASE_URL answers 503 with a clear detail instead of crashing. */
fs_pg_pool_t *fs_pg_pool_new(struct event_base *base, const fs_pg_pool_opts_t *opts)
{
    fs_pg_pool_t *pool = FS_NEW(fs_pg_pool_t);
    char *err = NULL;
    pool->base = base;
    pool->size = opts->size > 0 ? opts->size : 1;
    snprintf(pool->last_error, sizeof pool->last_error, "database unavailable");
    if (pool_build_params(pool, opts, &err) < 0) {
        fs_error("pg: %s", err);
        snprintf(pool->last_error, sizeof pool->last_error, "database unavailable: %s", err);
        free(err);
        pool->size = 0;
    }
    pool->statement_timeout_ms = opts->statement_timeout_ms;
    pool->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : PG_DEFAULT_CONNECT_TIMEOUT_MS;
    pool->max_queue = opts->max_queue > 0 ? (size_t)opts->max_queue : PG_DEFAULT_MAX_QUEUE;
    pool->deliver_ev = event_new(base, -1, 0, pool_on_deliver, pool);
    pool->conns = fs_calloc((size_t)pool->size, sizeof *pool->conns);
    for (int i = 0; i < pool->size; i++) {
        pg_conn_t *c = &pool->conns[i];
        c->pool = pool;
        c->id = i;
        c->io_fd = -1;
        c->backoff_ms = PG_BACKOFF_MIN_MS;
        c->timer = evtimer_new(base, conn_on_timer, c);
    }
    for (int i = 0; i < pool->size; i++)
        conn_start(&pool->conns[i]);
    return pool;
}

void fs_pg_pool_free(fs_pg_pool_t *pool)
{
    if (!pool)
        return;
    if (!pool->closing) {
        pool->closing = true;
        for (int i = 0; i < pool->size; i++) {
            pg_conn_t *c = &pool->conns[i];
            evtimer_del(c->timer);
            if (c->cur)
                query_finish(pool, c->cur, FS_PG_UNAVAILABLE, NULL, "database pool closed");
            c->cur = NULL;
            conn_close(c);
            c->tried = true;
        }
        fail_all(pool, &pool->queue, FS_PG_UNAVAILABLE, "database pool closed");
    }
    if (pool->delivering) { /* called from a callback: pool_on_deliver finishes the job */
        pool->free_pending = true;
        return;
    }
    pool_run_callbacks(pool); /* every pending callback, and those they cause */
    for (int i = 0; i < pool->size; i++)
        event_free(pool->conns[i].timer);
    free(pool->conns);
    event_free(pool->deliver_ev);
    pool_free_params(pool);
    free(pool);
}

void fs_pg_query(fs_pg_pool_t *pool, const char *stmt_name, const char *sql, int nparams,
                 const char *const *params, fs_pg_cb cb, void *arg)
{
    pg_query_t *q = query_new(stmt_name, sql, nparams, params, cb, arg);
    pg_conn_t *c;
    pool->queries++;
    if (pool->closing)
        query_finish(pool, q, FS_PG_UNAVAILABLE, NULL, "database pool closed");
    else if ((c = pool_idle_conn(pool)))
        conn_send(c, q);
    else if (pool_connected(pool) == 0 && !pool_starting(pool))
        query_finish(pool, q, FS_PG_UNAVAILABLE, NULL, pool->last_error);
    else if (pool->queue.len >= pool->max_queue)
        query_finish(pool, q, FS_PG_BUSY, NULL, "database queue full");
    else
        qlist_push(&pool->queue, q);
}

bool fs_pg_available(const fs_pg_pool_t *pool)
{
    return pool_connected(pool) > 0;
}

void fs_pg_pool_stats(const fs_pg_pool_t *pool, fs_pg_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->size = pool->size;
    for (int i = 0; i < pool->size; i++) {
        out->connected += pool->conns[i].state == CONN_READY;
        out->busy += pool->conns[i].cur != NULL;
    }
    out->queued = pool->queue.len;
    out->queries = pool->queries;
    out->errors = pool->errors;
    out->reconnects = pool->reconnects;
}

/*--- DATABASE_URL ----------------------------------------------------------------------*/

/* "postgresql+asyncpg://..." -> "postgresql://...": SQLAlchemy's driver suffix means
 * nothing to libpq. */
static char *strip_driver(const char *url)
{
    const char *sep = strstr(url, "://");
    const char *plus = memchr(url, '+', sep ? (size_t)(sep - url) : 0);
    if (!sep || !plus)
        return fs_strdup(url);
    return fs_sprintf("%.*s%s", (int)(plus - url), url, sep);
}

/* One entry of hostaddr for one entry of host: "" for sockets, the address otherwise. */
static char *resolve_one(const char *host, char **err)
{
    if (!host[0] || host[0] == '/' || host[0] == '@')
        return fs_strdup("");
    return fs_resolve_ip(host, "database", err);
}

/* host may be a comma-separated list; hostaddr gets one entry per host. Returns "" when no
 * entry is a name (hostaddr then stays unset). */
static char *resolve_hosts(const char *hosts, char **err)
{
    char *copy = fs_strdup(hosts), *save = NULL, *out = NULL;
    bool named = false;
    for (char *h = strtok_r(copy, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
        char *addr = resolve_one(h, err);
        if (!addr) {
            free(copy);
            free(out);
            return NULL;
        }
        named |= addr[0] && strcmp(addr, h) != 0;
        char *next = out ? fs_sprintf("%s,%s", out, addr) : fs_strdup(addr);
        free(out);
        free(addr);
        out = next;
    }
    free(copy);
    if (!named || !out) {
        free(out);
        return fs_strdup("");
    }
    return out;
}

/* Parses the URL with libpq and fills hostaddr for host names. Caller PQconninfoFree()s. */
static PQconninfoOption *conninfo_options(const char *url, char **err)
{
    if (!url || !url[0]) {
        *err = fs_strdup("DATABASE_URL is empty");
        return NULL;
    }
    char *clean = strip_driver(url), *perr = NULL;
    PQconninfoOption *info = PQconninfoParse(clean, &perr);
    free(clean);
    if (!info) {
        *err = trimmed(perr ? perr : "cannot parse DATABASE_URL");
        PQfreemem(perr);
        return NULL;
    }
    PQconninfoOption *host = NULL, *hostaddr = NULL;
    for (PQconninfoOption *o = info; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0)
            host = o;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o;
    }
    if (host && host->val && host->val[0] && hostaddr && !(hostaddr->val && hostaddr->val[0])) {
        char *addrs = resolve_hosts(host->val, err);
        if (!addrs) {
            PQconninfoFree(info);
            return NULL;
        }
        if (addrs[0]) {
            free(hostaddr->val); /* libpq allocated it with malloc and frees it with free */
            hostaddr->val = strdup(addrs);
        }
        free(addrs);
    }
    return info;
}

/* Appends key='value' with libpq's quoting rules (backslash and quote escaped). */
static char *conninfo_append(char *s, const char *key, const char *val)
{
    size_t len = strlen(s), need = len + strlen(key) + 2 * strlen(val) + 5;
    s = fs_realloc(s, need);
    char *p = s + len;
    p += sprintf(p, "%s%s='", len ? " " : "", key);
    for (const char *v = val; *v; v++) {
        if (*v == '\\' || *v == '\'')
            *p++ = '\\';
        *p++ = *v;
    }
    *p++ = '\'';
    *p = '\0';
    return s;
}

char *fs_pg_conninfo(const char *url, char **err)
{
    PQconninfoOption *info = conninfo_options(url, err);
    if (!info)
        return NULL;
    char *out = fs_strdup("");
    for (PQconninfoOption *o = info; o->keyword; o++)
        if (o->val && o->val[0])
            out = conninfo_append(out, o->keyword, o->val);
    PQconninfoFree(info);
    return out;
}

PGconn *fs_pg_connect_blocking(const char *url, char **err)
{
    char *info = fs_pg_conninfo(url, err);
    if (!info)
        return NULL;
    PGconn *conn = PQconnectdb(info);
    free(info);
    if (PQstatus(conn) != CONNECTION_OK) {
        *err = trimmed(PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}
