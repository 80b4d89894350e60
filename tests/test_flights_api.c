/* The flight endpoints over real HTTP against the real server, PostgreSQL and Redis, with the
 * full reference data: searches answered by the inventory, the cache (hits, single-flight
 * across 100 concurrent identical searches), observed fares taking precedence, calendars,
 * flexible searches, price history, provider status and reset, the analytics log, every
 * validation error, and Redis down. */
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
static const char *const server_env[] = {"SECRET_KEY=" SECRET, "SEARCH_LOG_FLUSH_MS=100", NULL};
static fs_test_server_t srv;

/*--- helpers ----------------------------------------------------------------------------------*/

/* A date `days` from today (UTC), YYYY-MM-DD, moved by a per-run offset so that answers
 * cached by an earlier run (the cache outlives a server) never make a cold search warm. */
static const char *day_from_now(int days, char buf[16])
{
    static int run_offset = -1;
    if (run_offset < 0)
        run_offset = (int)(((unsigned)time(NULL) ^ (unsigned)getpid() * 2654435761u) % 150);
    if (days > 0)
        days += run_offset;
    time_t t = time(NULL) + (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 16, "%Y-%m-%d", &tm);
    return buf;
}

static long req(const char *method, const char *path, const char *token, json_t **json, char *xcache)
{
    char url[1024], auth[4200];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *headers[] = {auth, NULL};
    fs_test_resp_t r;
    fs_test_http(method, url, NULL, token ? headers : NULL, &r);
    if (json)
        *json = fs_test_resp_json(&r);
    if (xcache) {
        char buf[16];
        const char *v = fs_test_resp_header(&r, "X-Cache", buf, sizeof buf);
        strcpy(xcache, v ? v : "");
    }
    long status = r.status;
    fs_test_resp_free(&r);
    return status;
}

