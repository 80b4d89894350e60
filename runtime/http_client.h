/* Outbound HTTP on the worker's event loop: libcurl's multi interface driven by libevent
 * (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), as libcurl's hiperfifo example does.
 * Upstream flight providers and notification channels use it; nothing here blocks the loop.
 *
 * One client per worker. A request is described by fs_http_request_t, answered exactly once
 * on the loop (never before fs_http_client_send returns) with an fs_http_response_t that is
 * valid only during the callback.
 */
#ifndef FS_HTTP_CLIENT_H
#define FS_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct fs_http_client fs_http_client_t;

typedef struct fs_http_request {
    const char *method;             /* "GET", "POST", ... */
    const char *url;
    const char *const *headers;     /* "Name: value" strings, NULL-terminated; may be NULL */
    const char *body;               /* may be NULL */
    size_t body_len;
    int timeout_ms;                 /* whole exchange; 0 = 30000 */
    size_t max_response_bytes;      /* larger answers fail; 0 = 8 MiB */
} fs_http_request_t;

typedef struct fs_http_response {
    int status;                     /* HTTP status, 0 when no answer arrived */
    const char *body;               /* NUL-terminated; "" when none */
    size_t body_len;
    const char *error;              /* NULL on a completed exchange (any status), else why not
                                       ("timeout", "connection refused", "response too large") */
    bool timed_out;
    double elapsed_ms;
    /* A response header by name (case-insensitive), NULL if absent. */
    const char *(*header)(const struct fs_http_response *r, const char *name);
    void *_priv;
} fs_http_response_t;

typedef void (*fs_http_done_fn)(const fs_http_response_t *res, void *arg);

fs_http_client_t *fs_http_client_new(struct event_base *base);
/* Pending requests complete with error "canceled" before this returns. */
void fs_http_client_free(fs_http_client_t *c);

/* Starts a request; the request struct and its strings may be freed after the call. */
void fs_http_client_send(fs_http_client_t *c, const fs_http_request_t *req, fs_http_done_fn done, void *arg);

size_t fs_http_client_inflight(const fs_http_client_t *c);

#endif
