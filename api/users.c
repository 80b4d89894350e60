/* Users (docs/ACCOUNTS.md).
 *
 *   GET   /users/me                  (auth) UserResponse
 *   PATCH /users/me                  (auth) UserUpdate -> UserResponse
 *   GET   /users/me/recommendations  (auth) no destination data exists yet: an empty list
 *                                    with the reason, rather than invented places
 *   GET   /users/{user_id}           (admin) UserResponse of any user
 *
 * Preferences are a JSON object of known keys only, each validated (an unknown key is 422):
 * currency, cabin_class, max_stops, notifications, language, tags, emergency_contacts, phone.
 * PATCH replaces the preferences object wholesale, as the original did.
 */
#include "api/accounts.h"
#include "api/routes.h"
#include "runtime/alloc.h"
#include "runtime/worker.h"
#include "security/auth.h"
#include "security/email.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAGS     20
#define MAX_TAG_LEN  50
#define MAX_CONTACTS 5

/* ---- preferences -------------------------------------------------------------------------- */

typedef json_t *(*pref_check_fn)(json_t *v, json_t *errs, const char *key);

static void pref_error(json_t *errs, const char *key, const char *sub, const char *type, const char *msg,
                       json_t *v, json_t *ctx)
{
    fs_acct_error(errs, fs_acct_loc("preferences", key, sub), type, msg, v, ctx);
}

static bool pref_string(json_t *v, json_t *errs, const char *key, const char *sub)
{
    if (json_is_string(v))
        return true;
    pref_error(errs, key, sub, "string_type", "Input should be a valid string", v, NULL);
    return false;
}

/* Each checker returns the value to store (new reference), or NULL after recording errors. */
static json_t *check_currency(json_t *v, json_t *errs, const char *key)
{
    if (!pref_string(v, errs, key, NULL))
        return NULL;
    const char *s = json_string_value(v);
    char code[4] = "";
    bool ok = strlen(s) == 3;
    for (int i = 0; ok && i < 3; i++) {
        ok = isalpha((unsigned char)s[i]) != 0;
        code[i] = (char)toupper((unsigned char)s[i]);
    }
    if (ok)
        return json_string(code);
    pref_error(errs, key, NULL, "string_pattern_mismatch", "String should match pattern '^[A-Za-z]{3}$'", v,
               json_pack("{s:s}", "pattern", "^[A-Za-z]{3}$"));
    return NULL;
}

static json_t *check_cabin(json_t *v, json_t *errs, const char *key)
{
    static const char *const cabins[] = {"economy", "premium_economy", "business", "first"};
    for (size_t i = 0; i < 4; i++)
        if (json_is_string(v) && strcmp(json_string_value(v), cabins[i]) == 0)
            return json_incref(v);
    const char *expected = "'economy', 'premium_economy', 'business' or 'first'";
    char *msg = fs_sprintf("Input should be %s", expected);
    pref_error(errs, key, NULL, "literal_error", msg, v, json_pack("{s:s}", "expected", expected));
    free(msg);
    return NULL;
}

static json_t *check_stops(json_t *v, json_t *errs, const char *key)
{
    if (!json_is_integer(v)) {
        pref_error(errs, key, NULL, "int_type", "Input should be a valid integer", v, NULL);
        return NULL;
    }
    json_int_t n = json_integer_value(v);
    if (n >= 0 && n <= 2)
        return json_incref(v);
    bool low = n < 0;
    pref_error(errs, key, NULL, low ? "greater_than_equal" : "less_than_equal",
               low ? "Input should be greater than or equal to 0" : "Input should be less than or equal to 2",
               v, low ? json_pack("{s:i}", "ge", 0) : json_pack("{s:i}", "le", 2));
    return NULL;
}

static json_t *check_notifications(json_t *v, json_t *errs, const char *key)
{
    if (!json_is_object(v)) {
        pref_error(errs, key, NULL, "dict_type", "Input should be a valid dictionary", v, NULL);
        return NULL;
    }
    size_t before = json_array_size(errs);
    const char *sub;
    json_t *flag;
    json_object_foreach(v, sub, flag)
    {
        bool known = strcmp(sub, "email") == 0 || strcmp(sub, "sms") == 0 || strcmp(sub, "push") == 0;
        if (!known)
            pref_error(errs, key, sub, "extra_forbidden", "Extra inputs are not permitted", flag, NULL);
        else if (!json_is_boolean(flag))
            pref_error(errs, key, sub, "bool_type", "Input should be a valid boolean", flag, NULL);
    }
    return json_array_size(errs) == before ? json_incref(v) : NULL;
}

