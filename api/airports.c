/* Airports (original-api.md §3.7), answered from the worker's in-memory reference data
 * (storage/refdata_live.h; ranking and grouping in storage/airport_index.h).
 *
 *   GET  /airports/search            q (2-50 characters, at least 2 after trimming), limit 1-50 (10)
 *   GET  /airports/search/grouped    same parameters; multi-airport cities folded into one entry
 *   GET  /airports/popular           country_code?, limit 1-100 (20); also with a trailing slash
 *   GET  /airports/{code}            active airports from memory; an inactive one from PostgreSQL
 *   GET  /airports/city/{name}       airports of that city (folded equality, else city prefix)
 *   POST /airports/cache/reload      admin: reload every worker of every host (Redis pub/sub) and
 *                                    answer once this worker has reloaded
 *
 * A request that arrives while the worker's first load runs waits for it (at most PARK_MAX_MS);
 * when there is no data (that load failed, the next retry has not succeeded yet) the read
 * endpoints answer 503 "Reference data is loading" with Retry-After: never an empty success. Unlike the original there is no second,
 * differently-ranked database search path (§11 item 26).
 */
#include "api/routes.h"
#include "runtime/alloc.h"
#include "runtime/log.h"
#include "runtime/worker.h"
#include "security/auth.h"
#include "storage/pg.h"
#include "storage/refdata_live.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define SEARCH_LIMIT_MAX 50
#define SEARCH_Q_MAX 50
#define POPULAR_LIMIT_MAX 100
#define CITY_LIMIT 100 /* the original had none; no real city has more than ~10 airports */
/* Bodies are concatenations of the JSON the index wrote at build time (airport_index.h). */
static void reply_text(fs_req_t *req, char *body, size_t len)
{
    fs_reply_raw(req, 200, "application/json", body, len);
    free(body);
}

static void reply_list(fs_req_t *req, const fs_airport_index_t *idx, const fs_airport_t *const *list, size_t n)
{
    size_t len;
    char *body = fs_airport_index_list_text(idx, list, n, &len);
    reply_text(req, body, len);
}

/* FastAPI validates the raw length; the search trims, so "  a " would be a silent empty
 * result there. Here it is the same 422 as a one-letter query. */
