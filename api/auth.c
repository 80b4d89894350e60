/* Accounts: registration, login, token refresh with rotation, logout (docs/ACCOUNTS.md).
 *
 *   POST /auth/register  JSON UserCreate -> 201 UserResponse
 *   POST /auth/login     OAuth2 password form (or JSON) -> TokenResponse
 *   POST /auth/refresh   {"refresh_token"} -> TokenResponse; the presented token is consumed
 *   POST /auth/logout    (auth) {"refresh_token"}? -> 200; ends the session (token family)
 *   GET  /auth/me        (auth) -> UserResponse
 *
 * Password hashing and verification run on the worker's thread pool; everything else is
 * asynchronous on the loop. A reply is sent only after what it reports has been committed.
 */
#include "api/accounts.h"
#include "api/http_int.h"
#include "api/routes.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/threadpool.h"
#include "runtime/worker.h"
#include "security/auth.h"
#include "security/email.h"
#include "security/jwt.h"
#include "security/password.h"
#include "security/ratelimit.h"
#include "storage/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BAD_LOGIN   "Incorrect email or password"
#define BAD_REFRESH "Invalid refresh token"

/* ---- tokens ------------------------------------------------------------------------------- */

/* Lifetimes of one issue, computed once so that the JWTs and the rows agree. */
typedef struct {
    long long now, access_exp, refresh_exp;
} lifetimes_t;

static lifetimes_t lifetimes_now(void)
{
    long long now = fs_acct_now();
    return (lifetimes_t){now, now + 60LL * fs_cfg->access_token_expire_minutes,
                         now + 86400LL * fs_cfg->refresh_token_expire_days};
}

/* The family row must outlive every token issued in it (access tokens name it too). */
static long long family_exp(const lifetimes_t *t)
{
    return t->access_exp > t->refresh_exp ? t->access_exp : t->refresh_exp;
}

static char *sign(fs_jwt_type_t type, const char *user_id, const char *fam, const char *jti, long long iat,
                  long long exp)
{
    fs_jwt_claims_t c = {.type = type, .iat = iat, .exp = exp};
    snprintf(c.sub, sizeof c.sub, "%s", user_id);
    snprintf(c.fam, sizeof c.fam, "%s", fam);
    if (jti)
        snprintf(c.jti, sizeof c.jti, "%s", jti);
    else
        fs_uuid_v4(c.jti);
    return fs_jwt_encode(&c, fs_cfg->secret_key, strlen(fs_cfg->secret_key));
}

/* TokenResponse. expires_in is the access token's real lifetime (the original reported half of
 * it at login, §11 item 7). RFC 6749 §5.1: token responses must not be cached. */
static void reply_tokens(fs_req_t *req, const char *user_id, const char *fam, const char *refresh_jti,
                         const lifetimes_t *t)
{
    char *access = sign(FS_JWT_ACCESS, user_id, fam, NULL, t->now, t->access_exp);
    char *refresh = sign(FS_JWT_REFRESH, user_id, fam, refresh_jti, t->now, t->refresh_exp);
    json_t *body = json_pack("{s:s, s:s, s:s, s:I}", "access_token", access, "refresh_token", refresh,
                             "token_type", "bearer", "expires_in", (json_int_t)(t->access_exp - t->now));
    explicit_bzero(access, strlen(access));
    explicit_bzero(refresh, strlen(refresh));
    free(access);
    free(refresh);
    fs_reply_header(req, "Cache-Control", "no-store");
    fs_reply_header(req, "Pragma", "no-cache");
    fs_reply_json(req, 200, body);
}

static char *fmt_ll(long long v)
{
    return fs_sprintf("%lld", v);
}

/* ---- POST /auth/register ------------------------------------------------------------------ */

typedef struct {
    fs_req_t *req;
    char *email;
    char *password;
    size_t password_len;
    fs_acct_profile_t profile;
    fs_password_params_t params;
    char *hash;
} reg_t;

/* Wipes and frees a password copy (NULL allowed). */
static void free_secret(char *s, size_t len)
{
    if (s)
        explicit_bzero(s, len);
    free(s);
}

