/* The search actor: request → cache → observed fares → providers → answer (search.h). */
#include "actors/search/search.h"

#include "actors/cache/cache.h"
#include "actors/search/search_int.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/peer.h"
#include "schemas/prices.pb-c.h"
#include "schemas/search.pb-c.h"
#include "storage/pg.h"
#include "storage/redis.h"
#include "storage/refdata_live.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* Per-worker context. It lives outside the actor's state so that work in flight (a database
 * query, a provider call) never points at state freed by a restart. */
static struct {
    fs_actor_system_t *sys;
    fs_actor_t *self;
    fs_search_deps_t deps;
    fs_metric_family_t *seconds;
    fs_metric_series_t *observations_sent, *observations_refused, *provider_failures, *refreshes;
} S;

typedef enum { KIND_SEARCH, KIND_CALENDAR, KIND_FLEXIBLE } kind_t;

static const char *const kind_names[] = {"search", "calendar", "flexible"};

typedef struct job {
    kind_t kind;
    fs_reply_addr_t reply_to;
    search_parse_t p;
    int year, month;           /* calendar */
    fs_flexible_query_t fq;    /* flexible */
    bool leader;               /* the cache made us compute: store or abandon */
    bool refresh;              /* the scheduled refresh: nobody to answer, not a user's search */
    int64_t started_us;
    struct timespec wall;      /* searched_at */
    fs_observed_fare_t *observed;
    size_t n_observed;
} job_t;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void job_free(job_t *j)
{
    free(j->observed);
    free(j);
}

static void observe_duration(const job_t *j, bool cached)
{
    if (!S.seconds)
        return;
    const char *labels[] = {kind_names[j->kind], cached ? "true" : "false"};
    fs_metric_observe(fs_metrics_series(S.seconds, labels), (double)(now_us() - j->started_us) / 1e6);
}

static void reply_error(fs_reply_addr_t to, int status, const char *detail)
{
    if (to.corr_id == 0)
        return;
    Fs__Search__SearchReply *r = fs_pb_new(&fs__search__search_reply__descriptor);
    r->has_status = true;
    r->status = status;
    r->detail = fs_strdup(detail);
    fs_actor_reply_to(S.sys, to, FS_OK, FS_MSG_SEARCH_REPLY, &r->base);
}

/* Replies with a body; a cached body gets "cached":true in place of the false it was stored
 * with (every body ends with that member). */
static void reply_body(job_t *j, const char *body, size_t len, bool cached)
{
    if (j->reply_to.corr_id == 0)
        return;
    Fs__Search__SearchReply *r = fs_pb_new(&fs__search__search_reply__descriptor);
    r->has_status = r->has_cached = r->has_body = true;
    r->status = 200;
    r->cached = cached;
    static const char stored[] = "\"cached\":false}";
    size_t tail = sizeof stored - 1;
    if (cached && len >= tail && memcmp(body + len - tail, stored, tail) == 0) {
        r->body.data = fs_malloc(len);
        memcpy(r->body.data, body, len - tail);
        memcpy(r->body.data + len - tail, "\"cached\":true}", tail - 1);
        r->body.len = len - 1;
    } else {
        r->body.data = fs_malloc(len ? len : 1);
        memcpy(r->body.data, body, len);
        r->body.len = len;
    }
    fs_actor_reply_to(S.sys, j->reply_to, FS_OK, FS_MSG_SEARCH_REPLY, &r->base);
}

/* ---- answers --------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} text_t;

static void put(text_t *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = fs_realloc(t->p, t->cap);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void putf(text_t *t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    put(t, buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* searched_at: UTC without a zone suffix, as the original's naive datetime. */
static void put_searched_at(text_t *t, const job_t *j)
{
    struct tm tm;
    gmtime_r(&j->wall.tv_sec, &tm);
    putf(t, "\"searched_at\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ld\",", tm.tm_year + 1900, tm.tm_mon + 1,
         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, j->wall.tv_nsec / 1000);
}

