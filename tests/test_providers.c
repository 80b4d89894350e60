/* Contract tests of the upstream providers (amadeus, duffel) against a local server answering
 * with the documented response shapes: tokens, mapping of a realistic round trip (every field),
 * error shapes, 401/429/500, slow answers, malformed JSON, and close with calls still out. */
#include "actors/search/provider.h"
#include "actors/search/upstream.h"
#include "runtime/config.h"
#include "runtime/http_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const fs_provider_ops_t fs_provider_amadeus;
extern const fs_provider_ops_t fs_provider_duffel;

#define TOKEN_PATH "/v1/security/oauth2/token"
#define OFFERS_PATH "/v2/shopping/flight-offers"
#define DATES_PATH "/v1/shopping/flight-dates"
#define DUFFEL_PATH "/air/offer_requests"

static struct event_base *base;
static fs_fake_upstream_t *up;
static fs_http_client_t *http;
static fs_provider_env_t env;
static fs_config_t cfg;

static char *read_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/providers/%s", FS_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static void setup(void)
{
    char *err = NULL;
    cr_assert_eq(fs_config_load(&cfg, NULL, NULL, &err), 0, "%s", err);
    fs_cfg = &cfg;
    base = event_base_new();
    up = fs_fake_upstream_start();
    cr_assert_not_null(up);
    http = fs_http_client_new(base);
    env = (fs_provider_env_t){.base = base, .http = http};
    setenv("AMADEUS_API_KEY", "key+1", 1);
    setenv("AMADEUS_API_SECRET", "s3cret&", 1);
    setenv("AMADEUS_BASE_URL", fs_fake_upstream_url(up), 1);
    setenv("DUFFEL_ACCESS_TOKEN", "duffel_test_abc", 1);
    setenv("DUFFEL_BASE_URL", fs_fake_upstream_url(up), 1);
}

static void teardown(void)
{
    fs_http_client_free(http);
    fs_fake_upstream_stop(up);
    event_base_free(base);
    fs_config_free(&cfg);
    fs_cfg = NULL;
}

TestSuite(amadeus, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(duffel, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(upstream, .timeout = 10);

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    int calls;
    fs_provider_outcome_t outcome;
    fs_offer_list_t *offers;
    char error[256];
} answer_t;

static void on_answer(fs_provider_outcome_t outcome, fs_offer_list_t *offers, const char *error, void *arg)
{
    answer_t *a = arg;
    a->calls++;
    a->outcome = outcome;
    fs_offer_list_free(a->offers);
    a->offers = offers;
    snprintf(a->error, sizeof a->error, "%s", error ? error : "");
}

static void noop(evutil_socket_t fd, short w, void *a) {}

static void run_for(int ms)
{
    struct event *hb = event_new(base, -1, EV_PERSIST, noop, NULL);
    struct timeval tv = {0, 5000};
    event_add(hb, &tv);
    double t0 = fs_test_now_ms();
    while (fs_test_now_ms() - t0 < ms)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(hb);
}

static void run_until(const int *count, int want, int ms)
{
    struct event *hb = event_new(base, -1, EV_PERSIST, noop, NULL);
    struct timeval tv = {0, 5000};
    event_add(hb, &tv);
    double t0 = fs_test_now_ms();
    while (*count < want && fs_test_now_ms() - t0 < ms)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(hb);
}

static fs_search_query_t query(const char *from, const char *to, bool round_trip)
{
    fs_search_query_t q = {0};
    snprintf(q.origin, 4, "%s", from);
    snprintf(q.destination, 4, "%s", to);
    snprintf(q.origin_airports[0], 4, "%s", from);
    snprintf(q.destination_airports[0], 4, "%s", to);
    q.n_origin_airports = q.n_destination_airports = 1;
    q.departure = (fs_date_t){2030, 6, 1};
    q.return_date = (fs_date_t){2030, 6, 10};
    q.has_return = round_trip;
    q.passengers = 2;
    q.cabin = FS_CABIN_ECONOMY;
    q.now = time(NULL);
    return q;
}

static void token_answer(const char *token, int expires_in, int delay_ms, bool push)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"type\":\"amadeusOAuth2Token\",\"username\":\"dev@example.com\",\"application_name\":\"fs\","
             "\"client_id\":\"key+1\",\"token_type\":\"Bearer\",\"access_token\":\"%s\",\"expires_in\":%d,"
             "\"state\":\"approved\",\"scope\":\"\"}",
             token, expires_in);
    fs_fake_answer_t a = {200, body, NULL, delay_ms};
    if (push)
        fs_fake_upstream_push(up, "POST", TOKEN_PATH, &a);
    else
        fs_fake_upstream_set(up, "POST", TOKEN_PATH, &a);
}

