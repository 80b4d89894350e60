/* The signed-in user's notifications (docs/NOTIFICATIONS.md).
 *
 *   GET  /users/me/notifications                 (auth) newest first; ?limit=1..100 (20),
 *                                                ?offset=0.. (0), ?before=<id> (cursor: only
 *                                                rows older than that notification),
 *                                                ?unread=true (only rows not read yet)
 *   POST /users/me/notifications/{id}/read       (auth) marks it read (idempotent: the first
 *                                                read_at is kept); 404 unless it is the
 *                                                caller's; 422 when id is not a UUID
 *
 * Every notification is visible here whatever its delivery state (pending, sent, dead, or
 * none when no channel is configured).
 */
#include "api/routes.h"
#include "runtime/worker.h"
#include "security/auth.h"

#include <stdio.h>
#include <string.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* One notification as the API shows it, for a row aliased `n`. */
#define NOTIFICATION_JSON                                                                                    \
    "json_build_object('id', n.id, 'alert_id', n.alert_id, 'kind', n.kind, 'title', n.title, 'body', "       \
    "n.body, "                                                                                               \
    "'payload', n.payload, 'status', n.status, 'created_at', " TS("n.created_at") ", 'sent_at', " TS(        \
        "n.sent_at") ", 'read_at', " TS("n.read_at") ")"

static const char LIST_SQL[] =
    "SELECT coalesce(json_agg(" NOTIFICATION_JSON " ORDER BY n.created_at DESC, n.id DESC), '[]')::text "
    "FROM (SELECT * FROM notifications n WHERE n.user_id = $1::uuid "
    "AND (NOT $4::boolean OR n.read_at IS NULL) "
    "AND ($5::uuid IS NULL OR (n.created_at, n.id) < "
    "(SELECT b.created_at, b.id FROM notifications b WHERE b.id = $5::uuid AND b.user_id = $1::uuid)) "
    "ORDER BY n.created_at DESC, n.id DESC LIMIT $2::int OFFSET $3::bigint) n";

static const char READ_SQL[] =
    "UPDATE notifications n SET read_at = coalesce(n.read_at, now()) "
    "WHERE n.id = $1::uuid AND n.user_id = $2::uuid RETURNING " NOTIFICATION_JSON "::text";

/* A row of one JSON text column as the reply, or 404 when there is no row. */
static void reply_json_row(fs_req_t *req, fs_pg_status_t status, PGresult *res, const char *error)
{
    if (status != FS_PG_OK) {
        fs_auth_reply_pg_error(req, status, error);
        return;
    }
    if (PQntuples(res) == 0) {
        fs_reply_detail(req, 404, "Notification not found");
        return;
    }
    json_t *body = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    if (!body) {
        fs_reply_detail(req, 500, "Internal Server Error");
        return;
    }
    fs_reply_json(req, 200, body);
}

static void on_row(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    reply_json_row(arg, status, res, error);
}

static void uuid_error(fs_errors_t *e, const char *loc_kind, const char *name, const char *value)
{
    fs_errors_add(
        e, loc_kind, name, "uuid_parsing",
        "Input should be a valid UUID, invalid character: expected an optional prefix of `urn:uuid:` "
        "followed by [0-9a-fA-F-]",
        json_string(value), NULL);
}

/* ---- GET /users/me/notifications ---------------------------------------------------------- */

static void list_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    fs_errors_t *e = fs_errors_new();
    long limit, offset;
    bool unread;
    const char *before = NULL;
    fs_query_int(req, e, "limit", 20, 1, 100, &limit);
    fs_query_int(req, e, "offset", 0, 0, 1000000000L, &offset);
    fs_query_bool(req, e, "unread", false, &unread);
    fs_query_str(req, e, "before", false, 0, 64, &before);
    if (before && !fs_uuid_valid(before))
        uuid_error(e, "query", "before", before);
    if (fs_errors_reply(req, e))
        return;
    char lim[24], off[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    snprintf(off, sizeof off, "%ld", offset);
    const char *params[] = {user->id, lim, off, unread ? "t" : "f", before};
    fs_pg_query(fs_worker->pg, "notifications_list", LIST_SQL, 5, params, on_row, req);
}

static void list_notifications(fs_req_t *req)
{
    fs_auth_require(req, false, list_on_user, NULL);
}

/* ---- POST /users/me/notifications/{id}/read ----------------------------------------------- */

static void read_on_user(fs_req_t *req, const fs_user_t *user, void *arg)
{
    const char *id = fs_req_param(req, "id");
    if (!fs_uuid_valid(id)) {
        fs_errors_t *e = fs_errors_new();
        uuid_error(e, "path", "id", id);
        fs_errors_reply(req, e);
        return;
    }
    const char *params[] = {id, user->id};
    fs_pg_query(fs_worker->pg, "notifications_read", READ_SQL, 2, params, on_row, req);
}

static void mark_read(fs_req_t *req)
{
    fs_auth_require(req, false, read_on_user, NULL);
}

void fs_api_notifications_routes(fs_router_t *r)
{
    fs_router_add(r, "GET", "/users/me/notifications", list_notifications);
    fs_router_add(r, "POST", "/users/me/notifications/{id}/read", mark_read);
}