static void put_offers(text_t *t, const fs_offer_list_t *offers)
{
    size_t len;
    char *json = fs_offer_list_json_text(offers, &len);
    put(t, "\"offers\":", 9);
    put(t, json, len);
    free(json);
    putf(t, ",\"total_results\":%zu,", offers->n);
}

static char *search_body(const job_t *j, const fs_offer_list_t *offers, size_t *len)
{
    const fs_search_query_t *q = &j->p.q;
    text_t t = {0};
    char dep[11], ret[11];
    fs_date_format(q->departure, dep);
    putf(&t, "{\"origin\":\"%s\",\"destination\":\"%s\",\"departure_date\":\"%s\",\"return_date\":", q->origin,
         q->destination, dep);
    if (q->has_return) {
        fs_date_format(q->return_date, ret);
        putf(&t, "\"%s\"", ret);
    } else {
        put(&t, "null", 4);
    }
    putf(&t, ",\"passengers\":%d,\"cabin_class\":\"%s\",\"strategy\":\"%s\",", q->passengers,
         fs_cabin_name(q->cabin), fs_strategy_name(j->p.strategy));
    put_offers(&t, offers);
    put_searched_at(&t, j);
    put(&t, "\"cached\":false}", 15);
    *len = t.len;
    return t.p;
}

static char *flexible_body(const job_t *j, const fs_offer_list_t *offers, size_t *len)
{
    const fs_flexible_query_t *f = &j->fq;
    text_t t = {0};
    char from[11], to[11];
    fs_date_format(f->from, from);
    fs_date_format(f->to, to);
    putf(&t,
         "{\"origin\":\"%s\",\"destination\":\"%s\",\"date_from\":\"%s\",\"date_to\":\"%s\",\"nights_from\":%d,"
         "\"nights_to\":%d,\"passengers\":%d,\"cabin_class\":\"%s\",",
         j->p.q.origin, j->p.q.destination, from, to, f->nights_min, f->nights_max, j->p.q.passengers,
         fs_cabin_name(j->p.q.cabin));
    put_offers(&t, offers);
    put_searched_at(&t, j);
    put(&t, "\"cached\":false}", 15);
    *len = t.len;
    return t.p;
}

/* The original's calendar: days that have a fare, and the cheapest of them. Days already
 * over (before today anywhere on Earth) are left out. */
static char *calendar_body(const job_t *j, const fs_calendar_day_t *days, int n, size_t *len)
{
    text_t t = {0};
    putf(&t, "{\"origin\":\"%s\",\"destination\":\"%s\",\"month\":\"%04d-%02d\",\"passengers\":%d,"
             "\"cabin_class\":\"%s\",\"dates\":[",
         j->p.q.origin, j->p.q.destination, j->year, j->month, j->p.q.passengers, fs_cabin_name(j->p.q.cabin));
    int64_t earliest = fs_date_to_days(fs_date_of_unix(j->p.q.now - 12 * 3600));
    int best = -1, written = 0;
    char cheapest[96] = "null";
    for (int i = 0; i < n; i++) {
        if (!days[i].has_price || fs_date_to_days(days[i].date) < earliest)
            continue;
        char d[11];
        fs_date_format(days[i].date, d);
        char item[96];
        snprintf(item, sizeof item, "{\"date\":\"%s\",\"price\":%.2f,\"currency\":\"%.3s\"}", d, days[i].price,
                 days[i].currency[0] ? days[i].currency : "EUR");
        if (written++)
            put(&t, ",", 1);
        put(&t, item, strlen(item));
        if (best < 0 || days[i].price < days[best].price) {
            best = i;
            memcpy(cheapest, item, sizeof cheapest);
        }
    }
    putf(&t, "],\"cheapest_date\":%s,", cheapest);
    put_searched_at(&t, j);
    put(&t, "\"cached\":false}", 15);
    *len = t.len;
    return t.p;
}

/* ---- analytics and price observations --------------------------------------------------------- */