static char *header_of(const char *path, const char *name)
{
    fs_fake_request_t *r = fs_fake_upstream_last(up, path);
    cr_assert_not_null(r, "no request to %s", path);
    char buf[256];
    const char *v = fs_fake_request_header(r, name, buf, sizeof buf);
    char *out = v ? strdup(v) : NULL;
    fs_fake_request_free(r);
    return out;
}

static char *param_of(const char *path, const char *name)
{
    fs_fake_request_t *r = fs_fake_upstream_last(up, path);
    cr_assert_not_null(r);
    char buf[256];
    const char *v = fs_fake_request_param(r, name, buf, sizeof buf);
    char *out = v ? strdup(v) : NULL;
    fs_fake_request_free(r);
    return out;
}

static void assert_param(const char *path, const char *name, const char *want)
{
    char *v = param_of(path, name);
    if (!want)
        cr_assert_null(v, "%s=%s present", name, v);
    else
        cr_assert(v && strcmp(v, want) == 0, "%s: want %s, got %s", name, want, v ? v : "(none)");
    free(v);
}

/* An Amadeus search through the provider's ops, run to its answer. */
static answer_t amadeus_search(void *self, const fs_search_query_t *q, int timeout_ms)
{
    answer_t a = {0};
    fs_provider_amadeus.search(self, q, timeout_ms, on_answer, &a);
    cr_assert_eq(a.calls, 0, "answered inside the call");
    run_until(&a.calls, 1, 10000);
    cr_assert_eq(a.calls, 1);
    return a;
}

static void assert_segment(const fs_segment_t *s, const char *from, const char *to, const char *fn, const char *carrier,
                           const char *aircraft, const char *dep_local, const char *arr_local, int duration,
                           int dep_off, int arr_off)
{
    cr_assert_str_eq(s->from, from);
    cr_assert_str_eq(s->to, to);
    cr_assert_str_eq(s->flight_number, fn);
    cr_assert_str_eq(s->carrier, carrier);
    cr_assert_str_eq(s->aircraft, aircraft);
    cr_assert_eq(s->duration_min, duration, "%s duration %d", fn, s->duration_min);
    cr_assert_eq(s->dep_offset_min, dep_off, "%s dep offset %d", fn, s->dep_offset_min);
    cr_assert_eq(s->arr_offset_min, arr_off, "%s arr offset %d", fn, s->arr_offset_min);
    int64_t wd, wa;
    bool h;
    int o;
    cr_assert(fs_upstream_parse_time(dep_local, &wd, &h, &o));
    cr_assert(fs_upstream_parse_time(arr_local, &wa, &h, &o));
    /* local wall clock = utc + offset: the time the upstream printed */
    cr_assert_eq(s->dep_utc + s->dep_offset_min * 60, wd, "%s departure", fn);
    cr_assert_eq(s->arr_utc + s->arr_offset_min * 60, wa, "%s arrival", fn);
    cr_assert_eq((s->arr_utc - s->dep_utc) / 60, duration, "%s block time", fn);
}

/* ---- helpers of upstream.h ------------------------------------------------------------------ */

Test(upstream, iso_durations_and_times)
{
    cr_assert_eq(fs_upstream_duration_min("PT2H26M"), 146);
    cr_assert_eq(fs_upstream_duration_min("PT02H05M"), 125);
    cr_assert_eq(fs_upstream_duration_min("PT45M"), 45);
    cr_assert_eq(fs_upstream_duration_min("P1DT2H"), 1560);
    cr_assert_eq(fs_upstream_duration_min("PT7H"), 420);
    cr_assert_eq(fs_upstream_duration_min("7H"), -1);
    cr_assert_eq(fs_upstream_duration_min("PT"), -1);
    cr_assert_eq(fs_upstream_duration_min(NULL), -1);
    int64_t w;
    bool has;
    int off;
    cr_assert(fs_upstream_parse_time("2030-06-01T07:00:00", &w, &has, &off));
    cr_assert_not(has);
    cr_assert_eq(w, 1906527600);
    cr_assert(fs_upstream_parse_time("2030-06-01T07:00", &w, &has, &off));
    cr_assert_eq(w, 1906527600);
    cr_assert(fs_upstream_parse_time("2030-06-01T07:00:00.000+01:00", &w, &has, &off));
    cr_assert(has);
    cr_assert_eq(off, 60);
    cr_assert(fs_upstream_parse_time("2030-06-01T07:00:00Z", &w, &has, &off));
    cr_assert(has && off == 0);
    cr_assert_not(fs_upstream_parse_time("2030-02-30T07:00:00", &w, &has, &off));
    cr_assert_not(fs_upstream_parse_time("tomorrow", &w, &has, &off));
    cr_assert_eq(fs_upstream_outcome(422), FS_PROVIDER_BAD_QUERY);
    cr_assert_eq(fs_upstream_outcome(429), FS_PROVIDER_RATE_LIMITED);
    cr_assert_eq(fs_upstream_outcome(401), FS_PROVIDER_FAILED);
    cr_assert_eq(fs_upstream_outcome(503), FS_PROVIDER_FAILED);
    char e[128];
    fs_upstream_error_text(400, "{\"errors\":[{\"status\":400,\"code\":477,\"title\":\"INVALID FORMAT\"}]}", NULL, e,
                           sizeof e);
    cr_assert_str_eq(e, "HTTP 400: INVALID FORMAT");
    fs_upstream_error_text(429, "not json", "7", e, sizeof e);
    cr_assert_str_eq(e, "HTTP 429, retry after 7");
}

