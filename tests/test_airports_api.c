/* The airport endpoints over real HTTP against the real server, with the full OurAirports +
 * OpenFlights data imported into the suite database: ranking, grouping, limits, validation,
 * trailing slashes, the admin-only reload, reloads under concurrent reads and across workers. */
#include "security/jwt.h"
#include "storage/pg.h"
#include "tests/support/harness.h"
#include "tests/support/refdata_fixture.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECRET "test-secret-key-0123456789abcdef"
static const char *const server_env[] = {"SECRET_KEY=" SECRET, NULL};
static fs_test_server_t srv;

/*--- data and accounts ----------------------------------------------------------------------*/

static char *token_for(const char *email, bool admin)
{
    return fs_test_token(email, admin, SECRET);
}

/*--- HTTP -----------------------------------------------------------------------------------*/

static long req(const char *method, const char *path, const char *token, json_t **json)
{
    char url[1024], auth[4200];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *headers[] = {auth, NULL};
    fs_test_resp_t r;
    fs_test_http(method, url, NULL, token ? headers : NULL, &r);
    if (json)
        *json = fs_test_resp_json(&r);
    long status = r.status;
    fs_test_resp_free(&r);
    return status;
}

static long get(const char *path, json_t **json)
{
    return req("GET", path, NULL, json);
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *result_code(json_t *body, size_t i)
{
    return str(json_array_get(json_object_get(body, "results"), i), "iata_code");
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

TestSuite(airports_api, .init = setup, .fini = teardown, .timeout = 120);

/*--- search ---------------------------------------------------------------------------------*/

Test(airports_api, search_ranks_code_then_city_then_name)
{
    json_t *b;
    cr_assert_eq(get("/airports/search?q=dub", &b), 200);
    cr_assert_str_eq(result_code(b, 0), "DUB");
    cr_assert_str_eq(str(b, "query"), "dub");
    json_decref(b);

    cr_assert_eq(get("/airports/search?q=zurich", &b), 200); /* accents folded: Zürich */
    cr_assert_str_eq(result_code(b, 0), "ZRH");
    json_decref(b);

    cr_assert_eq(get("/airports/search?q=London&limit=5", &b), 200); /* city before name matches */
    json_t *results = json_object_get(b, "results");
    cr_assert_eq(json_array_size(results), 5);
    cr_assert_eq(json_integer_value(json_object_get(b, "total")), 5);
    cr_assert_str_eq(str(json_array_get(results, 0), "city"), "London");
    cr_assert_str_eq(result_code(b, 0), "LHR");
    json_decref(b);

    cr_assert_eq(get("/airports/search?q=heathrow", &b), 200); /* name prefix */
    cr_assert_str_eq(result_code(b, 0), "LHR");
    json_t *lhr = json_array_get(json_object_get(b, "results"), 0);
    cr_assert_eq(json_object_size(lhr), 8, "AirportResponse has exactly 8 fields");
    cr_assert(json_is_true(json_object_get(lhr, "is_major")));
    cr_assert(json_is_real(json_object_get(lhr, "latitude")));
    json_decref(b);

    cr_assert_eq(get("/airports/search?q=%20%20MALAGA%20", &b), 200); /* trimmed, case-insensitive */
    cr_assert_str_eq(result_code(b, 0), "AGP");
    cr_assert_str_eq(str(b, "query"), "  MALAGA ", "the query is echoed as sent");
    json_decref(b);

    cr_assert_eq(get("/airports/search?q=xqzjv", &b), 200);
    cr_assert_eq(json_array_size(json_object_get(b, "results")), 0);
    json_decref(b);
}

Test(airports_api, search_limits)
{
    json_t *b;
    cr_assert_eq(get("/airports/search?q=international&limit=50", &b), 200);
    cr_assert_eq(json_array_size(json_object_get(b, "results")), 50);
    json_decref(b);
    cr_assert_eq(get("/airports/search?q=international", &b), 200);
    cr_assert_eq(json_array_size(json_object_get(b, "results")), 10, "default limit 10");
    json_decref(b);
    cr_assert_eq(get("/airports/search?q=international&limit=1", &b), 200);
    cr_assert_eq(json_array_size(json_object_get(b, "results")), 1);
    json_decref(b);
}

static void assert_422(const char *path, const char *field, const char *type)
{
    json_t *b;
    cr_assert_eq(get(path, &b), 422, "%s", path);
    json_t *e = json_array_get(json_object_get(b, "detail"), 0);
    cr_assert_str_eq(str(e, "type"), type, "%s", path);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(e, "loc"), 1)), field, "%s", path);
    json_decref(b);
}