static void log_search(const job_t *j, int results, bool cached)
{
    if (j->kind != KIND_SEARCH || j->refresh)
        return;
    const fs_search_query_t *q = &j->p.q;
    search_log_row_t row = {
        .departure = q->departure,
        .return_date = q->return_date,
        .has_return = q->has_return,
        .passengers = q->passengers,
        .cabin = q->cabin,
        .direct_only = q->direct_only,
        .strategy = j->p.strategy,
        .result_count = results,
        .cached = cached,
        .response_ms = (double)(now_us() - j->started_us) / 1000.0,
        .at_ms = fs_now_ms(),
    };
    memcpy(row.origin, q->origin, 4);
    memcpy(row.destination, q->destination, 4);
    fsint_search_log_add(&row);
}

/* One observation per carrier: its cheapest one-way fare per passenger on the searched route.
 * Fares that came from price_history are not reported back to it. Round-trip prices are not
 * one-way fares and are not reported. */
static void report_prices(const job_t *j, const fs_offer_list_t *offers)
{
    const fs_search_query_t *q = &j->p.q;
    if (j->kind != KIND_SEARCH || q->has_return || offers->n == 0)
        return;
    Fs__Prices__PriceBatch *batch = fs_pb_new(&fs__prices__price_batch__descriptor);
    batch->observations = fs_calloc(offers->n, sizeof *batch->observations);
    char dep[11];
    fs_date_format(q->departure, dep);
    for (size_t i = 0; i < offers->n; i++) {
        const fs_offer_t *o = &offers->items[i];
        if (strcmp(o->source, "observed") == 0 || o->n_out == 0)
            continue;
        double per = o->price / q->passengers;
        Fs__Prices__PriceObservation *seen = NULL;
        for (size_t k = 0; k < batch->n_observations; k++)
            if (strcmp(batch->observations[k]->airline, o->airline) == 0)
                seen = batch->observations[k];
        if (seen) {
            if (per < seen->price)
                seen->price = per;
            continue;
        }
        Fs__Prices__PriceObservation *ob = fs_pb_new(&fs__prices__price_observation__descriptor);
        ob->has_observed_at_ms = ob->has_price = true;
        ob->observed_at_ms = (int64_t)o->priced_at * 1000;
        ob->origin = fs_strdup(o->out[0].from);
        ob->destination = fs_strdup(o->out[o->n_out - 1].to);
        ob->airline = fs_strdup(o->airline);
        ob->departure_date = fs_strdup(dep);
        ob->cabin_class = fs_strdup(fs_cabin_name(q->cabin));
        ob->price = per;
        ob->currency = fs_strdup(o->currency[0] ? o->currency : "EUR");
        ob->source = fs_strdup(o->source);
        batch->observations[batch->n_observations++] = ob;
    }
    size_t n = batch->n_observations;
    if (n == 0) {
        fs_pb_free(&batch->base);
        return;
    }
    int rc;
    if (S.deps.peer) {
        rc = fs_peer_send(S.deps.peer, S.self, FS_PRICE_INGEST_WORKER, FS_PRICE_INGEST_ACTOR, FS_MSG_PRICE_BATCH,
                          &batch->base);
    } else {
        fs_actor_t *ingest = fs_actor_lookup(S.sys, FS_PRICE_INGEST_ACTOR);
        rc = ingest ? fs_actor_send(ingest, S.self, FS_MSG_PRICE_BATCH, &batch->base) : FS_ENOACTOR;
        if (!ingest)
            fs_pb_free(&batch->base);
    }
    fs_metric_series_t *s = rc == FS_OK ? S.observations_sent : S.observations_refused;
    if (s)
        fs_metric_inc(s, (double)n);
}

/* ---- the flow ---------------------------------------------------------------------------------- */

static int cache_ttl(const job_t *j)
{
    return j->kind == KIND_CALENDAR ? fs_cfg->cache_ttl_calendar : fs_cfg->cache_ttl_flights;
}

