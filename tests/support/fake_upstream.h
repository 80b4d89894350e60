/* A scriptable HTTP server for tests of outbound clients (flight providers, notification
 * channels, webhooks): runs on its own thread with its own libevent loop (evhttp), listens on
 * 127.0.0.1 on a free port, and answers each request from a script keyed by method and path.
 *
 * A route has a standing answer (repeated) and a queue of one-shot answers used first, in
 * order. An answer has a status, a body, extra header lines and a delay (the server keeps
 * serving other requests meanwhile). Requests without a route get 404 {"error":"no route"}.
 * Every request is recorded (method, path, query, headers, body), so a test can count them and
 * inspect the last one. All functions are thread-safe; call them from the test thread.
 */
#ifndef FS_FAKE_UPSTREAM_H
#define FS_FAKE_UPSTREAM_H

#include <stddef.h>

typedef struct fs_fake_upstream fs_fake_upstream_t;

typedef struct fs_fake_answer {
    int status;               /* 0 = 200 */
    const char *body;         /* NULL = "" */
    const char *headers;      /* "Name: value" lines separated by '\n'; NULL = none. A body
                                 without a Content-Type gets application/json. */
    int delay_ms;             /* answer after this long */
} fs_fake_answer_t;

/* Starts the server (its thread runs until stop). Returns NULL if it cannot listen. */
fs_fake_upstream_t *fs_fake_upstream_start(void);
/* Stops the thread; requests still waiting for a delayed answer get 503 first. */
void fs_fake_upstream_stop(fs_fake_upstream_t *f);

int fs_fake_upstream_port(const fs_fake_upstream_t *f);
/* "http://127.0.0.1:PORT" (no trailing slash), valid until stop. */
const char *fs_fake_upstream_url(const fs_fake_upstream_t *f);

/* The standing answer for `method` (NULL = any method) and `path` (without the query). */
void fs_fake_upstream_set(fs_fake_upstream_t *f, const char *method, const char *path, const fs_fake_answer_t *a);
/* A one-shot answer for the next matching request, before the standing one (FIFO). */
void fs_fake_upstream_push(fs_fake_upstream_t *f, const char *method, const char *path, const fs_fake_answer_t *a);
/* Shorthand for set with status and body only. */
void fs_fake_upstream_json(fs_fake_upstream_t *f, const char *method, const char *path, int status, const char *body);
/* Forgets every route and the request log. */
void fs_fake_upstream_reset(fs_fake_upstream_t *f);

/* Requests received for `path` (NULL = all paths), whatever their answer. */
int fs_fake_upstream_count(fs_fake_upstream_t *f, const char *path);

/* A copy of the last request to `path` (NULL = any); free with fs_fake_request_free. */
typedef struct fs_fake_request {
    char *method, *path, *query;   /* query without '?', "" when none */
    char *headers;                 /* "Name: value\n" lines */
    char *body;                    /* NUL-terminated */
    size_t body_len;
} fs_fake_request_t;

fs_fake_request_t *fs_fake_upstream_last(fs_fake_upstream_t *f, const char *path);
void fs_fake_request_free(fs_fake_request_t *r);
/* A header's value from a recorded request (case-insensitive), copied into buf; NULL if absent. */
const char *fs_fake_request_header(const fs_fake_request_t *r, const char *name, char *buf, size_t size);
/* A query parameter's raw (still URL-encoded) value, copied into buf; NULL if absent. */
const char *fs_fake_request_param(const fs_fake_request_t *r, const char *name, char *buf, size_t size);

#endif
