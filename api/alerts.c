/* Price alerts (docs/ALERTS.md).
 *
 *   POST   /flights/alerts          (auth) the original's query parameters origin, destination,
 *                                   target_price, or the same in a JSON body with cabin_class,
 *                                   date_from, date_to, currency -> the original's shape + new fields
 *   GET    /users/me/alerts         (auth) the caller's alerts, newest first
 *   PATCH  /users/me/alerts/{id}    (auth) is_active, target_price, cabin_class, date_from, date_to
 *   DELETE /users/me/alerts/{id}    (auth) hard delete
 *
 * Errors: 422 (FastAPI shape) for malformed input, 400 "Unknown airport code: XXX" for a code
 * that is not an active airport, 409 when the caller already holds ALERTS_PER_USER alerts,
 * 404 "Alert not found" for an id that is not a UUID or not one of the caller's alerts.
 *
 * Every committed change is handed to the alert shard that owns the route (an ask through the
 * peer channel, so the answer leaves only once the shard's index holds it) and published on
 * Redis for the shards of other hosts.
 */
#include "actors/alert/alert.h"
#include "actors/alert/alert_index.h"
#include "api/http_int.h"
#include "api/routes.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/peer.h"
#include "runtime/worker.h"
#include "schemas/alerts.pb-c.h"
#include "security/auth.h"
#include "storage/airport_index.h"
#include "storage/refdata_live.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHARD_ASK_TIMEOUT_MS 2000
#define MAX_TARGET_PRICE 1000000.0
#define ISO_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The columns alert_json and change_from_row read, for a price_alerts row aliased `a`. */
#define ALERT_COLUMNS                                                                                      \
    "a.id::text, a.origin_code, a.destination_code, a.target_price::text, a.currency, a.cabin_class, "     \
    "a.date_from::text, a.date_to::text, a.is_active, " ISO_TS("a.last_notified_at") ", " ISO_TS(           \
        "a.created_at") ", " ISO_TS("a.updated_at") ", round(a.target_price * 100)::bigint, "              \
                        "coalesce(extract(epoch FROM a.last_notified_at)::bigint, 0)"

enum { C_ID, C_ORIGIN, C_DEST, C_TARGET, C_CURRENCY, C_CABIN, C_FROM, C_TO, C_ACTIVE, C_NOTIFIED, C_CREATED,
       C_UPDATED, C_CENTS, C_NOTIFIED_S };

static const char *const cabins[] = {"economy", "premium_economy", "business", "first", NULL};

/* ---- rows ---------------------------------------------------------------------------------- */

static json_t *text_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

/* PriceAlertResponse: the original's fields, then the new ones. */
static json_t *alert_json(const PGresult *res, int row)
{
    return json_pack("{s:s, s:s, s:s, s:f, s:b, s:o, s:s, s:s, s:o, s:o, s:o, s:s}", "id",
                     PQgetvalue(res, row, C_ID), "origin_code", PQgetvalue(res, row, C_ORIGIN), "destination_code",
                     PQgetvalue(res, row, C_DEST), "target_price", strtod(PQgetvalue(res, row, C_TARGET), NULL),
                     "is_active", PQgetvalue(res, row, C_ACTIVE)[0] == 't', "last_notified_at",
                     text_or_null(res, row, C_NOTIFIED), "created_at", PQgetvalue(res, row, C_CREATED), "currency",
                     PQgetvalue(res, row, C_CURRENCY), "cabin_class", text_or_null(res, row, C_CABIN), "date_from",
                     text_or_null(res, row, C_FROM), "date_to", text_or_null(res, row, C_TO), "updated_at",
                     PQgetvalue(res, row, C_UPDATED));
}

static char *dup_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : fs_strdup(PQgetvalue(res, row, col));
}

static Fs__Alerts__AlertChanged *change_from_row(const PGresult *res, int row, bool deleted)
{
    Fs__Alerts__AlertChanged *c = fs_pb_new(&fs__alerts__alert_changed__descriptor);
    c->id = fs_strdup(PQgetvalue(res, row, C_ID));
    c->origin = fs_strdup(PQgetvalue(res, row, C_ORIGIN));
    c->destination = fs_strdup(PQgetvalue(res, row, C_DEST));
    c->has_target_cents = true;
    c->target_cents = strtoll(PQgetvalue(res, row, C_CENTS), NULL, 10);
    c->currency = fs_strdup(PQgetvalue(res, row, C_CURRENCY));
    c->cabin_class = dup_or_null(res, row, C_CABIN);
    c->date_from = dup_or_null(res, row, C_FROM);
    c->date_to = dup_or_null(res, row, C_TO);
    c->has_is_active = true;
    c->is_active = PQgetvalue(res, row, C_ACTIVE)[0] == 't';
    c->has_deleted = true;
    c->deleted = deleted;
    c->has_last_notified_s = true;
    c->last_notified_s = strtoll(PQgetvalue(res, row, C_NOTIFIED_S), NULL, 10);
    return c;
}