static void finish(job_t *j, char *body, size_t len, int results)
{
    fs_cache_store(S.sys, j->p.key, body, len, cache_ttl(j));
    reply_body(j, body, len, false);
    observe_duration(j, false);
    log_search(j, results, false);
    free(body);
    job_free(j);
}

static void fail_job(job_t *j, const char *error)
{
    if (j->leader)
        fs_cache_abandon(S.sys, j->p.key);
    if (S.provider_failures)
        fs_metric_inc(S.provider_failures, 1);
    char detail[200];
    snprintf(detail, sizeof detail, "No flight provider answered: %s", error);
    reply_error(j->reply_to, 503, detail);
    job_free(j);
}

static void on_offers(fs_offer_list_t *offers, int providers_called, const char *error, void *arg)
{
    job_t *j = arg;
    if (error && offers->n == 0) {
        fs_offer_list_free(offers);
        fail_job(j, error);
        return;
    }
    if (j->kind == KIND_SEARCH && j->p.q.direct_only)
        fs_offer_list_keep_direct(offers);
    size_t len;
    char *body = j->kind == KIND_FLEXIBLE ? flexible_body(j, offers, &len) : search_body(j, offers, &len);
    report_prices(j, offers);
    int n = (int)offers->n;
    fs_offer_list_free(offers);
    finish(j, body, len, n);
}

static void on_calendar(const fs_calendar_day_t *days, int n_days, const char *error, void *arg)
{
    job_t *j = arg;
    if (error && n_days == 0) {
        fail_job(j, error);
        return;
    }
    size_t len;
    char *body = calendar_body(j, days, n_days, &len);
    finish(j, body, len, n_days);
}

static void run_providers(job_t *j)
{
    fs_provider_manager_t *m = S.deps.providers;
    int deadline = fs_cfg->search_deadline_ms;
    j->p.q.observed = j->observed;
    j->p.q.n_observed = j->n_observed;
    switch (j->kind) {
    case KIND_SEARCH:
        fs_provider_manager_search(m, &j->p.q, j->p.strategy, deadline, on_offers, j);
        break;
    case KIND_CALENDAR:
        fs_provider_manager_calendar(m, &j->p.q, j->year, j->month, deadline, on_calendar, j);
        break;
    case KIND_FLEXIBLE:
        j->fq.base = j->p.q;
        fs_provider_manager_flexible(m, &j->fq, deadline, on_offers, j);
        break;
    }
}

/* Recent observed fares of legs that start or end at either end of the query, on its dates,
 * cheapest-last-seen per (leg, carrier, date, cabin). The model's own fares (source
 * 'inventory') are not observations. Without a database the search goes on without them. */
static const char observed_sql[] =
    "SELECT DISTINCT ON (origin_code, destination_code, airline, departure_date) "
    "origin_code, destination_code, airline, departure_date::text, price::float8, "
    "extract(epoch FROM time)::bigint FROM price_history "
    "WHERE time > now() - make_interval(hours => $1::int) AND departure_date BETWEEN $2::date AND $3::date "
    "AND (origin_code = ANY($4::text[]) OR destination_code = ANY($4::text[])) AND cabin_class = $5 "
    "AND source IS DISTINCT FROM 'inventory' "
    "ORDER BY origin_code, destination_code, airline, departure_date, time DESC LIMIT 5000";

static void on_observed(fs_pg_status_t st, PGresult *res, const char *error, void *arg)
{
    job_t *j = arg;
    if (st == FS_PG_OK) {
        int n = PQntuples(res);
        j->observed = n ? fs_calloc((size_t)n, sizeof *j->observed) : NULL;
        for (int i = 0; i < n; i++) {
            fs_observed_fare_t *f = &j->observed[j->n_observed];
            if (strlen(PQgetvalue(res, i, 0)) != 3 || strlen(PQgetvalue(res, i, 1)) != 3 ||
                strlen(PQgetvalue(res, i, 2)) > 3 || !fs_date_parse(PQgetvalue(res, i, 3), &f->date))
                continue;
            memcpy(f->origin, PQgetvalue(res, i, 0), 4);
            memcpy(f->destination, PQgetvalue(res, i, 1), 4);
            snprintf(f->carrier, sizeof f->carrier, "%s", PQgetvalue(res, i, 2));
            f->cabin = j->p.q.cabin;
            f->price = strtod(PQgetvalue(res, i, 4), NULL);
            f->observed_at = strtoll(PQgetvalue(res, i, 5), NULL, 10);
            j->n_observed++;
        }
    } else {
        fs_debug("observed fares unavailable: %s", error ? error : "database unavailable");
    }
    run_providers(j);
}

