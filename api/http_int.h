/* Internals of the HTTP layer shared by api/http.c, router.c, head.c, request.c, reply.c and
 * validate.c. Nothing outside api/http*.c and the tests should include this file. */
#ifndef FS_HTTP_INT_H
#define FS_HTTP_INT_H

#include "api/http.h"
#include "runtime/metrics.h"

#include <evhtp.h>
#include <stdint.h>
#include <time.h>

/* ---- limits ------------------------------------------------------------------------------ */

#define FS_ROUTE_MAX_PARAMS   8
#define FS_ROUTE_MAX_SEGMENTS 32
/* htparser keeps each token (URI, header name, header value) in an 8192-byte buffer and closes
 * the connection without a response when one is longer, so our own limits stay below it. */
#define FS_HTTP_URI_HARD_MAX    8000
#define FS_HTTP_HEADER_LINE_MAX 8000
#define FS_HTTP_HEAD_MAX        (64 * 1024)
#define FS_HTTP_MAX_HEADERS     100

/* ---- percent-decoding and UTF-8 -------------------------------------------------------- */

typedef enum { FS_DECODE_OK = 0, FS_DECODE_BAD_ESCAPE = -1, FS_DECODE_BAD_UTF8 = -2 } fs_decode_rc_t;

/* Decodes %XX escapes (and '+' as a space when `plus_is_space`) into a new NUL-terminated
 * string in *out. A '%' not followed by two hex digits, or an escaped NUL, is BAD_ESCAPE; a
 * result that is not UTF-8 is BAD_UTF8. *out is NULL on error. */
fs_decode_rc_t fs_http_decode(const char *s, size_t len, bool plus_is_space, char **out);
bool fs_utf8_valid(const char *s, size_t len);
/* Code points in a valid UTF-8 string (what pydantic's min_length/max_length count). */
size_t fs_utf8_length(const char *s);

/* ---- router ------------------------------------------------------------------------------ */

typedef enum {
    FS_ROUTE_FOUND,
    FS_ROUTE_NOT_FOUND,
    FS_ROUTE_NOT_ALLOWED, /* the path exists with other methods: 405 with `allow` */
    FS_ROUTE_BAD_ESCAPE,
    FS_ROUTE_BAD_UTF8,
} fs_route_status_t;

typedef struct fs_route_match {
    fs_handler_fn fn;
    const char *route; /* template as registered; owned by the router */
    size_t n_params;
    const char *names[FS_ROUTE_MAX_PARAMS]; /* owned by the router */
    char *values[FS_ROUTE_MAX_PARAMS];      /* decoded; freed by fs_route_match_clear */
    char allow[128];                        /* "GET, HEAD, POST" for 405 */
} fs_route_match_t;

/* Matches `path` (raw, percent-encoded, without the query). HEAD falls back to GET. */
fs_route_status_t fs_router_match(const fs_router_t *r, const char *method, const char *path,
                                  fs_route_match_t *m);
void fs_route_match_clear(fs_route_match_t *m);

/* ---- request head checks (before evhtp parses anything) --------------------------------- */

typedef enum { FS_HEAD_NEED_MORE = 0, FS_HEAD_OK = 1, FS_HEAD_REJECT = -1 } fs_head_rc_t;

typedef struct fs_head_limits {
    size_t max_uri;
    size_t max_body;
} fs_head_limits_t;

typedef struct fs_head_verdict {
    size_t skip;        /* empty lines before the request line (drop them) */
    size_t head_len;    /* bytes of the head including the blank line, when OK */
    long long body_len; /* when OK: Content-Length, 0 without a body, -1 when chunked */
    int status;         /* when REJECT */
    const char *detail; /* when REJECT: a static string */
    char method[16];    /* the method when it was readable, else "" */
} fs_head_verdict_t;

/* Looks at the bytes of a request that has not been handed to evhtp yet. NEED_MORE until the
 * whole head (request line and headers) is there; REJECT with a status (400, 413, 414, 431,
 * 501, 505) for what we refuse to let the evhtp parser see. */
fs_head_rc_t fs_http_head_check(const char *buf, size_t len, const fs_head_limits_t *lim,
                                fs_head_verdict_t *v);

/* ---- server, connections, requests ------------------------------------------------------ */

typedef struct fs_kv {
    char *key, *val;
} fs_kv_t;

