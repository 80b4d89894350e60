#include "security/auth.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/worker.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NOT_AUTHENTICATED "Not authenticated"
#define BAD_CREDENTIALS   "Could not validate credentials"

/* ---- users ------------------------------------------------------------------------------- */

static char *opt_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : fs_strdup(PQgetvalue(res, row, col));
}

void fs_user_from_row(const PGresult *res, int row, int col, fs_user_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(res, row, col));
    out->email = fs_strdup(PQgetvalue(res, row, col + 1));
    out->full_name = opt_text(res, row, col + 2);
    out->home_city = opt_text(res, row, col + 3);
    out->home_airport_code = opt_text(res, row, col + 4);
    out->preferences = json_loads(PQgetvalue(res, row, col + 5), 0, NULL);
    if (!json_is_object(out->preferences)) {
        json_decref(out->preferences);
        out->preferences = json_object();
    }
    out->is_active = PQgetvalue(res, row, col + 6)[0] == 't';
    out->is_admin = PQgetvalue(res, row, col + 7)[0] == 't';
    snprintf(out->created_at, sizeof out->created_at, "%s", PQgetvalue(res, row, col + 8));
}

void fs_user_clear(fs_user_t *u)
{
    free(u->email);
    free(u->full_name);
    free(u->home_city);
    free(u->home_airport_code);
    json_decref(u->preferences);
    memset(u, 0, sizeof *u);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *fs_user_json(const fs_user_t *u)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:O, s:b, s:b, s:s}", "id", u->id, "email", u->email,
                     "full_name", str_or_null(u->full_name), "home_city", str_or_null(u->home_city),
                     "home_airport_code", str_or_null(u->home_airport_code), "preferences", u->preferences,
                     "is_active", u->is_active, "is_admin", u->is_admin, "created_at", u->created_at);
}

/* ---- replies ----------------------------------------------------------------------------- */

void fs_auth_reply_401(fs_req_t *req, const char *detail)
{
    fs_reply_header(req, "WWW-Authenticate", "Bearer");
    fs_reply_detail(req, 401, "%s", detail);
}

void fs_auth_reply_pg_error(fs_req_t *req, fs_pg_status_t status, const char *error)
{
    if (status == FS_PG_ERROR) {
        fs_error("account query failed: %s", error ? error : "unknown error");
        fs_reply_raw(req, 500, "text/plain; charset=utf-8", "Internal Server Error", 21);
        return;
    }
    fs_reply_unavailable(req, 5, "Database unavailable");
}

/* ---- the guard --------------------------------------------------------------------------- */

typedef struct {
    fs_req_t *req;
    bool admin;
    fs_auth_cb cb;
    void *arg;
    char session[FS_UUID_LEN];
} guard_t;

static const char USER_SQL[] = "SELECT " FS_USER_COLUMNS ", EXISTS (SELECT 1 FROM refresh_token_families f "
                               "WHERE f.id = $2::uuid AND f.revoked_at IS NOT NULL) "
                               "FROM users u WHERE u.id = $1::uuid";

static void guard_on_user(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    guard_t *g = arg;
    if (status != FS_PG_OK) {
        fs_auth_reply_pg_error(g->req, status, error);
    } else if (PQntuples(res) != 1 || PQgetvalue(res, 0, FS_USER_NCOLUMNS)[0] == 't') {
        fs_auth_reply_401(g->req, BAD_CREDENTIALS);
    } else {
        fs_user_t user;
        fs_user_from_row(res, 0, 0, &user);
        memcpy(user.session, g->session, sizeof user.session);
        if (!user.is_active)
            fs_reply_detail(g->req, 403, "Inactive user");
        else if (g->admin && !user.is_admin)
            fs_reply_detail(g->req, 403, "Admin privileges required");
        else
            g->cb(g->req, &user, g->arg);
        fs_user_clear(&user);
    }
    free(g);
}

/* Starlette's get_authorization_scheme_param: the scheme is what precedes the first space,
 * compared without case; the rest is the credential. Returns NULL when not Bearer. */
static const char *bearer_token(const char *header)
{
    if (!header)
        return NULL;
    const char *space = strchr(header, ' ');
    size_t scheme_len = space ? (size_t)(space - header) : strlen(header);
    if (scheme_len != 6 || strncasecmp(header, "bearer", 6) != 0)
        return NULL;
    return space ? space + 1 : "";
}

void fs_auth_require(fs_req_t *req, bool admin, fs_auth_cb cb, void *arg)
{
    const char *token = bearer_token(fs_req_header(req, "Authorization"));
    if (!token) {
        fs_auth_reply_401(req, NOT_AUTHENTICATED);
        return;
    }
    fs_jwt_claims_t claims;
    fs_jwt_rc_t rc = fs_jwt_decode(token, fs_cfg->secret_key, strlen(fs_cfg->secret_key), FS_JWT_ACCESS,
                                   (long long)time(NULL), &claims);
    if (rc != FS_JWT_OK) {
        fs_debug("access token refused: %s", fs_jwt_strerror(rc));
        fs_auth_reply_401(req, BAD_CREDENTIALS);
        return;
    }
    guard_t *g = FS_NEW(guard_t);
    *g = (guard_t){req, admin, cb, arg, {0}};
    memcpy(g->session, claims.fam, sizeof g->session);
    const char *params[] = {claims.sub, claims.fam[0] ? claims.fam : NULL};
    fs_pg_query(fs_worker->pg, "auth_load_user", USER_SQL, 2, params, guard_on_user, g);
}