/* ---- amadeus ------------------------------------------------------------------------------ */

Test(amadeus, configured_only_with_key_and_secret)
{
    cr_assert(fs_provider_amadeus.configured());
    unsetenv("AMADEUS_API_SECRET");
    cr_assert_not(fs_provider_amadeus.configured());
}

Test(amadeus, token_fetch_and_round_trip_mapping_every_field)
{
    char *body = read_fixture("amadeus_round_trip.json");
    token_answer("tok-1", 1799, 0, false);
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 200, body);
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", true);
    int64_t before = time(NULL);
    answer_t a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_OK, "%s", a.error);

    /* the token request: client credentials, form-encoded */
    fs_fake_request_t *tr = fs_fake_upstream_last(up, TOKEN_PATH);
    cr_assert_str_eq(tr->method, "POST");
    cr_assert_str_eq(tr->body, "grant_type=client_credentials&client_id=key%2B1&client_secret=s3cret%26");
    char buf[128];
    cr_assert_str_eq(fs_fake_request_header(tr, "Content-Type", buf, sizeof buf), "application/x-www-form-urlencoded");
    fs_fake_request_free(tr);
    /* the search: the original's parameters and the bearer token */
    char *auth = header_of(OFFERS_PATH, "Authorization");
    cr_assert_str_eq(auth, "Bearer tok-1");
    free(auth);
    assert_param(OFFERS_PATH, "originLocationCode", "DUB");
    assert_param(OFFERS_PATH, "destinationLocationCode", "JFK");
    assert_param(OFFERS_PATH, "departureDate", "2030-06-01");
    assert_param(OFFERS_PATH, "returnDate", "2030-06-10");
    assert_param(OFFERS_PATH, "adults", "2");
    assert_param(OFFERS_PATH, "currencyCode", "EUR");
    assert_param(OFFERS_PATH, "max", "50");
    assert_param(OFFERS_PATH, "travelClass", "ECONOMY");
    assert_param(OFFERS_PATH, "nonStop", NULL);

    /* the unreadable second offer is skipped */
    cr_assert_eq(a.offers->n, 1);
    const fs_offer_t *o = &a.offers->items[0];
    cr_assert_str_eq(o->id, "amadeus-1");
    cr_assert_str_eq(o->source, "amadeus");
    cr_assert_float_eq(o->price, 712.34, 1e-9);
    cr_assert_str_eq(o->currency, "EUR");
    cr_assert_str_eq(o->cabin, "economy");
    cr_assert_str_eq(o->airline, "EI");
    cr_assert_eq(o->n_out, 2);
    cr_assert_eq(o->n_ret, 1);
    cr_assert_eq(o->stops, 1);
    cr_assert(o->priced_at >= before && o->priced_at <= time(NULL) + 1);
    cr_assert_str_eq(o->booking_url, "");
    cr_assert_not(o->virtual_interlining);
    /* Without reference data the offsets are chained from the segment durations: relative to
     * the origin, right between the segments (DUB/LHR +0, JFK -5 h). */
    assert_segment(&o->out[0], "DUB", "LHR", "EI152", "EI", "320", "2030-06-01T07:00:00", "2030-06-01T08:20:00", 80, 0, 0);
    assert_segment(&o->out[1], "LHR", "JFK", "BA117", "BA", "777", "2030-06-01T10:30:00", "2030-06-01T13:25:00", 475, 0,
                   -300);
    assert_segment(&o->ret[0], "JFK", "DUB", "EI104", "EI", "333", "2030-06-10T18:30:00", "2030-06-11T06:20:00", 410,
                   -300, 0);
    /* elapsed time, layover included: 11h25 out + 6h50 back */
    cr_assert_eq(o->total_duration_min, 685 + 410);
    char sig[256];
    fs_offer_signature(o, sig, sizeof sig);
    cr_assert_str_eq(sig, "EI|EI152-2030-06-01T07:00:00|BA117-2030-06-01T10:30:00|EI104-2030-06-10T18:30:00");
    fs_offer_list_free(a.offers);
    fs_provider_amadeus.close(self);
    free(body);
}