typedef struct fs_conn fs_conn_t;
typedef struct fs_closing fs_closing_t;

struct fs_http_server {
    struct event_base *base;
    evhtp_t *htp;
    fs_router_t *router;
    fs_http_opts_t opts;
    bool accepting;
    struct event *accept_retry;
    /* evhtp's own bufferevent callbacks, captured at the first accept and wrapped */
    bufferevent_data_cb evhtp_readcb, evhtp_writecb;
    fs_conn_t *conns;
    fs_conn_t *graveyard; /* freed by `reaper` on the next loop turn */
    struct event *reaper;
    fs_closing_t *closing;
    fs_req_t *pending; /* requests not answered yet */
    size_t n_pending;
    fs_metric_family_t *m_requests, *m_duration, *m_accept_errors;
    uint64_t id_seed, id_counter;
};

struct fs_conn {
    fs_http_server_t *srv;
    evhtp_connection_t *ev; /* NULL once evhtp has freed it (then `dead`) */
    fs_req_t *req;          /* latest request of this connection until evhtp frees it */
    struct event *watch;    /* notices a disconnect while a request is paused */
    struct event *pump;     /* continues with pipelined requests on the next loop turn */
    struct evbuffer *stash; /* bytes after the request evhtp is parsing (pipelining) */
    bool dead;              /* evhtp freed the connection; we free this on the next turn */
    uint64_t body_bytes;    /* of the current request */
    long long msg_left;     /* bytes of the current request not yet given to evhtp; -1 unknown */
    unsigned n_requests;
    bool close_after_flush;
    bool hdr_seen, query_at_head;
    char peer[64];
    fs_conn_t *prev, *next;
};

struct fs_req {
    fs_http_server_t *srv; /* NULL once the server is freed */
    evhtp_request_t *ev;   /* NULL once evhtp has freed the request (client gone) */
    fs_conn_t *conn;       /* NULL once the connection is freed */
    fs_req_t *prev, *next; /* srv->pending while unanswered */
    const char *method;
    char *path;
    fs_route_match_t match;
    const char *route;
    fs_kv_t *query;
    size_t n_query;
    const char *bad_input; /* 400 detail found while decoding the URL, or NULL */
    char *body;
    size_t body_len;
    fs_kv_t *headers_out;
    size_t n_headers_out;
    char id[72];
    char peer[64];
    char *cors_origin; /* an allowed Origin to echo */
    struct timespec start;
    bool head, paused, replied;
    void *data;
};

/* request.c */
fs_req_t *fs_req_new(fs_http_server_t *srv, fs_conn_t *fc, evhtp_request_t *ev, bool use_query);
void fs_req_free(fs_req_t *req);
void fs_http_make_id(fs_http_server_t *srv, char *out, size_t size);
double fs_req_elapsed(const fs_req_t *req);

/* reply.c */
typedef struct fs_response {
    int status;
    int minor; /* HTTP/1.minor */
    bool keepalive;
    bool head_only; /* HEAD: headers (with the real Content-Length) but no body */
    const char *content_type;
    const char *body;
    size_t len;
    const char *request_id;
    double seconds; /* X-Process-Time */
    const fs_kv_t *headers;
    size_t n_headers;
    bool owned;  /* body is malloc'd and handed to the output buffer, which frees it */
} fs_response_t;

void fs_http_write_response(struct evbuffer *out, const fs_response_t *r);
const char *fs_http_reason(int status);
/* One log line and the two HTTP metrics for a finished exchange. */
void fs_http_observe(fs_http_server_t *srv, const char *method, const char *route, const char *path,
                     int status, double seconds, const char *request_id, const char *peer);

/* dispatch.c: CORS, URL errors, routing, 404/405, the handler. */
void fs_http_dispatch(fs_http_server_t *srv, fs_req_t *req);

/* http.c */
void fs_http_pending_remove(fs_http_server_t *srv, fs_req_t *req);
/* Decides whether the connection stays open after this response (client's wish, draining,
 * max_keepalive_requests); when it does not, evhtp is told and the connection closes once the
 * response is flushed. */
bool fs_http_conn_keepalive(fs_conn_t *fc, evhtp_request_t *ev);
/* The response is in the output buffer: marks the request finished and resumes a paused one. */
void fs_http_conn_replied(fs_conn_t *fc, fs_req_t *req);

#endif