/* ---- handing a change to the shards -------------------------------------------------------- */

typedef struct {
    fs_req_t *req;
    int status;
    json_t *body;
    char id[40];
} reply_t;

static void on_shard_ack(int status, fs_msg_t *reply, void *arg)
{
    reply_t *r = arg;
    if (status != FS_OK) /* committed all the same: the shard reads it at its next load */
        fs_warn("alert %s: shard not updated (%s)", r->id, fs_status_str(status));
    fs_reply_json(r->req, r->status, r->body);
    free(r);
}

/* Sends the change to the owning shard and to other hosts, then answers `status` + `body`
 * (stolen) once the shard has it. */
static void change_then_reply(fs_req_t *req, Fs__Alerts__AlertChanged *c, int status, json_t *body)
{
    fs_alert_publish(fs_worker->redis, c);
    int owner = fs_alert_owner(c->origin, c->destination, fs_worker->count);
    reply_t *r = FS_NEW(reply_t);
    r->req = req;
    r->status = status;
    r->body = body;
    snprintf(r->id, sizeof r->id, "%s", c->id);
    int rc = owner < 0 ? FS_EINVAL
                       : fs_peer_ask(fs_worker->peer, NULL, owner, FS_ALERT_ACTOR, FS_MSG_ALERT_CHANGED, &c->base,
                                     SHARD_ASK_TIMEOUT_MS, on_shard_ack, r);
    if (owner < 0)
        fs_pb_free(&c->base);
    if (rc != FS_OK)
        on_shard_ack(rc, NULL, r);
}

/* ---- input --------------------------------------------------------------------------------- */

/* A field from the query string (as a JSON string) or, when absent there, the JSON body. */
typedef struct {
    fs_req_t *req;
    json_t *body;       /* NULL: no body */
    fs_errors_t *errs;
} input_t;

static json_t *input_get(input_t *in, const char *name, const char **loc)
{
    const char *q = fs_req_query(in->req, name);
    if (q) {
        *loc = "query";
        return json_string(q);
    }
    *loc = "body";
    json_t *v = in->body ? json_object_get(in->body, name) : NULL;
    return v ? json_incref(v) : NULL;
}

static void err(input_t *in, const char *loc, const char *name, const char *type, const char *msg, json_t *v,
                json_t *ctx)
{
    fs_errors_add(in->errs, loc, name, type, msg, v ? json_incref(v) : NULL, ctx);
}

/* Exactly 3 characters, letters or digits; upper-cased into `out`. */
static void read_code(input_t *in, const char *name, char out[4])
{
    const char *loc;
    json_t *v = input_get(in, name, &loc);
    if (!v || json_is_null(v)) {
        err(in, loc, name, "missing", "Field required", NULL, NULL);
    } else if (!json_is_string(v)) {
        err(in, loc, name, "string_type", "Input should be a valid string", v, NULL);
    } else {
        const char *s = json_string_value(v);
        size_t n = fs_utf8_length(s);
        if (n != 3) {
            bool shrt = n < 3;
            err(in, loc, name, shrt ? "string_too_short" : "string_too_long",
                shrt ? "String should have at least 3 characters" : "String should have at most 3 characters", v,
                json_pack("{s:i}", shrt ? "min_length" : "max_length", 3));
        } else if (!isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[1]) || !isalnum((unsigned char)s[2])) {
            err(in, loc, name, "string_pattern_mismatch", "String should match pattern '^[A-Za-z0-9]{3}$'", v,
                json_pack("{s:s}", "pattern", "^[A-Za-z0-9]{3}$"));
        } else {
            for (int i = 0; i < 3; i++)
                out[i] = (char)toupper((unsigned char)s[i]);
            out[3] = '\0';
        }
    }
    json_decref(v);
}

/* A price > 0 and <= MAX_TARGET_PRICE, written with 2 decimals into `out` ("" when invalid or
 * absent). A query value is text; a body value a number (or a numeric string, as pydantic). */