Test(amadeus, token_is_cached_until_expires_in_minus_60s)
{
    token_answer("tok-1", 61, 0, false); /* valid for one second */
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 200, "{\"data\":[]}");
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    for (int i = 0; i < 3; i++) {
        answer_t a = amadeus_search(self, &q, 5000);
        cr_assert_eq(a.outcome, FS_PROVIDER_OK, "%s", a.error);
        cr_assert_eq(a.offers->n, 0);
        fs_offer_list_free(a.offers);
    }
    cr_assert_eq(fs_fake_upstream_count(up, TOKEN_PATH), 1);
    run_for(1100);
    answer_t a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_OK);
    fs_offer_list_free(a.offers);
    cr_assert_eq(fs_fake_upstream_count(up, TOKEN_PATH), 2);
    cr_assert_eq(fs_fake_upstream_count(up, OFFERS_PATH), 4);
    fs_provider_amadeus.close(self);
}

Test(amadeus, twenty_concurrent_searches_share_one_token_request)
{
    token_answer("tok-1", 1799, 300, false); /* slow, so every search arrives while it is out */
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 200, "{\"data\":[]}");
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    enum { N = 20 };
    answer_t a[N] = {{0}};
    int done = 0;
    for (int i = 0; i < N; i++)
        fs_provider_amadeus.search(self, &q, 5000, on_answer, &a[i]);
    double t0 = fs_test_now_ms();
    while (done < N && fs_test_now_ms() - t0 < 5000) {
        run_for(10);
        done = 0;
        for (int i = 0; i < N; i++)
            done += a[i].calls;
    }
    cr_assert_eq(done, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].outcome, FS_PROVIDER_OK, "%d: %s", i, a[i].error);
        fs_offer_list_free(a[i].offers);
    }
    cr_assert_eq(fs_fake_upstream_count(up, TOKEN_PATH), 1);
    cr_assert_eq(fs_fake_upstream_count(up, OFFERS_PATH), N);
    fs_provider_amadeus.close(self);
}

Test(amadeus, expired_token_401_refreshes_once_and_retries)
{
    token_answer("tok-1", 1799, 0, true);
    token_answer("tok-2", 1799, 0, false);
    fs_fake_answer_t expired = {401,
                                "{\"errors\":[{\"code\":38192,\"title\":\"Invalid access token\","
                                "\"detail\":\"The access token provided in the Authorization header is expired\","
                                "\"status\":401}]}",
                                NULL, 0};
    char *fixture = read_fixture("amadeus_round_trip.json");
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 200, fixture);
    free(fixture);
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", true);
    answer_t first = amadeus_search(self, &q, 5000);
    cr_assert_eq(first.outcome, FS_PROVIDER_OK);
    fs_offer_list_free(first.offers);
    /* the upstream revokes tok-1 before its time */
    fs_fake_upstream_push(up, "GET", OFFERS_PATH, &expired);
    answer_t a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_OK, "%s", a.error);
    cr_assert_eq(a.offers->n, 1);
    fs_offer_list_free(a.offers);
    cr_assert_eq(fs_fake_upstream_count(up, TOKEN_PATH), 2);
    cr_assert_eq(fs_fake_upstream_count(up, OFFERS_PATH), 3);
    char *auth = header_of(OFFERS_PATH, "Authorization");
    cr_assert_str_eq(auth, "Bearer tok-2");
    free(auth);
    fs_provider_amadeus.close(self);
}

Test(amadeus, a_second_401_fails_without_looping)
{
    token_answer("tok-1", 1799, 0, false);
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 401, "{\"errors\":[{\"code\":38190,\"title\":\"Invalid access token\"}]}");
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    answer_t a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert(strstr(a.error, "401"), "%s", a.error);
    cr_assert_null(a.offers);
    cr_assert_eq(fs_fake_upstream_count(up, TOKEN_PATH), 2);
    cr_assert_eq(fs_fake_upstream_count(up, OFFERS_PATH), 2);
    fs_provider_amadeus.close(self);
}

