#include "runtime/worker.h"

#include "api/routes.h"
#include "api/rpc_methods.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "actors/alert/alert.h"
#include "actors/cache/cache.h"
#include "actors/notify/notify.h"
#include "actors/price_ingest/price_ingest.h"
#include "actors/search/search.h"
#include "runtime/actor.h"
#include "runtime/http_client.h"
#include "runtime/metrics.h"
#include "runtime/peer.h"
#include "runtime/rpc.h"
#include "runtime/threadpool.h"
#include "storage/pg.h"
#include "storage/redis.h"
#include "storage/refdata_live.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_POLL_MS 10

fs_worker_t *fs_worker;

static struct {
    struct event *sigterm, *sigint, *drain_timer;
    fs_rpc_server_t *rpc; /* NULL when the slot has no RPC socket */
    fs_notify_t *notify;  /* worker 0 only: the outbox delivery actor */
    fs_alert_shard_t *alert; /* this worker's alert shard */
    double drain_deadline;
} w;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool origin_allowed(const char *origin, size_t len)
{
    return fs_config_origin_allowed(fs_cfg, origin, len);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    size_t inflight = fs_http_server_inflight(fs_worker->http) + (w.rpc ? fs_rpc_server_inflight(w.rpc) : 0);
    /* buffered prices and the last analytics batch are written before the worker leaves */
    fs_pg_stats_t pg;
    fs_pg_pool_stats(fs_worker->pg, &pg);
    bool writes_done = pg.busy == 0 && pg.queued == 0 &&
                       (!fs_worker->price_ingest || fs_price_ingest_idle(fs_worker->price_ingest)) &&
                       fs_notify_idle(w.notify);
    if ((inflight == 0 && writes_done) || now_ms() >= w.drain_deadline) {
        if (inflight || !writes_done)
            fs_warn("drain deadline reached with %zu requests in flight%s", inflight,
                    writes_done ? "" : " and writes pending");
        event_base_loopexit(fs_worker->base, NULL);
        return;
    }
    struct timeval tv = {0, DRAIN_POLL_MS * 1000};
    evtimer_add(w.drain_timer, &tv);
}

/* SIGTERM: stop accepting (the slot's socket stays open in the master for the next worker),
 * let in-flight requests finish within SHUTDOWN_TIMEOUT_MS, then leave the loop. */
static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
    if (fs_worker->draining)
        return;
    fs_worker->draining = true;
    fs_http_server_stop_accepting(fs_worker->http);
    if (w.rpc)
        fs_rpc_server_stop_accepting(w.rpc);
    if (fs_worker->price_ingest)
        fs_price_ingest_drain(fs_worker->price_ingest, NULL, NULL);
    fs_search_flush_logs();
    fs_notify_drain(w.notify);
    w.drain_deadline = now_ms() + fs_cfg->shutdown_timeout_ms;
    fs_info("draining: %zu requests in flight", fs_http_server_inflight(fs_worker->http));
    on_drain_tick(-1, 0, NULL);
}

static void on_escalate(fs_actor_t *actor, int status, void *arg)
{
    fs_error("actor %s failed past its restart limit (%s); restarting the worker", fs_actor_name(actor),
             fs_status_str(status));
    *(int *)arg = FS_EXIT_ESCALATED;
    event_base_loopexit(fs_worker->base, NULL);
}

/* Losing the channel to the master means the master is gone or has replaced this worker
 * (reload): either way, finish what is in flight and leave. */
static void on_peer_close(fs_peer_t *peer, void *arg)
{
    if (!fs_worker->draining)
        fs_warn("channel to the master closed; draining");
    on_sigterm(SIGTERM, 0, NULL);
}

static fs_http_server_t *start_http(fs_worker_t *wk, int fd)
{
    fs_http_opts_t opts = {
        .max_body_bytes = (size_t)fs_cfg->max_body_bytes,
        .max_uri_bytes = (size_t)fs_cfg->max_uri_bytes,
        .read_timeout_ms = fs_cfg->read_timeout_ms,
        .idle_timeout_ms = fs_cfg->idle_timeout_ms,
        .max_keepalive_requests = fs_cfg->max_keepalive_requests,
        .metrics = wk->metrics,
        .origin_allowed = origin_allowed,
        .log_requests = true,
    };
    fs_http_server_t *http = fs_http_server_new(wk->base, wk->router, &opts);
    if (fs_http_server_accept_fd(http, fd) != 0) {
        fs_http_server_free(http);
        return NULL;
    }
    return http;
}

static void start_storage(fs_worker_t *wk)
{
    char app[32];
    snprintf(app, sizeof app, "flightshark-w%d", wk->index);
    fs_pg_pool_opts_t pg = {
        .url = fs_cfg->database_url,
        .size = fs_cfg->db_pool_size,
        .statement_timeout_ms = fs_cfg->db_statement_timeout_ms,
        .connect_timeout_ms = fs_cfg->db_connect_timeout_ms,
        .max_queue = 4096,
        .application_name = app,
    };
    wk->pg = fs_pg_pool_new(wk->base, &pg);
    fs_redis_opts_t redis = {.url = fs_cfg->redis_url, .timeout_ms = fs_cfg->redis_timeout_ms, .heartbeat_ms = 1000};
    wk->redis = fs_redis_new(wk->base, &redis);
}

/* Flight search: outbound HTTP, the providers, and the cache and search actors. The cache
 * lock outlives a search's deadline, so a follower never takes over from a leader that is
 * still within its budget. */
