/* The price-ingest connection: non-blocking libpq with COPY FROM STDIN, driven by libevent.
 *
 * Rules kept here (LIBRARY-NOTES libpq 1, 2):
 *  - the event is re-created on every PQconnectPoll (the socket may change);
 *  - once connected, EV_READ is always watched (a server that goes away is noticed while
 *    idle) and EV_WRITE only while output is pending: unflushed bytes (PQflush == 1) or COPY
 *    data and the COPY end not yet queued;
 *  - on a read event PQconsumeInput runs before anything else, so a server that answers
 *    (an error in the middle of a COPY) while we write never deadlocks us.
 */
#include "actors/price_ingest/ingest_db.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 5000
#define DB_COPY_CHUNK 65536

typedef enum { DB_DOWN, DB_CONNECTING, DB_INIT, DB_READY, DB_BUSY } db_state_t;

struct fs_ingest_db {
    struct event_base *base;
    char *conninfo, *init_sql;
    int connect_timeout_ms, exec_timeout_ms;
    fs_ingest_db_up_fn on_up;
    void *up_arg;
    PGconn *pc;
    db_state_t state;
    struct event *io;
    int io_fd;
    short io_what;
    struct event *timer; /* DOWN: backoff; CONNECTING: connect deadline; INIT/BUSY: exec deadline */
    struct event *defer; /* a send failed inside fs_ingest_db_exec: break from the loop */
    int backoff_ms, failures;
    bool ever_up, closing;
    unsigned long long reconnects;
    /* the exec in progress */
    fs_ingest_db_cb cb;
    void *cb_arg;
    char *copy;
    size_t copy_len, copy_off;
    bool in_copy, copy_ended, rolling_back;
    PGresult *tuples, *err_res;
    char *err_msg;
};

static void db_on_io(evutil_socket_t fd, short what, void *arg);
static void db_exec_done(fs_ingest_db_t *db);