static long get(const char *path, json_t **json)
{
    return req("GET", path, NULL, json, NULL);
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *detail(json_t *o)
{
    return str(o, "detail");
}

/* The first pydantic-style error's field name, for 422 lists. */
static const char *error_field(json_t *o)
{
    json_t *loc = json_object_get(json_array_get(json_object_get(o, "detail"), 0), "loc");
    return json_string_value(json_array_get(loc, 1));
}

static void setup(void)
{
    fs_test_start_refdata_server(&srv, 2, server_env);
}

static void teardown(void)
{
    if (srv.pid > 0)
        fs_test_server_stop(&srv);
}

TestSuite(flights_api, .init = setup, .fini = teardown, .timeout = 120);

/* Offers are sorted by price, well formed, and say where their fare came from. */
static void assert_offers(json_t *body, const char *origin, const char *destination, bool round_trip)
{
    json_t *offers = json_object_get(body, "offers");
    cr_assert(json_is_array(offers));
    cr_assert_eq((size_t)json_integer_value(json_object_get(body, "total_results")), json_array_size(offers));
    double last = 0;
    size_t i;
    json_t *o;
    json_array_foreach(offers, i, o)
    {
        double price = json_real_value(json_object_get(o, "price"));
        cr_assert_geq(price, last, "offers not sorted by price at %zu", i);
        cr_assert_gt(price, 0);
        last = price;
        cr_assert(str(o, "id") && strlen(str(o, "id")) > 4);
        cr_assert(str(o, "source"));
        cr_assert(str(o, "priced_at"));
        cr_assert_str_eq(str(o, "currency"), "EUR");
        json_t *out = json_object_get(o, "outbound_segments");
        cr_assert_gt(json_array_size(out), 0);
        cr_assert_eq(json_integer_value(json_object_get(o, "stops")), (json_int_t)json_array_size(out) - 1);
        cr_assert_eq(json_is_true(json_object_get(o, "is_direct")), json_array_size(out) == 1);
        json_t *first = json_array_get(out, 0), *lastseg = json_array_get(out, json_array_size(out) - 1);
        if (origin)
            cr_assert_str_eq(str(first, "departure_airport"), origin);
        if (destination)
            cr_assert_str_eq(str(lastseg, "arrival_airport"), destination);
        cr_assert_eq(json_is_array(json_object_get(o, "return_segments")), round_trip);
        cr_assert_gt(json_integer_value(json_object_get(o, "total_duration_minutes")), 0);
    }
}

/*--- searches ---------------------------------------------------------------------------------*/

Test(flights_api, search_answers_from_the_inventory_then_from_the_cache)
{
    char dep[16], path[256], cache[16];
    /* two passengers: the scheduled refresh (one passenger) never fills this entry */
    snprintf(path, sizeof path, "/flights/search?origin=dub&destination=BCN&departure_date=%s&passengers=2",
             day_from_now(40, dep));
    json_t *b;
    cr_assert_eq(req("GET", path, NULL, &b, cache), 200);
    cr_assert_str_eq(cache, "MISS");
    cr_assert_str_eq(str(b, "origin"), "DUB");
    cr_assert_str_eq(str(b, "destination"), "BCN");
    cr_assert_str_eq(str(b, "departure_date"), dep);
    cr_assert(json_is_null(json_object_get(b, "return_date")));
    cr_assert_eq(json_integer_value(json_object_get(b, "passengers")), 2);
    cr_assert(json_is_false(json_object_get(b, "cached")));
    cr_assert_gt(json_array_size(json_object_get(b, "offers")), 2, "DUB-BCN has several carriers");
    assert_offers(b, "DUB", "BCN", false);
    cr_assert_str_eq(str(json_array_get(json_object_get(b, "offers"), 0), "source"), "inventory");
    char *first = json_dumps(json_object_get(b, "offers"), JSON_SORT_KEYS);
    const char *searched_at = str(b, "searched_at");
    char at[64];
    snprintf(at, sizeof at, "%s", searched_at);
    json_decref(b);

    /* the same search again, with the codes spelled differently: one cache entry */
    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=bcn&departure_date=%s&passengers=2", dep);
    cr_assert_eq(req("GET", path, NULL, &b, cache), 200);
    cr_assert_str_eq(cache, "HIT");
    cr_assert(json_is_true(json_object_get(b, "cached")));
    cr_assert_str_eq(str(b, "searched_at"), at, "a cached answer keeps its searched_at");
    char *second = json_dumps(json_object_get(b, "offers"), JSON_SORT_KEYS);
    cr_assert_str_eq(first, second);
    free(first);
    free(second);
    json_decref(b);
}

Test(flights_api, one_stop_market_round_trip_and_direct_only)
{
    char dep[16], ret[16], path[256];
    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=SYD&departure_date=%s&return_date=%s",
             day_from_now(60, dep), day_from_now(74, ret));
    json_t *b;
    cr_assert_eq(get(path, &b), 200);
    cr_assert_str_eq(str(b, "return_date"), ret);
    cr_assert_gt(json_array_size(json_object_get(b, "offers")), 0, "DUB-SYD is reachable with connections");
    assert_offers(b, "DUB", "SYD", true);
    json_t *o = json_array_get(json_object_get(b, "offers"), 0);
    cr_assert_geq(json_integer_value(json_object_get(o, "stops")), 1);
    json_t *back = json_object_get(o, "return_segments");
    cr_assert_str_eq(str(json_array_get(back, 0), "departure_airport"), "SYD");
    cr_assert_str_eq(str(json_array_get(back, json_array_size(back) - 1), "arrival_airport"), "DUB");
    json_decref(b);

    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=SYD&departure_date=%s&direct_only=true",
             dep);
    cr_assert_eq(get(path, &b), 200);
    cr_assert_eq(json_array_size(json_object_get(b, "offers")), 0, "no direct DUB-SYD flight exists");
    json_decref(b);

    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=LHR&departure_date=%s&direct_only=true",
             dep);
    cr_assert_eq(get(path, &b), 200);
    cr_assert_gt(json_array_size(json_object_get(b, "offers")), 0);
    size_t i;
    json_array_foreach(json_object_get(b, "offers"), i, o) cr_assert(json_is_true(json_object_get(o, "is_direct")));
    json_decref(b);
}

