/* Every resource of the HTTP API registers its routes here; one file per resource in api/. */
#ifndef FS_API_ROUTES_H
#define FS_API_ROUTES_H

#include "api/http.h"

void fs_api_root_routes(fs_router_t *r);
void fs_api_health_routes(fs_router_t *r);
void fs_api_metrics_routes(fs_router_t *r);
void fs_api_auth_routes(fs_router_t *r);
void fs_api_users_routes(fs_router_t *r);
void fs_api_notifications_routes(fs_router_t *r);
void fs_api_airports_routes(fs_router_t *r);
void fs_api_airlines_routes(fs_router_t *r);
void fs_api_flights_routes(fs_router_t *r);
void fs_api_alerts_routes(fs_router_t *r);

/* The worker's reference data for a handler, or NULL after the request was answered 503 or
 * parked until the worker's first load finishes (`handler` is then called again with it). */
typedef struct fs_refdata fs_refdata_t;
const fs_refdata_t *fs_api_refdata_or_reply(fs_req_t *req, fs_handler_fn handler);

/* Refreshes the gauges that /metrics reads from other modules before each render. */
void fs_api_metrics_install(fs_metrics_t *m);
/* Starts this worker's "metrics" actor, which hands its registry to the worker answering
 * GET /metrics; and registers the message types it uses (call before forking too). */
typedef struct fs_actor_system fs_actor_system_t;
void fs_api_metrics_spawn_actor(fs_actor_system_t *sys);
void fs_api_metrics_register_types(void);

/* Registers all of the above. */
void fs_api_register_all(fs_router_t *r);

#endif