Test(airports_api, search_validation)
{
    const char *paths[] = {"/airports/search", "/airports/search/grouped"};
    for (int i = 0; i < 2; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s", paths[i]);
        assert_422(p, "q", "missing");
        snprintf(p, sizeof p, "%s?q=a", paths[i]);
        assert_422(p, "q", "string_too_short");
        snprintf(p, sizeof p, "%s?q=%%20a%%20%%20", paths[i]);
        assert_422(p, "q", "string_too_short");
        snprintf(p, sizeof p, "%s?q=%s", paths[i], "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijk");
        assert_422(p, "q", "string_too_long");
        snprintf(p, sizeof p, "%s?q=dub&limit=0", paths[i]);
        assert_422(p, "limit", "greater_than_equal");
        snprintf(p, sizeof p, "%s?q=dub&limit=51", paths[i]);
        assert_422(p, "limit", "less_than_equal");
        snprintf(p, sizeof p, "%s?q=dub&limit=ten", paths[i]);
        assert_422(p, "limit", "int_parsing");
    }
}

/*--- grouped --------------------------------------------------------------------------------*/

Test(airports_api, grouped_folds_a_multi_airport_city)
{
    json_t *b;
    cr_assert_eq(get("/airports/search/grouped?q=london", &b), 200);
    json_t *first = json_array_get(json_object_get(b, "results"), 0);
    cr_assert_str_eq(str(first, "type"), "city");
    cr_assert_str_eq(str(first, "city"), "London");
    cr_assert_str_eq(str(first, "country_code"), "GB");
    json_int_t n = json_integer_value(json_object_get(first, "airport_count"));
    cr_assert_geq(n, 5, "LHR LGW STN LTN LCY at least");
    char display[64];
    snprintf(display, sizeof display, "London (All %lld airports)", (long long)n);
    cr_assert_str_eq(str(first, "display"), display);
    json_t *codes = json_object_get(first, "codes"), *airports = json_object_get(first, "airports");
    cr_assert_eq((json_int_t)json_array_size(codes), n);
    cr_assert_eq((json_int_t)json_array_size(airports), n);
    const char *want[] = {"LHR", "LGW", "STN", "LTN", "LCY"};
    for (int i = 0; i < 5; i++) {
        bool found = false;
        for (size_t j = 0; j < json_array_size(codes); j++)
            found |= strcmp(json_string_value(json_array_get(codes, j)), want[i]) == 0;
        cr_assert(found, "%s in the London group", want[i]);
    }
    json_t *a0 = json_array_get(airports, 0);
    cr_assert(json_object_get(a0, "icao_code") && json_object_get(a0, "timezone") && json_object_get(a0, "is_active"),
              "group members are full objects");
    cr_assert_eq(json_integer_value(json_object_get(b, "total")), (json_int_t)json_array_size(json_object_get(b, "results")));
    json_decref(b);

    cr_assert_eq(get("/airports/search/grouped?q=dub&limit=3", &b), 200);
    json_t *results = json_object_get(b, "results");
    cr_assert_leq(json_array_size(results), 3);
    cr_assert_str_eq(str(json_array_get(results, 0), "type"), "airport");
    cr_assert_str_eq(str(json_array_get(results, 0), "iata_code"), "DUB");
    json_decref(b);
}

/*--- popular, by code, by city --------------------------------------------------------------*/

Test(airports_api, popular_with_and_without_trailing_slash)
{
    json_t *a, *b;
    cr_assert_eq(get("/airports/popular", &a), 200);
    cr_assert_eq(get("/airports/popular/", &b), 200);
    cr_assert(json_equal(a, b));
    cr_assert_eq(json_array_size(a), 20, "default limit 20");
    for (size_t i = 0; i < json_array_size(a); i++)
        cr_assert(json_is_true(json_object_get(json_array_get(a, i), "is_major")));
    json_decref(a);
    json_decref(b);

    cr_assert_eq(get("/airports/popular/?country_code=gb&limit=100", &a), 200);
    cr_assert_gt(json_array_size(a), 3);
    for (size_t i = 0; i < json_array_size(a); i++)
        cr_assert_str_eq(str(json_array_get(a, i), "country_code"), "GB");
    json_decref(a);
    cr_assert_eq(get("/airports/popular?limit=2", &a), 200);
    cr_assert_eq(json_array_size(a), 2);
    json_decref(a);
    assert_422("/airports/popular?limit=101", "limit", "less_than_equal");
    assert_422("/airports/popular/?limit=0", "limit", "greater_than_equal");
}