Test(flights_api, multi_airport_city_codes_and_cabins)
{
    char dep[16], path[256];
    snprintf(path, sizeof path, "/flights/search?origin=LON&destination=DUB&departure_date=%s",
             day_from_now(30, dep));
    json_t *b;
    cr_assert_eq(get(path, &b), 200);
    cr_assert_str_eq(str(b, "origin"), "LON");
    assert_offers(b, NULL, "DUB", false);
    size_t i;
    json_t *o;
    int airports_seen = 0;
    char seen[8][4] = {{0}};
    json_array_foreach(json_object_get(b, "offers"), i, o)
    {
        const char *from = str(json_array_get(json_object_get(o, "outbound_segments"), 0), "departure_airport");
        cr_assert(strstr("LHR LGW STN LTN LCY SEN", from), "%s is not a London airport", from);
        bool known = false;
        for (int k = 0; k < airports_seen; k++)
            known |= strcmp(seen[k], from) == 0;
        if (!known && airports_seen < 8)
            strcpy(seen[airports_seen++], from);
    }
    cr_assert_geq(airports_seen, 2, "offers from several London airports");
    double economy = json_real_value(json_object_get(json_array_get(json_object_get(b, "offers"), 0), "price"));
    json_decref(b);

    snprintf(path, sizeof path, "/flights/search?origin=LON&destination=DUB&departure_date=%s&cabin_class=business",
             dep);
    cr_assert_eq(get(path, &b), 200);
    json_t *first = json_array_get(json_object_get(b, "offers"), 0);
    cr_assert_str_eq(str(first, "cabin_class"), "business");
    cr_assert_gt(json_real_value(json_object_get(first, "price")), economy);
    json_decref(b);
}

Test(flights_api, every_validation_error_is_clear)
{
    char past[16], dep[16], before[16], far[16], path[256];
    day_from_now(-3, past);
    day_from_now(20, dep);
    day_from_now(10, before);
    day_from_now(400 + 150, far);
    json_t *b;

    cr_assert_eq(get("/flights/search?destination=BCN&departure_date=2030-01-01", &b), 422);
    cr_assert_str_eq(error_field(b), "origin");
    json_decref(b);
    cr_assert_eq(get("/flights/search?origin=DUBX&destination=BCN&departure_date=2030-01-01", &b), 422);
    json_decref(b);
    cr_assert_eq(get("/flights/search?origin=DUB&destination=BCN&departure_date=2030-13-01", &b), 422);
    cr_assert_str_eq(error_field(b), "departure_date");
    json_decref(b);
    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=BCN&departure_date=%s&passengers=10", dep);
    cr_assert_eq(get(path, &b), 422);
    cr_assert_str_eq(error_field(b), "passengers");
    json_decref(b);
    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=BCN&departure_date=%s&cabin_class=luxury",
             dep);
    cr_assert_eq(get(path, &b), 422);
    cr_assert_str_eq(error_field(b), "cabin_class");
    json_decref(b);
    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=BCN&departure_date=%s&strategy=fastest", dep);
    cr_assert_eq(get(path, &b), 422);
    cr_assert_str_eq(error_field(b), "strategy");
    json_decref(b);

    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=BCN&departure_date=%s", past);
    cr_assert_eq(get(path, &b), 400);
    cr_assert_str_eq(detail(b), "Departure date cannot be in the past");
    json_decref(b);
    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=BCN&departure_date=%s&return_date=%s", dep,
             before);
    cr_assert_eq(get(path, &b), 400);
    cr_assert_str_eq(detail(b), "Return date must be after departure date");
    json_decref(b);
    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=BCN&departure_date=%s", far);
    cr_assert_eq(get(path, &b), 400);
    cr_assert(strstr(detail(b), "days ahead"));
    json_decref(b);
    snprintf(path, sizeof path, "/flights/search?origin=QQX&destination=BCN&departure_date=%s", dep);
    cr_assert_eq(get(path, &b), 400);
    cr_assert_str_eq(detail(b), "Unknown airport code 'QQX'");
    json_decref(b);
    snprintf(path, sizeof path, "/flights/search?origin=dub&destination=DUB&departure_date=%s", dep);
    cr_assert_eq(get(path, &b), 400);
    cr_assert_str_eq(detail(b), "Origin and destination must be different");
    json_decref(b);
    snprintf(path, sizeof path, "/flights/search?origin=LON&destination=LHR&departure_date=%s", dep);
    cr_assert_eq(get(path, &b), 400, "LHR is one of the London airports");
    json_decref(b);
    /* the server is still fine */
    cr_assert_eq(get("/health/live", NULL), 200);
}

