/* The `price-ingest` actor: one per host, in worker 0. Every observed fare (searches, the
 * scheduled refresh, the IngestPrices RPC) goes through it into price_history and price_daily.
 * docs/PRICES.md describes the pipeline and its guarantees.
 *
 * Messages (schemas/prices.proto):
 *   FS_MSG_PRICE_BATCH (fs.prices.PriceBatch)
 *     - sent, or asked with wait_commit unset/false: the valid rows are buffered; an ask is
 *       answered at once (accepted = rows taken into the buffer);
 *     - asked with wait_commit = true: answered only after its rows are committed, with
 *       FS_MSG_PRICE_BATCH_REPLY.
 *   FS_MSG_PRICE_BATCH_REPLY (fs.prices.PriceBatchReply): the ask's transport status is FS_OK
 *     whenever the actor answered; the outcome is in the body:
 *       status 0          accepted (rows inserted), duplicates (already present), invalid;
 *       status FS_EFULL   "resource exhausted": the buffer cannot take the batch; nothing of
 *                         it was taken (retry later);
 *       status FS_EFAIL   the database refused the batch repeatedly (error says why);
 *       status FS_EUNAVAIL the process stopped before the rows were committed.
 *     Other workers reach the actor with fs_peer_ask(peer, from, FS_PRICE_INGEST_WORKER,
 *     FS_PRICE_INGEST_ACTOR, FS_MSG_PRICE_BATCH, batch, timeout, cb, arg); runtime errors
 *     (FS_EFULL mailbox full, FS_EUNAVAIL worker 0 restarting, FS_ETIMEOUT) come as the
 *     transport status as usual. Rows of an ask that timed out are still written.
 *
 * Invalid rows (codes, dates, cabin, price, times; rows.h has the rules) are counted and
 * skipped, never fatal. Duplicates (same time, route, airline, departure date and cabin) are
 * ignored. A committed batch is also appended to the Redis stream FS_PRICE_STREAM_KEY
 * (fields t o d a dd c p cur src; best effort).
 *
 * Worker wiring (worker 0 only):
 *   master, before forking:  fs_price_ingest_register_types();
 *   worker 0 start:          pi = fs_price_ingest_start(wk->actors, &(fs_price_ingest_opts_t){
 *                                    .redis = wk->redis, .metrics = wk->metrics});
 *   SIGTERM (drain start):   fs_price_ingest_drain(pi, NULL, NULL);
 *   drain tick:              leave the loop when no request is in flight AND
 *                            fs_price_ingest_idle(pi) (or the drain deadline passed);
 *   after the loop:          fs_price_ingest_free(pi) before fs_peer_free and
 *                            fs_actor_system_free.
 */
#ifndef FS_PRICE_INGEST_H
#define FS_PRICE_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fs_actor fs_actor_t;
typedef struct fs_actor_system fs_actor_system_t;
typedef struct fs_redis fs_redis_t;
typedef struct fs_metrics fs_metrics_t;
typedef struct fs_price_ingest fs_price_ingest_t;

#define FS_PRICE_INGEST_ACTOR "price-ingest"
#define FS_PRICE_INGEST_WORKER 0
#define FS_PRICE_STREAM_KEY "flightshark:prices"
/* pg_advisory_lock key of the retention job ("FSPRRETN" in ASCII). */
#define FS_PRICE_RETENTION_LOCK_KEY 0x465350525245544ELL

enum {
    FS_MSG_PRICE_BATCH = 300,          /* fs.prices.PriceBatch (crosses workers) */
    FS_MSG_PRICE_BATCH_REPLY = 301,    /* fs.prices.PriceBatchReply (crosses workers) */
    FS_MSG_PRICE_FLUSH_TICK = 350,     /* timer: write a partial batch */
    FS_MSG_PRICE_RETENTION_TICK = 351, /* timer: retention and partitions ahead */
};