/* A BCP 47 tag in its common shape: "en", "pt-BR", "zh-Hant-TW". */
static json_t *check_language(json_t *v, json_t *errs, const char *key)
{
    if (!pref_string(v, errs, key, NULL))
        return NULL;
    const char *s = json_string_value(v);
    size_t primary = 0, n = strlen(s);
    while (isalpha((unsigned char)s[primary]))
        primary++;
    bool ok = primary >= 2 && primary <= 3 && n <= 35;
    for (size_t i = primary; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || (s[i] == '-' && i + 1 < n && s[i + 1] != '-');
    if (ok)
        return json_incref(v);
    pref_error(errs, key, NULL, "string_pattern_mismatch",
               "String should match pattern '^[A-Za-z]{2,3}(-[A-Za-z0-9]+)*$'", v,
               json_pack("{s:s}", "pattern", "^[A-Za-z]{2,3}(-[A-Za-z0-9]+)*$"));
    return NULL;
}

/* The number price-alert SMS go to (docs/NOTIFICATIONS.md), in E.164 form: "+353871234567". */
static json_t *check_phone(json_t *v, json_t *errs, const char *key)
{
    if (!pref_string(v, errs, key, NULL))
        return NULL;
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    bool ok = n >= 8 && n <= 16 && s[0] == '+' && s[1] >= '1' && s[1] <= '9';
    for (size_t i = 2; ok && i < n; i++)
        ok = isdigit((unsigned char)s[i]);
    if (ok)
        return json_incref(v);
    pref_error(errs, key, NULL, "string_pattern_mismatch", "String should match pattern '^\\+[1-9][0-9]{6,14}$'", v,
               json_pack("{s:s}", "pattern", "^\\+[1-9][0-9]{6,14}$"));
    return NULL;
}

static bool check_list(json_t *v, json_t *errs, const char *key, size_t max)
{
    if (!json_is_array(v)) {
        pref_error(errs, key, NULL, "list_type", "Input should be a valid list", v, NULL);
        return false;
    }
    if (json_array_size(v) <= max)
        return true;
    char *msg =
        fs_sprintf("List should have at most %zu items after validation, not %zu", max, json_array_size(v));
    pref_error(errs, key, NULL, "too_long", msg, v,
               json_pack("{s:s, s:I, s:I}", "field_type", "List", "max_length", (json_int_t)max,
                         "actual_length", (json_int_t)json_array_size(v)));
    free(msg);
    return false;
}

/* Used by the original's recommendations (preferences.tags). */
static json_t *check_tags(json_t *v, json_t *errs, const char *key)
{
    if (!check_list(v, errs, key, MAX_TAGS))
        return NULL;
    size_t before = json_array_size(errs), i;
    json_t *tag;
    json_array_foreach(v, i, tag)
    {
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        size_t n = json_is_string(tag) ? fs_acct_utf8_len(json_string_value(tag)) : 0;
        if (pref_string(tag, errs, key, idx) && (n == 0 || n > MAX_TAG_LEN))
            pref_error(errs, key, idx, n ? "string_too_long" : "string_too_short",
                       n ? "String should have at most 50 characters"
                         : "String should have at least 1 character",
                       tag, json_pack("{s:i}", n ? "max_length" : "min_length", n ? MAX_TAG_LEN : 1));
    }
    return json_array_size(errs) == before ? json_incref(v) : NULL;
}

static bool check_contact(json_t *c, json_t *errs, const char *key, const char *idx)
{
    if (!json_is_object(c)) {
        pref_error(errs, key, idx, "dict_type", "Input should be a valid dictionary", c, NULL);
        return false;
    }
    const char *email = json_string_value(json_object_get(c, "email"));
    char *norm = email ? fs_email_normalize(email) : NULL;
    const char *why = norm ? fs_email_check(norm) : "There must be an email address.";
    free(norm);
    if (why)
        pref_error(errs, key, idx, "value_error", "value is not a valid email address",
                   json_object_get(c, "email"), json_pack("{s:s}", "reason", why));
    const char *field;
    json_t *fv;
    json_object_foreach(c, field, fv)
    {
        bool text = strcmp(field, "name") == 0 || strcmp(field, "phone") == 0;
        if (strcmp(field, "email") != 0 &&
            (!text || !json_is_string(fv) || fs_acct_utf8_len(json_string_value(fv)) > 255)) {
            pref_error(errs, key, idx, text ? "string_type" : "extra_forbidden",
                       text ? "Input should be a valid string of at most 255 characters"
                            : "Extra inputs are not permitted",
                       fv, NULL);
            why = "bad field";
        }
    }
    return why == NULL;
}

/* Read by the notification worker of the original: [{email, name?, phone?}, ...]. */
static json_t *check_contacts(json_t *v, json_t *errs, const char *key)
{
    if (!check_list(v, errs, key, MAX_CONTACTS))
        return NULL;
    bool ok = true;
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c)
    {
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        ok &= check_contact(c, errs, key, idx);
    }
    return ok ? json_incref(v) : NULL;
}

