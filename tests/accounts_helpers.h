/* Helpers shared by the account suites (test_auth.c, test_users.c): requests with a bearer
 * token, registration and login, direct SQL, tokens signed with the suite's SECRET_KEY. */
#ifndef FS_TEST_ACCOUNTS_HELPERS_H
#define FS_TEST_ACCOUNTS_HELPERS_H

#include "runtime/alloc.h"
#include "security/jwt.h"
#include "storage/pg.h"
#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Cheap but valid hashing parameters (OWASP's 7 MiB x 5 floor), and limits high enough that
 * the failures of one test never lock out another; tests of the limits override them. */
#define ACCT_FAST_ARGON2 "ARGON2_MEMORY_KIB=7168", "ARGON2_TIME_COST=5"

static inline long acct_http(const fs_test_server_t *s, const char *method, const char *path,
                             const char *ctype, const char *body, const char *bearer, fs_test_resp_t *r)
{
    char url[512], ct[128];
    char *auth =
        bearer ? fs_sprintf("Authorization: %s%s", strchr(bearer, ' ') ? "" : "Bearer ", bearer) : NULL;
    const char *h[3];
    int n = 0;
    snprintf(url, sizeof url, "%s%s", s->url, path);
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h[n++] = ct;
    }
    if (auth)
        h[n++] = auth;
    h[n] = NULL;
    fs_test_http(method, url, body, h, r);
    free(auth);
    return r->status;
}

/* Fails the test if a worker of the running server died or a sanitizer reported (a crashed
 * worker is restarted by the master, so the HTTP answers alone might not show it). Called at
 * the end of each test body: criterion does not fail a test for what happens in .fini. */
static inline void acct_assert_healthy(const fs_test_server_t *s)
{
    if (s->pid <= 0)
        return;
    cr_assert_neq(fs_test_sh("grep -E -q 'restarting in|runtime error|Sanitizer' %s", s->log_path), 0,
                  "a worker crashed or a sanitizer reported; see %s", s->log_path);
}

/* A JSON request; the parsed answer in *out (may be NULL). `bearer` is a token, or a whole
 * Authorization value when it contains a space ("Basic abc"). */
static inline long acct_json(const fs_test_server_t *s, const char *method, const char *path,
                             const char *body, const char *bearer, json_t **out)
{
    fs_test_resp_t r;
    long status = acct_http(s, method, path, body ? "application/json" : NULL, body, bearer, &r);
    if (out)
        *out = fs_test_resp_json(&r);
    fs_test_resp_free(&r);
    return status;
}

static inline const char *acct_detail(json_t *j)
{
    const char *d = json_string_value(json_object_get(j, "detail"));
    return d ? d : "";
}

/* The loc of the first 422 error whose loc ends in `field`: "body/email". */
static inline bool acct_has_error(json_t *j, const char *loc_path, const char *type)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(j, "detail"), i, e)
    {
        char path[256] = "";
        size_t k;
        json_t *part;
        json_array_foreach(json_object_get(e, "loc"), k, part)
        {
            char piece[64];
            if (json_is_integer(part))
                snprintf(piece, sizeof piece, "%s%lld", k ? "/" : "", (long long)json_integer_value(part));
            else
                snprintf(piece, sizeof piece, "%s%s", k ? "/" : "", json_string_value(part));
            strncat(path, piece, sizeof path - strlen(path) - 1);
        }
        if (strcmp(path, loc_path) == 0 &&
            (!type || strcmp(json_string_value(json_object_get(e, "type")), type) == 0))
            return true;
    }
    return false;
}

static inline char *acct_unique_email(const char *tag)
{
    static int counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return fs_sprintf("%s-%d-%d-%ld@example.com", tag, (int)getpid(), ++counter, ts.tv_nsec);
}

static inline json_t *acct_register(const fs_test_server_t *s, const char *email, const char *password)
{
    char *body = fs_sprintf("{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    json_t *user;
    long st = acct_json(s, "POST", "/auth/register", body, NULL, &user);
    free(body);
    cr_assert_eq(st, 201, "register %s: %ld %s", email, st, json_dumps(user, 0));
    return user;
}

/* Form login; on 200 the tokens are copied into *access / *refresh (caller frees). */
static inline long acct_login(const fs_test_server_t *s, const char *email, const char *password,
                              char **access, char **refresh)
{
    if (access)
        *access = NULL;
    if (refresh)
        *refresh = NULL;
    char *body = fs_sprintf("username=%s&password=%s", email, password);
    fs_test_resp_t r;
    long st = acct_http(s, "POST", "/auth/login", "application/x-www-form-urlencoded", body, NULL, &r);
    free(body);
    json_t *j = fs_test_resp_json(&r);
    if (st == 200) {
        if (access)
            *access = fs_strdup(json_string_value(json_object_get(j, "access_token")));
        if (refresh)
            *refresh = fs_strdup(json_string_value(json_object_get(j, "refresh_token")));
    }
    json_decref(j);
    fs_test_resp_free(&r);
    return st;
}

static inline long acct_refresh(const fs_test_server_t *s, const char *token, json_t **out)
{
    char *body = fs_sprintf("{\"refresh_token\":\"%s\"}", token);
    long st = acct_json(s, "POST", "/auth/refresh", body, NULL, out);
    free(body);
    return st;
}

/* Runs SQL on the suite's database; fails the test on error. */
static inline void acct_sql(const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    char *err = NULL;
    PGconn *c = fs_pg_connect_blocking(fs_test_env("DATABASE_URL"), &err);
    cr_assert(c, "database: %s", err);
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(c);
}

/* Codes with a digit ("Q9A"): no real airport has one, so the suite's imported reference data
 * is never touched. */
static inline void acct_airport(const char *code, bool active)
{
    acct_sql("INSERT INTO airports (iata_code, name, city, country, country_code, is_active) "
             "VALUES ('%s', 'Test %s', 'Testville', 'Testland', 'TT', %s) "
             "ON CONFLICT (iata_code) DO UPDATE SET is_active = EXCLUDED.is_active",
             code, code, active ? "true" : "false");
}

/* A token signed with the server's SECRET_KEY, as an attacker who knew nothing else could not. */
static inline char *acct_sign(const char *sub, const char *fam, fs_jwt_type_t type, long long iat,
                              long long exp)
{
    fs_jwt_claims_t c = {.type = type, .iat = iat, .exp = exp};
    snprintf(c.sub, sizeof c.sub, "%s", sub);
    snprintf(c.fam, sizeof c.fam, "%s", fam ? fam : "");
    fs_uuid_v4(c.jti);
    const char *key = fs_test_env("SECRET_KEY");
    return fs_jwt_encode(&c, key, strlen(key));
}

#endif
