/* The request guard: who is calling, and may they?
 *
 * Every endpoint that needs a signed-in user (or an administrator) starts with
 * fs_auth_require. The guard reads `Authorization: Bearer <access token>`, verifies the token
 * (security/jwt.h: HS256 only, exp enforced, type "access" only), loads the user from
 * PostgreSQL, checks that the token's session has not been revoked (logout, refresh-token
 * reuse), and either calls you back with the user or answers the request itself:
 *
 *   401 {"detail":"Not authenticated"}              no Authorization header, or not "Bearer"
 *   401 {"detail":"Could not validate credentials"} bad, expired or wrong-type token; unknown
 *                                                   user; revoked session
 *   403 {"detail":"Inactive user"}                  users.is_active is false
 *   403 {"detail":"Admin privileges required"}      `admin` requested and users.is_admin false
 *   503 {"detail":"Database unavailable"}           PostgreSQL did not answer (Retry-After)
 *
 * Both 401s carry `WWW-Authenticate: Bearer`. Usage from a handler, Redis-style "or reply":
 *
 *     static void on_user(fs_req_t *req, const fs_user_t *user, void *arg)
 *     {
 *         ... reply, or start more asynchronous work (copy what you keep of `user`) ...
 *     }
 *
 *     static void post_reload(fs_req_t *req)
 *     {
 *         fs_auth_require(req, true, on_user, NULL);   // admin only
 *     }
 *
 * Tokens are never logged.
 */
#ifndef FS_AUTH_H
#define FS_AUTH_H

#include "api/http.h"
#include "security/jwt.h"
#include "storage/pg.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

/* A row of `users` as the API shows it (password_hash is never loaded into this). */
typedef struct fs_user {
    char id[FS_UUID_LEN];    /** UUID, lower-case */
    char *email;             /** normalized: trimmed, lower-case */
    char *full_name;         /** NULL when unset */
    char *home_city;         /** NULL when unset */
    char *home_airport_code; /** NULL when unset */
    json_t *preferences;     /** a JSON object (never NULL) */
    bool is_active, is_admin;
    char created_at[40];       /** ISO 8601, UTC, "2025-01-31T12:00:00.000000Z" */
    char session[FS_UUID_LEN]; /** the session (refresh-token family) of the access token that
                                   authenticated this request; "" otherwise */
} fs_user_t;

/* Called only when the caller is authenticated (and an admin, when asked). `user` is valid
 * during the call only. On refusal the guard has replied and the callback is NOT called, so
 * `arg` must not need cleaning up then: pass NULL or data that outlives the request, and read
 * everything else from `req` (query, path parameters and body stay readable). */
typedef void (*fs_auth_cb)(fs_req_t *req, const fs_user_t *user, void *arg);

/* Authenticates `req` (see the top of this file) using fs_worker's PostgreSQL pool and
 * fs_cfg->secret_key. Must be called on the worker loop, from a handler or later. */
void fs_auth_require(fs_req_t *req, bool admin, fs_auth_cb cb, void *arg);

/* ---- users, shared by the account endpoints --------------------------------------------- */

/* The SELECT list that fs_user_from_row reads, for a `users` table aliased `u`. */
#define FS_USER_COLUMNS                                                                                      \
    "u.id::text, u.email, u.full_name, u.home_city, u.home_airport_code, u.preferences::text, u.is_active, " \
    "u.is_admin, to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define FS_USER_NCOLUMNS 9

/* Fills `out` from FS_USER_COLUMNS starting at column `col` of row `row`. Free with
 * fs_user_clear. */
void fs_user_from_row(const PGresult *res, int row, int col, fs_user_t *out);
void fs_user_clear(fs_user_t *u);
/* The UserResponse body: id, email, full_name, home_city, home_airport_code, preferences,
 * is_active, is_admin, created_at. New reference. */
json_t *fs_user_json(const fs_user_t *u);

/* Sends the 401 with `detail` and `WWW-Authenticate: Bearer`. */
void fs_auth_reply_401(fs_req_t *req, const char *detail);
/* Answers a failed PostgreSQL query: 503 + Retry-After when the database is unreachable,
 * busy or timed out; 500 "Internal Server Error" in plain text (as the original's unhandled
 * errors), logged, when it refused the statement. */
void fs_auth_reply_pg_error(fs_req_t *req, fs_pg_status_t status, const char *error);

#endif