static const struct {
    const char *key;
    pref_check_fn check;
} known_prefs[] = {
    {"currency", check_currency},           {"cabin_class", check_cabin}, {"max_stops", check_stops},
    {"notifications", check_notifications}, {"language", check_language}, {"tags", check_tags},
    {"emergency_contacts", check_contacts}, {"phone", check_phone},
};

static pref_check_fn pref_checker(const char *key)
{
    for (size_t i = 0; i < sizeof known_prefs / sizeof known_prefs[0]; i++)
        if (strcmp(known_prefs[i].key, key) == 0)
            return known_prefs[i].check;
    return NULL;
}

/* The normalized preferences to store (new reference), or NULL with errors recorded. A key
 * whose value is null is left out (it means "not set"). JSON null for the whole object
 * clears it to {}. */
static json_t *read_preferences(json_t *v, json_t *errs)
{
    if (json_is_null(v))
        return json_object();
    if (!json_is_object(v)) {
        fs_acct_error(errs, fs_acct_loc("preferences", NULL, NULL), "dict_type",
                      "Input should be a valid dictionary", v, NULL);
        return NULL;
    }
    json_t *out = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        pref_check_fn check = pref_checker(key);
        if (!check) {
            pref_error(errs, key, NULL, "extra_forbidden", "Extra inputs are not permitted", val, NULL);
            continue;
        }
        json_t *norm = json_is_null(val) ? NULL : check(val, errs, key);
        if (norm)
            json_object_set_new(out, key, norm);
    }
    if (json_array_size(errs) == 0)
        return out;
    json_decref(out);
    return NULL;
}

/* ---- GET /users/me ------------------------------------------------------------------------ */

static void me_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    fs_reply_json(req, 200, fs_user_json(user));
}

static void get_me(fs_req_t *req)
{
    fs_auth_require(req, false, me_on_user, NULL);
}

/* ---- PATCH /users/me ---------------------------------------------------------------------- */

typedef struct {
    fs_req_t *req;
    char user_id[FS_UUID_LEN];
    fs_acct_profile_t profile;
    char *preferences; /* serialized; NULL when not in the body */
} patch_t;

static void patch_free(patch_t *p)
{
    fs_acct_profile_clear(&p->profile);
    free(p->preferences);
    free(p);
}

static void patch_on_update(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    patch_t *p = arg;
    if (status != FS_PG_OK)
        fs_auth_reply_pg_error(p->req, status, error);
    else if (PQntuples(res) == 0) /* deleted since the guard loaded it */
        fs_auth_reply_401(p->req, "Could not validate credentials");
    else {
        fs_user_t u;
        fs_user_from_row(res, 0, 0, &u);
        fs_reply_json(p->req, 200, fs_user_json(&u));
        fs_user_clear(&u);
    }
    patch_free(p);
}

/* Only the fields present in the body are written (a flag per field), so one prepared
 * statement serves every combination. */
static void patch_update(patch_t *p)
{
    const fs_acct_profile_t *f = &p->profile;
    const char *params[] = {
        p->user_id,    f->full_name_set ? "t" : "f", f->full_name, f->home_city_set ? "t" : "f",
        f->home_city,  f->airport_set ? "t" : "f",   f->airport,   p->preferences ? "t" : "f",
        p->preferences};
    fs_pg_query(fs_worker->pg, "users_patch",
                "UPDATE users u SET "
                "full_name = CASE WHEN $2::boolean THEN $3 ELSE full_name END, "
                "home_city = CASE WHEN $4::boolean THEN $5 ELSE home_city END, "
                "home_airport_code = CASE WHEN $6::boolean THEN $7 ELSE home_airport_code END, "
                "preferences = CASE WHEN $8::boolean THEN $9::jsonb ELSE preferences END, "
                "updated_at = now() "
                "WHERE id = $1 RETURNING " FS_USER_COLUMNS,
                9, params, patch_on_update, p);
}