static void fetch_observed(job_t *j)
{
    if (!S.deps.pg) {
        run_providers(j);
        return;
    }
    const fs_search_query_t *q = &j->p.q;
    fs_date_t first = q->departure, last = q->has_return ? q->return_date : q->departure;
    if (j->kind == KIND_CALENDAR)
        last = (fs_date_t){j->year, j->month, fs_days_in_month(j->year, j->month)};
    if (j->kind == KIND_FLEXIBLE)
        first = j->fq.from, last = fs_date_from_days(fs_date_to_days(j->fq.to) + j->fq.nights_max);
    char hours[16], from[11], to[11], codes[128] = "{", *w = codes + 1;
    snprintf(hours, sizeof hours, "%d", fs_cfg->observed_fare_max_age_hours);
    fs_date_format(first, from);
    fs_date_format(last, to);
    for (int i = 0; i < q->n_origin_airports; i++)
        w += sprintf(w, "%s%s", w == codes + 1 ? "" : ",", q->origin_airports[i]);
    for (int i = 0; i < q->n_destination_airports; i++)
        w += sprintf(w, ",%s", q->destination_airports[i]);
    strcpy(w, "}");
    const char *params[] = {hours, from, to, codes, fs_cabin_name(q->cabin)};
    fs_pg_query(S.deps.pg, "search_observed_fares", observed_sql, 5, params, on_observed, j);
}

/* total_results of a stored answer: it follows the offers, near the end of the body. */
static int stored_result_count(const char *body, size_t len)
{
    static const char key[] = "\"total_results\":";
    const char *end = body + len, *hit = NULL;
    for (const char *p = body + (len > 256 ? len - 256 : 0);
         (p = memmem(p, (size_t)(end - p), key, sizeof key - 1)) != NULL; p++)
        hit = p;
    return hit ? atoi(hit + sizeof key - 1) : 0;
}

static void on_cache(fs_cache_outcome_t outcome, const char *value, size_t len, long age_ms, void *arg)
{
    job_t *j = arg;
    if (outcome == FS_CACHE_HIT) {
        reply_body(j, value, len, true);
        observe_duration(j, true);
        log_search(j, stored_result_count(value, len), true);
        job_free(j);
        return;
    }
    j->leader = outcome == FS_CACHE_LEAD;
    fetch_observed(j);
}

static void start(kind_t kind, fs_msg_t *msg)
{
    job_t *j = FS_NEW(job_t);
    j->kind = kind;
    j->started_us = now_us();
    clock_gettime(CLOCK_REALTIME, &j->wall);
    int64_t now = j->wall.tv_sec;
    const fs_refdata_t *ref = fs_refdata_current();
    if (kind == KIND_SEARCH) {
        const Fs__Search__SearchRequest *in = fs_msg_body(msg, &fs__search__search_request__descriptor);
        fsint_search_parse(ref, in, now, &j->p);
    } else if (kind == KIND_CALENDAR) {
        const Fs__Search__CalendarRequest *in = fs_msg_body(msg, &fs__search__calendar_request__descriptor);
        fsint_calendar_parse(ref, in, now, &j->p, &j->year, &j->month);
    } else {
        const Fs__Search__FlexibleRequest *in = fs_msg_body(msg, &fs__search__flexible_request__descriptor);
        fsint_flexible_parse(ref, in, now, &j->p, &j->fq);
    }
    if (j->p.status != 200) {
        reply_error(msg->reply_to, j->p.status, j->p.detail);
        job_free(j);
        return;
    }
    j->reply_to = msg->reply_to;
    fs_cache_lookup(S.sys, j->p.key, on_cache, j);
}