Test(amadeus, token_refused_fails_every_waiting_search)
{
    fs_fake_upstream_json(up, "POST", TOKEN_PATH, 401,
                          "{\"error\":\"invalid_client\",\"error_description\":\"Client credentials are invalid\","
                          "\"code\":38187,\"title\":\"Invalid parameters\"}");
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    answer_t a = {0}, b = {0};
    fs_provider_amadeus.search(self, &q, 5000, on_answer, &a);
    fs_provider_amadeus.search(self, &q, 5000, on_answer, &b);
    run_until(&b.calls, 1, 5000);
    run_until(&a.calls, 1, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert_eq(b.outcome, FS_PROVIDER_FAILED);
    cr_assert(strstr(a.error, "Client credentials are invalid"), "%s", a.error);
    cr_assert_eq(fs_fake_upstream_count(up, TOKEN_PATH), 1);
    cr_assert_eq(fs_fake_upstream_count(up, OFFERS_PATH), 0);
    fs_provider_amadeus.close(self);
}

Test(amadeus, rate_limited_429)
{
    token_answer("tok-1", 1799, 0, false);
    fs_fake_answer_t busy = {429, "{\"errors\":[{\"status\":429,\"code\":38194,\"title\":\"Too many requests\"}]}",
                             "Retry-After: 3", 0};
    fs_fake_upstream_set(up, "GET", OFFERS_PATH, &busy);
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    answer_t a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_RATE_LIMITED);
    cr_assert(strstr(a.error, "Too many requests") && strstr(a.error, "retry after 3"), "%s", a.error);
    fs_provider_amadeus.close(self);
}

Test(amadeus, server_error_500)
{
    token_answer("tok-1", 1799, 0, false);
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 500,
                          "{\"errors\":[{\"status\":500,\"code\":141,\"title\":\"SYSTEM ERROR HAS OCCURRED\"}]}");
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    answer_t a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert(strstr(a.error, "SYSTEM ERROR"), "%s", a.error);
    fs_provider_amadeus.close(self);
}

Test(amadeus, bad_query_400)
{
    token_answer("tok-1", 1799, 0, false);
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 400,
                          "{\"errors\":[{\"status\":400,\"code\":425,\"title\":\"INVALID DATE\","
                          "\"detail\":\"Date/Time is in the past\",\"source\":{\"parameter\":\"departureDate\"}}]}");
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    answer_t a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_BAD_QUERY);
    cr_assert(strstr(a.error, "Date/Time is in the past"), "%s", a.error);
    fs_provider_amadeus.close(self);
}

Test(amadeus, slow_answer_times_out)
{
    token_answer("tok-1", 1799, 0, false);
    fs_fake_answer_t slow = {200, "{\"data\":[]}", NULL, 3000};
    fs_fake_upstream_set(up, "GET", OFFERS_PATH, &slow);
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    double t0 = fs_test_now_ms();
    answer_t a = amadeus_search(self, &q, 300);
    double took = fs_test_now_ms() - t0;
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert(strstr(a.error, "timeout"), "%s", a.error);
    cr_assert(took < 1500, "took %.0f ms", took);
    fs_provider_amadeus.close(self);
}

Test(amadeus, malformed_json)
{
    token_answer("tok-1", 1799, 0, false);
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 200, "{\"data\":[{\"id\":\"1\",");
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    answer_t a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert_str_eq(a.error, "malformed JSON");
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 200, "{\"errors\":[]}");
    a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert(strstr(a.error, "no data"), "%s", a.error);
    fs_provider_amadeus.close(self);
}

Test(amadeus, direct_only_and_cabin_parameters)
{
    token_answer("tok-1", 1799, 0, false);
    fs_fake_upstream_json(up, "GET", OFFERS_PATH, 200, "{\"data\":[]}");
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    q.direct_only = true;
    q.cabin = FS_CABIN_PREMIUM_ECONOMY;
    q.passengers = 1;
    answer_t a = amadeus_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_OK);
    fs_offer_list_free(a.offers);
    assert_param(OFFERS_PATH, "nonStop", "true");
    assert_param(OFFERS_PATH, "travelClass", "PREMIUM_ECONOMY");
    assert_param(OFFERS_PATH, "adults", "1");
    assert_param(OFFERS_PATH, "returnDate", NULL);
    fs_provider_amadeus.close(self);
}

typedef struct {
    int calls;
    fs_provider_outcome_t outcome;
    fs_calendar_day_t days[31];
    int n;
} cal_t;

static void on_cal(fs_provider_outcome_t outcome, const fs_calendar_day_t *days, int n, const char *error, void *arg)
{
    cal_t *c = arg;
    c->calls++;
    c->outcome = outcome;
    c->n = n;
    if (days)
        memcpy(c->days, days, (size_t)n * sizeof *days);
}

