/* Amadeus Self-Service: flight offers search (the contract the original used), docs/PROVIDERS.md.
 *
 * Settings: AMADEUS_API_KEY, AMADEUS_API_SECRET (both required), AMADEUS_USE_TEST_API
 * (default true: test.api.amadeus.com), AMADEUS_BASE_URL (overrides the host, for tests and
 * proxies).
 *
 * OAuth2 client credentials: the token is cached until expires_in - 60 s. Only one token
 * request is ever out: every call that needs a token while one is being fetched waits for that
 * one. A search answered 401 (token expired or revoked upstream) drops the token it used (unless
 * it was already replaced), waits for a fresh one and is retried once.
 *
 * close() detaches calls whose HTTP request is still out (their answer is dropped when it
 * comes) and frees the others, so no callback reaches the manager after close.
 */
#include "actors/search/provider.h"
#include "actors/search/upstream.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/http_client.h"
#include "runtime/log.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TOKEN_TIMEOUT_MS 10000
#define TOKEN_MARGIN_S 60
#define MAX_OFFERS 50

typedef enum { K_SEARCH, K_CALENDAR, K_PROBE } kind_t;

typedef struct amadeus amadeus_t;

typedef struct call {
    amadeus_t *a;          /* NULL once the provider is closed */
    kind_t kind;
    fs_search_query_t q;   /* observed fares are not used upstream */
    int year, month;
    int timeout_ms;
    double t0_ms;
    bool retried, waiting, in_http, linked;
    char *token_used;
    fs_provider_done_fn done;
    fs_calendar_done_fn cal_done;
    void (*probe_done)(bool ok, void *arg);
    void *arg;
    struct call *prev, *next;
} call_t;

typedef struct tokreq {
    amadeus_t *a; /* NULL once the provider is closed */
} tokreq_t;

