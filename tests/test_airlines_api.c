/* The airline endpoints over real HTTP against the real server and the real PostgreSQL, with
 * the full OpenFlights data imported: list filters and order, lookups by IATA and ICAO code,
 * routes, route search, validation, trailing slashes, and 503 when the database is down. */
#include "security/jwt.h"
#include "storage/pg.h"
#include "tests/support/harness.h"
#include "tests/support/refdata_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SECRET "test-secret-key-0123456789abcdef"
static const char *const server_env[] = {"SECRET_KEY=" SECRET, NULL};
static fs_test_server_t srv;

/*--- data and accounts ----------------------------------------------------------------------*/

/*--- HTTP -----------------------------------------------------------------------------------*/

static long req(const char *method, const char *path, json_t **json)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    fs_test_resp_t r;
    fs_test_http(method, url, NULL, NULL, &r);
    if (json)
        *json = fs_test_resp_json(&r);
    long status = r.status;
    fs_test_resp_free(&r);
    return status;
}

static long get(const char *path, json_t **json)
{
    return req("GET", path, json);
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void start_server(int workers)
{
    fs_test_start_refdata_server(&srv, workers, server_env);
}

static void setup(void)
{
    start_server(1);
}

static void teardown(void)
{
    if (srv.pid > 0)
        fs_test_server_stop(&srv);
}

TestSuite(airlines_api, .init = setup, .fini = teardown, .timeout = 120);

static void assert_422(const char *path, const char *field, const char *type)
{
    json_t *b;
    cr_assert_eq(get(path, &b), 422, "%s", path);
    bool found = false;
    json_t *detail = json_object_get(b, "detail");
    for (size_t i = 0; i < json_array_size(detail); i++) {
        json_t *e = json_array_get(detail, i);
        found |= strcmp(str(e, "type"), type) == 0 &&
                 strcmp(json_string_value(json_array_get(json_object_get(e, "loc"), 1)), field) == 0;
    }
    cr_assert(found, "%s: no %s error for %s", path, type, field);
    json_decref(b);
}

static const char *const airline_fields[] = {"iata_code", "name", "country", "country_code",
                                             "logo_url", "alliance", "is_low_cost", "rating"};

static void assert_airline_shape(json_t *a)
{
    cr_assert_eq(json_object_size(a), 8);
    for (int i = 0; i < 8; i++)
        cr_assert(json_object_get(a, airline_fields[i]), "field %s", airline_fields[i]);
    cr_assert(json_is_boolean(json_object_get(a, "is_low_cost")));
}

Test(airlines_api, list_with_and_without_trailing_slash)
{
    json_t *a, *b;
    cr_assert_eq(get("/airlines", &a), 200);
    cr_assert_eq(get("/airlines/", &b), 200);
    cr_assert(json_equal(a, b));
    cr_assert_eq(json_array_size(a), 50, "default limit 50");
    for (size_t i = 0; i < json_array_size(a); i++) {
        assert_airline_shape(json_array_get(a, i));
        if (i)
            cr_assert_leq(strcmp(str(json_array_get(a, i - 1), "name"), str(json_array_get(a, i), "name")), 0,
                          "ordered by name");
    }
    json_decref(a);
    json_decref(b);
    cr_assert_eq(get("/airlines/?limit=200", &a), 200);
    cr_assert_eq(json_array_size(a), 200);
    json_decref(a);
    cr_assert_eq(get("/airlines?limit=1", &a), 200);
    cr_assert_eq(json_array_size(a), 1);
    json_decref(a);
}

Test(airlines_api, list_filters)
{
    json_t *a;
    cr_assert_eq(get("/airlines/?low_cost_only=true&limit=200", &a), 200);
    cr_assert_gt(json_array_size(a), 0);
    bool ryanair = false;
    for (size_t i = 0; i < json_array_size(a); i++) {
        cr_assert(json_is_true(json_object_get(json_array_get(a, i), "is_low_cost")));
        ryanair |= strcmp(str(json_array_get(a, i), "iata_code"), "FR") == 0;
    }
    cr_assert(ryanair);
    json_decref(a);
    cr_assert_eq(get("/airlines?country_code=ie&limit=200", &a), 200);
    cr_assert_gt(json_array_size(a), 1);
    for (size_t i = 0; i < json_array_size(a); i++)
        cr_assert_str_eq(str(json_array_get(a, i), "country_code"), "IE");
    json_decref(a);
    cr_assert_eq(get("/airlines?country_code=ZZ", &a), 200);
    cr_assert_eq(json_array_size(a), 0);
    json_decref(a);
    assert_422("/airlines/?limit=0", "limit", "greater_than_equal");
    assert_422("/airlines?limit=201", "limit", "less_than_equal");
    assert_422("/airlines?low_cost_only=perhaps", "low_cost_only", "bool_parsing");
}

Test(airlines_api, by_code)
{
    json_t *b;
    cr_assert_eq(get("/airlines/fr", &b), 200);
    assert_airline_shape(b);
    cr_assert_str_eq(str(b, "iata_code"), "FR");
    cr_assert_str_eq(str(b, "name"), "Ryanair");
    json_decref(b);
    cr_assert_eq(get("/airlines/RYR", &b), 200, "an ICAO code finds the airline too");
    cr_assert_str_eq(str(b, "iata_code"), "FR");
    json_decref(b);
    cr_assert_eq(get("/airlines/q9z", &b), 404);
    cr_assert_str_eq(str(b, "detail"), "Airline with code 'q9z' not found");
    json_decref(b);
    cr_assert_eq(get("/airlines/toolong", &b), 404);
    cr_assert_str_eq(str(b, "detail"), "Airline with code 'toolong' not found");
    json_decref(b);
}

static const char *const route_fields[] = {"origin_code", "destination_code", "airline_code",
                                           "is_direct", "typical_duration_minutes", "distance_km",
                                           "typical_price_low", "typical_price_high"};

static void assert_route_shape(json_t *r)
{
    cr_assert_eq(json_object_size(r), 8);
    for (int i = 0; i < 8; i++)
        cr_assert(json_object_get(r, route_fields[i]), "field %s", route_fields[i]);
}

Test(airlines_api, airline_routes)
{
    json_t *a;
    cr_assert_eq(get("/airlines/fr/routes", &a), 200);
    cr_assert_gt(json_array_size(a), 100, "Ryanair files hundreds of routes");
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *r = json_array_get(a, i);
        assert_route_shape(r);
        cr_assert_str_eq(str(r, "airline_code"), "FR");
        if (i) {
            json_t *p = json_array_get(a, i - 1);
            int c = strcmp(str(p, "origin_code"), str(r, "origin_code"));
            cr_assert(c < 0 || (c == 0 && strcmp(str(p, "destination_code"), str(r, "destination_code")) < 0),
                      "ordered by origin, destination at %zu", i);
        }
    }
    json_decref(a);
    cr_assert_eq(get("/airlines/z9z/routes", &a), 200);
    cr_assert_eq(json_array_size(a), 0, "unknown airline: empty, not 404");
    json_decref(a);
}

