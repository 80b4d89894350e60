/* Flights (original-api.md §3.4; docs/FLIGHTS.md).
 *
 *   GET  /flights/search                      one-way or round-trip search (search actor)
 *   GET  /flights/search/flexible             cheapest round trips over a date range
 *   GET  /flights/cheapest-dates              cheapest fare per day of a month
 *   GET  /flights/prices/{origin}/{destination}  daily avg/min/max/count from price_daily
 *   GET  /flights/providers/status            this worker's provider statistics and health
 *   POST /flights/providers/{name}/reset      admin: reset a provider on every worker
 *
 * Parameter formats are checked here (422 in FastAPI's list shape); the search actor checks
 * the rest (dates in the past, unknown codes, ...) for the HTTP and RPC paths alike.
 */
#include "actors/search/search.h"
#include "api/routes.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/log.h"
#include "runtime/peer.h"
#include "runtime/worker.h"
#include "schemas/search.pb-c.h"
#include "security/auth.h"
#include "storage/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const cabins[] = {"economy", "premium_economy", "business", "first", NULL};
static const char *const strategies[] = {"fallback", "parallel", "best_price", NULL};

typedef struct {
    fs_req_t *req;
    struct timespec started;
} pending_t;

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void on_search_reply(int status, fs_msg_t *reply, void *arg)
{
    pending_t *p = arg;
    fs_req_t *req = p->req;
    Fs__Search__SearchReply *r = reply ? fs_msg_body(reply, &fs__search__search_reply__descriptor) : NULL;
    if (status != FS_OK || !r) {
        if (status == FS_ETIMEOUT)
            fs_reply_unavailable(req, 1, "The search took too long; try again");
        else
            fs_reply_unavailable(req, 1, "Search is busy; try again");
    } else if (r->status == 200) {
        char timing[64];
        snprintf(timing, sizeof timing, "search;dur=%.3f", elapsed_ms(&p->started));
        fs_reply_header(req, "Server-Timing", timing);
        fs_reply_header(req, "X-Cache", r->cached ? "HIT" : "MISS");
        /* the body leaves without a copy: the reply gives it up */
        char *body = (char *)r->body.data;
        size_t len = r->body.len;
        r->body.data = NULL;
        r->body.len = 0;
        fs_reply_take(req, 200, "application/json", body, len);
    } else if (r->status == 503) {
        fs_reply_unavailable(req, 1, r->detail ? r->detail : "Service unavailable");
    } else {
        fs_reply_detail(req, r->status, "%s", r->detail ? r->detail : "Bad request");
    }
    free(p);
}

/* Hands a request to this worker's search actor; answers 503 when it cannot take it. */
static void ask_search(fs_req_t *req, uint32_t type, ProtobufCMessage *body)
{
    fs_actor_t *search = fs_actor_lookup(fs_worker->actors, FS_SEARCH_ACTOR);
    if (!search) {
        fs_pb_free(body);
        fs_reply_unavailable(req, 1, "Flight search is starting");
        return;
    }
    pending_t *p = FS_NEW(pending_t);
    p->req = req;
    clock_gettime(CLOCK_MONOTONIC, &p->started);
    int rc = fs_actor_ask(search, NULL, type, body, fs_search_ask_timeout_ms(), on_search_reply, p);
    if (rc != FS_OK) {
        free(p);
        fs_reply_unavailable(req, 1, "Search is busy; try again");
    }
}

static char *dup_or_null(const char *s)
{
    return s ? fs_strdup(s) : NULL;
}

static void get_search(fs_req_t *req)
{
    if (!fs_api_refdata_or_reply(req, get_search))
        return;
    fs_errors_t *e = fs_errors_new();
    const char *origin, *destination, *cabin, *strategy;
    int y, m, d;
    bool has_dep, has_ret, direct;
    long passengers;
    fs_query_str(req, e, "origin", true, 3, 3, &origin);
    fs_query_str(req, e, "destination", true, 3, 3, &destination);
    fs_query_date(req, e, "departure_date", true, &y, &m, &d, &has_dep);
    fs_query_date(req, e, "return_date", false, &y, &m, &d, &has_ret);
    fs_query_int(req, e, "passengers", 1, 1, 9, &passengers);
    fs_query_enum(req, e, "cabin_class", "economy", cabins, &cabin);
    fs_query_bool(req, e, "direct_only", false, &direct);
    fs_query_enum(req, e, "strategy", NULL, strategies, &strategy);
    if (fs_errors_reply(req, e))
        return;
    Fs__Search__SearchRequest *s = fs_pb_new(&fs__search__search_request__descriptor);
    s->origin = fs_strdup(origin);
    s->destination = fs_strdup(destination);
    s->departure_date = dup_or_null(fs_req_query(req, "departure_date"));
    s->return_date = has_ret ? dup_or_null(fs_req_query(req, "return_date")) : NULL;
    s->has_passengers = s->has_direct_only = true;
    s->passengers = (int32_t)passengers;
    s->direct_only = direct;
    s->cabin_class = fs_strdup(cabin);
    s->strategy = dup_or_null(strategy);
    ask_search(req, FS_MSG_SEARCH_REQUEST, &s->base);
}