Test(airports_api, by_code)
{
    json_t *b;
    cr_assert_eq(get("/airports/zrh", &b), 200);
    cr_assert_str_eq(str(b, "iata_code"), "ZRH");
    cr_assert_eq(json_object_size(b), 8);
    json_decref(b);
    cr_assert_eq(get("/airports/nope", &b), 404);
    cr_assert_str_eq(str(b, "detail"), "Airport with code 'nope' not found");
    json_decref(b);
    cr_assert_eq(get("/airports/qQ9", &b), 404);
    cr_assert_str_eq(str(b, "detail"), "Airport with code 'qQ9' not found");
    json_decref(b);
    cr_assert_eq(get("/airports/zzq", &b), 200, "an inactive airport is still found by code");
    cr_assert_str_eq(str(b, "name"), "Refapi Closed Airport");
    json_decref(b);
    cr_assert_eq(get("/airports/search?q=zzq", &b), 200);
    cr_assert_eq(json_array_size(json_object_get(b, "results")), 0, "but never searched");
    json_decref(b);
}

Test(airports_api, by_city)
{
    json_t *b;
    cr_assert_eq(get("/airports/city/london", &b), 200);
    cr_assert_geq(json_array_size(b), 5);
    for (size_t i = 0; i < json_array_size(b); i++)
        cr_assert_str_eq(str(json_array_get(b, i), "city"), "London");
    cr_assert_str_eq(str(json_array_get(b, 0), "iata_code"), "LHR");
    json_decref(b);
    cr_assert_eq(get("/airports/city/Z%C3%BCrich", &b), 200);
    cr_assert_str_eq(str(json_array_get(b, 0), "iata_code"), "ZRH");
    json_decref(b);
    cr_assert_eq(get("/airports/city/zurich", &b), 200);
    cr_assert_str_eq(str(json_array_get(b, 0), "iata_code"), "ZRH");
    json_decref(b);
    cr_assert_eq(get("/airports/city/nowhereville", &b), 200);
    cr_assert_eq(json_array_size(b), 0);
    json_decref(b);
}

/*--- reload ---------------------------------------------------------------------------------*/

Test(airports_api, reload_is_admin_only)
{
    json_t *b;
    cr_assert_eq(req("POST", "/airports/cache/reload", NULL, &b), 401);
    json_decref(b);
    char *user = token_for("refapi-user@example.com", false);
    cr_assert_eq(req("POST", "/airports/cache/reload", user, &b), 403);
    json_decref(b);
    free(user);
    char *admin = token_for("refapi-admin@example.com", true);
    cr_assert_eq(req("POST", "/airports/cache/reload", admin, &b), 200);
    cr_assert_str_eq(str(b, "status"), "success");
    json_int_t n = json_integer_value(json_object_get(b, "airports_loaded"));
    cr_assert_gt(n, 8000);
    char msg[64];
    snprintf(msg, sizeof msg, "Loaded %lld airports into cache", (long long)n);
    cr_assert_str_eq(str(b, "message"), msg);
    json_decref(b);
    free(admin);
}

typedef struct {
    volatile bool stop;
    int requests, errors;
    char first_error[256];
} reader_t;

static const char *const reader_queries[] = {"/airports/search?q=lon", "/airports/search/grouped?q=london",
                                             "/airports/search?q=zurich", "/airports/dub"};

static void *reader(void *arg)
{
    reader_t *r = arg;
    json_t *baseline[4];
    for (int i = 0; i < 4; i++)
        get(reader_queries[i], &baseline[i]);
    for (int i = 0; !r->stop; i = (i + 1) % 4) {
        json_t *b = NULL;
        long st = get(reader_queries[i], &b);
        r->requests++;
        if (st != 200 || !b || !json_equal(b, baseline[i])) {
            if (r->errors++ == 0)
                snprintf(r->first_error, sizeof r->first_error, "%s: status %ld%s", reader_queries[i], st,
                         st == 200 ? " (body differs)" : "");
        }
        json_decref(b);
    }
    for (int i = 0; i < 4; i++)
        json_decref(baseline[i]);
    return NULL;
}