static void read_price(input_t *in, const char *name, bool required, char out[32])
{
    const char *loc;
    json_t *v = input_get(in, name, &loc);
    out[0] = '\0';
    double p = NAN;
    if (v && json_is_number(v)) {
        p = json_number_value(v);
    } else if (v && json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        p = strtod(s, &end);
        if (end == s || *end)
            p = NAN;
    }
    if (!v || (json_is_null(v) && required)) {
        if (required)
            err(in, loc, name, "missing", "Field required", NULL, NULL);
    } else if (isnan(p) || isinf(p)) {
        err(in, loc, name, "float_parsing", "Input should be a valid number, unable to parse string as a number",
            v, NULL);
    } else if (p <= 0) {
        err(in, loc, name, "greater_than", "Input should be greater than 0", v, json_pack("{s:i}", "gt", 0));
    } else if (p > MAX_TARGET_PRICE) {
        err(in, loc, name, "less_than_equal", "Input should be less than or equal to 1000000", v,
            json_pack("{s:i}", "le", 1000000));
    } else if (llround(p * 100) == 0) {
        err(in, loc, name, "greater_than", "Input should be greater than 0 after rounding to cents", v,
            json_pack("{s:i}", "gt", 0));
    } else {
        long long cents = llround(p * 100);
        snprintf(out, 32, "%lld.%02lld", cents / 100, cents % 100);
    }
    json_decref(v);
}

/* An optional string field: *set tells whether it was present (null counts: it clears). */
typedef struct {
    bool set;
    char value[24]; /* "" = null */
} opt_t;

static void read_cabin(input_t *in, opt_t *out)
{
    const char *loc;
    json_t *v = input_get(in, "cabin_class", &loc);
    out->set = v != NULL;
    out->value[0] = '\0';
    if (!v || json_is_null(v)) {
        json_decref(v);
        return;
    }
    for (const char *const *c = cabins; json_is_string(v) && *c; c++)
        if (strcasecmp(json_string_value(v), *c) == 0) {
            snprintf(out->value, sizeof out->value, "%s", *c);
            json_decref(v);
            return;
        }
    const char *expected = "'economy', 'premium_economy', 'business' or 'first'";
    err(in, loc, "cabin_class", "literal_error", "Input should be 'economy', 'premium_economy', 'business' or 'first'",
        v, json_pack("{s:s}", "expected", expected));
    json_decref(v);
}

static void read_date(input_t *in, const char *name, opt_t *out)
{
    const char *loc;
    json_t *v = input_get(in, name, &loc);
    out->set = v != NULL;
    out->value[0] = '\0';
    if (!v || json_is_null(v)) {
        json_decref(v);
        return;
    }
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (s && fs_alert_day_parse(s, strlen(s)) > 0)
        snprintf(out->value, sizeof out->value, "%s", s);
    else
        err(in, loc, name, "date_from_datetime_parsing", "Input should be a valid date in the format YYYY-MM-DD",
            v, NULL);
    json_decref(v);
}

static void read_currency(input_t *in, char out[4])
{
    const char *loc;
    json_t *v = input_get(in, "currency", &loc);
    snprintf(out, 4, "EUR");
    if (!v || json_is_null(v)) {
        json_decref(v);
        return;
    }
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    if (strlen(s) == 3 && fs_alert_currency_pack(s, 3)) {
        for (int i = 0; i < 3; i++)
            out[i] = (char)toupper((unsigned char)s[i]);
    } else {
        err(in, loc, "currency", "string_pattern_mismatch", "String should match pattern '^[A-Za-z]{3}$'", v,
            json_pack("{s:s}", "pattern", "^[A-Za-z]{3}$"));
    }
    json_decref(v);
}

static void check_range(input_t *in, const opt_t *from, const opt_t *to)
{
    if (from->value[0] && to->value[0] && strcmp(to->value, from->value) < 0)
        err(in, "body", "date_to", "value_error", "Value error, date_to must not be before date_from", NULL, NULL);
}

/* The body as an object, NULL when there is none (an empty body); replies 422 and returns
 * false when it is not JSON or not an object. */
static bool body_or_reply(fs_req_t *req, json_t **out)
{
    size_t len = 0;
    const char *b = fs_req_body(req, &len);
    *out = NULL;
    if (!b || len == 0)
        return true;
    *out = fs_req_json_or_reply(req);
    return *out != NULL;
}

/* ---- POST /flights/alerts ------------------------------------------------------------------ */