/* ---- the scheduled refresh of popular routes -------------------------------------------------
 * Every PRICE_REFRESH_INTERVAL_S, worker 0 of one host (a Redis lock; without Redis each host
 * does it) searches the most searched one-way routes of the last day, each on its most
 * searched upcoming date, past the cache, so that their fares are recorded even when nobody
 * searches them right then. */

static const char popular_sql[] =
    "SELECT origin_code, destination_code, (mode() WITHIN GROUP (ORDER BY departure_date))::text "
    "FROM search_logs WHERE searched_at > now() - interval '24 hours' "
    "AND departure_date >= (now() AT TIME ZONE 'UTC')::date AND return_date IS NULL "
    "GROUP BY origin_code, destination_code ORDER BY count(*) DESC LIMIT $1";

static void on_popular(fs_pg_status_t st, PGresult *res, const char *error, void *arg)
{
    if (st != FS_PG_OK) {
        fs_warn("price refresh: popular routes unavailable: %s", error ? error : "database unavailable");
        return;
    }
    const fs_refdata_t *ref = fs_refdata_current();
    for (int i = 0; i < PQntuples(res); i++) {
        Fs__Search__SearchRequest in = FS__SEARCH__SEARCH_REQUEST__INIT;
        in.origin = PQgetvalue(res, i, 0);
        in.destination = PQgetvalue(res, i, 1);
        in.departure_date = PQgetvalue(res, i, 2);
        job_t *j = FS_NEW(job_t);
        j->kind = KIND_SEARCH;
        j->refresh = true;
        j->started_us = now_us();
        clock_gettime(CLOCK_REALTIME, &j->wall);
        fsint_search_parse(ref, &in, j->wall.tv_sec, &j->p);
        if (j->p.status != 200) {
            job_free(j);
            continue;
        }
        if (S.refreshes)
            fs_metric_inc(S.refreshes, 1);
        fetch_observed(j);
    }
}

static void start_refresh(void)
{
    char n[16];
    snprintf(n, sizeof n, "%d", fs_cfg->price_refresh_routes);
    const char *params[] = {n};
    fs_pg_query(S.deps.pg, "search_popular_routes", popular_sql, 1, params, on_popular, NULL);
}

static void on_refresh_lock(redisReply *reply, const char *error, void *arg)
{
    if (reply && reply->type == REDIS_REPLY_NIL)
        return; /* another host refreshes this round */
    start_refresh();
}

static void refresh_tick(void)
{
    if (!S.deps.pg)
        return;
    if (!S.deps.redis || !fs_redis_connected(S.deps.redis)) {
        start_refresh();
        return;
    }
    fs_redis_command(S.deps.redis, on_refresh_lock, NULL, "SET flightshark:price-refresh:lock 1 NX EX %d",
                     fs_cfg->price_refresh_interval_s > 1 ? fs_cfg->price_refresh_interval_s - 1 : 1);
}

static int behaviour(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    switch (msg->type) {
    case FS_MSG_SEARCH_REQUEST:
    case FS_MSG_CALENDAR_REQUEST:
    case FS_MSG_FLEXIBLE_REQUEST: {
        kind_t kind = msg->type == FS_MSG_SEARCH_REQUEST     ? KIND_SEARCH
                      : msg->type == FS_MSG_CALENDAR_REQUEST ? KIND_CALENDAR
                                                             : KIND_FLEXIBLE;
        if (msg->reply_to.corr_id == 0 || !msg->body)
            return FS_OK; /* not an ask: nobody to answer */
        start(kind, msg);
        return FS_OK;
    }
    case FS_MSG_PROVIDER_RESET: {
        const Fs__Search__ProviderReset *r = fs_msg_body(msg, &fs__search__provider_reset__descriptor);
        if (r && r->name)
            fs_provider_manager_reset(S.deps.providers, r->name);
        return FS_OK;
    }
    case FS_MSG_SEARCH_LOG_TICK:
        fsint_search_log_flush();
        return FS_OK;
    case FS_MSG_PRICE_REFRESH_TICK:
        refresh_tick();
        return FS_OK;
    default:
        fs_warn("search: unexpected message type %u", msg->type);
        return FS_OK;
    }
}

