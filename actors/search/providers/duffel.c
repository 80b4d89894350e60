/* Duffel: offer requests (a self-serve flights API), docs/PROVIDERS.md.
 *
 * Settings: DUFFEL_ACCESS_TOKEN (required), DUFFEL_BASE_URL (default https://api.duffel.com).
 * One POST /air/offer_requests?return_offers=true per search; the offers come back in the same
 * answer. Errors come as {errors:[{code, message, title}], meta:{status}}: 400/422 (the query)
 * -> BAD_QUERY, 429 -> RATE_LIMITED, 401/403/5xx/timeouts/malformed answers -> FAILED.
 *
 * close() detaches calls still out; their answers are dropped when they come.
 */
#include "actors/search/provider.h"
#include "actors/search/upstream.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/http_client.h"
#include "runtime/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DUFFEL_VERSION "v2"
#define MAX_RESPONSE (32u << 20) /* an offer request can answer a few hundred offers */
#define PROBE_TIMEOUT_MS 5000

typedef struct duffel duffel_t;

typedef struct call {
    duffel_t *d;           /* NULL once the provider is closed */
    fs_search_query_t q;
    fs_provider_done_fn done;
    void (*probe_done)(bool ok, void *arg);
    void *arg;
    struct call *prev, *next;
} call_t;

struct duffel {
    fs_http_client_t *http;
    char *base, *auth;
    call_t *calls;
};

static const char *setting(const char *name)
{
    const char *v = fs_config_extra(fs_cfg, name);
    return v && *v ? v : NULL;
}

static bool duffel_configured(void)
{
    return setting("DUFFEL_ACCESS_TOKEN") != NULL;
}

static void *duffel_open(const fs_provider_env_t *env)
{
    duffel_t *d = FS_NEW(duffel_t);
    d->http = env->http;
    const char *b = setting("DUFFEL_BASE_URL");
    d->base = fs_strdup(b ? b : "https://api.duffel.com");
    for (size_t n = strlen(d->base); n > 0 && d->base[n - 1] == '/'; n--)
        d->base[n - 1] = '\0';
    d->auth = fs_sprintf("Authorization: Bearer %s", setting("DUFFEL_ACCESS_TOKEN"));
    return d;
}

static void duffel_close(void *self)
{
    duffel_t *d = self;
    if (!d)
        return;
    for (call_t *c = d->calls; c; c = c->next)
        c->d = NULL; /* every call has its HTTP request out: its callback frees it */
    free(d->base);
    free(d->auth);
    free(d);
}

static call_t *call_new(duffel_t *d, void *arg)
{
    call_t *c = FS_NEW(call_t);
    c->d = d;
    c->arg = arg;
    c->next = d->calls;
    if (d->calls)
        d->calls->prev = c;
    d->calls = c;
    return c;
}

/* Takes the call off the list; false when the provider was closed (drop the answer). */
static bool call_take(call_t *c)
{
    if (!c->d)
        return false;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->d->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    return true;
}

/* ---- request ------------------------------------------------------------------------------ */

static json_t *slice(const char *from, const char *to, fs_date_t date)
{
    char d[11];
    fs_date_format(date, d);
    return json_pack("{s:s, s:s, s:s}", "origin", from, "destination", to, "departure_date", d);
}