Test(amadeus, calendar_from_flight_dates)
{
    token_answer("tok-1", 1799, 0, false);
    fs_fake_upstream_json(up, "GET", DATES_PATH, 200,
                          "{\"data\":[{\"type\":\"flight-date\",\"origin\":\"DUB\",\"destination\":\"JFK\","
                          "\"departureDate\":\"2030-06-03\",\"price\":{\"total\":\"210.50\"}},"
                          "{\"type\":\"flight-date\",\"departureDate\":\"2030-06-03\",\"price\":{\"total\":\"199.00\"}},"
                          "{\"type\":\"flight-date\",\"departureDate\":\"2030-06-30\",\"price\":{\"total\":\"150.00\"}},"
                          "{\"type\":\"flight-date\",\"departureDate\":\"2030-07-01\",\"price\":{\"total\":\"1.00\"}}],"
                          "\"meta\":{\"currency\":\"EUR\"}}");
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    q.passengers = 1;
    cal_t c = {0};
    fs_provider_amadeus.calendar(self, &q, 2030, 6, 5000, on_cal, &c);
    run_until(&c.calls, 1, 5000);
    cr_assert_eq(c.outcome, FS_PROVIDER_OK);
    cr_assert_eq(c.n, 30);
    assert_param(DATES_PATH, "departureDate", "2030-06-01,2030-06-30");
    assert_param(DATES_PATH, "origin", "DUB");
    cr_assert(c.days[2].has_price);
    cr_assert_float_eq(c.days[2].price, 199.0, 1e-9);
    cr_assert(c.days[29].has_price);
    cr_assert_not(c.days[0].has_price);
    cr_assert_eq(c.days[29].date.d, 30);
    fs_provider_amadeus.close(self);
}

typedef struct {
    int calls;
    bool ok;
} probe_t;

static void on_probe(bool ok, void *arg)
{
    probe_t *p = arg;
    p->calls++;
    p->ok = ok;
}

Test(amadeus, probe_obtains_a_token)
{
    token_answer("tok-1", 1799, 0, false);
    void *self = fs_provider_amadeus.open(&env);
    probe_t p = {0};
    fs_provider_amadeus.probe(self, on_probe, &p);
    cr_assert_eq(p.calls, 0);
    run_until(&p.calls, 1, 5000);
    cr_assert(p.ok);
    fs_fake_upstream_json(up, "POST", TOKEN_PATH, 401, "{\"error\":\"invalid_client\"}");
    probe_t q = {0};
    fs_provider_amadeus.probe(self, on_probe, &q);
    run_until(&q.calls, 1, 5000);
    cr_assert_not(q.ok);
    fs_provider_amadeus.close(self);
}

Test(amadeus, close_with_calls_out_never_answers_later)
{
    token_answer("tok-1", 1799, 0, false);
    fs_fake_answer_t slow = {200, "{\"data\":[]}", NULL, 300};
    fs_fake_upstream_set(up, "GET", OFFERS_PATH, &slow);
    void *self = fs_provider_amadeus.open(&env);
    fs_search_query_t q = query("DUB", "JFK", false);
    answer_t a = amadeus_search(self, &q, 5000); /* caches the token */
    fs_offer_list_free(a.offers);
    answer_t in_http = {0}, waiting = {0};
    fs_provider_amadeus.search(self, &q, 5000, on_answer, &in_http);
    run_for(50);
    fs_fake_upstream_json(up, "POST", TOKEN_PATH, 500, "{}");
    fs_provider_amadeus.close(self);
    self = fs_provider_amadeus.open(&env);
    /* a search waiting for its token when the provider closes */
    fs_fake_answer_t slow_token = {200, "{\"access_token\":\"x\",\"expires_in\":1799}", NULL, 300};
    fs_fake_upstream_set(up, "POST", TOKEN_PATH, &slow_token);
    fs_provider_amadeus.search(self, &q, 5000, on_answer, &waiting);
    run_for(50);
    fs_provider_amadeus.close(self);
    run_for(600); /* the upstream answers both meanwhile */
    cr_assert_eq(in_http.calls, 0);
    cr_assert_eq(waiting.calls, 0);
    cr_assert_eq(fs_http_client_inflight(http), 0);
}

/* ---- duffel ------------------------------------------------------------------------------- */

static answer_t duffel_search(void *self, const fs_search_query_t *q, int timeout_ms)
{
    answer_t a = {0};
    fs_provider_duffel.search(self, q, timeout_ms, on_answer, &a);
    cr_assert_eq(a.calls, 0, "answered inside the call");
    run_until(&a.calls, 1, 10000);
    cr_assert_eq(a.calls, 1);
    return a;
}

Test(duffel, configured_only_with_a_token)
{
    cr_assert(fs_provider_duffel.configured());
    setenv("DUFFEL_ACCESS_TOKEN", "", 1);
    cr_assert_not(fs_provider_duffel.configured());
}