Test(airlines_api, route_search)
{
    json_t *b;
    cr_assert_eq(get("/airlines/routes/search?origin=dub&destination=stn", &b), 200);
    cr_assert_str_eq(str(b, "origin"), "DUB");
    cr_assert_str_eq(str(b, "destination"), "STN");
    json_t *routes = json_object_get(b, "routes");
    cr_assert_gt(json_array_size(routes), 0);
    cr_assert_eq(json_integer_value(json_object_get(b, "airlines_count")), (json_int_t)json_array_size(routes));
    bool fr = false;
    for (size_t i = 0; i < json_array_size(routes); i++) {
        assert_route_shape(json_array_get(routes, i));
        cr_assert_str_eq(str(json_array_get(routes, i), "origin_code"), "DUB");
        fr |= strcmp(str(json_array_get(routes, i), "airline_code"), "FR") == 0;
    }
    cr_assert(fr);
    json_decref(b);
    cr_assert_eq(get("/airlines/routes/search?origin=DUB&destination=XQZ", &b), 200);
    cr_assert_eq(json_array_size(json_object_get(b, "routes")), 0);
    cr_assert_eq(json_integer_value(json_object_get(b, "airlines_count")), 0);
    json_decref(b);
    assert_422("/airlines/routes/search?origin=du&destination=stn", "origin", "string_too_short");
    assert_422("/airlines/routes/search?origin=dub&destination=stnx", "destination", "string_too_long");
    assert_422("/airlines/routes/search?origin=dub", "destination", "missing");
    /* neither path is taken for an airline code */
    assert_422("/airlines/routes/search", "origin", "missing");
    assert_422("/airlines/routes", "origin", "missing");
}

TestSuite(airlines_api_down, .fini = teardown, .timeout = 60);

Test(airlines_api_down, database_unreachable_is_503)
{
    static const char *const env[] = {"SECRET_KEY=" SECRET,
                                      "DATABASE_URL=postgresql:///refapi_no_such_db?host=/nonexistent&user=nobody",
                                      NULL};
    cr_assert_eq(fs_test_server_start(&srv, 1, env), 0, "see %s", srv.log_path);
    const char *paths[] = {"/airlines", "/airlines/fr", "/airlines/fr/routes",
                           "/airlines/routes/search?origin=dub&destination=stn"};
    for (int i = 0; i < 4; i++) {
        json_t *b;
        fs_test_resp_t r;
        char url[256];
        snprintf(url, sizeof url, "%s%s", srv.url, paths[i]);
        fs_test_http("GET", url, NULL, NULL, &r);
        cr_assert_eq(r.status, 503, "%s", paths[i]);
        char ra[16];
        cr_assert(fs_test_resp_header(&r, "Retry-After", ra, sizeof ra), "%s: Retry-After", paths[i]);
        b = fs_test_resp_json(&r);
        cr_assert_str_eq(str(b, "detail"), "Database unavailable", "%s", paths[i]);
        json_decref(b);
        fs_test_resp_free(&r);
    }
}