static void reg_free(reg_t *r)
{
    free_secret(r->password, r->password_len);
    free(r->email);
    free(r->hash);
    fs_acct_profile_clear(&r->profile);
    free(r);
}

static void reg_on_insert(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    reg_t *r = arg;
    if (status != FS_PG_OK)
        fs_auth_reply_pg_error(r->req, status, error);
    else if (PQntuples(res) == 0) /* lost a race with the same e-mail */
        fs_reply_detail(r->req, 400, "Email already registered");
    else {
        fs_user_t u;
        fs_user_from_row(res, 0, 0, &u);
        fs_info("account registered: user %s", u.id);
        fs_reply_json(r->req, 201, fs_user_json(&u));
        fs_user_clear(&u);
    }
    reg_free(r);
}

static void reg_hash_work(void *arg)
{
    reg_t *r = arg;
    r->hash = fs_password_hash(r->password, r->password_len, &r->params);
}

static void reg_after_hash(void *arg)
{
    reg_t *r = arg;
    if (!r->hash) {
        fs_error("password hashing failed (argon2 could not allocate memory?)");
        fs_reply_unavailable(r->req, 5, "Service temporarily unavailable");
        reg_free(r);
        return;
    }
    const char *params[] = {r->email, r->hash, r->profile.full_name, r->profile.home_city,
                            r->profile.airport};
    fs_pg_query(fs_worker->pg, "acct_register",
                "INSERT INTO users AS u (email, password_hash, full_name, home_city, home_airport_code) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING RETURNING " FS_USER_COLUMNS,
                5, params, reg_on_insert, r);
}

/* Submits `work` to the thread pool, or answers 503 when its queue is full. */
static bool submit_or_reply(fs_req_t *req, fs_work_fn work, fs_after_work_fn after, void *arg)
{
    if (fs_threadpool_submit(fs_worker->pool, work, after, arg) == 0)
        return true;
    fs_reply_unavailable(req, 1, "Server busy, try again");
    return false;
}

/* A duplicate e-mail is reported before hashing (hashing is the expensive step); the INSERT
 * still resolves races between two registrations of the same address. */
static void reg_on_precheck(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    reg_t *r = arg;
    if (status != FS_PG_OK) {
        fs_auth_reply_pg_error(r->req, status, error);
    } else if (PQgetvalue(res, 0, 1)[0] != 't') {
        json_t *errs = json_array();
        fs_acct_unknown_airport(errs, r->profile.airport);
        fs_acct_reply_errors(r->req, errs);
    } else if (PQgetvalue(res, 0, 0)[0] == 't') {
        fs_reply_detail(r->req, 400, "Email already registered");
    } else if (submit_or_reply(r->req, reg_hash_work, reg_after_hash, r)) {
        return;
    }
    reg_free(r);
}

/* email: required, EmailStr (normalized first); password: 8-100 characters. */
static char *read_email(json_t *body, json_t *errs, bool required)
{
    const char *raw;
    bool present;
    fs_acct_str(body, errs, "email", required, false, 0, 0, &raw, &present);
    if (!raw)
        return NULL;
    char *email = fs_email_normalize(raw);
    const char *why = fs_email_check(email);
    if (why) {
        char *msg = fs_sprintf("value is not a valid email address: %s", why);
        fs_acct_error(errs, fs_acct_loc("email", NULL, NULL), "value_error", msg,
                      json_object_get(body, "email"), json_pack("{s:s}", "reason", why));
        free(msg);
        free(email);
        return NULL;
    }
    return email;
}

static void post_register(fs_req_t *req)
{
    json_t *body = fs_req_json_or_reply(req);
    if (!body)
        return;
    json_t *errs = json_array();
    reg_t *r = FS_NEW(reg_t);
    r->req = req;
    r->params = fs_password_params_from_config();
    r->email = read_email(body, errs, true);
    const char *password;
    bool present;
    fs_acct_str(body, errs, "password", true, false, 8, 100, &password, &present);
    if (password) {
        r->password_len = strlen(password);
        r->password = fs_strndup(password, r->password_len);
    }
    fs_acct_profile_read(body, errs, &r->profile);
    json_decref(body);
    if (fs_acct_reply_errors(req, errs)) {
        reg_free(r);
        return;
    }
    const char *params[] = {r->email, r->profile.airport};
    fs_pg_query(fs_worker->pg, "acct_register_precheck",
                "SELECT EXISTS (SELECT 1 FROM users WHERE email = $1), "
                "$2::text IS NULL OR EXISTS (SELECT 1 FROM airports WHERE iata_code = $2 AND is_active)",
                2, params, reg_on_precheck, r);
}