/*--- observed fares ---------------------------------------------------------------------------*/

Test(flights_api, an_observed_fare_takes_precedence_over_the_model)
{
    char dep[16], path[256], sql[512];
    day_from_now(45, dep);
    /* which carriers fly DUB-BCN direct, per the inventory */
    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=BCN&departure_date=%s&direct_only=true&passengers=2",
             dep);
    json_t *b;
    cr_assert_eq(get(path, &b), 200);
    json_t *o = json_array_get(json_object_get(b, "offers"), 0);
    cr_assert(o);
    char carrier[4];
    snprintf(carrier, sizeof carrier, "%s", str(o, "airline"));
    json_decref(b);

    PGconn *c = fs_test_db();
    snprintf(sql, sizeof sql,
             "INSERT INTO price_history (time, origin_code, destination_code, airline, departure_date, cabin_class, "
             "price, source) VALUES (now() - interval '1 hour', 'DUB', 'BCN', '%s', '%s', 'economy', 7.50, 'amadeus')",
             carrier, dep);
    fs_test_exec(c, sql);
    PQfinish(c);

    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=BCN&departure_date=%s&direct_only=true&passengers=3",
             dep);
    cr_assert_eq(get(path, &b), 200);
    o = json_array_get(json_object_get(b, "offers"), 0);
    cr_assert_str_eq(str(o, "source"), "observed");
    cr_assert_str_eq(str(o, "airline"), carrier);
    cr_assert_float_eq(json_real_value(json_object_get(o, "price")), 22.50, 0.001, "3 passengers x 7.50");
    json_decref(b);
    /* later runs of this suite search the same route on other days; keep them model-priced */
    c = fs_test_db();
    fs_test_exec(c, "DELETE FROM price_history WHERE source = 'amadeus' AND price = 7.50");
    PQfinish(c);
}

/*--- cache: single-flight ---------------------------------------------------------------------*/

static double provider_searches(void)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", srv.url);
    fs_test_resp_t r;
    fs_test_http("GET", url, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    double sum = 0;
    for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, "flightshark_provider_searches_total{", 36) == 0 && strstr(line, "provider=\"inventory\""))
            sum += atof(strrchr(line, ' ') + 1);
    fs_test_resp_free(&r);
    return sum;
}

typedef struct {
    const char *url;
    long status;
    bool cached;
} shot_t;

static void *one_search(void *arg)
{
    shot_t *s = arg;
    fs_test_resp_t r;
    fs_test_http("GET", s->url, NULL, NULL, &r);
    s->status = r.status;
    json_t *b = fs_test_resp_json(&r);
    s->cached = json_is_true(json_object_get(b, "cached"));
    json_decref(b);
    fs_test_resp_free(&r);
    return NULL;
}

Test(flights_api, one_hundred_identical_cold_searches_make_one_provider_search)
{
    char dep[16], url[256];
    snprintf(url, sizeof url, "%s/flights/search?origin=CDG&destination=JFK&departure_date=%s&passengers=4", srv.url,
             day_from_now(77, dep));
    double before = provider_searches();
    enum { N = 100 };
    shot_t shots[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        shots[i] = (shot_t){.url = url};
        pthread_create(&th[i], NULL, one_search, &shots[i]);
    }
    int hits = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(shots[i].status, 200, "search %d: %ld", i, shots[i].status);
        hits += shots[i].cached;
    }
    cr_assert_eq(provider_searches() - before, 1.0, "exactly one provider search for 100 identical searches");
    cr_assert_eq(hits, N - 1, "every other search was served the leader's answer");
}

