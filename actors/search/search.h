/* The `search` actor (one per worker): flight searches, month calendars and flexible searches.
 *
 * For every request it validates, resolves codes (airports and multi-airport city codes)
 * against the worker's reference data, asks the `cache` actor, and on a miss reads recent
 * observed fares from price_history, runs the provider strategy (actors/search/manager.h),
 * writes the answer, stores it in the cache, replies, reports the fares it saw to
 * `price-ingest` and the search to the analytics log (search_logs, in batches).
 *
 * It answers asks of type FS_MSG_SEARCH_REQUEST / _CALENDAR_REQUEST / _FLEXIBLE_REQUEST with
 * a FS_MSG_SEARCH_REPLY (fs.search.SearchReply: an HTTP status, a detail on errors, the JSON
 * body on success), so the HTTP endpoints and the internal RPC share one implementation.
 * docs/FLIGHTS.md describes the behaviour and the error cases.
 */
#ifndef FS_SEARCH_H
#define FS_SEARCH_H

#include "actors/price_ingest/price_ingest.h"
#include "actors/search/manager.h"

#include <stdbool.h>

typedef struct fs_actor fs_actor_t;
typedef struct fs_actor_system fs_actor_system_t;
typedef struct fs_pg_pool fs_pg_pool_t;
typedef struct fs_metrics fs_metrics_t;
typedef struct fs_peer fs_peer_t;

#define FS_SEARCH_ACTOR "search"

enum {
    FS_MSG_SEARCH_REQUEST = 100,   /* fs.search.SearchRequest (ask) */
    FS_MSG_SEARCH_REPLY = 101,     /* fs.search.SearchReply */
    FS_MSG_PROVIDER_RESET = 102,   /* fs.search.ProviderReset (send, every worker) */
    FS_MSG_CALENDAR_REQUEST = 103, /* fs.search.CalendarRequest (ask) */
    FS_MSG_FLEXIBLE_REQUEST = 104, /* fs.search.FlexibleRequest (ask) */
    FS_MSG_SEARCH_LOG_TICK = 150,  /* timer: flush the analytics batch */
    FS_MSG_PRICE_REFRESH_TICK = 151, /* timer: refresh the fares of popular routes (worker 0) */
};

/* Registers the message types that cross workers. Call before forking. */
void fs_search_register_types(void);

typedef struct fs_search_deps {
    fs_provider_manager_t *providers; /* owned by the caller; outlives the actor */
    fs_pg_pool_t *pg;                 /* observed fares and search_logs; may be NULL */
    fs_metrics_t *metrics;            /* may be NULL */
    fs_peer_t *peer;                  /* to reach price-ingest and other workers; may be NULL */
    struct fs_redis *redis;           /* the refresh's cross-host lock; may be NULL */
} fs_search_deps_t;

/* Spawns this worker's search actor. */
fs_actor_t *fs_search_spawn(fs_actor_system_t *sys, const fs_search_deps_t *deps);

/* Writes the analytics rows still buffered (at shutdown). */
void fs_search_flush_logs(void);

/* This worker's provider manager (for the /flights/providers endpoints), NULL before the spawn. */
fs_provider_manager_t *fs_search_providers(void);

/* The timeout an asker should give a search: the search deadline plus the cache wait. */
int fs_search_ask_timeout_ms(void);

#endif