/* Registers PriceBatch and PriceBatchReply (they cross workers). Call before forking. */
void fs_price_ingest_register_types(void);

/* Zero fields take the setting (fs_cfg; its compiled default when fs_cfg is NULL). */
typedef struct fs_price_ingest_opts {
    const char *database_url;   /* NULL = DATABASE_URL; resolved here (blocking: call at start) */
    fs_redis_t *redis;          /* the stream appends; NULL = no stream */
    fs_metrics_t *metrics;      /* may be NULL */
    int batch_rows;             /* PRICE_INGEST_BATCH_ROWS (5000): rows per transaction */
    int flush_ms;               /* PRICE_INGEST_FLUSH_MS (200): a partial batch waits at most this */
    int buffer_rows;            /* PRICE_INGEST_BUFFER_ROWS (1000000): rows held before refusing */
    int retention_days;         /* PRICE_RETENTION_DAYS (1461) */
    int stream_maxlen;          /* PRICE_STREAM_MAXLEN (1000000); < 0 = no stream */
    int statement_timeout_ms;   /* 0 = 60000 */
    int retention_delay_ms;     /* first retention run after start; 0 = 60000; < 0 = only on demand */
    int retention_interval_ms;  /* 0 = daily */
} fs_price_ingest_opts_t;

/* Spawns the actor FS_PRICE_INGEST_ACTOR in `sys` and opens its own database connection.
 * The buffer, pending asks and connection live in the returned object, so they survive a
 * restart of the actor. Returns NULL when the name is taken. */
fs_price_ingest_t *fs_price_ingest_start(fs_actor_system_t *sys, const fs_price_ingest_opts_t *opts);

fs_actor_t *fs_price_ingest_actor(const fs_price_ingest_t *pi);

/* Graceful shutdown, first half: from now on every buffered row is written as soon as the
 * connection allows (no batching delay), and the retention job is skipped. Rows keep being
 * accepted. `done` (may be NULL) runs once, from the loop, when the object is idle. */
void fs_price_ingest_drain(fs_price_ingest_t *pi, void (*done)(void *arg), void *arg);

/* Nothing buffered, nothing being written, no ask waiting. */
bool fs_price_ingest_idle(const fs_price_ingest_t *pi);

/* Stops the actor and closes the connection. Rows still buffered are lost and logged (with
 * their count); waiting asks are answered with status FS_EUNAVAIL. Call after the drain,
 * before fs_peer_free and fs_actor_system_free, not from a handler. NULL is fine. */
void fs_price_ingest_free(fs_price_ingest_t *pi);

/* Runs the retention job now (after the batch being written): under the advisory lock
 * FS_PRICE_RETENTION_LOCK_KEY, creates the partitions of this month and the next two and
 * drops those wholly older than retention_days. `done` (may be NULL) gets the counts, or an
 * error; `skipped` is true when another process holds the lock. */
typedef void (*fs_price_retention_fn)(int created, int dropped, bool skipped, const char *error, void *arg);
void fs_price_ingest_run_retention(fs_price_ingest_t *pi, fs_price_retention_fn done, void *arg);

typedef struct fs_price_ingest_stats {
    uint64_t received;    /* observations in batches */
    uint64_t invalid;     /* refused by validation */
    uint64_t refused;     /* valid but the buffer was full */
    uint64_t committed;   /* inserted into price_history */
    uint64_t duplicates;  /* already present */
    uint64_t failed;      /* given up after repeated database errors, or lost at shutdown */
    uint64_t batches;     /* committed transactions */
    uint64_t db_errors;   /* failed attempts (retried) */
    uint64_t stream_appended, stream_errors;
    uint64_t partitions_created, partitions_dropped;
    size_t buffered;      /* rows waiting, including the batch being written */
    size_t pending_asks;
    bool db_up;
} fs_price_ingest_stats_t;
void fs_price_ingest_get_stats(const fs_price_ingest_t *pi, fs_price_ingest_stats_t *out);

#endif
