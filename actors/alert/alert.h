/* The `alert` actors: one shard per worker, each holding the active alerts of its routes in
 * memory (actors/alert/alert_index.h) and matching every observed fare of the Redis stream
 * FS_PRICE_STREAM_KEY against them. docs/ALERTS.md describes the design and its guarantees.
 *
 * Sharding. A route (origin, destination) belongs to shard fs_alert_shard_of(route, n) among
 * the n workers of a server; worker i runs the shard i. The shard loads its rows of
 * price_alerts (is_active) at start and is kept current by FS_MSG_ALERT_CHANGED:
 *   - the HTTP handlers commit, then ask the owning worker's actor FS_ALERT_ACTOR with
 *     fs_peer_ask (the local worker too) and publish the change on FS_ALERT_CHANNEL for the
 *     shards of other hosts (fs_alert_publish);
 *   - a shard that lost its subscription reloads once it is back (changes published meanwhile
 *     are gone); changes that arrive during a load are replayed on the new index.
 *
 * Observations. Each shard reads the stream through its own consumer group
 * "alerts-shard-<i>-of-<n>" on a Redis client of its own (XREADGROUP BLOCK), so that every
 * shard index sees every observation once per deployment, however many hosts share the stream.
 * Its consumer name is "<host>-<i>", stable across restarts: a restarted worker first re-reads
 * the entries it had read but not acknowledged. Entries of other shards' routes are
 * acknowledged at once; an entry of its own is acknowledged after the database has answered
 * every match it caused. A match is one statement (FS_ALERT_MATCH_SQL in alert.c) that sets
 * last_notified_at only outside the cooldown and inserts one notifications row with the
 * idempotency key "<alert id>:<stream entry id>", so a redelivered entry adds nothing.
 *
 * Messages (schemas/alerts.proto):
 *   FS_MSG_ALERT_CHANGED (fs.alerts.AlertChanged), sent or asked; an ask is answered with
 *   FS_MSG_ALERT_CHANGED_ACK (fs.alerts.AlertChangedAck) once the index holds the change.
 *
 * Worker wiring:
 *   after fs_peer_new, with the other registrations:   fs_alert_register_types();
 *   after the actor system, pool and peer exist:       wk->alert = fs_alert_start(wk->actors,
 *                                                          &(fs_alert_opts_t){.shard = wk->index,
 *                                                          .shards = wk->count, .pg = wk->pg,
 *                                                          .metrics = wk->metrics});
 *   after the loop, before fs_peer_free and fs_actor_system_free:  fs_alert_stop(wk->alert);
 */
#ifndef FS_ALERT_H
#define FS_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fs_actor fs_actor_t;
typedef struct fs_actor_system fs_actor_system_t;
typedef struct fs_pg_pool fs_pg_pool_t;
typedef struct fs_redis fs_redis_t;
typedef struct fs_metrics fs_metrics_t;
typedef struct fs_alert_shard fs_alert_shard_t;
typedef struct Fs__Alerts__AlertChanged Fs__Alerts__AlertChanged;

#define FS_ALERT_ACTOR "alert"
#define FS_ALERT_CHANNEL "flightshark:alerts:changed"

enum {
    FS_MSG_ALERT_CHANGED = 400,     /* fs.alerts.AlertChanged (crosses workers) */
    FS_MSG_ALERT_CHANGED_ACK = 401, /* fs.alerts.AlertChangedAck (crosses workers) */
};

/* Registers AlertChanged and AlertChangedAck (they cross workers). */
void fs_alert_register_types(void);

/* Zero fields take the setting (fs_cfg, or the compiled default without one). */
typedef struct fs_alert_opts {
    int shard, shards;         /* this worker's index and the worker count (shards >= 1) */
    fs_pg_pool_t *pg;          /* the worker's pool: loads and match statements */
    fs_metrics_t *metrics;     /* may be NULL */
    const char *redis_url;     /* NULL = REDIS_URL */
    int redis_timeout_ms;      /* 0 = REDIS_TIMEOUT_MS */
    int cooldown_s;            /* 0 = ALERT_COOLDOWN_HOURS * 3600; < 0 = no cooldown */
    int block_ms;              /* XREADGROUP BLOCK; 0 = 1000 */
    const char *stream_key;    /* NULL = FS_PRICE_STREAM_KEY */
    const char *consumer;      /* NULL = "<host>-<shard>" */
} fs_alert_opts_t;

/* Spawns the actor FS_ALERT_ACTOR, opens the shard's two Redis clients (pub/sub and stream
 * reads), loads the shard's alerts, then starts reading the stream. The index and the stream
 * state live in the returned object, so a restart of the actor loses nothing. NULL when the
 * actor name is taken. */
fs_alert_shard_t *fs_alert_start(fs_actor_system_t *sys, const fs_alert_opts_t *opts);

/* Stops reading, closes the Redis clients and frees the index. Entries read but not yet
 * acknowledged stay pending in the group and are re-read by the next worker of this shard.
 * Database answers still due find the shard stopped and are dropped. NULL is fine. */
void fs_alert_stop(fs_alert_shard_t *s);

fs_actor_t *fs_alert_actor(const fs_alert_shard_t *s);

/* The shard owning a route among `shards`, from its codes; -1 when a code is malformed. */
int fs_alert_owner(const char *origin, const char *destination, int shards);

/* Publishes `c` on FS_ALERT_CHANNEL with this host's publisher id (fire and forget: with
 * Redis down, other hosts see the change at their next reload). */
void fs_alert_publish(fs_redis_t *redis, Fs__Alerts__AlertChanged *c);

typedef struct fs_alert_stats {
    size_t alerts;              /* in the index */
    size_t routes;
    size_t index_bytes;
    bool loaded, reading;       /* first load done; the stream group is being read */
    uint64_t loads;             /* loads swapped in */
    uint64_t changes;           /* AlertChanged applied (peer and pub/sub) */
    uint64_t entries;           /* stream entries read */
    uint64_t foreign;           /* ... of other shards' routes */
    uint64_t matches;           /* in-memory matches sent to the database */
    uint64_t notified;          /* notifications rows inserted */
    uint64_t suppressed;        /* matches the database refused (cooldown, changed alert, duplicate) */
    uint64_t db_errors;         /* match statements that failed (entry left pending, retried) */
    uint64_t acked;
    size_t inflight;            /* match statements waiting for the database */
} fs_alert_stats_t;
void fs_alert_get_stats(const fs_alert_shard_t *s, fs_alert_stats_t *out);

#endif