Test(airports_api, reload_under_concurrent_reads)
{
    reader_t r = {0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, reader, &r);
    char *admin = token_for("refapi-admin@example.com", true);
    usleep(100000);
    for (int i = 0; i < 4; i++) {
        json_t *b;
        cr_assert_eq(req("POST", "/airports/cache/reload", admin, &b), 200);
        json_decref(b);
    }
    usleep(100000);
    r.stop = true;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    free(admin);
    cr_assert_gt(r.requests, 20);
    cr_assert_eq(r.errors, 0, "%d of %d reads failed, first: %s", r.errors, r.requests, r.first_error);
}

static int count_in_log(const char *needle)
{
    FILE *f = fopen(srv.log_path, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

TestSuite(airports_api_workers, .fini = teardown, .timeout = 120);

Test(airports_api_workers, reload_reaches_every_worker)
{
    start_server(2);
    double deadline = fs_test_now_ms() + 10000;
    while (count_in_log("reference data loaded") < 2 && fs_test_now_ms() < deadline)
        usleep(50000);
    cr_assert_eq(count_in_log("reference data loaded"), 2, "both workers loaded at start");
    char name[64], sql[256];
    snprintf(name, sizeof name, "Refapi Renamed %d", (int)getpid());
    PGconn *c = fs_test_db();
    snprintf(sql, sizeof sql, "UPDATE airports SET name = '%s' WHERE iata_code = 'ZZR'", name);
    fs_test_exec(c, sql);
    PQfinish(c);
    json_t *b;
    cr_assert_eq(get("/airports/ZZR", &b), 200);
    cr_assert_str_eq(str(b, "name"), "Refapi Test Airport", "served from memory until the reload");
    json_decref(b);

    char *admin = token_for("refapi-admin@example.com", true);
    cr_assert_eq(req("POST", "/airports/cache/reload", admin, &b), 200);
    json_decref(b);
    free(admin);
    /* the other worker reloads on the pub/sub message: wait for its log line, then every
     * request (new connections, spread over both workers) serves the new name */
    deadline = fs_test_now_ms() + 10000;
    while (count_in_log("reference data loaded") < 4 && fs_test_now_ms() < deadline)
        usleep(50000);
    cr_assert_eq(count_in_log("reference data loaded"), 4, "both workers reloaded once; see %s", srv.log_path);
    for (int i = 0; i < 40; i++) {
        cr_assert_eq(get("/airports/zzr", &b), 200);
        cr_assert_str_eq(str(b, "name"), name, "request %d", i);
        json_decref(b);
    }
    c = fs_test_db();
    fs_test_exec(c, "UPDATE airports SET name = 'Refapi Test Airport' WHERE iata_code = 'ZZR'");
    PQfinish(c);
}

/*--- while loading / database unreachable ---------------------------------------------------*/

TestSuite(airports_api_down, .fini = teardown, .timeout = 60);

Test(airports_api_down, loading_answers_503)
{
    static const char *const env[] = {"SECRET_KEY=" SECRET,
                                      "DATABASE_URL=postgresql:///refapi_no_such_db?host=/nonexistent&user=nobody",
                                      NULL};
    cr_assert_eq(fs_test_server_start(&srv, 1, env), 0, "see %s", srv.log_path);
    const char *paths[] = {"/airports/search?q=dub", "/airports/search/grouped?q=dub", "/airports/popular",
                           "/airports/dub", "/airports/city/dublin"};
    for (int i = 0; i < 5; i++) {
        json_t *b;
        cr_assert_eq(get(paths[i], &b), 503, "%s", paths[i]);
        cr_assert_str_eq(str(b, "detail"), "Reference data is loading");
        json_decref(b);
    }
    assert_422("/airports/search?q=d", "q", "string_too_short"); /* validation still answers first */
}

/* A request that arrives during the worker's first load waits for it instead of failing. */
Test(airports_api_workers, first_requests_wait_for_the_first_load)
{
    fs_test_ensure_reference_data();
    cr_assert_eq(fs_test_server_start(&srv, 1, server_env), 0, "see %s", srv.log_path);
    json_t *b;
    cr_assert_eq(get("/airports/search?q=dub", &b), 200, "see %s", srv.log_path);
    cr_assert_str_eq(result_code(b, 0), "DUB");
    json_decref(b);
}
