/* Accounts over real HTTP against the real server, PostgreSQL and Redis: registration, login,
 * the token lifecycle (refresh rotation, reuse detection, logout), the request guard,
 * brute-force limits, and hashing kept off the event loop. */
#include "tests/accounts_helpers.h"

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>

static fs_test_server_t srv;

static void start_with(int workers, const char *const *env)
{
    cr_assert_eq(fs_test_server_start(&srv, workers, env), 0, "server did not start; see %s", srv.log_path);
}

static void start_default(void)
{
    static const char *const env[] = {ACCT_FAST_ARGON2, "LOGIN_MAX_FAILURES_PER_IP=1000000", NULL};
    start_with(2, env);
}

static void stop(void)
{
    if (srv.pid > 0)
        fs_test_server_stop(&srv);
}

static long me(const char *token, json_t **out)
{
    return acct_json(&srv, "GET", "/auth/me", NULL, token, out);
}

static void assert_401(long status, json_t *j, const char *detail)
{
    cr_assert_eq(status, 401, "expected 401 '%s', got %ld %s", detail, status, acct_detail(j));
    cr_assert_str_eq(acct_detail(j), detail);
}

/* ---- the full flow ------------------------------------------------------------------------ */

Test(auth, register_login_me_refresh_reuse_logout, .init = start_default, .fini = stop)
{
    acct_airport("Q9A", true);
    char *email = acct_unique_email("Flow");
    char *upper = fs_sprintf("  %s ", email);
    for (char *c = upper; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    char *body = fs_sprintf("{\"email\":\"%s\",\"password\":\"correct horse\",\"full_name\":\"Ann\","
                            "\"home_city\":\"Dublin\",\"home_airport_code\":\"q9a\",\"is_admin\":true}",
                            upper);
    json_t *user;
    cr_assert_eq(acct_json(&srv, "POST", "/auth/register", body, NULL, &user), 201);
    char *lower = fs_strdup(email);
    for (char *c = lower; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    cr_assert_str_eq(json_string_value(json_object_get(user, "email")), lower,
                     "e-mails are trimmed and lower-cased");
    cr_assert_str_eq(json_string_value(json_object_get(user, "home_airport_code")), "Q9A");
    cr_assert_str_eq(json_string_value(json_object_get(user, "full_name")), "Ann");
    cr_assert(json_is_false(json_object_get(user, "is_admin")), "is_admin cannot be set by registering");
    cr_assert(json_is_true(json_object_get(user, "is_active")));
    cr_assert(json_is_object(json_object_get(user, "preferences")));
    cr_assert(fs_uuid_valid(json_string_value(json_object_get(user, "id"))));
    cr_assert_null(json_object_get(user, "password_hash"));
    cr_assert_null(json_object_get(user, "password"));
    const char *created = json_string_value(json_object_get(user, "created_at"));
    cr_assert(created && strlen(created) == 27 && created[10] == 'T' && created[26] == 'Z', "%s", created);

    /* login with the form (upper-case e-mail works), then with JSON (surrounding blanks too) */
    char *access = NULL, *refresh = NULL;
    cr_assert_eq(acct_login(&srv, upper + 2, "correct+horse", &access, &refresh), 200);
    json_t *tok;
    char *json_login = fs_sprintf("{\"username\":\"%s\",\"password\":\"correct horse\"}", upper);
    cr_assert_eq(acct_json(&srv, "POST", "/auth/login", json_login, NULL, &tok), 200);
    cr_assert_str_eq(json_string_value(json_object_get(tok, "token_type")), "bearer");
    cr_assert_eq(json_integer_value(json_object_get(tok, "expires_in")), 1440 * 60);
    json_decref(tok);

    json_t *got;
    cr_assert_eq(me(access, &got), 200);
    cr_assert(json_equal(json_object_get(got, "id"), json_object_get(user, "id")));
    json_decref(got);

    /* refresh: a new pair, both working */
    json_t *pair;
    cr_assert_eq(acct_refresh(&srv, refresh, &pair), 200);
    const char *access2 = json_string_value(json_object_get(pair, "access_token"));
    const char *refresh2 = json_string_value(json_object_get(pair, "refresh_token"));
    cr_assert(access2 && refresh2 && strcmp(refresh2, refresh) != 0);
    cr_assert_eq(me(access2, &got), 200);
    json_decref(got);

    /* the old refresh token again: refused, and the whole family dies with it */
    cr_assert_eq(acct_refresh(&srv, refresh, &got), 401);
    cr_assert_str_eq(acct_detail(got), "Invalid refresh token");
    json_decref(got);
    cr_assert_eq(acct_refresh(&srv, refresh2, &got), 401,
                 "the newest refresh token of a reused family is revoked");
    json_decref(got);
    {
        long st_ = me(access2, &got);
        assert_401(st_, got, "Could not validate credentials");
    }
    json_decref(got);

    /* a new session is unaffected by the old one; logout ends it */
    char *access3 = NULL, *refresh3 = NULL;
    cr_assert_eq(acct_login(&srv, lower, "correct%20horse", &access3, &refresh3), 200);
    cr_assert_eq(me(access3, NULL), 200);
    char *logout = fs_sprintf("{\"refresh_token\":\"%s\"}", refresh3);
    cr_assert_eq(acct_json(&srv, "POST", "/auth/logout", logout, access3, &got), 200);
    json_decref(got);
    cr_assert_eq(acct_refresh(&srv, refresh3, &got), 401, "logout revokes the refresh token");
    json_decref(got);
    {
        long st_ = me(access3, &got);
        assert_401(st_, got, "Could not validate credentials");
    }
    json_decref(got);
    /* logout needs authentication */
    {
        long st_ = acct_json(&srv, "POST", "/auth/logout", NULL, NULL, &got);
        assert_401(st_, got, "Not authenticated");
    }
    json_decref(got);

    json_decref(pair);
    json_decref(user);
    free(email), free(upper), free(lower), free(body), free(json_login), free(logout);
    free(access), free(refresh), free(access3), free(refresh3);
    acct_assert_healthy(&srv);
}

Test(auth, logout_without_body_ends_the_session_of_the_access_token, .init = start_default, .fini = stop)
{
    char *email = acct_unique_email("logout");
    json_decref(acct_register(&srv, email, "password-1"));
    char *a1 = NULL, *r1 = NULL, *a2 = NULL, *r2 = NULL;
    cr_assert_eq(acct_login(&srv, email, "password-1", &a1, &r1), 200);
    cr_assert_eq(acct_login(&srv, email, "password-1", &a2, &r2), 200);
    cr_assert_eq(acct_json(&srv, "POST", "/auth/logout", NULL, a1, NULL), 200);
    cr_assert_eq(me(a1, NULL), 401);
    cr_assert_eq(acct_refresh(&srv, r1, NULL), 401);
    cr_assert_eq(me(a2, NULL), 200, "other sessions stay");
    cr_assert_eq(acct_refresh(&srv, r2, NULL), 200);
    free(email), free(a1), free(r1), free(a2), free(r2);
    acct_assert_healthy(&srv);
}

Test(auth, expires_in_matches_the_token_lifetime, .fini = stop)
{
    static const char *const env[] = {ACCT_FAST_ARGON2, "ACCESS_TOKEN_EXPIRE_MINUTES=15",
                                      "REFRESH_TOKEN_EXPIRE_DAYS=2", NULL};
    start_with(1, env);
    char *email = acct_unique_email("life");
    json_decref(acct_register(&srv, email, "password-1"));
    char *body = fs_sprintf("username=%s&password=password-1", email);
    fs_test_resp_t r;
    cr_assert_eq(acct_http(&srv, "POST", "/auth/login", "application/x-www-form-urlencoded", body, NULL, &r),
                 200);
    char cache[64];
    cr_assert_str_eq(fs_test_resp_header(&r, "Cache-Control", cache, sizeof cache), "no-store");
    json_t *tok = fs_test_resp_json(&r);
    fs_test_resp_free(&r);
    cr_assert_eq(json_integer_value(json_object_get(tok, "expires_in")), 900);
    const char *key = fs_test_env("SECRET_KEY");
    fs_jwt_claims_t a, rf;
    cr_assert_eq(fs_jwt_decode(json_string_value(json_object_get(tok, "access_token")), key, strlen(key),
                               FS_JWT_ACCESS, time(NULL), &a),
                 FS_JWT_OK);
    cr_assert_eq(a.exp - a.iat, 900);
    cr_assert_eq(fs_jwt_decode(json_string_value(json_object_get(tok, "refresh_token")), key, strlen(key),
                               FS_JWT_REFRESH, time(NULL), &rf),
                 FS_JWT_OK);
    cr_assert_eq(rf.exp - rf.iat, 2 * 86400);
    cr_assert_str_eq(a.fam, rf.fam);
    json_t *pair;
    cr_assert_eq(acct_refresh(&srv, json_string_value(json_object_get(tok, "refresh_token")), &pair), 200);
    cr_assert_eq(json_integer_value(json_object_get(pair, "expires_in")), 900,
                 "same on refresh (unlike the original)");
    json_decref(pair);
    json_decref(tok);
    free(email), free(body);
    acct_assert_healthy(&srv);
}

/* ---- login failures ----------------------------------------------------------------------- */

static double timed_login(const char *email, const char *password, long *status)
{
    double t0 = fs_test_now_ms();
    *status = acct_login(&srv, email, password, NULL, NULL);
    return fs_test_now_ms() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

Test(auth, wrong_password_and_unknown_email_look_the_same, .init = start_default, .fini = stop)
{
    char *email = acct_unique_email("timing");
    json_decref(acct_register(&srv, email, "password-1"));
    char *ghost = acct_unique_email("ghost");
    const char *who[] = {email, ghost};
    for (int i = 0; i < 2; i++) {
        fs_test_resp_t r;
        char *body = fs_sprintf("username=%s&password=wrong-password", who[i]);
        cr_assert_eq(
            acct_http(&srv, "POST", "/auth/login", "application/x-www-form-urlencoded", body, NULL, &r), 401);
        char h[64];
        cr_assert_str_eq(fs_test_resp_header(&r, "WWW-Authenticate", h, sizeof h), "Bearer");
        cr_assert_str_eq(r.body, "{\"detail\":\"Incorrect email or password\"}");
        fs_test_resp_free(&r);
        free(body);
    }
    /* medians of a few attempts: an unknown e-mail is verified against a dummy hash */
    double known[9], unknown[9];
    long st;
    for (int i = 0; i < 9; i++) {
        known[i] = timed_login(email, "wrong-password", &st);
        unknown[i] = timed_login(ghost, "wrong-password", &st);
    }
    qsort(known, 9, sizeof(double), cmp_double);
    qsort(unknown, 9, sizeof(double), cmp_double);
    cr_log_info("median failed login: known e-mail %.1f ms, unknown %.1f ms", known[4], unknown[4]);
    /* without the dummy hash an unknown e-mail answers ~20x faster; 2x covers noise */
    cr_assert_gt(unknown[4], known[4] * 0.5, "unknown %.1f ms vs known %.1f ms", unknown[4], known[4]);
    cr_assert_gt(known[4], unknown[4] * 0.5, "unknown %.1f ms vs known %.1f ms", unknown[4], known[4]);
    free(email), free(ghost);
    acct_assert_healthy(&srv);
}

Test(auth, login_validation_errors, .init = start_default, .fini = stop)
{
    fs_test_resp_t r;
    const char *form = "application/x-www-form-urlencoded";
    cr_assert_eq(acct_http(&srv, "POST", "/auth/login", form, "username=a%40b.com", NULL, &r), 422);
    json_t *j = fs_test_resp_json(&r);
    cr_assert(acct_has_error(j, "body/password", "missing"), "%s", r.body);
    json_decref(j);
    fs_test_resp_free(&r);
    cr_assert_eq(acct_http(&srv, "POST", "/auth/login", form, "", NULL, &r), 422);
    j = fs_test_resp_json(&r);
    cr_assert(acct_has_error(j, "body/username", "missing") && acct_has_error(j, "body/password", "missing"));
    json_decref(j);
    fs_test_resp_free(&r);
    cr_assert_eq(
        acct_http(&srv, "POST", "/auth/login", form, "username=a&password=b&grant_type=client", NULL, &r),
        422);
    j = fs_test_resp_json(&r);
    cr_assert(acct_has_error(j, "body/grant_type", "string_pattern_mismatch"), "%s", r.body);
    json_decref(j);
    fs_test_resp_free(&r);
    cr_assert_eq(acct_http(&srv, "POST", "/auth/login", form, "username=%zz&password=b", NULL, &r), 400);
    fs_test_resp_free(&r);
    cr_assert_eq(acct_json(&srv, "POST", "/auth/login", "[1]", NULL, &j), 422);
    json_decref(j);
    /* grant_type=password and JSON with "email" are accepted */
    char *email = acct_unique_email("grant");
    json_decref(acct_register(&srv, email, "password-1"));
    char *body = fs_sprintf("grant_type=password&username=%s&password=password-1&scope=", email);
    cr_assert_eq(acct_http(&srv, "POST", "/auth/login", form, body, NULL, &r), 200);
    fs_test_resp_free(&r);
    char *json_body = fs_sprintf("{\"email\":\"%s\",\"password\":\"password-1\"}", email);
    cr_assert_eq(acct_json(&srv, "POST", "/auth/login", json_body, NULL, NULL), 200);
    free(email), free(body), free(json_body);
    acct_assert_healthy(&srv);
}

/* ---- the guard ---------------------------------------------------------------------------- */

static void assert_refused(const char *authorization, const char *detail)
{
    fs_test_resp_t r;
    long st = acct_http(&srv, "GET", "/users/me", NULL, NULL, authorization, &r);
    json_t *j = fs_test_resp_json(&r);
    cr_assert_eq(st, 401, "Authorization '%.60s': %ld %s", authorization ? authorization : "(none)", st,
                 r.body);
    cr_assert_str_eq(acct_detail(j), detail, "Authorization '%.60s'",
                     authorization ? authorization : "(none)");
    char h[64];
    cr_assert_str_eq(fs_test_resp_header(&r, "WWW-Authenticate", h, sizeof h), "Bearer");
    json_decref(j);
    fs_test_resp_free(&r);
}

/* base64url of a JSON text, for hand-made tokens */
static char *b64url(const char *s)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(s);
    char *out = fs_malloc(n * 2 + 4), *o = out;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = abc[v >> 6 & 63];
        if (i + 2 < n)
            *o++ = abc[v & 63];
    }
    *o = '\0';
    return out;
}

Test(auth, guard_refuses_every_bad_credential, .init = start_default, .fini = stop)
{
    char *email = acct_unique_email("guard");
    json_t *user = acct_register(&srv, email, "password-1");
    const char *uid = json_string_value(json_object_get(user, "id"));
    char *access = NULL, *refresh = NULL;
    cr_assert_eq(acct_login(&srv, email, "password-1", &access, &refresh), 200);
    long long now = time(NULL);

    assert_refused(NULL, "Not authenticated");
    assert_refused("Basic dXNlcjpwYXNz", "Not authenticated");
    assert_refused("Token abc", "Not authenticated");
    assert_refused("Bearer ", "Could not validate credentials");
    assert_refused("Bearer not-a-jwt", "Could not validate credentials");
    assert_refused("Bearer a.b.c", "Could not validate credentials");

    /* tampered signature: one character in the middle of the signature changed */
    char *tampered = fs_strdup(access);
    char *sig = strrchr(tampered, '.') + 10;
    *sig = *sig == 'A' ? 'B' : 'A';
    assert_refused(tampered, "Could not validate credentials");
    /* tampered payload: another user's id with the original signature */
    char *payload =
        fs_sprintf("{\"sub\":\"%s\",\"type\":\"access\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}",
                   "00000000-0000-4000-8000-000000000000", now, now + 600, uid);
    char *p64 = b64url(payload);
    const char *dot1 = strchr(access, '.'), *dot2 = strrchr(access, '.');
    char *swapped = fs_sprintf("%.*s.%s%s", (int)(dot1 - access), access, p64, dot2);
    assert_refused(swapped, "Could not validate credentials");
    /* alg none, with and without a signature */
    char *none_head = b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}");
    char *real_payload = fs_strndup(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    char *none1 = fs_sprintf("%s.%s.", none_head, real_payload);
    char *none2 = fs_sprintf("%s.%s%s", none_head, real_payload, dot2);
    assert_refused(none1, "Could not validate credentials");
    assert_refused(none2, "Could not validate credentials");
    /* a refresh token where an access token is expected */
    assert_refused(refresh, "Could not validate credentials");
    /* expired (beyond the 30 s leeway), signed with the right key */
    char *expired = acct_sign(uid, NULL, FS_JWT_ACCESS, now - 7200, now - 60);
    assert_refused(expired, "Could not validate credentials");
    /* valid signature and claims, but no such user */
    char *fam = fs_malloc(FS_UUID_LEN), *ghost_id = fs_malloc(FS_UUID_LEN);
    fs_uuid_v4(fam);
    fs_uuid_v4(ghost_id);
    char *ghost = acct_sign(ghost_id, fam, FS_JWT_ACCESS, now, now + 600);
    assert_refused(ghost, "Could not validate credentials");
    /* control: the same construction for the real user is accepted */
    char *good = acct_sign(uid, fam, FS_JWT_ACCESS, now, now + 600);
    cr_assert_eq(me(good, NULL), 200);
    /* the scheme is case-insensitive, as in Starlette */
    char *lower_scheme = fs_sprintf("bearer %s", access);
    cr_assert_eq(me(lower_scheme, NULL), 200);

    json_decref(user);
    free(email), free(access), free(refresh), free(tampered), free(payload), free(p64), free(swapped);
    free(none_head), free(real_payload), free(none1), free(none2), free(expired), free(fam), free(ghost_id);
    free(ghost), free(good), free(lower_scheme);
    acct_assert_healthy(&srv);
}

Test(auth, refresh_refusals, .init = start_default, .fini = stop)
{
    char *email = acct_unique_email("refresh");
    json_decref(acct_register(&srv, email, "password-1"));
    char *access = NULL, *refresh = NULL;
    cr_assert_eq(acct_login(&srv, email, "password-1", &access, &refresh), 200);
    json_t *j;
    {
        long st_ = acct_refresh(&srv, access, &j);
        assert_401(st_, j, "Invalid refresh token");
    }
    json_decref(j);
    {
        long st_ = acct_refresh(&srv, "garbage", &j);
        assert_401(st_, j, "Invalid refresh token");
    }
    json_decref(j);
    cr_assert_eq(acct_json(&srv, "POST", "/auth/refresh", "{}", NULL, &j), 422);
    cr_assert(acct_has_error(j, "body/refresh_token", "missing"));
    json_decref(j);
    /* a refresh token the server never issued (signed with the key, unknown jti) */
    fs_jwt_claims_t c;
    const char *key = fs_test_env("SECRET_KEY");
    cr_assert_eq(fs_jwt_decode(refresh, key, strlen(key), FS_JWT_REFRESH, time(NULL), &c), FS_JWT_OK);
    char *forged = acct_sign(c.sub, c.fam, FS_JWT_REFRESH, time(NULL), time(NULL) + 600);
    {
        long st_ = acct_refresh(&srv, forged, &j);
        assert_401(st_, j, "Invalid refresh token");
    }
    json_decref(j);
    cr_assert_eq(acct_refresh(&srv, refresh, NULL), 200, "an unknown jti does not revoke the real family");
    free(email), free(access), free(refresh), free(forged);
    acct_assert_healthy(&srv);
}

Test(auth, inactive_user_is_refused_with_403, .init = start_default, .fini = stop)
{
    char *email = acct_unique_email("inactive");
    json_decref(acct_register(&srv, email, "password-1"));
    char *access = NULL, *refresh = NULL;
    cr_assert_eq(acct_login(&srv, email, "password-1", &access, &refresh), 200);
    acct_sql("UPDATE users SET is_active = false WHERE email = '%s'", email);
    json_t *j;
    cr_assert_eq(me(access, &j), 403);
    cr_assert_str_eq(acct_detail(j), "Inactive user");
    json_decref(j);
    cr_assert_eq(acct_login(&srv, email, "password-1", NULL, NULL), 403);
    cr_assert_eq(acct_login(&srv, email, "wrong-password", NULL, NULL), 401, "no hint without the password");
    cr_assert_eq(acct_refresh(&srv, refresh, NULL), 403);
    free(email), free(access), free(refresh);
    acct_assert_healthy(&srv);
}

/* ---- registration ------------------------------------------------------------------------- */

typedef struct {
    const char *body;
    long status;
} race_t;

static void *register_thread(void *arg)
{
    race_t *r = arg;
    r->status = acct_json(&srv, "POST", "/auth/register", r->body, NULL, NULL);
    return NULL;
}

Test(auth, duplicate_registration_race_has_one_winner, .init = start_default, .fini = stop)
{
    for (int round = 0; round < 5; round++) {
        char *email = acct_unique_email("race");
        char *body = fs_sprintf("{\"email\":\"%s\",\"password\":\"password-1\"}", email);
        race_t r[2] = {{body, 0}, {body, 0}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, register_thread, &r[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        cr_assert((r[0].status == 201 && r[1].status == 400) || (r[0].status == 400 && r[1].status == 201),
                  "round %d: %ld and %ld", round, r[0].status, r[1].status);
        free(email), free(body);
    }
    acct_assert_healthy(&srv);
}

Test(auth, registration_validation, .init = start_default, .fini = stop)
{
    acct_airport("Q9B", false);
    acct_airport("Q9C", true);
    char long_name[300];
    memset(long_name, 'x', 256);
    long_name[256] = '\0';
    struct {
        const char *body, *loc, *type;
    } cases[] = {
        {"{\"password\":\"password-1\"}", "body/email", "missing"},
        {"{\"email\":\"no-at-sign\",\"password\":\"password-1\"}", "body/email", "value_error"},
        {"{\"email\":\"a@b\",\"password\":\"password-1\"}", "body/email", "value_error"},
        {"{\"email\":\"a..b@example.com\",\"password\":\"password-1\"}", "body/email", "value_error"},
        {"{\"email\":42,\"password\":\"password-1\"}", "body/email", "string_type"},
        {"{\"email\":\"ok@example.com\"}", "body/password", "missing"},
        {"{\"email\":\"ok@example.com\",\"password\":\"short\"}", "body/password", "string_too_short"},
        {"{\"email\":\"ok@example.com\",\"password\":\"password-1\",\"home_airport_code\":\"DUBL\"}",
         "body/home_airport_code", "string_too_long"},
        {"{\"email\":\"ok@example.com\",\"password\":\"password-1\",\"home_city\":7}", "body/home_city",
         "string_type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j;
        long st = acct_json(&srv, "POST", "/auth/register", cases[i].body, NULL, &j);
        cr_assert_eq(st, 422, "%s: %ld", cases[i].body, st);
        cr_assert(acct_has_error(j, cases[i].loc, cases[i].type), "%s: %s", cases[i].body, json_dumps(j, 0));
        json_decref(j);
    }
    char pw101[128];
    memset(pw101, 'p', 101);
    pw101[101] = '\0';
    char *body = fs_sprintf("{\"email\":\"ok@example.com\",\"password\":\"%s\",\"full_name\":\"%s\"}", pw101,
                            long_name);
    json_t *j;
    cr_assert_eq(acct_json(&srv, "POST", "/auth/register", body, NULL, &j), 422);
    cr_assert(acct_has_error(j, "body/password", "string_too_long") &&
                  acct_has_error(j, "body/full_name", "string_too_long"),
              "all errors are reported together");
    json_decref(j);
    free(body);
    /* unknown and inactive airports */
    const char *codes[] = {"Q9X", "Q9B"};
    for (int i = 0; i < 2; i++) {
        char *email = acct_unique_email("airport");
        body = fs_sprintf("{\"email\":\"%s\",\"password\":\"password-1\",\"home_airport_code\":\"%s\"}",
                          email, codes[i]);
        cr_assert_eq(acct_json(&srv, "POST", "/auth/register", body, NULL, &j), 422, "%s", codes[i]);
        cr_assert(acct_has_error(j, "body/home_airport_code", "value_error"));
        json_decref(j);
        free(body), free(email);
    }
    char *email = acct_unique_email("airport");
    body = fs_sprintf(
        "{\"email\":\"%s\",\"password\":\"pässwörd\",\"home_airport_code\":\"q9c\",\"full_name\":null}",
        email);
    cr_assert_eq(acct_json(&srv, "POST", "/auth/register", body, NULL, &j), 201,
                 "8 characters, not bytes, are enough");
    cr_assert_str_eq(json_string_value(json_object_get(j, "home_airport_code")), "Q9C");
    cr_assert(json_is_null(json_object_get(j, "full_name")));
    json_decref(j);
    cr_assert_eq(acct_json(&srv, "POST", "/auth/register", "not json", NULL, &j), 422);
    json_decref(j);
    free(body), free(email);
    acct_assert_healthy(&srv);
}

/* ---- brute-force limits ------------------------------------------------------------------- */

static redisContext *redis_sync(void)
{
    const char *url = fs_test_env("REDIS_URL");
    redisContext *c = NULL;
    if (strncmp(url, "unix://", 7) == 0) {
        c = redisConnectUnix(url + 7);
    } else {
        char host[128] = "127.0.0.1";
        int port = 6379;
        sscanf(url, "redis://%127[^:/]:%d", host, &port);
        c = redisConnect(host, port);
    }
    cr_assert(c && !c->err, "redis: %s", c ? c->errstr : "no context");
    return c;
}

static void redis_del_address_key(void)
{
    redisContext *c = redis_sync();
    freeReplyObject(redisCommand(c, "DEL fs:login:fail:address:127.0.0.1"));
    redisFree(c);
}

static void assert_429(const char *email, const char *password)
{
    char *body = fs_sprintf("username=%s&password=%s", email, password);
    fs_test_resp_t r;
    cr_assert_eq(acct_http(&srv, "POST", "/auth/login", "application/x-www-form-urlencoded", body, NULL, &r),
                 429, "%s", r.body);
    char retry[32];
    cr_assert(fs_test_resp_header(&r, "Retry-After", retry, sizeof retry), "429 needs Retry-After");
    cr_assert(atoi(retry) >= 1 && atoi(retry) <= 900, "Retry-After %s", retry);
    json_t *j = fs_test_resp_json(&r);
    cr_assert(strstr(acct_detail(j), "Too many failed login attempts"), "%s", r.body);
    json_decref(j);
    fs_test_resp_free(&r);
    free(body);
}

Test(auth, account_is_locked_after_n_failures, .fini = stop)
{
    static const char *const env[] = {ACCT_FAST_ARGON2, "LOGIN_MAX_FAILURES_PER_ACCOUNT=3",
                                      "LOGIN_MAX_FAILURES_PER_IP=1000000", "LOGIN_FAILURE_WINDOW_S=600",
                                      NULL};
    start_with(2, env);
    char *email = acct_unique_email("locked"), *other = acct_unique_email("other");
    json_decref(acct_register(&srv, email, "password-1"));
    json_decref(acct_register(&srv, other, "password-1"));
    /* a success resets the account's count */
    for (int i = 0; i < 2; i++)
        cr_assert_eq(acct_login(&srv, email, "wrong-password", NULL, NULL), 401);
    cr_assert_eq(acct_login(&srv, email, "password-1", NULL, NULL), 200);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(acct_login(&srv, email, "wrong-password", NULL, NULL), 401, "attempt %d", i + 1);
    assert_429(email, "password-1"); /* even the right password: the account is locked */
    char *upper = fs_strdup(email);
    upper[0] = (char)(upper[0] - 32);
    assert_429(upper, "password-1"); /* the same account under another spelling */
    cr_assert_eq(acct_login(&srv, other, "password-1", NULL, NULL), 200, "other accounts are not affected");
    free(email), free(other), free(upper);
    acct_assert_healthy(&srv);
}

Test(auth, address_is_limited_after_n_failures, .fini = stop)
{
    static const char *const env[] = {ACCT_FAST_ARGON2, "LOGIN_MAX_FAILURES_PER_ACCOUNT=1000000",
                                      "LOGIN_MAX_FAILURES_PER_IP=4", NULL};
    redis_del_address_key();
    start_with(2, env);
    char *email = acct_unique_email("addr");
    json_decref(acct_register(&srv, email, "password-1"));
    for (int i = 0; i < 4; i++) {
        char *ghost = acct_unique_email("spray");
        cr_assert_eq(acct_login(&srv, ghost, "guess", NULL, NULL), 401);
        free(ghost);
    }
    assert_429(email, "password-1");
    redis_del_address_key();
    cr_assert_eq(acct_login(&srv, email, "password-1", NULL, NULL), 200);
    free(email);
    acct_assert_healthy(&srv);
}

Test(auth, limiter_fails_open_when_redis_is_down, .fini = stop)
{
    static const char *const env[] = {ACCT_FAST_ARGON2, "LOGIN_MAX_FAILURES_PER_ACCOUNT=1",
                                      "REDIS_URL=unix:///nonexistent/redis.sock", "REDIS_TIMEOUT_MS=200",
                                      NULL};
    start_with(1, env);
    char *email = acct_unique_email("noredis");
    json_decref(acct_register(&srv, email, "password-1"));
    cr_assert_eq(acct_login(&srv, email, "wrong-password", NULL, NULL), 401);
    cr_assert_eq(acct_login(&srv, email, "wrong-password", NULL, NULL), 401, "no counter without Redis");
    cr_assert_eq(acct_login(&srv, email, "password-1", NULL, NULL), 200);
    cr_assert_eq(fs_test_sh("grep -q 'login rate limiter: Redis unavailable' %s", srv.log_path), 0,
                 "the degraded mode is logged");
    free(email);
    acct_assert_healthy(&srv);
}

Test(auth, database_down_is_503_not_401, .fini = stop, .timeout = 60)
{
    static const char *const env[] = {ACCT_FAST_ARGON2, "DATABASE_URL=postgresql://nobody@127.0.0.1:1/none",
                                      "DB_CONNECT_TIMEOUT_MS=200", NULL};
    start_with(1, env);
    char id[FS_UUID_LEN];
    fs_uuid_v4(id);
    char *token = acct_sign(id, NULL, FS_JWT_ACCESS, time(NULL), time(NULL) + 600);
    fs_test_resp_t r;
    cr_assert_eq(acct_http(&srv, "GET", "/auth/me", NULL, NULL, token, &r), 503, "%s", r.body);
    char retry[16];
    cr_assert(fs_test_resp_header(&r, "Retry-After", retry, sizeof retry));
    cr_assert(strstr(r.body, "Database unavailable"), "%s", r.body);
    fs_test_resp_free(&r);
    cr_assert_eq(acct_login(&srv, "someone@example.com", "password-1", NULL, NULL), 503);
    cr_assert_eq(acct_json(&srv, "POST", "/auth/register",
                           "{\"email\":\"a@example.com\",\"password\":\"password-1\"}", NULL, NULL),
                 503);
    free(token);
    acct_assert_healthy(&srv);
}

/* ---- hashing stays off the event loop ----------------------------------------------------- */

typedef struct {
    const char *email;
    volatile int *stop;
    int logins;
    double total_ms;
} hammer_t;

static void *login_loop(void *arg)
{
    hammer_t *h = arg;
    while (!*h->stop) {
        double t0 = fs_test_now_ms();
        long st = acct_login(&srv, h->email, "password-1", NULL, NULL);
        if (st == 200) {
            h->logins++;
            h->total_ms += fs_test_now_ms() - t0;
        }
    }
    return NULL;
}

/* 50 sequential GET /health/live, 10 ms apart; latencies sorted into `lat`. */
static void measure_liveness(double lat[50])
{
    char url[128];
    snprintf(url, sizeof url, "%s/health/live", srv.url);
    for (int i = 0; i < 50; i++) {
        fs_test_resp_t r;
        double t0 = fs_test_now_ms();
        fs_test_http("GET", url, NULL, NULL, &r);
        lat[i] = fs_test_now_ms() - t0;
        cr_assert_eq(r.status, 200);
        fs_test_resp_free(&r);
        usleep(10 * 1000);
    }
    qsort(lat, 50, sizeof(double), cmp_double);
}

/* With the production cost (64 MiB, t=3: ~150 ms a hash here) and one worker, 8 concurrent
 * logins keep the thread pool saturated; the loop must still answer at once. */
Test(auth, liveness_stays_fast_during_concurrent_logins, .fini = stop, .timeout = 120)
{
    static const char *const env[] = {"ARGON2_MEMORY_KIB=65536", "ARGON2_TIME_COST=3", "THREAD_POOL_SIZE=2",
                                      "LOGIN_MAX_FAILURES_PER_IP=1000000", NULL};
    start_with(1, env);
    curl_global_init(CURL_GLOBAL_ALL);
    char *email = acct_unique_email("hammer");
    json_decref(acct_register(&srv, email, "password-1"));
    volatile int stop_flag = 0;
    hammer_t h[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (hammer_t){email, &stop_flag, 0, 0};
        pthread_create(&t[i], NULL, login_loop, &h[i]);
    }
    usleep(300 * 1000);
    /* other builds may share this 2-core machine: a window that a neighbour disturbed is
     * measured again (at most 3 windows); a blocked loop fails every window by far */
    double lat[50], p50 = 0, p99 = 1e9;
    for (int window = 0; window < 3 && p99 >= 50; window++) {
        measure_liveness(lat);
        p50 = lat[25];
        p99 = lat[49];
        cr_log_info("window %d: liveness p50 %.2f ms, p99 %.2f ms", window, p50, p99);
    }
    stop_flag = 1;
    int logins = 0;
    double total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        logins += h[i].logins;
        total += h[i].total_ms;
    }
    cr_log_info("%d logins, mean %.0f ms", logins, logins ? total / logins : 0);
    cr_assert_geq(logins, 8, "the logins ran (%d)", logins);
    cr_assert_gt(total / logins, 100, "logins were slow enough to matter (mean %.0f ms)", total / logins);
    cr_assert_lt(p99, 50, "liveness p99 %.1f ms (p50 %.1f ms) while hashing", p99, p50);
    free(email);
    acct_assert_healthy(&srv);
}

/* ---- configuration ------------------------------------------------------------------------ */

static bool serve_refuses(const char *env, const char *message)
{
    return fs_test_sh("cd /tmp && env %s '%s' serve --port 1 --rpc-port 2 2>&1 | grep -q -F '%s'", env,
                      fs_test_env("FS_BINARY"), message) == 0;
}

Test(auth, configuration_refuses_other_algorithms_and_weak_hashing)
{
    cr_assert(serve_refuses("JWT_ALGORITHM=HS512", "JWT_ALGORITHM: only HS256 is supported, got"));
    cr_assert(serve_refuses("JWT_ALGORITHM=none", "JWT_ALGORITHM: only HS256"));
    cr_assert(serve_refuses("ARGON2_MEMORY_KIB=1024", "ARGON2_MEMORY_KIB: expected an integer from 7168"));
    cr_assert(
        serve_refuses("ARGON2_MEMORY_KIB=19456 ARGON2_TIME_COST=1", "ARGON2_TIME_COST: ARGON2_MEMORY_KIB x"));
    cr_assert(serve_refuses("ACCESS_TOKEN_EXPIRE_MINUTES=0", "ACCESS_TOKEN_EXPIRE_MINUTES"));
    cr_assert(serve_refuses("SECRET_KEY=change-me-in-production", "SECRET_KEY: still the default"));
    acct_assert_healthy(&srv);
}