static char *request_body(const fs_search_query_t *q)
{
    json_t *slices = json_array(), *pax = json_array();
    json_array_append_new(slices, slice(q->origin, q->destination, q->departure));
    if (q->has_return)
        json_array_append_new(slices, slice(q->destination, q->origin, q->return_date));
    for (int i = 0; i < (q->passengers > 0 ? q->passengers : 1); i++)
        json_array_append_new(pax, json_pack("{s:s}", "type", "adult"));
    json_t *body = json_pack("{s:{s:o, s:o, s:s, s:i}}", "data", "slices", slices, "passengers", pax, "cabin_class",
                             fs_cabin_name(q->cabin), "max_connections", q->direct_only ? 0 : 1);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

/* ---- answer ------------------------------------------------------------------------------- */

static const char *str_at(json_t *o, const char *k1, const char *k2)
{
    json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool map_segment(json_t *js, const char *owner, fs_segment_t *sg, int *chain)
{
    const char *from = str_at(js, "origin", "iata_code"), *to = str_at(js, "destination", "iata_code");
    const char *carrier = str_at(js, "marketing_carrier", "iata_code");
    const char *number = str_at(js, "marketing_carrier_flight_number", NULL);
    if (!carrier)
        carrier = owner;
    if (!from || !to || !carrier)
        return false;
    fs_upstream_copy(sg->from, sizeof sg->from, from);
    fs_upstream_copy(sg->to, sizeof sg->to, to);
    fs_upstream_copy(sg->carrier, sizeof sg->carrier, carrier);
    snprintf(sg->flight_number, sizeof sg->flight_number, "%s%s", carrier, number ? number : "");
    fs_upstream_copy(sg->aircraft, sizeof sg->aircraft, str_at(js, "aircraft", "iata_code"));
    return fs_upstream_segment_times(sg, str_at(js, "departing_at", NULL), str_at(js, "arriving_at", NULL),
                                     fs_upstream_duration_min(str_at(js, "duration", NULL)), chain);
}

static bool map_slice(json_t *js, const char *owner, fs_segment_t *segs, int *n, int *chain)
{
    json_t *list = json_object_get(js, "segments");
    size_t count = json_array_size(list);
    if (count == 0 || count > FS_MAX_SEGMENTS)
        return false;
    for (size_t i = 0; i < count; i++)
        if (!map_segment(json_array_get(list, i), owner, &segs[i], chain))
            return false;
    *n = (int)count;
    return true;
}

/* The cabin of the first passenger on the first segment, else the one asked for. */
static const char *offer_cabin(json_t *slice0, const fs_search_query_t *q)
{
    json_t *seg = json_array_get(json_object_get(slice0, "segments"), 0);
    const char *c = str_at(json_array_get(json_object_get(seg, "passengers"), 0), "cabin_class", NULL);
    fs_cabin_t cabin = q->cabin;
    if (c)
        fs_cabin_parse(c, &cabin);
    return fs_cabin_name(cabin);
}

static bool map_offer(json_t *jo, const fs_search_query_t *q, int64_t priced_at, fs_offer_t *o)
{
    const char *id = str_at(jo, "id", NULL), *total = str_at(jo, "total_amount", NULL);
    const char *owner = str_at(jo, "owner", "iata_code");
    json_t *slices = json_object_get(jo, "slices");
    size_t n = json_array_size(slices);
    if (!id || !total || n < 1 || n > 2)
        return false;
    char *end;
    o->price = strtod(total, &end);
    if (end == total || o->price < 0)
        return false;
    snprintf(o->id, sizeof o->id, "duffel-%s", id);
    fs_upstream_copy(o->currency, sizeof o->currency, str_at(jo, "total_currency", NULL));
    int chain = 0;
    if (!map_slice(json_array_get(slices, 0), owner, o->out, &o->n_out, &chain))
        return false;
    if (n == 2 && !map_slice(json_array_get(slices, 1), owner, o->ret, &o->n_ret, &chain))
        return false;
    fs_upstream_copy(o->cabin, sizeof o->cabin, offer_cabin(json_array_get(slices, 0), q));
    memcpy(o->source, "duffel", 7);
    o->priced_at = priced_at;
    fs_offer_finish(o);
    return true;
}

static fs_offer_list_t *map_offers(const char *body, const fs_search_query_t *q, const char **why)
{
    json_t *root = json_loads(body, 0, NULL);
    json_t *offers = json_object_get(json_object_get(root, "data"), "offers");
    if (!json_is_array(offers)) {
        *why = root ? "malformed answer: no data.offers array" : "malformed JSON";
        json_decref(root);
        return NULL;
    }
    fs_offer_list_t *l = fs_upstream_map_offers(offers, q, map_offer);
    json_decref(root);
    return l;
}

static void on_search(const fs_http_response_t *r, void *arg)
{
    call_t *c = arg;
    if (!call_take(c)) {
        free(c);
        return;
    }
    fs_provider_outcome_t outcome = FS_PROVIDER_FAILED;
    fs_offer_list_t *offers = NULL;
    char why[256] = "";
    if (r->error) {
        snprintf(why, sizeof why, "%s", r->timed_out ? "timeout" : r->error);
    } else if (r->status != 200 && r->status != 201) {
        outcome = fs_upstream_outcome(r->status);
        fs_upstream_error_text(r->status, r->body, r->header(r, "Retry-After"), why, sizeof why);
    } else {
        const char *e = NULL;
        offers = map_offers(r->body, &c->q, &e);
        if (offers)
            outcome = FS_PROVIDER_OK;
        else
            snprintf(why, sizeof why, "%s", e);
    }
    c->done(outcome, offers, why[0] ? why : NULL, c->arg);
    free(c);
}

static void duffel_search(void *self, const fs_search_query_t *q, int timeout_ms, fs_provider_done_fn done, void *arg)
{
    duffel_t *d = self;
    call_t *c = call_new(d, arg);
    c->q = *q;
    c->q.observed = NULL;
    c->q.n_observed = 0;
    c->done = done;
    char *body = request_body(q);
    /* Duffel waits for its airlines up to supplier_timeout (ms); keep it inside our budget. */
    int supplier = timeout_ms > 0 ? timeout_ms - 1000 : 20000;
    supplier = supplier < 2000 ? 2000 : supplier > 60000 ? 60000 : supplier;
    char *url = fs_sprintf("%s/air/offer_requests?return_offers=true&supplier_timeout=%d", d->base, supplier);
    const char *hdrs[] = {d->auth, "Duffel-Version: " DUFFEL_VERSION, "Content-Type: application/json",
                          "Accept: application/json", NULL};
    fs_http_request_t req = {.method = "POST", .url = url, .headers = hdrs, .body = body, .body_len = strlen(body),
                             .timeout_ms = timeout_ms, .max_response_bytes = MAX_RESPONSE};
    fs_http_client_send(d->http, &req, on_search, c);
    free(url);
    free(body);
}

static void on_probe(const fs_http_response_t *r, void *arg)
{
    call_t *c = arg;
    if (call_take(c))
        c->probe_done(!r->error && r->status == 200, c->arg);
    free(c);
}

/* A cheap authenticated read: the token works and the API answers. */
static void duffel_probe(void *self, void (*done)(bool ok, void *arg), void *arg)
{
    duffel_t *d = self;
    call_t *c = call_new(d, arg);
    c->probe_done = done;
    char *url = fs_sprintf("%s/air/airlines?limit=1", d->base);
    const char *hdrs[] = {d->auth, "Duffel-Version: " DUFFEL_VERSION, "Accept: application/json", NULL};
    fs_http_request_t req = {.method = "GET", .url = url, .headers = hdrs, .timeout_ms = PROBE_TIMEOUT_MS};
    fs_http_client_send(d->http, &req, on_probe, c);
    free(url);
}

const fs_provider_ops_t fs_provider_duffel = {
    .name = "duffel",
    .priority = 20,
    .requests_per_minute = 60,
    .timeout_ms = 30000,
    .configured = duffel_configured,
    .open = duffel_open,
    .close = duffel_close,
    .search = duffel_search,
    .probe = duffel_probe,
};