Test(duffel, offer_request_and_round_trip_mapping_every_field)
{
    char *body = read_fixture("duffel_round_trip.json");
    fs_fake_upstream_json(up, "POST", DUFFEL_PATH, 201, body);
    void *self = fs_provider_duffel.open(&env);
    fs_search_query_t q = query("LHR", "JFK", true);
    q.cabin = FS_CABIN_BUSINESS;
    int64_t before = time(NULL);
    answer_t a = duffel_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_OK, "%s", a.error);

    fs_fake_request_t *r = fs_fake_upstream_last(up, DUFFEL_PATH);
    char buf[128];
    cr_assert_str_eq(r->method, "POST");
    cr_assert_str_eq(fs_fake_request_param(r, "return_offers", buf, sizeof buf), "true");
    cr_assert_str_eq(fs_fake_request_header(r, "Duffel-Version", buf, sizeof buf), "v2");
    cr_assert_str_eq(fs_fake_request_header(r, "Authorization", buf, sizeof buf), "Bearer duffel_test_abc");
    cr_assert_str_eq(fs_fake_request_header(r, "Content-Type", buf, sizeof buf), "application/json");
    json_t *sent = json_loads(r->body, 0, NULL);
    cr_assert_not_null(sent, "body %s", r->body);
    json_t *want = json_loads("{\"data\":{\"slices\":[{\"origin\":\"LHR\",\"destination\":\"JFK\",\"departure_date\":"
                              "\"2030-06-01\"},{\"origin\":\"JFK\",\"destination\":\"LHR\",\"departure_date\":"
                              "\"2030-06-10\"}],\"passengers\":[{\"type\":\"adult\"},{\"type\":\"adult\"}],"
                              "\"cabin_class\":\"business\",\"max_connections\":1}}",
                              0, NULL);
    cr_assert(json_equal(sent, want), "body %s", r->body);
    json_decref(sent);
    json_decref(want);
    fs_fake_request_free(r);

    cr_assert_eq(a.offers->n, 1); /* the offer without slices is skipped */
    const fs_offer_t *o = &a.offers->items[0];
    cr_assert_str_eq(o->id, "duffel-off_0000AbCdEfGh");
    cr_assert_str_eq(o->source, "duffel");
    cr_assert_float_eq(o->price, 2450.80, 1e-9);
    cr_assert_str_eq(o->currency, "GBP");
    cr_assert_str_eq(o->cabin, "business");
    cr_assert_str_eq(o->airline, "EI");
    cr_assert_eq(o->n_out, 2);
    cr_assert_eq(o->n_ret, 1);
    cr_assert_eq(o->stops, 1);
    cr_assert(o->priced_at >= before && o->priced_at <= time(NULL) + 1);
    assert_segment(&o->out[0], "LHR", "DUB", "EI151", "EI", "32N", "2030-06-01T06:45:00", "2030-06-01T08:05:00", 80, 0, 0);
    assert_segment(&o->out[1], "DUB", "JFK", "EI105", "EI", "333", "2030-06-01T11:10:00", "2030-06-01T13:15:00", 425, 0,
                   -300);
    assert_segment(&o->ret[0], "JFK", "LHR", "BA178", "BA", "789", "2030-06-10T21:00:00", "2030-06-11T09:00:00", 420,
                   -300, 0);
    cr_assert_eq(o->total_duration_min, 690 + 420);
    fs_offer_list_free(a.offers);
    fs_provider_duffel.close(self);
    free(body);
}

Test(duffel, direct_only_asks_for_no_connections)
{
    fs_fake_upstream_json(up, "POST", DUFFEL_PATH, 201, "{\"data\":{\"id\":\"orq_1\",\"offers\":[]}}");
    void *self = fs_provider_duffel.open(&env);
    fs_search_query_t q = query("LHR", "JFK", false);
    q.direct_only = true;
    q.passengers = 3;
    answer_t a = duffel_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_OK);
    cr_assert_eq(a.offers->n, 0);
    fs_offer_list_free(a.offers);
    fs_fake_request_t *r = fs_fake_upstream_last(up, DUFFEL_PATH);
    json_t *sent = json_loads(r->body, 0, NULL);
    json_t *d = json_object_get(sent, "data");
    cr_assert_eq(json_integer_value(json_object_get(d, "max_connections")), 0);
    cr_assert_eq(json_array_size(json_object_get(d, "slices")), 1);
    cr_assert_eq(json_array_size(json_object_get(d, "passengers")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(d, "cabin_class")), "economy");
    json_decref(sent);
    fs_fake_request_free(r);
    fs_provider_duffel.close(self);
}

Test(duffel, validation_error_422_is_a_bad_query)
{
    fs_fake_upstream_json(up, "POST", DUFFEL_PATH, 422,
                          "{\"meta\":{\"status\":422,\"request_id\":\"FZW0H3HdJwKk5HMAAKxB\"},\"errors\":[{\"type\":"
                          "\"validation_error\",\"title\":\"Invalid date\",\"message\":\"departure_date must be in the "
                          "future\",\"code\":\"invalid_date\",\"source\":{\"field\":\"departure_date\"}}]}");
    void *self = fs_provider_duffel.open(&env);
    fs_search_query_t q = query("LHR", "JFK", false);
    answer_t a = duffel_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_BAD_QUERY);
    cr_assert(strstr(a.error, "departure_date must be in the future"), "%s", a.error);
    cr_assert_null(a.offers);
    fs_provider_duffel.close(self);
}

