/* Airlines and their routes (original-api.md §3.8), read from PostgreSQL through the worker's
 * asynchronous pool: the in-memory bundle lacks rating and the route columns (prices,
 * durations) these responses carry. Database down, busy or slow: 503 {"detail":"Database
 * unavailable"} with Retry-After.
 *
 *   GET /airlines                 country_code?, low_cost_only (false), limit 1-200 (50);
 *                                 active airlines with an IATA code, by name; "/airlines/" too
 *   GET /airlines/{code}          the primary airline of a 2-letter IATA or 3-letter ICAO code
 *                                 (SQL fs_airline_primary: active first, then most routes)
 *   GET /airlines/{code}/routes   active routes filed under the code, by origin then destination
 *   GET /airlines/routes/search   origin, destination (exactly 3 characters each); also answered
 *                                 at /airlines/routes, which the original let /{code} capture
 *
 * Codes are case-insensitive on input and upper-case on output.
 */
#include "api/routes.h"
#include "runtime/alloc.h"
#include "runtime/worker.h"
#include "security/auth.h"
#include "storage/pg.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define LIST_LIMIT_MAX 200

#define AIRLINE_COLUMNS "iata_code, name, country, country_code, logo_url, alliance, is_low_cost, rating"
static const char airline_types[] = "ssssssbf";
static const char *const airline_names[] = {"iata_code", "name",     "country",     "country_code",
                                            "logo_url",  "alliance", "is_low_cost", "rating"};

#define ROUTE_COLUMNS                                                                                              \
    "origin_code, destination_code, airline_code, is_direct, typical_duration_minutes, distance_km, "             \
    "typical_price_low, typical_price_high"
static const char route_types[] = "sssbiiff";
static const char *const route_names[] = {"origin_code", "destination_code",         "airline_code",
                                          "is_direct",   "typical_duration_minutes", "distance_km",
                                          "typical_price_low", "typical_price_high"};

/* One row as a JSON object; `types` gives each column's JSON type: s(tring), b(ool), i(nt),
 * f(loat). SQL NULL is JSON null. */
static json_t *row_json(const PGresult *res, int row, const char *types, const char *const *names)
{
    json_t *o = json_object();
    for (int c = 0; types[c]; c++) {
        json_t *v;
        const char *s = PQgetvalue(res, row, c);
        if (PQgetisnull(res, row, c))
            v = json_null();
        else if (types[c] == 'b')
            v = json_boolean(s[0] == 't');
        else if (types[c] == 'i')
            v = json_integer(strtoll(s, NULL, 10));
        else if (types[c] == 'f')
            v = json_real(strtod(s, NULL));
        else
            v = json_string(s);
        json_object_set_new(o, names[c], v);
    }
    return o;
}

static json_t *rows_json(const PGresult *res, const char *types, const char *const *names)
{
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_array_append_new(arr, row_json(res, r, types, names));
    return arr;
}

/* Answers a failed query (503 when the database is unreachable); true when it did. */
static bool pg_failed_or_reply(fs_req_t *req, fs_pg_status_t st, const char *error)
{
    if (st == FS_PG_OK)
        return false;
    fs_auth_reply_pg_error(req, st, error);
    return true;
}

static char *upper_dup(const char *s)
{
    char *u = fs_strdup(s);
    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return u;
}

/*--- list --------------------------------------------------------------------------------*/

static void on_list(fs_pg_status_t st, PGresult *res, const char *error, void *arg)
{
    if (!pg_failed_or_reply(arg, st, error))
        fs_reply_json(arg, 200, rows_json(res, airline_types, airline_names));
}

static void get_airlines(fs_req_t *req)
{
    fs_errors_t *e = fs_errors_new();
    const char *country = NULL;
    bool low_cost = false;
    long limit = 50;
    fs_query_str(req, e, "country_code", false, 0, 0, &country);
    fs_query_bool(req, e, "low_cost_only", false, &low_cost);
    fs_query_int(req, e, "limit", 50, 1, LIST_LIMIT_MAX, &limit);
    if (fs_errors_reply(req, e))
        return;
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *params[] = {country, low_cost ? "true" : "false", lim};
    fs_pg_query(fs_worker->pg, "airlines_list",
                "SELECT " AIRLINE_COLUMNS " FROM airlines WHERE is_active AND iata_code IS NOT NULL "
                "AND ($1::text IS NULL OR country_code = upper($1)) AND (NOT $2::bool OR is_low_cost) "
                "ORDER BY name, iata_code, id LIMIT $3::int",
                3, params, on_list, req);
}