/* ---- POST /auth/login --------------------------------------------------------------------- */

typedef struct {
    fs_req_t *req;
    char *email;
    char *password;
    size_t password_len;
    char ip[64];
    fs_password_params_t params;
    bool found;
    fs_user_t user;
    char *hash; /* users.password_hash; NULL when the e-mail is unknown */
    fs_password_rc_t verdict;
    char fam[FS_UUID_LEN], jti[FS_UUID_LEN];
    lifetimes_t times;
} login_t;

static void login_free(login_t *l)
{
    free_secret(l->password, l->password_len);
    free(l->email);
    free(l->hash);
    if (l->found)
        fs_user_clear(&l->user);
    free(l);
}

static void login_on_issued(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    login_t *l = arg;
    if (status != FS_PG_OK)
        fs_auth_reply_pg_error(l->req, status, error);
    else
        reply_tokens(l->req, l->user.id, l->fam, l->jti, &l->times);
    login_free(l);
}

/* A new session: its family row and first refresh token, committed before the tokens are
 * handed out. The user's sessions that have fully expired are pruned on the way. */
static void login_issue(login_t *l)
{
    fs_ratelimit_login_succeeded(fs_worker->redis, l->email);
    l->times = lifetimes_now();
    fs_uuid_v4(l->fam);
    fs_uuid_v4(l->jti);
    char *refresh_exp = fmt_ll(l->times.refresh_exp), *fam_exp = fmt_ll(family_exp(&l->times));
    const char *params[] = {l->fam, l->user.id, l->jti, refresh_exp, fam_exp};
    fs_pg_query(
        fs_worker->pg, "acct_login_issue",
        "WITH pruned AS (DELETE FROM refresh_token_families WHERE user_id = $2 AND expires_at < now()), "
        "fam AS (INSERT INTO refresh_token_families (id, user_id, expires_at) "
        "        VALUES ($1, $2, to_timestamp($5)) RETURNING id) "
        "INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at) "
        "SELECT $3, id, $2, to_timestamp($4) FROM fam",
        5, params, login_on_issued, l);
    free(refresh_exp);
    free(fam_exp);
}

static void login_on_counted(const fs_ratelimit_verdict_t *v, void *arg)
{
    login_t *l = arg;
    fs_auth_reply_401(l->req, BAD_LOGIN);
    login_free(l);
}

static void login_after_verify(void *arg)
{
    login_t *l = arg;
    if (l->verdict == FS_PASSWORD_FAILED) {
        fs_reply_unavailable(l->req, 5, "Service temporarily unavailable");
        login_free(l);
    } else if (l->verdict != FS_PASSWORD_OK || !l->found) {
        if (l->verdict == FS_PASSWORD_MALFORMED && l->found)
            fs_error("user %s has a password hash that cannot be read", l->user.id);
        fs_ratelimit_login_failed(fs_worker->redis, l->email, l->ip, login_on_counted, l);
    } else if (!l->user.is_active) {
        fs_reply_detail(l->req, 403, "Inactive user");
        login_free(l);
    } else {
        login_issue(l);
    }
}

/* An unknown e-mail is verified against a dummy hash of the same cost, so the answer takes
 * as long as for a known one. */
static void login_verify_work(void *arg)
{
    login_t *l = arg;
    const char *hash = l->hash ? l->hash : fs_password_dummy_hash(&l->params);
    l->verdict = hash ? fs_password_verify(hash, l->password, l->password_len) : FS_PASSWORD_FAILED;
    if (!l->hash && l->verdict == FS_PASSWORD_OK)
        l->verdict = FS_PASSWORD_MISMATCH;
    explicit_bzero(l->password, l->password_len);
}