Test(duffel, rate_limited_429)
{
    fs_fake_answer_t busy = {429,
                             "{\"meta\":{\"status\":429},\"errors\":[{\"type\":\"rate_limit_error\",\"title\":\"Rate "
                             "limit exceeded\",\"message\":\"Too many requests\",\"code\":\"rate_limit_exceeded\"}]}",
                             "Retry-After: 10\nratelimit-limit: 60", 0};
    fs_fake_upstream_set(up, "POST", DUFFEL_PATH, &busy);
    void *self = fs_provider_duffel.open(&env);
    fs_search_query_t q = query("LHR", "JFK", false);
    answer_t a = duffel_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_RATE_LIMITED);
    cr_assert(strstr(a.error, "Too many requests") && strstr(a.error, "retry after 10"), "%s", a.error);
    fs_provider_duffel.close(self);
}

Test(duffel, server_error_and_bad_token_fail)
{
    fs_fake_upstream_json(up, "POST", DUFFEL_PATH, 502, "<html>Bad gateway</html>");
    void *self = fs_provider_duffel.open(&env);
    fs_search_query_t q = query("LHR", "JFK", false);
    answer_t a = duffel_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert(strstr(a.error, "HTTP 502"), "%s", a.error);
    fs_fake_upstream_json(up, "POST", DUFFEL_PATH, 401,
                          "{\"errors\":[{\"type\":\"authentication_error\",\"title\":\"Invalid access token\","
                          "\"message\":\"The access token used is not valid\",\"code\":\"invalid_authorization_header\"}]}");
    a = duffel_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert(strstr(a.error, "not valid"), "%s", a.error);
    fs_provider_duffel.close(self);
}

Test(duffel, slow_answer_times_out)
{
    fs_fake_answer_t slow = {201, "{\"data\":{\"offers\":[]}}", NULL, 3000};
    fs_fake_upstream_set(up, "POST", DUFFEL_PATH, &slow);
    void *self = fs_provider_duffel.open(&env);
    fs_search_query_t q = query("LHR", "JFK", false);
    double t0 = fs_test_now_ms();
    answer_t a = duffel_search(self, &q, 300);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert_str_eq(a.error, "timeout");
    cr_assert(fs_test_now_ms() - t0 < 1500);
    fs_provider_duffel.close(self);
}

Test(duffel, malformed_json)
{
    fs_fake_upstream_json(up, "POST", DUFFEL_PATH, 201, "{\"data\":{\"offers\":[");
    void *self = fs_provider_duffel.open(&env);
    fs_search_query_t q = query("LHR", "JFK", false);
    answer_t a = duffel_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert_str_eq(a.error, "malformed JSON");
    fs_fake_upstream_json(up, "POST", DUFFEL_PATH, 201, "{\"data\":{\"id\":\"orq_1\"}}");
    a = duffel_search(self, &q, 5000);
    cr_assert_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_assert(strstr(a.error, "data.offers"), "%s", a.error);
    fs_provider_duffel.close(self);
}

Test(duffel, probe)
{
    fs_fake_upstream_json(up, "GET", "/air/airlines", 200, "{\"data\":[{\"iata_code\":\"BA\"}],\"meta\":{}}");
    void *self = fs_provider_duffel.open(&env);
    probe_t p = {0};
    fs_provider_duffel.probe(self, on_probe, &p);
    cr_assert_eq(p.calls, 0);
    run_until(&p.calls, 1, 5000);
    cr_assert(p.ok);
    char *v = header_of("/air/airlines", "Duffel-Version");
    cr_assert_str_eq(v, "v2");
    free(v);
    fs_fake_upstream_json(up, "GET", "/air/airlines", 401, "{}");
    probe_t q = {0};
    fs_provider_duffel.probe(self, on_probe, &q);
    run_until(&q.calls, 1, 5000);
    cr_assert_not(q.ok);
    fs_provider_duffel.close(self);
}

Test(duffel, close_with_a_call_out_never_answers_later)
{
    fs_fake_answer_t slow = {201, "{\"data\":{\"offers\":[]}}", NULL, 200};
    fs_fake_upstream_set(up, "POST", DUFFEL_PATH, &slow);
    void *self = fs_provider_duffel.open(&env);
    fs_search_query_t q = query("LHR", "JFK", false);
    answer_t a = {0};
    fs_provider_duffel.search(self, &q, 5000, on_answer, &a);
    run_for(30);
    fs_provider_duffel.close(self);
    run_for(500);
    cr_assert_eq(a.calls, 0);
    cr_assert_eq(fs_http_client_inflight(http), 0);
}