/*--- calendars, flexible searches, price history ----------------------------------------------*/

Test(flights_api, cheapest_dates_cover_the_month)
{
    time_t t = time(NULL) + 40 * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    char path[256];
    snprintf(path, sizeof path, "/flights/cheapest-dates?origin=DUB&destination=BCN&month=%d&year=%d",
             tm.tm_mon + 1, tm.tm_year + 1900);
    json_t *b;
    cr_assert_eq(get(path, &b), 200);
    char month[32];
    snprintf(month, sizeof month, "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
    cr_assert_str_eq(str(b, "month"), month);
    json_t *dates = json_object_get(b, "dates");
    cr_assert_geq(json_array_size(dates), 20, "a busy route has fares on most days");
    double min = 1e9;
    size_t i;
    json_t *d;
    json_array_foreach(dates, i, d)
    {
        cr_assert(strncmp(str(d, "date"), month, 7) == 0);
        double p = json_real_value(json_object_get(d, "price"));
        if (p < min)
            min = p;
    }
    cr_assert_float_eq(json_real_value(json_object_get(json_object_get(b, "cheapest_date"), "price")), min, 0.001);
    json_decref(b);

    cr_assert_eq(get("/flights/cheapest-dates?origin=DUB&destination=BCN&year=2027", &b), 422);
    cr_assert_str_eq(error_field(b), "month");
    json_decref(b);
    snprintf(path, sizeof path, "/flights/cheapest-dates?origin=DUB&destination=BCN&month=1&year=%d",
             tm.tm_year + 1900 - 1);
    cr_assert_eq(get(path, &b), 400);
    cr_assert_str_eq(detail(b), "Month cannot be in the past");
    json_decref(b);
}

Test(flights_api, flexible_search_respects_the_nights)
{
    char from[16], to[16], path[256];
    snprintf(path, sizeof path,
             "/flights/search/flexible?origin=DUB&destination=BCN&date_from=%s&date_to=%s&nights_from=3&nights_to=5",
             day_from_now(30, from), day_from_now(40, to));
    json_t *b;
    cr_assert_eq(get(path, &b), 200);
    assert_offers(b, "DUB", "BCN", true);
    cr_assert_gt(json_array_size(json_object_get(b, "offers")), 0);
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(b, "offers"), i, o)
    {
        const char *out = str(json_array_get(json_object_get(o, "outbound_segments"), 0), "departure_time");
        const char *back = str(json_array_get(json_object_get(o, "return_segments"), 0), "departure_time");
        struct tm a = {0}, c = {0};
        strptime(out, "%Y-%m-%dT%H:%M:%S", &a);
        strptime(back, "%Y-%m-%dT%H:%M:%S", &c);
        a.tm_hour = c.tm_hour = 12;
        a.tm_min = c.tm_min = a.tm_sec = c.tm_sec = 0;
        long nights = (long)((timegm(&c) - timegm(&a)) / 86400);
        cr_assert(nights >= 3 && nights <= 5, "offer %zu stays %ld nights", i, nights);
        cr_assert(strcmp(out, from) >= 0 && strncmp(out, to, 10) <= 0, "departs %s outside the range", out);
    }
    json_decref(b);
    snprintf(path, sizeof path, "/flights/search/flexible?origin=DUB&destination=BCN&date_from=%s&date_to=%s", to,
             from);
    cr_assert_eq(get(path, &b), 400);
    json_decref(b);
}

