/* The wire protocol the generator speaks, behind a small table of functions.
 *
 * The engine (loadgen.c) knows nothing of HTTP: it writes pre-rendered request bytes, feeds what
 * it reads to `feed`, and is told when a response is complete and whether it succeeded. HTTP/1.1
 * is the first implementation; the internal protobuf RPC (length-prefixed frames) is meant to be
 * a second file exposing another fs_bench_proto_t, selected by `protocol = rpc` in a scenario.
 * One response is outstanding per connection (no pipelining), which keeps latency per request
 * well defined.
 */
#ifndef FS_BENCH_PROTO_H
#define FS_BENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes owned by whoever holds the struct (free `data`). */
typedef struct fs_bench_buf {
    char *data;
    size_t len;
} fs_bench_buf_t;

/* What the protocol learned from one complete response. */
typedef struct fs_proto_resp {
    int status;      /** protocol status (the HTTP status code) */
    bool ok;         /** success by the protocol's rules (HTTP: 2xx) */
    bool keep_alive; /** false: the connection must be reopened for the next request */
    size_t body_len; /** payload bytes */
} fs_proto_resp_t;

typedef enum {
    FS_PROTO_MORE = 0,  /* response incomplete: feed more bytes */
    FS_PROTO_DONE = 1,  /* response complete: see fs_proto_resp_t */
    FS_PROTO_ERROR = -1 /* malformed: close the connection */
} fs_proto_rc_t;

/* One request template as a protocol sees it; `q` substitution is already done. */
typedef struct fs_proto_req {
    const char *method;
    const char *target;         /* path and query string (HTTP) or method name (RPC) */
    const char *body;           /* may be NULL */
    const char *const *headers; /* "Name: value", `nheaders` of them */
    int nheaders;
    const char *authority; /* host:port of the target */
} fs_proto_req_t;

typedef struct fs_bench_proto {
    const char *name;
    /* Encodes one request into `out` (new bytes). Returns 0, or -1 with *err set (caller frees). */
    int (*render)(const fs_proto_req_t *req, fs_bench_buf_t *out, char **err);
    /* Size of the per-connection parse state, set up by `reset` before each response. */
    size_t state_size;
    void (*reset)(void *state);
    /* Consumes up to `len` bytes; *used says how many were taken (a complete response stops
     * consumption, leaving the rest). */
    fs_proto_rc_t (*feed)(void *state, const char *data, size_t len, size_t *used, fs_proto_resp_t *resp);
    /* The peer closed: FS_PROTO_DONE if that completes a response (HTTP body delimited by close),
     * FS_PROTO_ERROR if a response was cut short, FS_PROTO_MORE if nothing had started. */
    fs_proto_rc_t (*eof)(void *state, fs_proto_resp_t *resp);
} fs_bench_proto_t;

extern const fs_bench_proto_t fs_bench_proto_http;
extern const fs_bench_proto_t fs_bench_proto_rpc; /* bench/proto_rpc.c */

/* The protocol called `name` ("http", "rpc"), or NULL. */
const fs_bench_proto_t *fs_bench_proto_find(const char *name);

#endif