static void get_flexible(fs_req_t *req)
{
    if (!fs_api_refdata_or_reply(req, get_flexible))
        return;
    fs_errors_t *e = fs_errors_new();
    const char *origin, *destination, *cabin;
    int y, m, d;
    bool has_from, has_to;
    long nights_from, nights_to, passengers, limit;
    fs_query_str(req, e, "origin", true, 3, 3, &origin);
    fs_query_str(req, e, "destination", true, 3, 3, &destination);
    fs_query_date(req, e, "date_from", true, &y, &m, &d, &has_from);
    fs_query_date(req, e, "date_to", true, &y, &m, &d, &has_to);
    fs_query_int(req, e, "nights_from", 3, 0, 30, &nights_from);
    fs_query_int(req, e, "nights_to", nights_from + 4 > 30 ? 30 : nights_from + 4, 0, 30, &nights_to);
    fs_query_int(req, e, "passengers", 1, 1, 9, &passengers);
    fs_query_enum(req, e, "cabin_class", "economy", cabins, &cabin);
    fs_query_int(req, e, "limit", 10, 1, 50, &limit);
    if (fs_errors_reply(req, e))
        return;
    Fs__Search__FlexibleRequest *f = fs_pb_new(&fs__search__flexible_request__descriptor);
    f->origin = fs_strdup(origin);
    f->destination = fs_strdup(destination);
    f->date_from = fs_strdup(fs_req_query(req, "date_from"));
    f->date_to = fs_strdup(fs_req_query(req, "date_to"));
    f->has_nights_from = f->has_nights_to = f->has_passengers = f->has_limit = true;
    f->nights_from = (int32_t)nights_from;
    f->nights_to = (int32_t)nights_to;
    f->passengers = (int32_t)passengers;
    f->limit = (int32_t)limit;
    f->cabin_class = fs_strdup(cabin);
    ask_search(req, FS_MSG_FLEXIBLE_REQUEST, &f->base);
}

static void get_cheapest_dates(fs_req_t *req)
{
    if (!fs_api_refdata_or_reply(req, get_cheapest_dates))
        return;
    fs_errors_t *e = fs_errors_new();
    const char *origin, *destination, *cabin;
    long month, year, passengers;
    fs_query_str(req, e, "origin", true, 3, 3, &origin);
    fs_query_str(req, e, "destination", true, 3, 3, &destination);
    if (!fs_req_query(req, "month"))
        fs_errors_add(e, "query", "month", "missing", "Field required", json_null(), NULL);
    if (!fs_req_query(req, "year"))
        fs_errors_add(e, "query", "year", "missing", "Field required", json_null(), NULL);
    fs_query_int(req, e, "month", 0, 1, 12, &month);
    fs_query_int(req, e, "year", 0, 2000, 2100, &year);
    fs_query_int(req, e, "passengers", 1, 1, 9, &passengers);
    fs_query_enum(req, e, "cabin_class", "economy", cabins, &cabin);
    if (fs_errors_reply(req, e))
        return;
    Fs__Search__CalendarRequest *c = fs_pb_new(&fs__search__calendar_request__descriptor);
    c->origin = fs_strdup(origin);
    c->destination = fs_strdup(destination);
    c->has_year = c->has_month = c->has_passengers = true;
    c->year = (int32_t)year;
    c->month = (int32_t)month;
    c->passengers = (int32_t)passengers;
    c->cabin_class = fs_strdup(cabin);
    ask_search(req, FS_MSG_CALENDAR_REQUEST, &c->base);
}

/* ---- price history ------------------------------------------------------------------------ */

typedef struct {
    fs_req_t *req;
    char origin[11], destination[11];
    long days;
} prices_t;