static void *init(fs_actor_t *self, void *arg)
{
    S.self = self;
    fs_actor_timer_start(self, FS_MSG_SEARCH_LOG_TICK, fs_cfg->search_log_flush_ms, fs_cfg->search_log_flush_ms);
    int every_ms = fs_cfg->price_refresh_interval_s * 1000;
    if (every_ms > 0 && fs_actor_system_worker(fs_actor_system(self)) <= 0)
        fs_actor_timer_start(self, FS_MSG_PRICE_REFRESH_TICK, every_ms, every_ms);
    return NULL;
}

static void stop(fs_actor_t *self, void *state)
{
    fsint_search_log_flush();
}

void fs_search_register_types(void)
{
    fs_msg_type_register(FS_MSG_SEARCH_REQUEST, &fs__search__search_request__descriptor);
    fs_msg_type_register(FS_MSG_SEARCH_REPLY, &fs__search__search_reply__descriptor);
    fs_msg_type_register(FS_MSG_PROVIDER_RESET, &fs__search__provider_reset__descriptor);
    fs_msg_type_register(FS_MSG_CALENDAR_REQUEST, &fs__search__calendar_request__descriptor);
    fs_msg_type_register(FS_MSG_FLEXIBLE_REQUEST, &fs__search__flexible_request__descriptor);
    fs_msg_type_register(FS_MSG_PRICE_BATCH, &fs__prices__price_batch__descriptor);
    fs_msg_type_register(FS_MSG_PRICE_BATCH_REPLY, &fs__prices__price_batch_reply__descriptor);
}

fs_actor_t *fs_search_spawn(fs_actor_system_t *sys, const fs_search_deps_t *deps)
{
    fsint_search_log_free();
    memset(&S, 0, sizeof S);
    S.sys = sys;
    S.deps = *deps;
    if (deps->metrics) {
        static const char *const labels[] = {"kind", "cached", NULL};
        static const double buckets[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
        S.seconds = fs_metrics_family(deps->metrics, FS_METRIC_HISTOGRAM, "flightshark_search_seconds",
                                      "Time from request to answer inside the search actor", labels, buckets,
                                      sizeof buckets / sizeof buckets[0]);
        S.observations_sent = fs_metrics_simple(deps->metrics, FS_METRIC_COUNTER,
                                                "flightshark_search_observations_reported_total",
                                                "Price observations handed to price-ingest");
        S.observations_refused = fs_metrics_simple(deps->metrics, FS_METRIC_COUNTER,
                                                   "flightshark_search_observations_refused_total",
                                                   "Price observations price-ingest could not take");
        S.refreshes = fs_metrics_simple(deps->metrics, FS_METRIC_COUNTER, "flightshark_price_refresh_searches_total",
                                        "Searches run by the scheduled refresh of popular routes");
        S.provider_failures = fs_metrics_simple(deps->metrics, FS_METRIC_COUNTER,
                                                "flightshark_search_unanswered_total",
                                                "Searches answered 503 because no provider answered");
    }
    fsint_search_log_init(deps->pg, deps->metrics);
    fs_actor_spec_t spec = {.name = FS_SEARCH_ACTOR, .behaviour = behaviour, .init = init, .stop = stop};
    return fs_actor_spawn(sys, &spec);
}

void fs_search_flush_logs(void)
{
    fsint_search_log_flush();
}

fs_provider_manager_t *fs_search_providers(void)
{
    return S.deps.providers;
}

int fs_search_ask_timeout_ms(void)
{
    return 2 * fs_cfg->search_deadline_ms + 1000;
}