Test(flights_api, price_history_reads_the_daily_aggregate)
{
    PGconn *c = fs_test_db();
    fs_test_exec(c, "DELETE FROM price_daily WHERE origin_code = 'ORK' AND destination_code = 'AMS'");
    fs_test_exec(c, "INSERT INTO price_daily VALUES "
                    "('ORK', 'AMS', current_date - 1, 300.00, 50.00, 150.00, 3), "
                    "('ORK', 'AMS', current_date - 3, 80.00, 80.00, 80.00, 1), "
                    "('ORK', 'AMS', current_date - 40, 10.00, 10.00, 10.00, 1)");
    PQfinish(c);
    json_t *b;
    cr_assert_eq(get("/flights/prices/ork/ams?days=7", &b), 200);
    cr_assert_str_eq(str(b, "origin"), "ORK");
    cr_assert_eq(json_integer_value(json_object_get(b, "days")), 7);
    json_t *prices = json_object_get(b, "prices");
    cr_assert_eq(json_array_size(prices), 2, "the 40-day-old day is outside the window");
    json_t *first = json_array_get(prices, 0);
    cr_assert_float_eq(json_real_value(json_object_get(first, "avg_price")), 100.0, 0.001);
    cr_assert_float_eq(json_real_value(json_object_get(first, "min_price")), 50.0, 0.001);
    cr_assert_float_eq(json_real_value(json_object_get(first, "max_price")), 150.0, 0.001);
    cr_assert_eq(json_integer_value(json_object_get(first, "sample_count")), 3);
    cr_assert_str_gt(str(first, "date"), str(json_array_get(prices, 1), "date"), "newest day first");
    json_decref(b);
    cr_assert_eq(get("/flights/prices/ORK/AMS?days=6", &b), 422);
    json_decref(b);
    cr_assert_eq(get("/flights/prices/ORK/AMS?days=181", &b), 422);
    json_decref(b);
}

/*--- providers and analytics ------------------------------------------------------------------*/

Test(flights_api, provider_status_and_admin_reset)
{
    json_t *b;
    cr_assert_eq(get("/flights/providers/status", &b), 200);
    json_t *inv = json_object_get(json_object_get(b, "providers"), "inventory");
    cr_assert(inv, "the inventory is listed");
    cr_assert_str_eq(str(inv, "status"), "healthy");
    cr_assert(json_is_true(json_object_get(inv, "is_configured")));
    json_t *amadeus = json_object_get(json_object_get(b, "providers"), "amadeus");
    cr_assert(amadeus && json_is_false(json_object_get(amadeus, "is_configured")), "no keys: amadeus unconfigured");
    bool listed = false;
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(b, "available_providers"), i, n) listed |= strcmp(json_string_value(n), "inventory") == 0;
    cr_assert(listed);
    json_decref(b);

    cr_assert_eq(req("POST", "/flights/providers/inventory/reset", NULL, &b, NULL), 401);
    json_decref(b);
    char *user = fs_test_token("flights-user@example.com", false, SECRET);
    char *admin = fs_test_token("flights-admin@example.com", true, SECRET);
    cr_assert_eq(req("POST", "/flights/providers/inventory/reset", user, &b, NULL), 403);
    json_decref(b);
    cr_assert_eq(req("POST", "/flights/providers/inventory/reset", admin, &b, NULL), 200);
    cr_assert_str_eq(str(b, "message"), "Provider 'inventory' status reset");
    cr_assert_str_eq(str(b, "status"), "healthy");
    json_decref(b);
    cr_assert_eq(req("POST", "/flights/providers/nosuch/reset", admin, &b, NULL), 404);
    cr_assert_str_eq(detail(b), "Provider 'nosuch' not found");
    json_decref(b);
    free(user);
    free(admin);
}