static void on_prices(fs_pg_status_t st, PGresult *res, const char *error, void *arg)
{
    prices_t *p = arg;
    if (st != FS_PG_OK) {
        fs_reply_unavailable(p->req, 1, "Database unavailable");
        free(p);
        return;
    }
    json_t *prices = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        char date[32];
        snprintf(date, sizeof date, "%sT00:00:00", PQgetvalue(res, i, 0));
        json_array_append_new(prices, json_pack("{s:s,s:f,s:f,s:f,s:I}", "date", date, "avg_price",
                                                strtod(PQgetvalue(res, i, 1), NULL), "min_price",
                                                strtod(PQgetvalue(res, i, 2), NULL), "max_price",
                                                strtod(PQgetvalue(res, i, 3), NULL), "sample_count",
                                                (json_int_t)strtoll(PQgetvalue(res, i, 4), NULL, 10)));
    }
    fs_reply_json(p->req, 200,
                  json_pack("{s:s,s:s,s:I,s:o}", "origin", p->origin, "destination", p->destination, "days",
                            (json_int_t)p->days, "prices", prices));
    free(p);
}

static void upper_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (char)(src[i] >= 'a' && src[i] <= 'z' ? src[i] - 32 : src[i]);
    dst[i] = '\0';
}

static void get_prices(fs_req_t *req)
{
    fs_errors_t *e = fs_errors_new();
    long days;
    fs_query_int(req, e, "days", 30, 7, 180, &days);
    const char *o = fs_req_param(req, "origin"), *d = fs_req_param(req, "destination");
    if (strlen(o) > 10)
        fs_errors_add(e, "path", "origin", "string_too_long", "String should have at most 10 characters",
                      json_string(o), json_pack("{s:i}", "max_length", 10));
    if (strlen(d) > 10)
        fs_errors_add(e, "path", "destination", "string_too_long", "String should have at most 10 characters",
                      json_string(d), json_pack("{s:i}", "max_length", 10));
    if (fs_errors_reply(req, e))
        return;
    prices_t *p = FS_NEW(prices_t);
    p->req = req;
    p->days = days;
    upper_copy(p->origin, sizeof p->origin, o);
    upper_copy(p->destination, sizeof p->destination, d);
    char n[16];
    snprintf(n, sizeof n, "%ld", days);
    const char *params[] = {p->origin, p->destination, n};
    fs_pg_query(fs_worker->pg, "flights_price_daily",
                "SELECT day::text, round(price_sum / sample_count, 2)::float8, min_price::float8, "
                "max_price::float8, sample_count FROM price_daily WHERE origin_code = $1 AND destination_code = $2 "
                "AND day > (now() AT TIME ZONE 'UTC')::date - $3::int ORDER BY day DESC",
                3, params, on_prices, p);
}

/* ---- providers -------------------------------------------------------------------------------- */

static void on_status(json_t *status, void *arg)
{
    fs_reply_json(arg, 200, status);
}

static void get_providers_status(fs_req_t *req)
{
    fs_provider_manager_t *m = fs_search_providers();
    if (!m) {
        fs_reply_unavailable(req, 1, "Flight search is starting");
        return;
    }
    fs_provider_manager_status(m, on_status, req);
}

/* A reset holds for the whole host: this worker resets at once (and answers 404 for an
 * unknown name), then every other worker's search actor is told. */
static void on_reset_admin(fs_req_t *req, const fs_user_t *user, void *arg)
{
    const char *name = fs_req_param(req, "name");
    fs_provider_manager_t *m = fs_search_providers();
    if (!m || fs_provider_manager_reset(m, name) != 0) {
        fs_reply_detail(req, 404, "Provider '%s' not found", name);
        return;
    }
    fs_info("provider %s reset by %s", name, user->email);
    for (int w = 0; w < fs_worker->count && fs_worker->peer; w++) {
        if (w == fs_worker->index)
            continue;
        Fs__Search__ProviderReset *r = fs_pb_new(&fs__search__provider_reset__descriptor);
        r->name = fs_strdup(name);
        fs_peer_send(fs_worker->peer, NULL, w, FS_SEARCH_ACTOR, FS_MSG_PROVIDER_RESET, &r->base);
    }
    json_t *body = json_pack("{s:s,s:s}", "message", "", "status", "healthy");
    char msg[160];
    snprintf(msg, sizeof msg, "Provider '%s' status reset", name);
    json_object_set_new(body, "message", json_string(msg));
    fs_reply_json(req, 200, body);
}

static void post_provider_reset(fs_req_t *req)
{
    fs_auth_require(req, true, on_reset_admin, NULL);
}

void fs_api_flights_routes(fs_router_t *r)
{
    fs_router_add(r, "GET", "/flights/search", get_search);
    fs_router_add(r, "GET", "/flights/search/flexible", get_flexible);
    fs_router_add(r, "GET", "/flights/cheapest-dates", get_cheapest_dates);
    fs_router_add(r, "GET", "/flights/prices/{origin}/{destination}", get_prices);
    fs_router_add(r, "GET", "/flights/providers/status", get_providers_status);
    fs_router_add(r, "POST", "/flights/providers/{name}/reset", post_provider_reset);
}
