/* The HTTP layer: an evhtp server per worker, a router with path parameters, FastAPI-shaped
 * errors, JSON replies, CORS, request ids, one JSON log line and metrics per request.
 *
 * Handler contract: a handler receives an fs_req_t and must reply exactly once, either before
 * it returns or later from the same loop (after a database or Redis callback). A request that
 * has not been answered when its handler returns is paused; the reply resumes it. If the client
 * disconnects meanwhile, the reply is discarded; the fs_req_t stays valid until the reply call,
 * so asynchronous code never has to know. Replies are only ever made on the owning loop.
 */
#ifndef FS_HTTP_H
#define FS_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct fs_metrics fs_metrics_t;
typedef struct fs_req fs_req_t;
typedef struct fs_router fs_router_t;
typedef struct fs_http_server fs_http_server_t;

typedef void (*fs_handler_fn)(fs_req_t *req);

/* ---- router ---------------------------------------------------------------------------- */

fs_router_t *fs_router_new(void);
void fs_router_free(fs_router_t *r);
/* `pattern` like "/airports/{code}". A static segment wins over a parameter at the same depth
 * ("/airports/popular" is never captured by "/airports/{code}"). A trailing slash is not
 * significant: "/airlines/" and "/airlines" are the same route. */
void fs_router_add(fs_router_t *r, const char *method, const char *pattern, fs_handler_fn fn);

/* ---- server ---------------------------------------------------------------------------- */

typedef struct fs_http_opts {
    size_t max_body_bytes;       /* larger bodies: 413 */
    size_t max_uri_bytes;        /* longer request targets: 414 */
    int read_timeout_ms;
    int idle_timeout_ms;
    int max_keepalive_requests;
    fs_metrics_t *metrics;       /* may be NULL */
    bool (*origin_allowed)(const char *origin, size_t len); /* CORS; NULL allows none */
    bool log_requests;
} fs_http_opts_t;

fs_http_server_t *fs_http_server_new(struct event_base *base, fs_router_t *router, const fs_http_opts_t *opts);
/* Serves on an already listening socket (handed over by the master). */
int fs_http_server_accept_fd(fs_http_server_t *s, int fd);
/* Binds and listens itself (tests, single-process tools). Port 0 picks a free port. */
int fs_http_server_listen(fs_http_server_t *s, const char *addr, int port);
int fs_http_server_port(const fs_http_server_t *s);
/* Stops accepting new connections; in-flight requests continue. */
void fs_http_server_stop_accepting(fs_http_server_t *s);
size_t fs_http_server_inflight(const fs_http_server_t *s);
void fs_http_server_free(fs_http_server_t *s);

/* ---- request ---------------------------------------------------------------------------- */

const char *fs_req_method(const fs_req_t *req);
const char *fs_req_path(const fs_req_t *req);
const char *fs_req_route(const fs_req_t *req);      /* the matched template, e.g. "/airports/{code}" */
const char *fs_req_id(const fs_req_t *req);
const char *fs_req_param(const fs_req_t *req, const char *name);  /* path parameter, decoded */
const char *fs_req_query(const fs_req_t *req, const char *name);  /* query parameter, decoded; NULL if absent */
/* All values of a repeated query parameter; returns how many were stored in `out`. */
size_t fs_req_query_all(const fs_req_t *req, const char *name, const char **out, size_t max);
const char *fs_req_header(const fs_req_t *req, const char *name);
const char *fs_req_body(const fs_req_t *req, size_t *len);
const char *fs_req_peer_ip(const fs_req_t *req);
bool fs_req_from_loopback(const fs_req_t *req);
/* Arbitrary pointer for asynchronous handlers. */
void fs_req_set_data(fs_req_t *req, void *data);
void *fs_req_data(const fs_req_t *req);

/* ---- replies ---------------------------------------------------------------------------- */

void fs_reply_header(fs_req_t *req, const char *name, const char *value); /* before the reply */
void fs_reply_json(fs_req_t *req, int status, json_t *body);              /* steals body */
void fs_reply_raw(fs_req_t *req, int status, const char *content_type, const char *body, size_t len);
/* As fs_reply_raw, but takes a malloc'd body and sends it without copying (it is freed once
 * written, or at once when there is nobody to send it to). */
void fs_reply_take(fs_req_t *req, int status, const char *content_type, char *body, size_t len);
void fs_reply_detail(fs_req_t *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 503 {"detail": ...} with Retry-After: the shape for "try again shortly" (pool down, full mailbox). */
void fs_reply_unavailable(fs_req_t *req, int retry_after_s, const char *detail);

/* ---- validation (FastAPI/pydantic v2 shape) ---------------------------------------------- */

/* Collects every validation error of a request, then answers 422 with
 * {"detail":[{"type","loc","msg","input","ctx"?}, ...]} in one go, as FastAPI does. */
typedef struct fs_errors fs_errors_t;
fs_errors_t *fs_errors_new(void);
/* `loc_kind` is "query", "path", "body" or "header". `ctx` may be NULL (stolen otherwise). */
void fs_errors_add(fs_errors_t *e, const char *loc_kind, const char *field, const char *type, const char *msg,
                   json_t *input, json_t *ctx);
bool fs_errors_any(const fs_errors_t *e);
/* If there are errors: replies 422, frees `e` and returns true. Otherwise frees `e`, false. */
bool fs_errors_reply(fs_req_t *req, fs_errors_t *e);

/* Query parameter readers: on a bad value they record a pydantic-style error and leave the
 * default in place. `required` strings record "missing" when absent. */
void fs_query_int(fs_req_t *req, fs_errors_t *e, const char *name, long dflt, long min, long max, long *out);
void fs_query_bool(fs_req_t *req, fs_errors_t *e, const char *name, bool dflt, bool *out);
void fs_query_str(fs_req_t *req, fs_errors_t *e, const char *name, bool required, size_t min_len, size_t max_len,
                  const char **out);
/* One of a fixed set of values (NULL-terminated `allowed`). */
void fs_query_enum(fs_req_t *req, fs_errors_t *e, const char *name, const char *dflt, const char *const *allowed,
                   const char **out);
/* YYYY-MM-DD. */
void fs_query_date(fs_req_t *req, fs_errors_t *e, const char *name, bool required, int *y, int *m, int *d,
                   bool *present);

/* Parses the body as a JSON object; on failure replies 422 (json_invalid / model_attributes_type)
 * and returns NULL. The caller owns the result. */
json_t *fs_req_json_or_reply(fs_req_t *req);

#endif