static void login_on_user(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    login_t *l = arg;
    if (status != FS_PG_OK) {
        fs_auth_reply_pg_error(l->req, status, error);
        login_free(l);
        return;
    }
    if (PQntuples(res) == 1) {
        l->found = true;
        fs_user_from_row(res, 0, 0, &l->user);
        l->hash = fs_strdup(PQgetvalue(res, 0, FS_USER_NCOLUMNS));
    }
    if (!submit_or_reply(l->req, login_verify_work, login_after_verify, l))
        login_free(l);
}

static void login_on_limit(const fs_ratelimit_verdict_t *v, void *arg)
{
    login_t *l = arg;
    if (v->limited) {
        char retry[16];
        snprintf(retry, sizeof retry, "%d", v->retry_after_s);
        fs_info("login refused: too many failures for this %s", v->scope);
        fs_reply_header(l->req, "Retry-After", retry);
        fs_reply_detail(l->req, 429, "Too many failed login attempts; try again in %d seconds",
                        v->retry_after_s);
        login_free(l);
        return;
    }
    const char *params[] = {l->email};
    fs_pg_query(fs_worker->pg, "acct_login_user",
                "SELECT " FS_USER_COLUMNS ", u.password_hash FROM users u WHERE u.email = $1", 1, params,
                login_on_user, l);
}

/* application/x-www-form-urlencoded into a JSON object of strings (first value of a repeated
 * key wins), so the form and JSON bodies are validated by the same code. NULL when the body
 * is not valid percent-encoded UTF-8. */
static json_t *form_to_json(const char *body, size_t len)
{
    json_t *out = json_object();
    for (const char *p = body, *end = body + len; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t n = amp ? (size_t)(amp - p) : (size_t)(end - p);
        const char *eq = memchr(p, '=', n);
        size_t klen = eq ? (size_t)(eq - p) : n;
        char *key = NULL, *val = NULL;
        bool ok = fs_http_decode(p, klen, true, &key) == FS_DECODE_OK &&
                  (eq ? fs_http_decode(eq + 1, n - klen - 1, true, &val) == FS_DECODE_OK
                      : (val = fs_strdup("")) != NULL);
        if (ok && *key && !json_object_get(out, key))
            json_object_set_new(out, key, json_string(val));
        free(key);
        free(val);
        if (!ok) {
            json_decref(out);
            return NULL;
        }
        p += n + 1;
    }
    return out;
}

static json_t *login_body_or_reply(fs_req_t *req)
{
    const char *type = fs_req_header(req, "Content-Type");
    if (type && strncasecmp(type, "application/json", 16) == 0)
        return fs_req_json_or_reply(req);
    size_t len;
    const char *body = fs_req_body(req, &len);
    json_t *form = form_to_json(body, len);
    if (!form)
        fs_reply_detail(req, 400, "There was an error parsing the body");
    return form;
}

/* OAuth2PasswordRequestForm: username (the e-mail), password, grant_type "password" if sent.
 * JSON bodies may say "email" instead of "username". */
static bool read_credentials(json_t *body, json_t *errs, const char **user, const char **password)
{
    bool present;
    const char *grant;
    const char *user_field =
        json_object_get(body, "username") || !json_object_get(body, "email") ? "username" : "email";
    fs_acct_str(body, errs, user_field, true, false, 0, 0, user, &present);
    fs_acct_str(body, errs, "password", true, false, 0, 0, password, &present);
    fs_acct_str(body, errs, "grant_type", false, true, 0, 0, &grant, &present);
    if (grant && strcmp(grant, "password") != 0)
        fs_acct_error(errs, fs_acct_loc("grant_type", NULL, NULL), "string_pattern_mismatch",
                      "String should match pattern 'password'", json_object_get(body, "grant_type"),
                      json_pack("{s:s}", "pattern", "password"));
    return json_array_size(errs) == 0;
}

