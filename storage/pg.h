/* PostgreSQL through non-blocking libpq, driven by the worker's event loop.
 *
 * A pool holds `size` connections. Each connection is connected with PQconnectStart /
 * PQconnectPoll (re-registering its event every poll, since the socket may change), runs one
 * query at a time or a pipeline of queries, and reconnects with exponential backoff when it
 * breaks. Queries wait in a bounded queue while every connection is busy or down; when no
 * connection has been up for a while, queries fail at once with FS_PG_UNAVAILABLE, so the
 * HTTP layer can answer 503 instead of piling requests up. Host names in DATABASE_URL are
 * resolved once at start (libpq's own DNS lookup would block the loop).
 */
#ifndef FS_PG_H
#define FS_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct fs_pg_pool fs_pg_pool_t;

typedef struct fs_pg_pool_opts {
    const char *url;           /* DATABASE_URL (postgresql+asyncpg:// is accepted too) */
    int size;                  /* connections */
    int statement_timeout_ms;  /* sent as statement_timeout at connect */
    int connect_timeout_ms;
    int max_queue;             /* queued queries beyond which submit fails with FS_PG_BUSY */
    const char *application_name;
} fs_pg_pool_opts_t;

/* Outcome of a query. `res` is valid only during the callback (the pool clears it after). */
typedef enum {
    FS_PG_OK = 0,          /* res holds PGRES_TUPLES_OK or PGRES_COMMAND_OK */
    FS_PG_ERROR,           /* the server refused the statement: res holds the error */
    FS_PG_UNAVAILABLE,     /* no connection to the database */
    FS_PG_TIMEOUT,         /* statement_timeout or the pool's own deadline */
    FS_PG_BUSY,            /* the queue is full */
} fs_pg_status_t;

typedef void (*fs_pg_cb)(fs_pg_status_t status, PGresult *res, const char *error, void *arg);

/* Never returns NULL: with a URL that cannot be parsed or a host that cannot be resolved the
 * pool has no connections and every query fails with FS_PG_UNAVAILABLE and that reason.
 * Defaults for zero fields: connect_timeout_ms 5000, max_queue 1024, size 1;
 * statement_timeout_ms 0 leaves the server's setting (and disables the pool's own deadline). */
fs_pg_pool_t *fs_pg_pool_new(struct event_base *base, const fs_pg_pool_opts_t *opts);
/* Closes connections; pending callbacks run with FS_PG_UNAVAILABLE before it returns. */
void fs_pg_pool_free(fs_pg_pool_t *pool);

/* Runs `sql` with text parameters (NULL entries are SQL NULL). When `stmt_name` is given the
 * statement is prepared once per connection under that name and reused. The callback always
 * runs exactly once, never before this function returns (so a caller can finish setup). */
void fs_pg_query(fs_pg_pool_t *pool, const char *stmt_name, const char *sql, int nparams,
                 const char *const *params, fs_pg_cb cb, void *arg);

/* Is at least one connection up? */
bool fs_pg_available(const fs_pg_pool_t *pool);

typedef struct fs_pg_stats {
    int size, connected, busy;
    size_t queued;
    unsigned long long queries, errors, reconnects;
} fs_pg_stats_t;
void fs_pg_pool_stats(const fs_pg_pool_t *pool, fs_pg_stats_t *out);

/* Turns DATABASE_URL into a libpq conninfo: strips "+asyncpg", resolves a host name to
 * hostaddr (blocking: call at start, not on the loop). Caller frees. NULL + *err on error. */
char *fs_pg_conninfo(const char *url, char **err);

/* Blocking connection for command-line tools (migrate, import, seed). */
PGconn *fs_pg_connect_blocking(const char *url, char **err);

#endif