static void create_on_row(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    fs_req_t *req = arg;
    if (status != FS_PG_OK) {
        fs_auth_reply_pg_error(req, status, error);
        return;
    }
    if (PQntuples(res) == 0) {
        int limit = fs_cfg ? fs_cfg->alerts_per_user : 50;
        fs_reply_detail(req, 409, "Alert limit reached: at most %d alerts per user; delete or reuse one", limit);
        return;
    }
    json_t *body = alert_json(res, 0);
    /* the original's names too */
    json_object_set(body, "origin", json_object_get(body, "origin_code"));
    json_object_set(body, "destination", json_object_get(body, "destination_code"));
    json_object_set_new(body, "message", json_string("Price alert created successfully"));
    change_then_reply(req, change_from_row(res, 0, false), 200, body);
}

static bool known_airport(const char *code)
{
    const fs_refdata_t *rd = fs_refdata_current();
    return rd && fs_airport_index_lookup(rd->airports, code) != NULL;
}

static void create_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    input_t in = {.req = req, .errs = fs_errors_new()};
    if (!body_or_reply(req, &in.body)) {
        fs_errors_reply(req, in.errs);
        return;
    }
    if (in.body && !json_is_object(in.body)) {
        json_decref(in.body);
        in.body = NULL;
        err(&in, "body", NULL, "model_attributes_type", "Input should be a valid dictionary or object", NULL, NULL);
    }
    char origin[4] = "", dest[4] = "", price[32], currency[4];
    opt_t cabin, from, to;
    read_code(&in, "origin", origin);
    read_code(&in, "destination", dest);
    read_price(&in, "target_price", true, price);
    read_cabin(&in, &cabin);
    read_date(&in, "date_from", &from);
    read_date(&in, "date_to", &to);
    read_currency(&in, currency);
    check_range(&in, &from, &to);
    json_decref(in.body);
    if (fs_errors_reply(req, in.errs))
        return;
    if (!fs_refdata_current()) {
        fs_reply_unavailable(req, 1, "Reference data is loading");
        return;
    }
    const char *unknown = !known_airport(origin) ? origin : !known_airport(dest) ? dest : NULL;
    if (unknown) {
        fs_reply_detail(req, 400, "Unknown airport code: %s", unknown);
        return;
    }
    if (strcmp(origin, dest) == 0) {
        fs_reply_detail(req, 400, "Origin and destination must differ");
        return;
    }
    char limit[16];
    snprintf(limit, sizeof limit, "%d", fs_cfg ? fs_cfg->alerts_per_user : 50);
    const char *params[] = {user->id,
                            origin,
                            dest,
                            price,
                            currency,
                            cabin.value[0] ? cabin.value : NULL,
                            from.value[0] ? from.value : NULL,
                            to.value[0] ? to.value : NULL,
                            limit};
    fs_pg_query(fs_worker->pg, "alerts_create",
                "SELECT " ALERT_COLUMNS " FROM fs_price_alert_create($1::uuid, $2, $3, $4::numeric, $5, $6, "
                "$7::date, $8::date, $9::int) a",
                9, params, create_on_row, req);
}

static void post_alert(fs_req_t *req)
{
    if (!fs_api_refdata_or_reply(req, post_alert))
        return;
    fs_auth_require(req, false, create_on_user, NULL);
}

/* ---- GET /users/me/alerts ------------------------------------------------------------------ */

static void list_on_rows(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    fs_req_t *req = arg;
    if (status != FS_PG_OK) {
        fs_auth_reply_pg_error(req, status, error);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(list, alert_json(res, i));
    fs_reply_json(req, 200, list);
}

static void list_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    const char *params[] = {user->id};
    fs_pg_query(fs_worker->pg, "alerts_list",
                "SELECT " ALERT_COLUMNS " FROM price_alerts a WHERE a.user_id = $1 "
                "ORDER BY a.created_at DESC, a.id DESC",
                1, params, list_on_rows, req);
}

static void get_alerts(fs_req_t *req)
{
    fs_auth_require(req, false, list_on_user, NULL);
}

/* ---- DELETE /users/me/alerts/{alert_id} ---------------------------------------------------- */

/* The path id, or NULL after answering 404: an id that is not a UUID names no alert (the
 * original answered 500 here). */
static const char *alert_id_or_reply(fs_req_t *req)
{
    const char *id = fs_req_param(req, "alert_id");
    if (id && fs_uuid_valid(id))
        return id;
    fs_reply_detail(req, 404, "Alert not found");
    return NULL;
}

static void delete_on_row(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    fs_req_t *req = arg;
    if (status != FS_PG_OK)
        fs_auth_reply_pg_error(req, status, error);
    else if (PQntuples(res) == 0)
        fs_reply_detail(req, 404, "Alert not found");
    else
        change_then_reply(req, change_from_row(res, 0, true), 200,
                          json_pack("{s:s}", "message", "Alert deleted successfully"));
}