static void post_login(fs_req_t *req)
{
    json_t *body = login_body_or_reply(req);
    if (!body)
        return;
    json_t *errs = json_array();
    const char *user, *password;
    if (!read_credentials(body, errs, &user, &password)) {
        json_decref(body);
        fs_acct_reply_errors(req, errs);
        return;
    }
    json_decref(errs);
    login_t *l = FS_NEW(login_t);
    l->req = req;
    l->email = fs_email_normalize(user);
    l->password_len = strlen(password);
    l->password = fs_strndup(password, l->password_len);
    l->params = fs_password_params_from_config();
    snprintf(l->ip, sizeof l->ip, "%s", fs_req_peer_ip(req));
    json_decref(body);
    fs_ratelimit_login_check(fs_worker->redis, l->email, l->ip, login_on_limit, l);
}

/* ---- POST /auth/refresh ------------------------------------------------------------------- */

typedef struct {
    fs_req_t *req;
    fs_jwt_claims_t old;
    char jti[FS_UUID_LEN];
    lifetimes_t times;
} refresh_t;

static void refresh_on_reuse(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    refresh_t *r = arg;
    if (status != FS_PG_OK)
        fs_auth_reply_pg_error(r->req, status, error);
    else {
        if (atoi(PQgetvalue(res, 0, 0)) > 0)
            fs_warn("refresh token presented twice for user %s: session %s revoked", r->old.sub, r->old.fam);
        fs_auth_reply_401(r->req, BAD_REFRESH);
    }
    free(r);
}

/* The token was valid but could not be consumed: it was used before (reuse: end the whole
 * family), or it expired, or its family was revoked already (nothing more to do). */
static void refresh_handle_reuse(refresh_t *r)
{
    const char *params[] = {r->old.jti, r->old.sub};
    fs_pg_query(fs_worker->pg, "acct_refresh_reuse",
                "WITH tok AS (SELECT family_id FROM refresh_tokens "
                "             WHERE jti = $1 AND user_id = $2 AND used_at IS NOT NULL), "
                "fam AS (UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = 'reuse' "
                "        WHERE id IN (SELECT family_id FROM tok) AND revoked_at IS NULL RETURNING id), "
                "toks AS (UPDATE refresh_tokens SET revoked_at = now() "
                "         WHERE family_id IN (SELECT id FROM fam) AND revoked_at IS NULL) "
                "SELECT count(*) FROM fam",
                2, params, refresh_on_reuse, r);
}

static void refresh_on_rotate(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    refresh_t *r = arg;
    if (status != FS_PG_OK) {
        fs_auth_reply_pg_error(r->req, status, error);
    } else if (PQntuples(res) == 0) {
        refresh_handle_reuse(r);
        return;
    } else {
        fs_user_t u;
        fs_user_from_row(res, 0, 1, &u);
        if (u.is_active)
            reply_tokens(r->req, u.id, PQgetvalue(res, 0, 0), r->jti, &r->times);
        else
            fs_reply_detail(r->req, 403, "Inactive user");
        fs_user_clear(&u);
    }
    free(r);
}

/* Consumes the presented token and inserts its successor in one statement: two concurrent
 * refreshes with the same token cannot both succeed (the second finds used_at set and is
 * treated as reuse). */
static void refresh_rotate(refresh_t *r)
{
    r->times = lifetimes_now();
    fs_uuid_v4(r->jti);
    char *refresh_exp = fmt_ll(r->times.refresh_exp), *fam_exp = fmt_ll(family_exp(&r->times));
    const char *params[] = {r->old.jti, r->old.sub, r->jti, refresh_exp, fam_exp};
    fs_pg_query(
        fs_worker->pg, "acct_refresh_rotate",
        "WITH cur AS (UPDATE refresh_tokens t SET used_at = now() FROM refresh_token_families f "
        "             WHERE t.jti = $1 AND t.user_id = $2 AND t.used_at IS NULL AND t.revoked_at IS NULL "
        "               AND t.expires_at > now() AND f.id = t.family_id AND f.revoked_at IS NULL "
        "             RETURNING t.family_id), "
        "fam AS (UPDATE refresh_token_families SET expires_at = greatest(expires_at, to_timestamp($5)) "
        "        WHERE id IN (SELECT family_id FROM cur)), "
        "ins AS (INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at) "
        "        SELECT $3, family_id, $2, to_timestamp($4) FROM cur) "
        "SELECT cur.family_id::text, " FS_USER_COLUMNS " FROM cur JOIN users u ON u.id = $2",
        5, params, refresh_on_rotate, r);
    free(refresh_exp);
    free(fam_exp);
}