/*--- by code -----------------------------------------------------------------------------*/

static bool airline_code_shape(const char *code)
{
    size_t n = strlen(code);
    if (n < 2 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)code[i]))
            return false;
    return true;
}

static void reply_airline_not_found(fs_req_t *req)
{
    fs_reply_detail(req, 404, "Airline with code '%s' not found", fs_req_param(req, "code"));
}

static void on_airline(fs_pg_status_t st, PGresult *res, const char *error, void *arg)
{
    if (pg_failed_or_reply(arg, st, error))
        return;
    if (PQntuples(res) == 0)
        reply_airline_not_found(arg);
    else
        fs_reply_json(arg, 200, row_json(res, 0, airline_types, airline_names));
}

static void get_airline(fs_req_t *req)
{
    const char *code = fs_req_param(req, "code");
    if (!airline_code_shape(code)) {
        reply_airline_not_found(req);
        return;
    }
    const char *params[] = {code};
    fs_pg_query(fs_worker->pg, "airline_by_code",
                "SELECT " AIRLINE_COLUMNS " FROM airlines WHERE id = fs_airline_primary($1)", 1, params, on_airline,
                req);
}

static void on_routes(fs_pg_status_t st, PGresult *res, const char *error, void *arg)
{
    if (!pg_failed_or_reply(arg, st, error))
        fs_reply_json(arg, 200, rows_json(res, route_types, route_names));
}

/* An unknown airline has no routes: an empty list, not 404 (as the original). */
static void get_airline_routes(fs_req_t *req)
{
    const char *code = fs_req_param(req, "code");
    if (!airline_code_shape(code)) {
        fs_reply_json(req, 200, json_array());
        return;
    }
    const char *params[] = {code};
    fs_pg_query(fs_worker->pg, "airline_routes",
                "SELECT " ROUTE_COLUMNS " FROM routes WHERE airline_code = upper($1) AND is_active "
                "ORDER BY origin_code, destination_code",
                1, params, on_routes, req);
}

/*--- route search ------------------------------------------------------------------------*/

static void on_route_search(fs_pg_status_t st, PGresult *res, const char *error, void *arg)
{
    fs_req_t *req = arg;
    if (pg_failed_or_reply(req, st, error))
        return;
    char *origin = upper_dup(fs_req_query(req, "origin")), *dest = upper_dup(fs_req_query(req, "destination"));
    json_t *body = json_pack("{s:s, s:s, s:o, s:i}", "origin", origin, "destination", dest, "routes",
                             rows_json(res, route_types, route_names), "airlines_count", PQntuples(res));
    free(origin);
    free(dest);
    fs_reply_json(req, 200, body);
}

static void get_route_search(fs_req_t *req)
{
    fs_errors_t *e = fs_errors_new();
    const char *origin = NULL, *dest = NULL;
    fs_query_str(req, e, "origin", true, 3, 3, &origin);
    fs_query_str(req, e, "destination", true, 3, 3, &dest);
    if (fs_errors_reply(req, e))
        return;
    const char *params[] = {origin, dest};
    fs_pg_query(fs_worker->pg, "airline_route_search",
                "SELECT " ROUTE_COLUMNS " FROM routes WHERE origin_code = upper($1) "
                "AND destination_code = upper($2) AND is_active ORDER BY airline_code NULLS LAST",
                2, params, on_route_search, req);
}

void fs_api_airlines_routes(fs_router_t *r)
{
    fs_router_add(r, "GET", "/airlines/", get_airlines);
    fs_router_add(r, "GET", "/airlines/routes/search", get_route_search);
    fs_router_add(r, "GET", "/airlines/routes", get_route_search); /* never an airline code */
    fs_router_add(r, "GET", "/airlines/{code}", get_airline);
    fs_router_add(r, "GET", "/airlines/{code}/routes", get_airline_routes);
}
