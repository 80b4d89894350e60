#include "api/routes.h"

void fs_api_register_all(fs_router_t *r)
{
    fs_api_root_routes(r);
    fs_api_health_routes(r);
    fs_api_metrics_routes(r);
    fs_api_auth_routes(r);
    fs_api_users_routes(r);
    fs_api_notifications_routes(r);
    fs_api_airports_routes(r);
    fs_api_airlines_routes(r);
    fs_api_flights_routes(r);
    fs_api_alerts_routes(r);
}
