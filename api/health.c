/* Health endpoints.
 *
 *   GET /health        PostgreSQL (SELECT 1) and Redis (PING), checked concurrently within
 *                      HEALTH_DEADLINE_MS: 200 "healthy" when both answer, 200 "degraded"
 *                      when only Redis is down, 503 "unhealthy" when PostgreSQL is.
 *   GET /health/ready  as the original: always 200, status "ready" or "degraded" with the
 *                      checks; 503 "draining" while the worker shuts down, so a balancer
 *                      stops sending it work.
 *   GET /health/live   the process answers: 200 {"status":"alive"}.
 */
#include "api/routes.h"
#include "runtime/alloc.h"
#include "runtime/worker.h"
#include "storage/pg.h"
#include "storage/redis.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define HEALTH_DEADLINE_MS 2000

typedef enum { CHECK_HEALTH, CHECK_READY } check_mode_t;

typedef struct {
    fs_req_t *req;
    check_mode_t mode;
    int pending; /* checks whose callbacks have not run yet */
    bool replied;
    bool pg_ok, redis_ok;
    char *pg_error, *redis_error;
    struct event *deadline;
} health_check_t;

static const char *or_timeout(const char *error)
{
    return error ? error : "no answer within the health check deadline";
}

static void reply(health_check_t *c)
{
    c->replied = true;
    json_t *checks = json_pack("{s:b, s:b}", "postgres", c->pg_ok, "redis", c->redis_ok);
    if (!c->pg_ok)
        json_object_set_new(checks, "postgres_error", json_string(or_timeout(c->pg_error)));
    if (!c->redis_ok)
        json_object_set_new(checks, "redis_error", json_string(or_timeout(c->redis_error)));
    bool ok = c->pg_ok && c->redis_ok;
    if (c->mode == CHECK_READY) {
        fs_reply_json(c->req, 200, json_pack("{s:s, s:o}", "status", ok ? "ready" : "degraded", "checks", checks));
        return;
    }
    /* Without Redis the server still answers (flight search from its own cache and the
     * providers, logins without the shared rate limit): degraded, not down, so a balancer
     * does not take every host out when the shared Redis fails. */
    const char *status = ok ? "healthy" : c->pg_ok ? "degraded" : "unhealthy";
    json_t *body = json_pack("{s:s, s:s, s:o}", "status", status, "service", "flightshark-api", "checks", checks);
    if (!ok) {
        const char *down = !c->pg_ok && !c->redis_ok ? "PostgreSQL and Redis are unavailable"
                           : !c->pg_ok               ? "PostgreSQL is unavailable"
                                                     : "Redis is unavailable: searches are served without the shared "
                                                       "cache";
        json_object_set_new(body, "detail", json_string(down));
    }
    if (!c->pg_ok)
        fs_reply_header(c->req, "Retry-After", "5");
    fs_reply_json(c->req, c->pg_ok ? 200 : 503, body);
}

static void finish_one(health_check_t *c)
{
    if (--c->pending > 0)
        return;
    if (!c->replied)
        reply(c);
    event_free(c->deadline);
    free(c->pg_error);
    free(c->redis_error);
    free(c);
}

static void on_pg(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    health_check_t *c = arg;
    c->pg_ok = status == FS_PG_OK;
    if (!c->pg_ok)
        c->pg_error = fs_strdup(error ? error : "query failed");
    finish_one(c);
}

static void on_redis(redisReply *r, const char *error, void *arg)
{
    health_check_t *c = arg;
    c->redis_ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (!c->redis_ok)
        c->redis_error = fs_strdup(error ? error : r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    finish_one(c);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    health_check_t *c = arg;
    if (!c->replied)
        reply(c);
}

static void run_checks(fs_req_t *req, check_mode_t mode)
{
    health_check_t *c = FS_NEW(health_check_t);
    c->req = req;
    c->mode = mode;
    c->pending = 2;
    c->deadline = evtimer_new(fs_worker->base, on_deadline, c);
    struct timeval tv = {HEALTH_DEADLINE_MS / 1000, (HEALTH_DEADLINE_MS % 1000) * 1000};
    evtimer_add(c->deadline, &tv);
    fs_pg_query(fs_worker->pg, "health_select_1", "SELECT 1", 0, NULL, on_pg, c);
    fs_redis_command(fs_worker->redis, on_redis, c, "PING");
}

static void get_health(fs_req_t *req)
{
    run_checks(req, CHECK_HEALTH);
}

static void get_ready(fs_req_t *req)
{
    if (fs_worker->draining) {
        fs_reply_json(req, 503, json_pack("{s:s, s:s}", "status", "draining", "detail", "shutting down"));
        return;
    }
    run_checks(req, CHECK_READY);
}

static void get_live(fs_req_t *req)
{
    fs_reply_json(req, 200, json_pack("{s:s}", "status", "alive"));
}

void fs_api_health_routes(fs_router_t *r)
{
    fs_router_add(r, "GET", "/health", get_health);
    fs_router_add(r, "GET", "/health/ready", get_ready);
    fs_router_add(r, "GET", "/health/live", get_live);
}
