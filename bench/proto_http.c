/* HTTP/1.1 over keep-alive connections. Responses are parsed with http-parser (the parser wrk
 * uses): it handles Content-Length, chunked bodies and bodies delimited by close. */
#include "bench/proto.h"

#include "runtime/alloc.h"

#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct http_state {
    http_parser parser;
    fs_proto_resp_t resp;
    bool done;
    bool started;
} http_state_t;

static int on_message_begin(http_parser *p)
{
    ((http_state_t *)p->data)->started = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    ((http_state_t *)p->data)->resp.body_len += len;
    return 0;
}

/* Pausing stops http_parser_execute right after this response, so *used is exact. */
static int on_message_complete(http_parser *p)
{
    http_state_t *st = p->data;
    st->resp.status = (int)p->status_code;
    st->resp.ok = p->status_code >= 200 && p->status_code < 300;
    st->resp.keep_alive = http_should_keep_alive(p) != 0;
    st->done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void http_reset(void *state)
{
    http_state_t *st = state;
    memset(st, 0, sizeof *st);
    http_parser_init(&st->parser, HTTP_RESPONSE);
    st->parser.data = st;
}

static fs_proto_rc_t http_feed(void *state, const char *data, size_t len, size_t *used, fs_proto_resp_t *resp)
{
    http_state_t *st = state;
    size_t n = http_parser_execute(&st->parser, &settings, data, len);
    *used = n;
    if (st->done) {
        *resp = st->resp;
        return FS_PROTO_DONE;
    }
    if (HTTP_PARSER_ERRNO(&st->parser) != HPE_OK || n != len)
        return FS_PROTO_ERROR;
    return FS_PROTO_MORE;
}

static fs_proto_rc_t http_eof(void *state, fs_proto_resp_t *resp)
{
    http_state_t *st = state;
    if (!st->started)
        return FS_PROTO_MORE;
    http_parser_execute(&st->parser, &settings, NULL, 0);
    if (st->done) {
        *resp = st->resp;
        resp->keep_alive = false;
        return FS_PROTO_DONE;
    }
    return FS_PROTO_ERROR;
}

static bool has_header(const fs_proto_req_t *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nheaders; i++)
        if (strncasecmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':')
            return true;
    return false;
}

static int http_render(const fs_proto_req_t *r, fs_bench_buf_t *out, char **err)
{
    if (r->target[0] != '/') {
        *err = fs_sprintf("request path must start with '/': %s", r->target);
        return -1;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fprintf(f, "%s %s HTTP/1.1\r\n", r->method, r->target);
    if (!has_header(r, "Host"))
        fprintf(f, "Host: %s\r\n", r->authority);
    for (int i = 0; i < r->nheaders; i++)
        fprintf(f, "%s\r\n", r->headers[i]);
    if (r->body) {
        if (!has_header(r, "Content-Type"))
            fprintf(f, "Content-Type: application/json\r\n");
        fprintf(f, "Content-Length: %zu\r\n\r\n%s", strlen(r->body), r->body);
    } else {
        fprintf(f, "\r\n");
    }
    fclose(f);
    out->data = buf;
    out->len = len;
    return 0;
}

const fs_bench_proto_t fs_bench_proto_http = {
    .name = "http",
    .render = http_render,
    .state_size = sizeof(http_state_t),
    .reset = http_reset,
    .feed = http_feed,
    .eof = http_eof,
};

const fs_bench_proto_t *fs_bench_proto_find(const char *name)
{
    if (strcmp(name, "http") == 0)
        return &fs_bench_proto_http;
    if (strcmp(name, "rpc") == 0)
        return &fs_bench_proto_rpc;
    return NULL;
}