static void patch_on_airport(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    patch_t *p = arg;
    if (status != FS_PG_OK) {
        fs_auth_reply_pg_error(p->req, status, error);
    } else if (PQgetvalue(res, 0, 0)[0] != 't') {
        json_t *errs = json_array();
        fs_acct_unknown_airport(errs, p->profile.airport);
        fs_acct_reply_errors(p->req, errs);
    } else {
        patch_update(p);
        return;
    }
    patch_free(p);
}

static void patch_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    json_t *body = fs_req_json_or_reply(req);
    if (!body)
        return;
    json_t *errs = json_array();
    patch_t *p = FS_NEW(patch_t);
    p->req = req;
    memcpy(p->user_id, user->id, sizeof p->user_id);
    fs_acct_profile_read(body, errs, &p->profile);
    json_t *prefs = json_object_get(body, "preferences");
    json_t *norm = prefs ? read_preferences(prefs, errs) : NULL;
    if (norm)
        p->preferences = json_dumps(norm, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(norm);
    json_decref(body);
    if (fs_acct_reply_errors(req, errs)) {
        patch_free(p);
        return;
    }
    if (!p->profile.airport) {
        patch_update(p);
        return;
    }
    const char *params[] = {p->profile.airport};
    fs_pg_query(fs_worker->pg, "acct_airport", FS_ACCT_AIRPORT_SQL, 1, params, patch_on_airport, p);
}

static void patch_me(fs_req_t *req)
{
    fs_auth_require(req, false, patch_on_user, NULL);
}

/* ---- GET /users/me/recommendations -------------------------------------------------------- */

/* The original ranked rows of `destinations` by the user's preferred tags. That table has no
 * data source in this system yet, so the honest answer is an empty list that says why. */
static void recommendations_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    fs_reply_json(req, 200,
                  json_pack("{s:o, s:[], s:s}", "user_home",
                            user->home_city ? json_string(user->home_city) : json_null(), "recommendations",
                            "reason", "No destination data is available yet"));
}

static void get_recommendations(fs_req_t *req)
{
    fs_auth_require(req, false, recommendations_on_user, NULL);
}

/* ---- GET /users/{user_id} (admin) --------------------------------------------------------- */

static void user_on_row(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    fs_req_t *req = arg;
    if (status != FS_PG_OK)
        fs_auth_reply_pg_error(req, status, error);
    else if (PQntuples(res) == 0)
        fs_reply_detail(req, 404, "User not found");
    else {
        fs_user_t u;
        fs_user_from_row(res, 0, 0, &u);
        fs_reply_json(req, 200, fs_user_json(&u));
        fs_user_clear(&u);
    }
}

static void user_on_admin(fs_req_t *req, const fs_user_t *admin, void *arg)
{
    const char *id = fs_req_param(req, "user_id");
    if (!fs_uuid_valid(id)) {
        fs_errors_t *e = fs_errors_new();
        fs_errors_add(
            e, "path", "user_id", "uuid_parsing",
            "Input should be a valid UUID, invalid character: expected an optional prefix of `urn:uuid:` "
            "followed by [0-9a-fA-F-]",
            json_string(id), NULL);
        fs_errors_reply(req, e);
        return;
    }
    const char *params[] = {id};
    fs_pg_query(fs_worker->pg, "users_get", "SELECT " FS_USER_COLUMNS " FROM users u WHERE u.id = $1", 1,
                params, user_on_row, req);
}

static void get_user(fs_req_t *req)
{
    fs_auth_require(req, true, user_on_admin, NULL);
}

void fs_api_users_routes(fs_router_t *r)
{
    fs_router_add(r, "GET", "/users/me", get_me);
    fs_router_add(r, "PATCH", "/users/me", patch_me);
    fs_router_add(r, "GET", "/users/me/recommendations", get_recommendations);
    fs_router_add(r, "GET", "/users/{user_id}", get_user);
}