static void start_flights(fs_worker_t *wk)
{
    wk->http_client = fs_http_client_new(wk->base);
    fs_provider_env_t env = {.base = wk->base, .pool = wk->pool, .http = wk->http_client, .metrics = wk->metrics};
    wk->providers = fs_provider_manager_new(&env, fs_provider_registry);
    fs_cache_opts_t cache = {
        .max_entries = (size_t)fs_cfg->cache_l1_max_entries,
        .max_bytes = (size_t)fs_cfg->cache_l1_max_mb << 20,
        .lock_ms = fs_cfg->search_deadline_ms + 2000,
        .wait_ms = fs_cfg->search_deadline_ms + 1000,
    };
    fs_cache_spawn(wk->actors, wk->redis, wk->metrics, &cache);
    fs_search_deps_t deps = {.providers = wk->providers, .pg = wk->pg, .metrics = wk->metrics, .peer = wk->peer,
                            .redis = wk->redis};
    fs_search_spawn(wk->actors, &deps);
}

/* libevent's own messages go through our logger, so every line on stderr is JSON. One is
 * expected and harmless: the master's event_base, inherited across fork and deliberately left
 * alone (its epoll instance is shared with the master), still owns the signal slot when the
 * worker's base claims it. */
static void on_libevent_log(int severity, const char *msg)
{
    if (strstr(msg, "Added a signal to event base"))
        return;
    fs_log(severity >= EVENT_LOG_ERR ? FS_LOG_ERROR : severity == EVENT_LOG_WARN ? FS_LOG_WARN : FS_LOG_DEBUG,
           "libevent: %s", msg);
}

int fs_worker_run(const fs_worker_spec_t *spec)
{
    /* A worker never outlives its master: a lone worker would hold the port forever. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != spec->master_pid)
        return 1;
    char role[32];
    snprintf(role, sizeof role, "worker-%d", spec->index);
    fs_log_set_role(role);
    signal(SIGPIPE, SIG_IGN);

    event_set_log_callback(on_libevent_log);
    fs_worker_t *wk = FS_NEW(fs_worker_t);
    fs_worker = wk;
    wk->index = spec->index;
    wk->count = spec->count;
    wk->base = event_base_new();
    wk->metrics = fs_metrics_new();
    fs_api_metrics_install(wk->metrics);
    wk->pool = fs_threadpool_new(wk->base, fs_cfg->thread_pool_size);
    start_storage(wk);
    fs_refdata_live_start(wk);
    int rc = 0;
    fs_actor_system_opts_t actor_opts = {.worker = wk->index, .on_escalate = on_escalate, .escalate_arg = &rc};
    wk->actors = fs_actor_system_new(wk->base, &actor_opts);
    wk->peer = fs_peer_new(wk->actors, spec->peer_fd, on_peer_close, NULL);
    fs_runtime_register_types();
    fs_search_register_types();
    fs_price_ingest_register_types();
    fs_alert_register_types();
    fs_api_metrics_spawn_actor(wk->actors);
    if (wk->index == FS_PRICE_INGEST_WORKER)
        wk->price_ingest =
            fs_price_ingest_start(wk->actors, &(fs_price_ingest_opts_t){.redis = wk->redis, .metrics = wk->metrics});
    start_flights(wk);
    w.alert = fs_alert_start(wk->actors, &(fs_alert_opts_t){.shard = wk->index, .shards = wk->count,
                                                            .pg = wk->pg, .metrics = wk->metrics});
    if (wk->index == FS_NOTIFY_WORKER) {
        fs_notify_opts_t nopts;
        fs_notify_opts_from_config(&nopts, fs_cfg);
        nopts.pg = wk->pg;
        nopts.http = wk->http_client;
        nopts.pool = wk->pool;
        w.notify = fs_notify_start(wk->actors, &nopts);
    }
    wk->router = fs_router_new();
    fs_api_register_all(wk->router);
    fs_api_rpc_register();

    wk->http = start_http(wk, spec->http_fd);
    if (!wk->http) {
        fs_error("cannot serve on the slot's socket");
        rc = 1;
        goto failed_http;
    }
    if (spec->rpc_fd >= 0 && !(w.rpc = fs_rpc_server_new(wk->base, spec->rpc_fd, wk->metrics)))
        fs_error("cannot serve RPC on the slot's socket; serving HTTP only");
    w.sigterm = evsignal_new(wk->base, SIGTERM, on_sigterm, NULL);
    w.sigint = evsignal_new(wk->base, SIGINT, on_sigterm, NULL);
    w.drain_timer = evtimer_new(wk->base, on_drain_tick, NULL);
    evsignal_add(w.sigterm, NULL);
    evsignal_add(w.sigint, NULL);

    event_base_dispatch(wk->base);

    event_free(w.drain_timer);
    event_free(w.sigint);
    event_free(w.sigterm);
    /* Freeing the events restored the default dispositions; the master's own SIGTERM (or the
     * terminal's SIGINT) may still arrive while we clean up, and must not cut that short. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    fs_http_server_free(wk->http);
    fs_rpc_server_free(w.rpc);
failed_http:
    fs_router_free(wk->router);
    fs_price_ingest_free(wk->price_ingest);
    fs_notify_free(w.notify);
    fs_alert_stop(w.alert);
    fs_peer_free(wk->peer);
    fs_actor_system_free(wk->actors);
    /* after the actors (no search waits on a provider any more), before the pool and the
     * HTTP client the providers use */
    fs_provider_manager_free(wk->providers);
    fs_http_client_free(wk->http_client);
    /* The thread pool goes first: its last completions (a login's hash, a reference data
     * load) may still query PostgreSQL or Redis, which must exist until they have run. */
    fs_threadpool_free(wk->pool);
    fs_refdata_live_stop();
    fs_redis_free(wk->redis);
    fs_pg_pool_free(wk->pg);
    fs_metrics_free(wk->metrics);
    event_base_free(wk->base);
    free(wk);
    fs_worker = NULL;
    return rc;
}