static struct timeval ms_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* libpq messages span lines; logs want one. */
static char *one_line(const char *msg)
{
    char *out = fs_strdup(msg && *msg ? msg : "unknown error"), *p = out;
    for (char *m = out; *m; m++) {
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

static void db_watch(fs_ingest_db_t *db, short what)
{
    int fd = PQsocket(db->pc);
    if (db->io && db->io_fd == fd && db->io_what == what && (what & EV_PERSIST))
        return;
    if (db->io)
        event_free(db->io);
    db->io = event_new(db->base, fd, what, db_on_io, db);
    db->io_fd = fd;
    db->io_what = what;
    event_add(db->io, NULL);
}

static void exec_reset(fs_ingest_db_t *db)
{
    free(db->copy);
    db->copy = NULL;
    db->copy_len = db->copy_off = 0;
    db->in_copy = db->copy_ended = db->rolling_back = false;
    db->cb = NULL;
    db->cb_arg = NULL;
    db->tuples = db->err_res = NULL;
    db->err_msg = NULL;
}

/* Hands the outcome to the caller with the connection already idle (or down), so the
 * callback may start the next exec. */
static void db_deliver(fs_ingest_db_t *db, fs_ingest_db_status_t st, const char *why)
{
    fs_ingest_db_cb cb = db->cb;
    void *arg = db->cb_arg;
    PGresult *tuples = db->tuples, *err_res = db->err_res;
    char *err_msg = db->err_msg;
    const char *sqlstate = err_res ? PQresultErrorField(err_res, PG_DIAG_SQLSTATE) : NULL;
    char *error = NULL;
    if (st != FS_INGEST_DB_OK)
        error = one_line(why ? why : err_msg ? err_msg : err_res ? PQresultErrorMessage(err_res) : NULL);
    exec_reset(db);
    if (db->state == DB_BUSY || db->state == DB_INIT)
        db->state = DB_READY;
    if (cb)
        cb(st, st == FS_INGEST_DB_OK ? tuples : NULL, error, sqlstate ? sqlstate : "", arg);
    free(error);
    free(err_msg);
    PQclear(tuples);
    PQclear(err_res);
}

static void db_close(fs_ingest_db_t *db)
{
    if (db->io)
        event_free(db->io);
    db->io = NULL;
    db->io_fd = -1;
    if (db->pc)
        PQfinish(db->pc);
    db->pc = NULL;
    db->state = DB_DOWN;
}

static void db_schedule_retry(fs_ingest_db_t *db)
{
    int delay = db->backoff_ms + (int)(random() % (db->backoff_ms / 5 + 1));
    db->backoff_ms = db->backoff_ms * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : db->backoff_ms * 2;
    struct timeval tv = ms_tv(delay);
    evtimer_add(db->timer, &tv);
}

/* The connection failed or broke: close it, retry after the backoff, and fail the exec in
 * progress (its callback may run the next one: it is refused until the connection is up). */
static void db_broken(fs_ingest_db_t *db, const char *why)
{
    char *msg = one_line(why);
    bool was_up = db->state >= DB_INIT;
    if (was_up)
        fs_warn("price-ingest db: connection lost: %s", msg);
    else if (db->failures++ == 0)
        fs_warn("price-ingest db: connect failed (retrying with backoff up to %d ms): %s", DB_BACKOFF_MAX_MS, msg);
    else
        fs_debug("price-ingest db: connect failed again: %s", msg);
    evtimer_del(db->timer);
    db_close(db);
    if (!db->closing)
        db_schedule_retry(db);
    char *reason = fs_sprintf("database unavailable: %s", msg);
    free(msg);
    if (db->cb || db->copy || db->tuples || db->err_res)
        db_deliver(db, FS_INGEST_DB_DOWN, reason);
    free(reason);
}

/* Pushes unflushed output; EV_WRITE is watched while some remains or COPY data waits. */
static int db_flush(fs_ingest_db_t *db)
{
    int r = PQflush(db->pc);
    if (r < 0) {
        db_broken(db, PQerrorMessage(db->pc));
        return -1;
    }
    bool want_write = r == 1 || db->in_copy;
    db_watch(db, (short)(EV_READ | EV_PERSIST | (want_write ? EV_WRITE : 0)));
    return 0;
}

/* Queues COPY data and the COPY end as far as libpq accepts them. 0, or -1 when broken. */
static int db_push_copy(fs_ingest_db_t *db)
{
    while (db->copy_off < db->copy_len) {
        size_t n = db->copy_len - db->copy_off;
        if (n > DB_COPY_CHUNK)
            n = DB_COPY_CHUNK;
        int r = PQputCopyData(db->pc, db->copy + db->copy_off, (int)n);
        if (r < 0) {
            db_broken(db, PQerrorMessage(db->pc));
            return -1;
        }
        if (r == 0)
            return 0; /* buffers full: continue on write-readiness */
        db->copy_off += n;
    }
    if (!db->copy_ended) {
        int r = PQputCopyEnd(db->pc, NULL);
        if (r < 0) {
            db_broken(db, PQerrorMessage(db->pc));
            return -1;
        }
        if (r == 0)
            return 0;
        db->copy_ended = true;
        db->in_copy = false;
    }
    return 0;
}

static void db_keep_error(fs_ingest_db_t *db, PGresult *r)
{
    if (db->err_res || db->err_msg)
        PQclear(r);
    else
        db->err_res = r;
}

/* Reads results while they are complete; a NULL result ends the exec. */
static void db_collect(fs_ingest_db_t *db)
{
    while (!db->in_copy && !PQisBusy(db->pc)) {
        PGresult *r = PQgetResult(db->pc);
        if (!r) {
            db_exec_done(db);
            return;
        }
        switch (PQresultStatus(r)) {
        case PGRES_COPY_IN:
            PQclear(r);
            db->in_copy = true;
            if (db_push_copy(db) < 0 || db_flush(db) < 0)
                return;
            break;
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
            PQclear(r);
            db_broken(db, "unexpected COPY direction");
            return;
        case PGRES_TUPLES_OK:
            PQclear(db->tuples);
            db->tuples = r;
            break;
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
            PQclear(r);
            break;
        default:
            db_keep_error(db, r);
            break;
        }
    }
    if (PQstatus(db->pc) == CONNECTION_BAD)
        db_broken(db, PQerrorMessage(db->pc));
}

static bool sqlstate_is_down(const char *state)
{
    return state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0);
}

static void db_init_done(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate,
                         void *arg);

static void db_exec_done(fs_ingest_db_t *db)
{
    bool failed = db->err_res || db->err_msg;
    if (db->rolling_back) {
        db->rolling_back = false;
        if (PQtransactionStatus(db->pc) != PQTRANS_IDLE) {
            db_broken(db, "ROLLBACK did not end the transaction");
            return;
        }
    } else if (failed && PQtransactionStatus(db->pc) != PQTRANS_IDLE && PQstatus(db->pc) == CONNECTION_OK) {
        /* the string failed inside BEGIN ... COMMIT: end that transaction before reporting */
        if (!PQsendQuery(db->pc, "ROLLBACK")) {
            db_broken(db, PQerrorMessage(db->pc));
            return;
        }
        db->rolling_back = true;
        db_flush(db);
        return;
    }
    evtimer_del(db->timer);
    const char *state = db->err_res ? PQresultErrorField(db->err_res, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(db->pc) == CONNECTION_BAD || (failed && sqlstate_is_down(state))) {
        db_broken(db, db->err_res ? PQresultErrorMessage(db->err_res) : PQerrorMessage(db->pc));
        return;
    }
    db_deliver(db, failed ? FS_INGEST_DB_ERROR : FS_INGEST_DB_OK, NULL);
}

static void db_send(fs_ingest_db_t *db, const char *sql)
{
    if (db->exec_timeout_ms > 0) {
        struct timeval tv = ms_tv(db->exec_timeout_ms);
        evtimer_add(db->timer, &tv);
    }
    if (!PQsendQuery(db->pc, sql)) {
        /* fails only when the connection is unusable; report from the loop, not from here */
        event_active(db->defer, EV_TIMEOUT, 1);
        return;
    }
    db_flush(db);
}

static void db_connected(fs_ingest_db_t *db)
{
    evtimer_del(db->timer);
    if (PQsetnonblocking(db->pc, 1) != 0) {
        db_broken(db, PQerrorMessage(db->pc));
        return;
    }
    db->backoff_ms = DB_BACKOFF_MIN_MS;
    db->failures = 0;
    if (db->ever_up)
        db->reconnects++;
    fs_info("price-ingest db: %s", db->ever_up ? "reconnected" : "connected");
    db->ever_up = true;
    db->state = DB_INIT;
    db_watch(db, EV_READ | EV_PERSIST);
    db->cb = db_init_done;
    db->cb_arg = db;
    db_send(db, db->init_sql ? db->init_sql : "SELECT 1");
}

static void db_init_done(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate,
                         void *arg)
{
    fs_ingest_db_t *db = arg;
    if (st == FS_INGEST_DB_ERROR) {
        fs_error("price-ingest db: session setup failed: %s", error);
        db_broken(db, error);
        return;
    }
    if (st == FS_INGEST_DB_OK && db->on_up)
        db->on_up(db->up_arg);
}

static void db_poll(fs_ingest_db_t *db)
{
    switch (PQconnectPoll(db->pc)) {
    case PGRES_POLLING_READING:
        db_watch(db, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        db_watch(db, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        db_connected(db);
        break;
    default:
        db_broken(db, PQerrorMessage(db->pc));
        break;
    }
}

/* Server notices (and the FATAL a server sends as it shuts down) go to the log, not stderr. */
static void db_on_notice(void *arg, const char *message)
{
    char *m = one_line(message);
    fs_debug("price-ingest db: %s", m);
    free(m);
}

static void db_start(fs_ingest_db_t *db)
{
    db->pc = PQconnectStart(db->conninfo);
    if (!db->pc)
        abort(); /* libpq returns NULL only when out of memory */
    db->state = DB_CONNECTING;
    if (PQstatus(db->pc) == CONNECTION_BAD) {
        db_broken(db, PQerrorMessage(db->pc));
        return;
    }
    PQsetNoticeProcessor(db->pc, db_on_notice, db);
    struct timeval tv = ms_tv(db->connect_timeout_ms);
    evtimer_add(db->timer, &tv);
    db_watch(db, EV_WRITE); /* as if the first poll had returned PGRES_POLLING_WRITING */
}

static void db_on_io(evutil_socket_t fd, short what, void *arg)
{
    fs_ingest_db_t *db = arg;
    if (db->state == DB_CONNECTING) {
        db_poll(db);
        return;
    }
    if (db->state == DB_DOWN)
        return;
    if ((what & EV_READ) && !PQconsumeInput(db->pc)) {
        db_broken(db, PQerrorMessage(db->pc));
        return;
    }
    if (db->in_copy && db_push_copy(db) < 0)
        return;
    if (db_flush(db) < 0)
        return;
    PGnotify *n;
    while ((n = PQnotifies(db->pc)))
        PQfreemem(n);
    if (db->state == DB_BUSY || db->state == DB_INIT)
        db_collect(db);
    else if (PQstatus(db->pc) == CONNECTION_BAD)
        db_broken(db, PQerrorMessage(db->pc));
}

static void db_on_timer(evutil_socket_t fd, short what, void *arg)
{
    fs_ingest_db_t *db = arg;
    if (db->state == DB_DOWN)
        db_start(db);
    else if (db->state == DB_CONNECTING)
        db_broken(db, "connect timeout");
    else if (db->state == DB_BUSY || db->state == DB_INIT)
        db_broken(db, "no answer from the database in time");
}

static void db_on_defer(evutil_socket_t fd, short what, void *arg)
{
    fs_ingest_db_t *db = arg;
    if (db->pc)
        db_broken(db, PQerrorMessage(db->pc));
}

fs_ingest_db_t *fs_ingest_db_new(struct event_base *base, const fs_ingest_db_opts_t *opts)
{
    fs_ingest_db_t *db = FS_NEW(fs_ingest_db_t);
    db->base = base;
    db->conninfo = fs_strdup(opts->conninfo ? opts->conninfo : "");
    db->init_sql = opts->init_sql ? fs_strdup(opts->init_sql) : NULL;
    db->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    db->exec_timeout_ms = opts->exec_timeout_ms > 0 ? opts->exec_timeout_ms : 120000;
    db->on_up = opts->on_up;
    db->up_arg = opts->arg;
    db->io_fd = -1;
    db->backoff_ms = DB_BACKOFF_MIN_MS;
    db->timer = evtimer_new(base, db_on_timer, db);
    db->defer = event_new(base, -1, 0, db_on_defer, db);
    db_start(db);
    return db;
}

void fs_ingest_db_free(fs_ingest_db_t *db)
{
    if (!db)
        return;
    db->closing = true;
    evtimer_del(db->timer);
    event_del(db->defer);
    db_close(db); /* DOWN first: a callback run below cannot start another exec */
    if (db->cb && db->cb != db_init_done) {
        db_deliver(db, FS_INGEST_DB_DOWN, "database connection closed");
    } else {
        PQclear(db->tuples);
        PQclear(db->err_res);
        free(db->err_msg);
        exec_reset(db);
    }
    event_free(db->timer);
    event_free(db->defer);
    free(db->conninfo);
    free(db->init_sql);
    free(db);
}

bool fs_ingest_db_idle(const fs_ingest_db_t *db)
{
    return db->state == DB_READY;
}

bool fs_ingest_db_up(const fs_ingest_db_t *db)
{
    return db->state == DB_READY || db->state == DB_BUSY;
}

int fs_ingest_db_exec(fs_ingest_db_t *db, const char *sql, const char *copy_data, size_t copy_len,
                      fs_ingest_db_cb cb, void *arg)
{
    if (db->state != DB_READY)
        return -1;
    db->state = DB_BUSY;
    db->cb = cb;
    db->cb_arg = arg;
    if (copy_data && copy_len) {
        db->copy = fs_malloc(copy_len);
        memcpy(db->copy, copy_data, copy_len);
        db->copy_len = copy_len;
    }
    db_send(db, sql);
    return 0;
}

void fs_ingest_db_kick(fs_ingest_db_t *db)
{
    if (db->state != DB_DOWN || db->closing)
        return;
    evtimer_del(db->timer);
    db->backoff_ms = DB_BACKOFF_MIN_MS;
    db_start(db);
}

unsigned long long fs_ingest_db_reconnects(const fs_ingest_db_t *db)
{
    return db->reconnects;
}