static void delete_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    const char *id = alert_id_or_reply(req);
    if (!id)
        return;
    const char *params[] = {id, user->id};
    fs_pg_query(fs_worker->pg, "alerts_delete",
                "DELETE FROM price_alerts a WHERE a.id = $1::uuid AND a.user_id = $2 RETURNING " ALERT_COLUMNS, 2,
                params, delete_on_row, req);
}

static void delete_alert(fs_req_t *req)
{
    fs_auth_require(req, false, delete_on_user, NULL);
}

/* ---- PATCH /users/me/alerts/{alert_id} ----------------------------------------------------- */

static void patch_on_row(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    fs_req_t *req = arg;
    const char *state = status == FS_PG_ERROR && res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "23514") == 0) { /* the date range check of the merged row */
        fs_errors_t *e = fs_errors_new();
        fs_errors_add(e, "body", "date_to", "value_error", "Value error, date_to must not be before date_from",
                      NULL, NULL);
        fs_errors_reply(req, e);
    } else if (status != FS_PG_OK) {
        fs_auth_reply_pg_error(req, status, error);
    } else if (PQntuples(res) == 0) {
        fs_reply_detail(req, 404, "Alert not found");
    } else {
        change_then_reply(req, change_from_row(res, 0, false), 200, alert_json(res, 0));
    }
}

static void read_active(input_t *in, int *out)
{
    json_t *v = in->body ? json_object_get(in->body, "is_active") : NULL;
    *out = -1;
    if (!v)
        return;
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else
        err(in, "body", "is_active", "bool_type", "Input should be a valid boolean", v, NULL);
}

/* Only JSON body fields count here (a query string is ignored); unknown fields are 422. */
static void reject_unknown(input_t *in)
{
    static const char *const known[] = {"is_active", "target_price", "cabin_class", "date_from", "date_to", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(in->body, key, v)
    {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, key) == 0;
        if (!ok)
            err(in, "body", key, "extra_forbidden", "Extra inputs are not permitted", v, NULL);
    }
}

static void patch_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    const char *id = alert_id_or_reply(req);
    if (!id)
        return;
    json_t *body = fs_req_json_or_reply(req);
    if (!body)
        return;
    input_t in = {.req = req, .body = body, .errs = fs_errors_new()};
    if (!json_is_object(body)) {
        err(&in, "body", NULL, "model_attributes_type", "Input should be a valid dictionary or object", body, NULL);
        json_decref(body);
        fs_errors_reply(req, in.errs);
        return;
    }
    int active;
    char price[32];
    opt_t cabin, from, to;
    reject_unknown(&in);
    read_active(&in, &active);
    read_price(&in, "target_price", false, price);
    read_cabin(&in, &cabin);
    read_date(&in, "date_from", &from);
    read_date(&in, "date_to", &to);
    check_range(&in, &from, &to);
    json_decref(body);
    if (fs_errors_reply(req, in.errs))
        return;
    const char *params[] = {id,
                            user->id,
                            active < 0 ? NULL : active ? "t" : "f",
                            price[0] ? price : NULL,
                            cabin.set ? "t" : "f",
                            cabin.value[0] ? cabin.value : NULL,
                            from.set ? "t" : "f",
                            from.value[0] ? from.value : NULL,
                            to.set ? "t" : "f",
                            to.value[0] ? to.value : NULL};
    fs_pg_query(fs_worker->pg, "alerts_patch",
                "UPDATE price_alerts a SET "
                "is_active = coalesce($3::boolean, a.is_active), "
                "target_price = coalesce($4::numeric, a.target_price), "
                "cabin_class = CASE WHEN $5::boolean THEN $6 ELSE a.cabin_class END, "
                "date_from = CASE WHEN $7::boolean THEN $8::date ELSE a.date_from END, "
                "date_to = CASE WHEN $9::boolean THEN $10::date ELSE a.date_to END, "
                "updated_at = now() "
                "WHERE a.id = $1::uuid AND a.user_id = $2 RETURNING " ALERT_COLUMNS,
                10, params, patch_on_row, req);
}

static void patch_alert(fs_req_t *req)
{
    fs_auth_require(req, false, patch_on_user, NULL);
}

void fs_api_alerts_routes(fs_router_t *r)
{
    fs_router_add(r, "POST", "/flights/alerts", post_alert);
    fs_router_add(r, "GET", "/users/me/alerts", get_alerts);
    fs_router_add(r, "PATCH", "/users/me/alerts/{alert_id}", patch_alert);
    fs_router_add(r, "DELETE", "/users/me/alerts/{alert_id}", delete_alert);
}