Test(flights_api, searches_are_logged_for_analytics)
{
    char dep[16], path[256], sql[256];
    day_from_now(33, dep);
    PGconn *c = fs_test_db();
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM search_logs WHERE origin_code = 'MAD' AND destination_code = 'FCO' "
             "AND departure_date = '%s'",
             dep);
    long before = fs_test_scalar(c, sql);
    snprintf(path, sizeof path, "/flights/search?origin=MAD&destination=FCO&departure_date=%s", dep);
    cr_assert_eq(get(path, NULL), 200);
    cr_assert_eq(get(path, NULL), 200);
    long after = before;
    for (int i = 0; i < 50 && after < before + 2; i++) {
        usleep(100000);
        after = fs_test_scalar(c, sql);
    }
    cr_assert_eq(after, before + 2);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM search_logs WHERE origin_code = 'MAD' AND destination_code = 'FCO' "
             "AND departure_date = '%s' AND cached AND result_count >= 0 AND response_time_ms >= 0",
             dep);
    cr_assert_geq(fs_test_scalar(c, sql), 1, "the second search was a cache hit");
    PQfinish(c);
}

/*--- Redis down -------------------------------------------------------------------------------*/

Test(flights_api_redis_down, search_works_without_redis_and_health_says_degraded, .timeout = 120, .fini = teardown)
{
    char redis_url[64];
    snprintf(redis_url, sizeof redis_url, "REDIS_URL=redis://127.0.0.1:%d/0", fs_test_free_port());
    const char *env[] = {"SECRET_KEY=" SECRET, redis_url, "REDIS_TIMEOUT_MS=200", NULL};
    fs_test_start_refdata_server(&srv, 1, env);
    char dep[16], path[256], cache[16];
    snprintf(path, sizeof path, "/flights/search?origin=DUB&destination=AMS&departure_date=%s",
             day_from_now(21, dep));
    json_t *b;
    cr_assert_eq(req("GET", path, NULL, &b, cache), 200);
    cr_assert_gt(json_array_size(json_object_get(b, "offers")), 0);
    json_decref(b);
    cr_assert_eq(req("GET", path, NULL, &b, cache), 200);
    cr_assert_str_eq(cache, "HIT", "the worker's own cache still serves");
    json_decref(b);
    cr_assert_eq(get("/health", &b), 200);
    cr_assert_str_eq(str(b, "status"), "degraded");
    cr_assert(json_is_false(json_object_get(json_object_get(b, "checks"), "redis")));
    json_decref(b);
}

/*--- the scheduled refresh of popular routes --------------------------------------------------*/

static double metric_sum(const char *name)
{
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", srv.url);
    fs_test_resp_t r;
    fs_test_http("GET", url, NULL, NULL, &r);
    double sum = 0;
    size_t n = strlen(name);
    for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '{'))
            sum += atof(strrchr(line, ' ') + 1);
    fs_test_resp_free(&r);
    return sum;
}

Test(flights_refresh, popular_routes_are_searched_again_and_their_fares_recorded, .timeout = 120, .fini = teardown)
{
    const char *env[] = {"SECRET_KEY=" SECRET, "SEARCH_LOG_FLUSH_MS=100", "PRICE_REFRESH_INTERVAL_S=1",
                         "PRICE_REFRESH_ROUTES=10000", NULL};
    PGconn *c = fs_test_db();
    /* the refresh searches a route on its most searched date: only this run's searches count */
    fs_test_exec(c, "DELETE FROM search_logs WHERE origin_code = 'ORK' AND destination_code = 'LHR'");
    fs_test_start_refdata_server(&srv, 2, env);
    char dep[16], path[256], sql[256];
    snprintf(path, sizeof path, "/flights/search?origin=ORK&destination=LHR&departure_date=%s",
             day_from_now(12, dep));
    cr_assert_eq(get(path, NULL), 200);
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT time) FROM price_history WHERE origin_code = 'ORK' AND destination_code = 'LHR' "
             "AND departure_date = '%s'",
             dep);
    long times = 0;
    for (int i = 0; i < 100 && times < 2; i++) {
        usleep(100000);
        times = fs_test_scalar(c, sql);
    }
    cr_assert_geq(times, 2, "the refresh recorded the route's fares again (observations at %ld times)", times);
    cr_assert_gt(metric_sum("flightshark_price_refresh_searches_total"), 0);
    PQfinish(c);
}