static void post_refresh(fs_req_t *req)
{
    json_t *body = fs_req_json_or_reply(req);
    if (!body)
        return;
    json_t *errs = json_array();
    const char *token;
    bool present;
    fs_acct_str(body, errs, "refresh_token", true, false, 0, 0, &token, &present);
    if (fs_acct_reply_errors(req, errs)) {
        json_decref(body);
        return;
    }
    refresh_t *r = FS_NEW(refresh_t);
    r->req = req;
    fs_jwt_rc_t rc = fs_jwt_decode(token, fs_cfg->secret_key, strlen(fs_cfg->secret_key), FS_JWT_REFRESH,
                                   fs_acct_now(), &r->old);
    json_decref(body);
    if (rc != FS_JWT_OK || !r->old.fam[0]) {
        fs_debug("refresh token refused: %s", fs_jwt_strerror(rc));
        fs_auth_reply_401(req, BAD_REFRESH);
        free(r);
        return;
    }
    refresh_rotate(r);
}

/* ---- POST /auth/logout -------------------------------------------------------------------- */

static void logout_on_revoked(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    fs_req_t *req = arg;
    if (status != FS_PG_OK)
        fs_auth_reply_pg_error(req, status, error);
    else
        fs_reply_json(req, 200, json_pack("{s:s}", "message", "Successfully logged out"));
}

/* The refresh token named in the body, if it verifies and is the caller's: its jti. */
static bool logout_refresh_jti(fs_req_t *req, const fs_user_t *user, char jti[FS_UUID_LEN])
{
    size_t len;
    fs_req_body(req, &len);
    if (len == 0)
        return true;
    json_t *body = fs_req_json_or_reply(req);
    if (!body)
        return false;
    json_t *errs = json_array();
    const char *token;
    bool present;
    fs_acct_str(body, errs, "refresh_token", false, true, 0, 0, &token, &present);
    fs_jwt_claims_t c;
    if (token &&
        fs_jwt_decode(token, fs_cfg->secret_key, strlen(fs_cfg->secret_key), FS_JWT_REFRESH, fs_acct_now(),
                      &c) == FS_JWT_OK &&
        strcmp(c.sub, user->id) == 0)
        memcpy(jti, c.jti, FS_UUID_LEN);
    json_decref(body);
    return !fs_acct_reply_errors(req, errs);
}

/* Ends the session of the access token used, and the session of the refresh token sent (a
 * client that kept its refresh token elsewhere can end that session too). */
static void logout_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    char jti[FS_UUID_LEN] = "";
    if (!logout_refresh_jti(req, user, jti))
        return;
    const char *params[] = {user->id, user->session[0] ? user->session : NULL, jti[0] ? jti : NULL};
    fs_pg_query(
        fs_worker->pg, "acct_logout",
        "WITH fam AS (UPDATE refresh_token_families SET revoked_at = now(), revoked_reason = 'logout' "
        "             WHERE user_id = $1 AND revoked_at IS NULL AND (id = $2::uuid OR id = "
        "               (SELECT family_id FROM refresh_tokens WHERE jti = $3::uuid)) RETURNING id) "
        "UPDATE refresh_tokens SET revoked_at = now() "
        "WHERE family_id IN (SELECT id FROM fam) AND revoked_at IS NULL",
        3, params, logout_on_revoked, req);
}

static void post_logout(fs_req_t *req)
{
    fs_auth_require(req, false, logout_on_user, NULL);
}

/* ---- GET /auth/me ------------------------------------------------------------------------- */

static void me_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    fs_reply_json(req, 200, fs_user_json(user));
}

static void get_me(fs_req_t *req)
{
    fs_auth_require(req, false, me_on_user, NULL);
}

void fs_api_auth_routes(fs_router_t *r)
{
    fs_router_add(r, "POST", "/auth/register", post_register);
    fs_router_add(r, "POST", "/auth/login", post_login);
    fs_router_add(r, "POST", "/auth/refresh", post_refresh);
    fs_router_add(r, "POST", "/auth/logout", post_logout);
    fs_router_add(r, "GET", "/auth/me", get_me);
}
