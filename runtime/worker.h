/* A worker process: one libevent loop serving one slot's HTTP socket, with its own actors,
 * PostgreSQL pool, Redis connection, thread pool and metrics. Handlers reach these through
 * the process-wide `fs_worker`. */
#ifndef FS_WORKER_H
#define FS_WORKER_H

#include <stdbool.h>
#include <sys/types.h>

struct event_base;
typedef struct fs_metrics fs_metrics_t;
typedef struct fs_http_server fs_http_server_t;
typedef struct fs_router fs_router_t;
typedef struct fs_pg_pool fs_pg_pool_t;
typedef struct fs_redis fs_redis_t;
typedef struct fs_threadpool fs_threadpool_t;
typedef struct fs_actor_system fs_actor_system_t;
typedef struct fs_peer fs_peer_t;

typedef struct fs_worker_spec {
    int index;      /* slot number, 0..count-1 */
    int count;      /* workers in this server */
    int http_fd;    /* listening socket of this slot (owned by the master, inherited) */
    int rpc_fd;     /* -1 when there is none */
    int peer_fd;    /* this worker's end of the channel to the master's peer hub */
    pid_t master_pid;
} fs_worker_spec_t;

typedef struct fs_worker {
    int index, count;
    struct event_base *base;
    fs_metrics_t *metrics;
    fs_threadpool_t *pool;
    fs_pg_pool_t *pg;
    fs_redis_t *redis;
    fs_router_t *router;
    fs_http_server_t *http;
    fs_actor_system_t *actors;
    fs_peer_t *peer; /* messages to actors of other workers */
    struct fs_http_client *http_client;       /* outbound HTTP (providers, notifications) */
    struct fs_provider_manager *providers;    /* flight providers (actors/search/manager.h) */
    struct fs_price_ingest *price_ingest;     /* worker 0 only: the host's price-ingest actor */
    bool draining; /* SIGTERM received: no new connections, finishing in-flight requests */
} fs_worker_t;

extern fs_worker_t *fs_worker;

/* Runs the worker until it has drained; returns the process exit code. */
int fs_worker_run(const fs_worker_spec_t *spec);

/* Exit code of a worker that stopped because an actor failed past its restart intensity. */
#define FS_EXIT_ESCALATED 70

#endif