struct amadeus {
    fs_http_client_t *http;
    char *base, *key, *secret;
    char *token;
    double token_until_ms;
    tokreq_t *tok;   /* the token request out, if any */
    call_t *calls;   /* every call not answered yet */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *setting(const char *name)
{
    const char *v = fs_config_extra(fs_cfg, name);
    return v && *v ? v : NULL;
}

static bool amadeus_configured(void)
{
    return setting("AMADEUS_API_KEY") && setting("AMADEUS_API_SECRET");
}

static char *base_url(void)
{
    const char *b = setting("AMADEUS_BASE_URL");
    if (!b) {
        const char *t = setting("AMADEUS_USE_TEST_API");
        bool test = !t || !(strcasecmp(t, "false") == 0 || strcmp(t, "0") == 0 || strcasecmp(t, "no") == 0);
        b = test ? "https://test.api.amadeus.com" : "https://api.amadeus.com";
    }
    char *s = fs_strdup(b);
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

static void *amadeus_open(const fs_provider_env_t *env)
{
    amadeus_t *a = FS_NEW(amadeus_t);
    a->http = env->http;
    a->base = base_url();
    a->key = fs_strdup(setting("AMADEUS_API_KEY"));
    a->secret = fs_strdup(setting("AMADEUS_API_SECRET"));
    return a;
}

/* ---- calls -------------------------------------------------------------------------------- */

static call_t *call_new(amadeus_t *a, kind_t kind, int timeout_ms, void *arg)
{
    call_t *c = FS_NEW(call_t);
    c->a = a;
    c->kind = kind;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    c->t0_ms = now_ms();
    c->arg = arg;
    c->linked = true;
    c->next = a->calls;
    if (a->calls)
        a->calls->prev = c;
    a->calls = c;
    return c;
}

/* Takes the call off the provider's list (before its callback runs, which may start others). */
static void call_unlink(call_t *c)
{
    if (!c->a || !c->linked)
        return;
    c->linked = false;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->a->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void call_free(call_t *c)
{
    call_unlink(c);
    free(c->token_used);
    free(c);
}

/* Answers a call (not OK) and frees it. */
static void call_fail(call_t *c, fs_provider_outcome_t outcome, const char *why)
{
    call_unlink(c);
    if (c->kind == K_PROBE)
        c->probe_done(false, c->arg);
    else if (c->kind == K_CALENDAR)
        c->cal_done(outcome, NULL, 0, why, c->arg);
    else
        c->done(outcome, NULL, why, c->arg);
    call_free(c);
}

static void amadeus_close(void *self)
{
    amadeus_t *a = self;
    if (!a)
        return;
    for (call_t *c = a->calls, *next; c; c = next) {
        next = c->next;
        if (c->in_http) {
            c->a = NULL; /* freed by its HTTP callback */
        } else {
            free(c->token_used);
            free(c);
        }
    }
    if (a->tok)
        a->tok->a = NULL;
    free(a->base);
    free(a->key);
    free(a->secret);
    free(a->token);
    free(a);
}

/* ---- token -------------------------------------------------------------------------------- */

static void send_api(call_t *c);

static bool token_valid(const amadeus_t *a)
{
    return a->token && now_ms() < a->token_until_ms;
}

/* Releases every call waiting for the token: on to the API, or failed with `why`. The waiters
 * are taken off first, since answering one may add new calls (which then wait or go out on
 * their own). */
static void release_waiters(amadeus_t *a, const char *why)
{
    call_t **list = NULL;
    size_t n = 0, cap = 0;
    for (call_t *c = a->calls; c; c = c->next) {
        if (!c->waiting)
            continue;
        c->waiting = false;
        if (n == cap)
            list = fs_realloc(list, (cap = cap ? cap * 2 : 8) * sizeof *list);
        list[n++] = c;
    }
    for (size_t i = 0; i < n; i++) {
        if (why)
            call_fail(list[i], FS_PROVIDER_FAILED, why);
        else
            send_api(list[i]);
    }
    free(list);
}

static void on_token(const fs_http_response_t *r, void *arg)
{
    tokreq_t *t = arg;
    amadeus_t *a = t->a;
    free(t);
    if (!a)
        return;
    a->tok = NULL;
    char why[256] = "";
    json_t *root = NULL;
    if (r->error) {
        snprintf(why, sizeof why, "token: %s", r->error);
    } else if (r->status != 200) {
        char e[200];
        fs_upstream_error_text(r->status, r->body, NULL, e, sizeof e);
        snprintf(why, sizeof why, "token: %s", e);
    } else {
        root = json_loads(r->body, 0, NULL);
        json_t *tok = json_object_get(root, "access_token"), *exp = json_object_get(root, "expires_in");
        if (!json_is_string(tok) || !json_is_integer(exp)) {
            snprintf(why, sizeof why, "token: malformed answer");
        } else {
            free(a->token);
            a->token = fs_strdup(json_string_value(tok));
            a->token_until_ms = now_ms() + (double)(json_integer_value(exp) - TOKEN_MARGIN_S) * 1000.0;
        }
    }
    json_decref(root);
    if (why[0])
        fs_warn("amadeus: %s", why);
    release_waiters(a, why[0] ? why : NULL);
}

static void fetch_token(amadeus_t *a)
{
    char *user = curl_easy_escape(NULL, a->key, 0), *pass = curl_easy_escape(NULL, a->secret, 0);
    char *body = fs_sprintf("grant_type=client_credentials&client_id=%s&client_secret=%s", user, pass);
    curl_free(user);
    curl_free(pass);
    char *url = fs_sprintf("%s/v1/security/oauth2/token", a->base);
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
    fs_http_request_t req = {.method = "POST", .url = url, .headers = hdrs, .body = body, .body_len = strlen(body),
                             .timeout_ms = TOKEN_TIMEOUT_MS, .max_response_bytes = 64 << 10};
    a->tok = FS_NEW(tokreq_t);
    a->tok->a = a;
    fs_http_client_send(a->http, &req, on_token, a->tok);
    free(url);
    free(body);
}

/* Makes `c` wait for the token: the cached one, the one being fetched, or a new fetch.
 * `fresh` skips the cache (the health probe checks the credentials). */
static void with_token(call_t *c, bool fresh)
{
    amadeus_t *a = c->a;
    if (!fresh && token_valid(a)) {
        send_api(c);
        return;
    }
    c->waiting = true;
    if (!a->tok)
        fetch_token(a);
}

/* ---- offers ------------------------------------------------------------------------------- */

static const char *str_at(json_t *o, const char *k1, const char *k2)
{
    json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool map_segment(json_t *js, fs_segment_t *sg, int *chain)
{
    const char *from = str_at(js, "departure", "iataCode"), *to = str_at(js, "arrival", "iataCode");
    const char *carrier = str_at(js, "carrierCode", NULL), *number = str_at(js, "number", NULL);
    if (!from || !to || !carrier || !number)
        return false;
    fs_upstream_copy(sg->from, sizeof sg->from, from);
    fs_upstream_copy(sg->to, sizeof sg->to, to);
    fs_upstream_copy(sg->carrier, sizeof sg->carrier, carrier);
    snprintf(sg->flight_number, sizeof sg->flight_number, "%s%s", carrier, number);
    fs_upstream_copy(sg->aircraft, sizeof sg->aircraft, str_at(js, "aircraft", "code"));
    return fs_upstream_segment_times(sg, str_at(js, "departure", "at"), str_at(js, "arrival", "at"),
                                     fs_upstream_duration_min(str_at(js, "duration", NULL)), chain);
}

static bool map_itinerary(json_t *it, fs_segment_t *segs, int *n, int *chain)
{
    json_t *list = json_object_get(it, "segments");
    size_t count = json_array_size(list);
    if (count == 0 || count > FS_MAX_SEGMENTS)
        return false;
    for (size_t i = 0; i < count; i++)
        if (!map_segment(json_array_get(list, i), &segs[i], chain))
            return false;
    *n = (int)count;
    return true;
}

static bool map_offer(json_t *jo, const fs_search_query_t *q, int64_t priced_at, fs_offer_t *o)
{
    const char *id = str_at(jo, "id", NULL), *total = str_at(jo, "price", "total");
    json_t *its = json_object_get(jo, "itineraries");
    size_t n_its = json_array_size(its);
    if (!id || !total || n_its < 1 || n_its > 2)
        return false;
    char *end;
    o->price = strtod(total, &end);
    if (end == total || o->price < 0)
        return false;
    snprintf(o->id, sizeof o->id, "amadeus-%s", id);
    fs_upstream_copy(o->currency, sizeof o->currency, str_at(jo, "price", "currency"));
    int chain = 0;
    if (!map_itinerary(json_array_get(its, 0), o->out, &o->n_out, &chain))
        return false;
    if (n_its == 2 && !map_itinerary(json_array_get(its, 1), o->ret, &o->n_ret, &chain))
        return false;
    /* The cabin of the first fare component, in our lower-case names (the original kept
     * Amadeus' upper case). */
    json_t *fare = json_array_get(json_object_get(json_array_get(json_object_get(jo, "travelerPricings"), 0),
                                                  "fareDetailsBySegment"),
                                  0);
    fs_cabin_t cabin = q->cabin;
    const char *c = str_at(fare, "cabin", NULL);
    if (c)
        fs_cabin_parse(c, &cabin);
    fs_upstream_copy(o->cabin, sizeof o->cabin, fs_cabin_name(cabin));
    memcpy(o->source, "amadeus", 8);
    o->priced_at = priced_at;
    fs_offer_finish(o);
    return true;
}

/* The documented answer {data:[flight-offer], dictionaries:{...}} into offers. Dictionaries
 * only name codes (carriers, aircraft, locations); offers carry codes, so they are not needed. */
static fs_offer_list_t *map_offers(const char *body, const fs_search_query_t *q, const char **why)
{
    json_t *root = json_loads(body, 0, NULL);
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data)) {
        *why = root ? "malformed answer: no data array" : "malformed JSON";
        json_decref(root);
        return NULL;
    }
    fs_offer_list_t *l = fs_upstream_map_offers(data, q, map_offer);
    json_decref(root);
    return l;
}

static void map_calendar(call_t *c, const char *body)
{
    int n = fs_days_in_month(c->year, c->month);
    fs_calendar_day_t *days = fs_calloc((size_t)n, sizeof *days);
    for (int d = 0; d < n; d++) {
        days[d].date = (fs_date_t){c->year, c->month, d + 1};
        memcpy(days[d].currency, "EUR", 4);
    }
    json_t *root = json_loads(body, 0, NULL);
    json_t *data = json_object_get(root, "data");
    if (body[0] && !json_is_array(data)) {
        json_decref(root);
        free(days);
        call_fail(c, FS_PROVIDER_FAILED, root ? "malformed answer: no data array" : "malformed JSON");
        return;
    }
    const char *cur = str_at(json_object_get(root, "meta"), "currency", NULL);
    size_t i;
    json_t *it;
    json_array_foreach(data, i, it)
    {
        fs_date_t d;
        const char *date = str_at(it, "departureDate", NULL), *total = str_at(it, "price", "total");
        if (!date || !total || !fs_date_parse(date, &d) || d.y != c->year || d.m != c->month)
            continue;
        double price = strtod(total, NULL) * (c->q.passengers > 0 ? c->q.passengers : 1);
        fs_calendar_day_t *day = &days[d.d - 1];
        if (price > 0 && (!day->has_price || price < day->price)) {
            day->price = price;
            day->has_price = true;
            if (cur)
                fs_upstream_copy(day->currency, sizeof day->currency, cur);
        }
    }
    json_decref(root);
    call_unlink(c);
    c->cal_done(FS_PROVIDER_OK, days, n, NULL, c->arg);
    call_free(c);
    free(days);
}

/* ---- API calls ---------------------------------------------------------------------------- */

static const char *travel_class(fs_cabin_t c)
{
    static const char *const names[] = {"ECONOMY", "PREMIUM_ECONOMY", "BUSINESS", "FIRST"};
    return (unsigned)c < 4 ? names[c] : "ECONOMY";
}

static char *search_url(const amadeus_t *a, const fs_search_query_t *q)
{
    char dep[11], ret[11] = "";
    fs_date_format(q->departure, dep);
    if (q->has_return)
        fs_date_format(q->return_date, ret);
    return fs_sprintf("%s/v2/shopping/flight-offers?originLocationCode=%s&destinationLocationCode=%s"
                      "&departureDate=%s%s%s&adults=%d&currencyCode=EUR&max=%d&travelClass=%s%s",
                      a->base, q->origin, q->destination, dep, ret[0] ? "&returnDate=" : "", ret,
                      q->passengers > 0 ? q->passengers : 1, MAX_OFFERS, travel_class(q->cabin),
                      q->direct_only ? "&nonStop=true" : "");
}

/* flight-dates (cached cheapest dates) over the month; the original called flight-destinations,
 * which is not a per-day calendar (its defect 24). */
static char *calendar_url(const amadeus_t *a, const call_t *c)
{
    return fs_sprintf("%s/v1/shopping/flight-dates?origin=%s&destination=%s&departureDate=%04d-%02d-01,%04d-%02d-%02d"
                      "&oneWay=true&nonStop=%s&viewBy=DATE",
                      a->base, c->q.origin, c->q.destination, c->year, c->month, c->year, c->month,
                      fs_days_in_month(c->year, c->month), c->q.direct_only ? "true" : "false");
}

static void on_api(const fs_http_response_t *r, void *arg);

static void send_api(call_t *c)
{
    amadeus_t *a = c->a;
    if (c->kind == K_PROBE) { /* a token was obtained: the credentials work */
        call_unlink(c);
        c->probe_done(true, c->arg);
        call_free(c);
        return;
    }
    int left = c->timeout_ms - (int)(now_ms() - c->t0_ms);
    if (left <= 0) {
        call_fail(c, FS_PROVIDER_FAILED, "timeout (waiting for the token)");
        return;
    }
    free(c->token_used);
    c->token_used = fs_strdup(a->token);
    char *auth = fs_sprintf("Authorization: Bearer %s", a->token);
    const char *hdrs[] = {auth, "Accept: application/vnd.amadeus+json, application/json", NULL};
    char *url = c->kind == K_SEARCH ? search_url(a, &c->q) : calendar_url(a, c);
    fs_http_request_t req = {.method = "GET", .url = url, .headers = hdrs, .timeout_ms = left};
    c->in_http = true;
    fs_http_client_send(a->http, &req, on_api, c);
    free(url);
    free(auth);
}

static void on_api(const fs_http_response_t *r, void *arg)
{
    call_t *c = arg;
    c->in_http = false;
    amadeus_t *a = c->a;
    if (!a) { /* closed meanwhile */
        call_free(c);
        return;
    }
    if (r->error) {
        char why[160];
        snprintf(why, sizeof why, "%s", r->timed_out ? "timeout" : r->error);
        call_fail(c, FS_PROVIDER_FAILED, why);
        return;
    }
    if (r->status == 401 && !c->retried) { /* expired or revoked: one fresh token, one retry */
        c->retried = true;
        if (a->token && strcmp(a->token, c->token_used) == 0) {
            free(a->token);
            a->token = NULL;
        }
        with_token(c, false);
        return;
    }
    if (c->kind == K_CALENDAR && r->status == 404) { /* no cached dates for this route */
        map_calendar(c, "");
        return;
    }
    if (r->status != 200) {
        char why[256];
        fs_upstream_error_text(r->status, r->body, r->header(r, "Retry-After"), why, sizeof why);
        call_fail(c, fs_upstream_outcome(r->status), why);
        return;
    }
    if (c->kind == K_CALENDAR) {
        map_calendar(c, r->body);
        return;
    }
    const char *why = NULL;
    fs_offer_list_t *offers = map_offers(r->body, &c->q, &why);
    if (!offers) {
        call_fail(c, FS_PROVIDER_FAILED, why);
        return;
    }
    call_unlink(c);
    c->done(FS_PROVIDER_OK, offers, NULL, c->arg);
    call_free(c);
}

/* ---- ops ---------------------------------------------------------------------------------- */

static void amadeus_search(void *self, const fs_search_query_t *q, int timeout_ms, fs_provider_done_fn done, void *arg)
{
    call_t *c = call_new(self, K_SEARCH, timeout_ms, arg);
    c->q = *q;
    c->q.observed = NULL;
    c->q.n_observed = 0;
    c->done = done;
    with_token(c, false);
}

static void amadeus_calendar(void *self, const fs_search_query_t *q, int year, int month, int timeout_ms,
                             fs_calendar_done_fn done, void *arg)
{
    call_t *c = call_new(self, K_CALENDAR, timeout_ms, arg);
    c->q = *q;
    c->q.observed = NULL;
    c->q.n_observed = 0;
    c->year = year;
    c->month = month;
    c->cal_done = done;
    with_token(c, false);
}

/* The original's probe: obtain a token. */
static void amadeus_probe(void *self, void (*done)(bool ok, void *arg), void *arg)
{
    call_t *c = call_new(self, K_PROBE, TOKEN_TIMEOUT_MS, arg);
    c->probe_done = done;
    with_token(c, true);
}

const fs_provider_ops_t fs_provider_amadeus = {
    .name = "amadeus",
    .priority = 10,
    .requests_per_minute = 30, /* the original's declared limit */
    .timeout_ms = 30000,
    .configured = amadeus_configured,
    .open = amadeus_open,
    .close = amadeus_close,
    .search = amadeus_search,
    .calendar = amadeus_calendar,
    .probe = amadeus_probe,
};
