/* The request context handed to handlers: method, route, decoded path parameters and query,
 * headers, body, peer, request id. Everything a handler reads is decoded once when the request
 * is created, so accessors are cheap and never fail. */
#include "api/http_int.h"

#include "runtime/alloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- request ids --------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* A UUID-4-shaped id, unique per process (seeded from getrandom at server start). */
void fs_http_make_id(fs_http_server_t *srv, char *out, size_t size)
{
    uint64_t n = ++srv->id_counter;
    uint64_t a = splitmix64(srv->id_seed ^ (n * 2)), b = splitmix64(srv->id_seed ^ (n * 2 + 1));
    snprintf(out, size, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
             (unsigned)a & 0xfff, (unsigned)((b >> 48) & 0x3fff) | 0x8000,
             (unsigned long long)(b & 0xffffffffffffULL));
}

/* A client's id is kept when it is short and made of characters that are safe in logs and
 * headers; anything else is replaced, so a hostile id cannot forge log lines. */
static bool id_is_sane(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("-_.:+=/", c);
        if (!ok || n >= 64)
            return false;
    }
    return n > 0;
}

/* ---- construction -------------------------------------------------------------------------- */

static void add_query(fs_req_t *req, char *key, char *val)
{
    req->query = fs_realloc(req->query, (req->n_query + 1) * sizeof *req->query);
    req->query[req->n_query++] = (fs_kv_t){key, val};
}

/* application/x-www-form-urlencoded as Starlette reads a query: pairs split on '&' only,
 * '+' is a space, a key without '=' has the value "". */
static const char *parse_query(fs_req_t *req, const char *raw)
{
    for (const char *p = raw; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            char *key, *val;
            fs_decode_rc_t rc = fs_http_decode(p, klen, true, &key);
            if (rc == FS_DECODE_OK) {
                rc = eq ? fs_http_decode(eq + 1, len - klen - 1, true, &val)
                        : (val = fs_strdup(""), FS_DECODE_OK);
                if (rc != FS_DECODE_OK)
                    free(key);
            }
            if (rc != FS_DECODE_OK)
                return rc == FS_DECODE_BAD_UTF8 ? "Invalid UTF-8 in query string"
                                                : "Invalid percent-encoding in query string";
            add_query(req, key, val);
        }
        p += len + (amp ? 1 : 0);
    }
    return NULL;
}

/* Copied at once (it is bounded by max_body_bytes) so that it outlives the connection. */
static void load_body(fs_req_t *req)
{
    struct evbuffer *in = req->ev->buffer_in;
    size_t n = evbuffer_get_length(in);
    if (n == 0)
        return;
    req->body = fs_malloc(n + 1);
    evbuffer_copyout(in, req->body, n);
    req->body[n] = '\0';
    req->body_len = n;
}

static void set_peer(fs_req_t *req, const fs_conn_t *fc)
{
    snprintf(req->peer, sizeof req->peer, "%s", fc ? fc->peer : "");
}

fs_req_t *fs_req_new(fs_http_server_t *srv, fs_conn_t *fc, evhtp_request_t *ev, bool use_query)
{
    fs_req_t *req = FS_NEW(fs_req_t);
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    req->srv = srv;
    req->ev = ev;
    req->conn = fc;
    req->method = htparser_get_methodstr_m(ev->method);
    if (!req->method)
        req->method = "GET";
    req->head = ev->method == htp_method_HEAD;
    const char *path = ev->uri && ev->uri->path && ev->uri->path->full ? ev->uri->path->full : "/";
    req->path = fs_strdup(path);
    const char *raw = ev->uri ? (const char *)ev->uri->query_raw : NULL;
    if (use_query && raw)
        req->bad_input = parse_query(req, raw);
    const char *cid = evhtp_kv_find(ev->headers_in, "X-Request-ID");
    if (cid && id_is_sane(cid))
        snprintf(req->id, sizeof req->id, "%s", cid);
    else
        fs_http_make_id(srv, req->id, sizeof req->id);
    set_peer(req, fc);
    load_body(req);
    return req;
}

void fs_req_free(fs_req_t *req)
{
    if (!req)
        return;
    for (size_t i = 0; i < req->n_query; i++) {
        free(req->query[i].key);
        free(req->query[i].val);
    }
    for (size_t i = 0; i < req->n_headers_out; i++) {
        free(req->headers_out[i].key);
        free(req->headers_out[i].val);
    }
    fs_route_match_clear(&req->match);
    free(req->query);
    free(req->headers_out);
    free(req->body);
    free(req->path);
    free(req->cors_origin);
    free(req);
}

double fs_req_elapsed(const fs_req_t *req)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - req->start.tv_sec) + (double)(now.tv_nsec - req->start.tv_nsec) / 1e9;
}

/* ---- accessors ----------------------------------------------------------------------------- */

const char *fs_req_method(const fs_req_t *req)
{
    return req->method;
}

const char *fs_req_path(const fs_req_t *req)
{
    return req->path;
}

const char *fs_req_route(const fs_req_t *req)
{
    return req->route;
}

const char *fs_req_id(const fs_req_t *req)
{
    return req->id;
}

const char *fs_req_param(const fs_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->match.n_params; i++)
        if (strcmp(req->match.names[i], name) == 0)
            return req->match.values[i];
    return NULL;
}

/* The last value wins, as for FastAPI's scalar query parameters. */
const char *fs_req_query(const fs_req_t *req, const char *name)
{
    for (size_t i = req->n_query; i-- > 0;)
        if (strcmp(req->query[i].key, name) == 0)
            return req->query[i].val;
    return NULL;
}

size_t fs_req_query_all(const fs_req_t *req, const char *name, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < req->n_query && n < max; i++)
        if (strcmp(req->query[i].key, name) == 0)
            out[n++] = req->query[i].val;
    return n;
}

/* Headers are only readable while the connection lives; a handler that needs one after an
 * asynchronous step copies it first (the contract is documented in docs/HTTP.md). */
const char *fs_req_header(const fs_req_t *req, const char *name)
{
    if (!req->ev)
        return NULL;
    return evhtp_kv_find(req->ev->headers_in, name);
}

const char *fs_req_body(const fs_req_t *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

const char *fs_req_peer_ip(const fs_req_t *req)
{
    return req->peer;
}

bool fs_req_from_loopback(const fs_req_t *req)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(req->peer, "unix") == 0)
        return true;
    if (inet_pton(AF_INET, req->peer, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, req->peer, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

void fs_req_set_data(fs_req_t *req, void *data)
{
    req->data = data;
}

void *fs_req_data(const fs_req_t *req)
{
    return req->data;
}
