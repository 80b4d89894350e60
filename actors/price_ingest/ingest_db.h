/* The price-ingest actor's own PostgreSQL connection (private to actors/price_ingest/).
 *
 * One non-blocking libpq connection driven by the loop, able to run a simple-protocol SQL
 * string (several statements allowed) that may end in `COPY ... FROM STDIN`, whose data is
 * then streamed with PQputCopyData / PQputCopyEnd under write-readiness, never blocking. The
 * pool's connections cannot do this (LIBRARY-NOTES libpq 3: no COPY in a pipeline).
 *
 * The connection reconnects by itself with exponential backoff; after every connect it runs
 * `init_sql` (session settings, the temporary staging table) before it reports itself up.
 * A statement that ends with the transaction still open after an error is rolled back before
 * the callback runs, so the next exec always starts outside a transaction.
 */
#ifndef FS_INGEST_DB_H
#define FS_INGEST_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct fs_ingest_db fs_ingest_db_t;

typedef enum {
    FS_INGEST_DB_OK = 0,  /* every statement succeeded */
    FS_INGEST_DB_ERROR,   /* the server refused a statement (the connection is fine) */
    FS_INGEST_DB_DOWN,    /* the connection broke or timed out: the outcome of a COMMIT in
                             flight is unknown (the caller's retry must be idempotent) */
} fs_ingest_db_status_t;

/* `res` is the last PGRES_TUPLES_OK result of the string (or NULL), valid during the call.
 * `sqlstate` is "" when there is none. */
typedef void (*fs_ingest_db_cb)(fs_ingest_db_status_t st, PGresult *res, const char *error, const char *sqlstate,
                                void *arg);
/* The connection is up (after init_sql) and idle. */
typedef void (*fs_ingest_db_up_fn)(void *arg);

typedef struct fs_ingest_db_opts {
    const char *conninfo;     /* libpq conninfo with host names already resolved */
    const char *init_sql;     /* run after every connect; may be NULL */
    int connect_timeout_ms;   /* 0 = 5000 */
    int exec_timeout_ms;      /* own deadline for one exec (server silent); 0 = 120000 */
    fs_ingest_db_up_fn on_up;
    void *arg;
} fs_ingest_db_opts_t;

/* Starts connecting at once. Never returns NULL. */
fs_ingest_db_t *fs_ingest_db_new(struct event_base *base, const fs_ingest_db_opts_t *opts);
/* Closes the connection (a transaction in flight is rolled back by the server); a pending
 * callback runs with FS_INGEST_DB_DOWN before it returns. */
void fs_ingest_db_free(fs_ingest_db_t *db);

/* Up and not running anything: exec may be called. */
bool fs_ingest_db_idle(const fs_ingest_db_t *db);
bool fs_ingest_db_up(const fs_ingest_db_t *db);

/* Sends `sql`; when it reaches COPY FROM STDIN, streams `copy_data` (copied, may be NULL).
 * Returns 0 (the callback then runs exactly once, from a loop callback, never inside this
 * call) or -1 when the connection is not idle (the callback never runs). */
int fs_ingest_db_exec(fs_ingest_db_t *db, const char *sql, const char *copy_data, size_t copy_len,
                      fs_ingest_db_cb cb, void *arg);

/* Reconnects at once instead of waiting for the backoff (after PostgreSQL is known back). */
void fs_ingest_db_kick(fs_ingest_db_t *db);

unsigned long long fs_ingest_db_reconnects(const fs_ingest_db_t *db);

#endif