static void check_trimmed(fs_errors_t *e, const char *q)
{
    if (!q)
        return;
    const char *s = q, *end = q + strlen(q);
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    size_t chars = 0;
    for (const char *p = s; p < end; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    if (chars < 2)
        fs_errors_add(e, "query", "q", "string_too_short", "String should have at least 2 characters after trimming",
                      json_string(q), json_pack("{s:i}", "min_length", 2));
}

static void search(fs_req_t *req, bool grouped, fs_handler_fn self)
{
    fs_errors_t *e = fs_errors_new();
    const char *q = NULL;
    long limit = 10;
    fs_query_str(req, e, "q", true, 2, SEARCH_Q_MAX, &q);
    check_trimmed(e, q);
    fs_query_int(req, e, "limit", 10, 1, SEARCH_LIMIT_MAX, &limit);
    if (fs_errors_reply(req, e))
        return;
    const fs_refdata_t *data = fs_api_refdata_or_reply(req, self);
    if (!data)
        return;
    size_t len;
    char *body = fs_airport_index_search_text(data->airports, q, (size_t)limit, grouped, &len);
    reply_text(req, body, len);
}

static void get_search(fs_req_t *req)
{
    search(req, false, get_search);
}

static void get_search_grouped(fs_req_t *req)
{
    search(req, true, get_search_grouped);
}

static void get_popular(fs_req_t *req)
{
    fs_errors_t *e = fs_errors_new();
    const char *country = NULL;
    long limit = 20;
    fs_query_str(req, e, "country_code", false, 0, 0, &country);
    fs_query_int(req, e, "limit", 20, 1, POPULAR_LIMIT_MAX, &limit);
    if (fs_errors_reply(req, e))
        return;
    const fs_refdata_t *data = fs_api_refdata_or_reply(req, get_popular);
    if (!data)
        return;
    const fs_airport_t *out[POPULAR_LIMIT_MAX];
    size_t n = fs_airport_index_popular(data->airports, country, (size_t)limit, out);
    reply_list(req, data->airports, out, n);
}

static void get_city(fs_req_t *req)
{
    const fs_refdata_t *data = fs_api_refdata_or_reply(req, get_city);
    if (!data)
        return;
    const fs_airport_t *out[CITY_LIMIT];
    size_t n = fs_airport_index_by_city(data->airports, fs_req_param(req, "name"), CITY_LIMIT, out);
    reply_list(req, data->airports, out, n);
}

/*--- by code: memory first, PostgreSQL for the inactive ones -----------------------------*/

static void reply_not_found(fs_req_t *req)
{
    fs_reply_detail(req, 404, "Airport with code '%s' not found", fs_req_param(req, "code"));
}

static const char *col(const PGresult *res, int c)
{
    return PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
}

static void on_inactive_airport(fs_pg_status_t st, PGresult *res, const char *error, void *arg)
{
    fs_req_t *req = arg;
    if (st != FS_PG_OK) {
        fs_auth_reply_pg_error(req, st, error);
        return;
    }
    if (PQntuples(res) == 0) {
        reply_not_found(req);
        return;
    }
    fs_airport_t a = {.name = col(res, 1), .city = col(res, 2), .country = col(res, 3)};
    snprintf(a.iata, sizeof a.iata, "%s", col(res, 0));
    snprintf(a.country_code, sizeof a.country_code, "%s", col(res, 4));
    a.has_coords = col(res, 5) != NULL;
    a.latitude = a.has_coords ? strtod(col(res, 5), NULL) : 0;
    a.longitude = a.has_coords ? strtod(col(res, 6), NULL) : 0;
    a.is_major = col(res, 7)[0] == 't';
    size_t len;
    char *body = fs_airport_text(&a, false, &len);
    reply_text(req, body, len);
}

static bool is_code(const char *s)
{
    return strlen(s) == 3 && isalnum((unsigned char)s[0]) && isalnum((unsigned char)s[1]) &&
           isalnum((unsigned char)s[2]);
}

static void get_airport(fs_req_t *req)
{
    const fs_refdata_t *data = fs_api_refdata_or_reply(req, get_airport);
    if (!data)
        return;
    const char *code = fs_req_param(req, "code");
    const fs_airport_t *a = fs_airport_index_lookup(data->airports, code);
    if (a) {
        size_t len;
        const char *body = fs_airport_index_text(data->airports, a, &len);
        fs_reply_raw(req, 200, "application/json", body, len);
        return;
    }
    if (!is_code(code)) {
        reply_not_found(req);
        return;
    }
    const char *params[] = {code};
    fs_pg_query(fs_worker->pg, "airport_by_code_any",
                "SELECT iata_code, name, city, country, country_code, latitude, longitude, is_major "
                "FROM airports WHERE iata_code = upper($1)",
                1, params, on_inactive_airport, req);
}

/*--- reload ------------------------------------------------------------------------------*/

static void on_reloaded(const fs_refdata_t *data, const char *error, void *arg)
{
    fs_req_t *req = arg;
    if (!data) {
        fs_reply_unavailable(req, 5, "Reference data reload failed; the previous data is still served");
        return;
    }
    size_t n = fs_airport_index_count(data->airports);
    char *msg = fs_sprintf("Loaded %zu airports into cache", n);
    json_t *body = json_pack("{s:s, s:s, s:I}", "status", "success", "message", msg, "airports_loaded", (json_int_t)n);
    free(msg);
    fs_reply_json(req, 200, body);
}

static void on_admin(fs_req_t *req, const fs_user_t *user, void *arg)
{
    fs_info("reference data reload requested by %s", user->email);
    fs_refdata_live_broadcast();
    fs_refdata_live_reload(on_reloaded, req);
}

static void post_reload(fs_req_t *req)
{
    fs_auth_require(req, true, on_admin, NULL);
}

void fs_api_airports_routes(fs_router_t *r)
{
    fs_router_add(r, "GET", "/airports/search", get_search);
    fs_router_add(r, "GET", "/airports/search/grouped", get_search_grouped);
    fs_router_add(r, "GET", "/airports/popular/", get_popular);
    fs_router_add(r, "GET", "/airports/city/{name}", get_city);
    fs_router_add(r, "GET", "/airports/{code}", get_airport);
    fs_router_add(r, "POST", "/airports/cache/reload", post_reload);
}
