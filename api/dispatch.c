/* From a parsed request to a handler: CORS (Starlette's CORSMiddleware semantics with
 * allow_credentials, all methods and all headers), URL decoding errors, routing, 404/405. */
#include "api/http_int.h"

#include "runtime/alloc.h"

#include <string.h>

/* Starlette expands allow_methods=["*"] to this list for preflight answers. */
#define CORS_METHODS "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
#define CORS_MAX_AGE "600"

static bool origin_ok(const fs_http_server_t *srv, const char *origin)
{
    return origin && srv->opts.origin_allowed && srv->opts.origin_allowed(origin, strlen(origin));
}

static bool method_listed(const char *m)
{
    static const char *const methods[] = {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", NULL};
    for (const char *const *p = methods; *p; p++)
        if (strcmp(*p, m) == 0)
            return true;
    return false;
}

/* Headers every response to an allowed origin carries. A disallowed origin gets none: the
 * browser then refuses the response, which is the point. */
static void cors_simple(fs_req_t *req, const char *origin)
{
    req->cors_origin = fs_strdup(origin);
    fs_reply_header(req, "Access-Control-Allow-Origin", origin);
    fs_reply_header(req, "Access-Control-Allow-Credentials", "true");
    fs_reply_header(req, "Vary", "Origin");
}

/* The route template for the label of an OPTIONS request, if the path exists. */
static void label_route(fs_http_server_t *srv, fs_req_t *req)
{
    fs_route_match_t m;
    fs_route_status_t rc = fs_router_match(srv->router, "OPTIONS", req->path, &m);
    if (rc == FS_ROUTE_FOUND || rc == FS_ROUTE_NOT_ALLOWED)
        req->route = m.route;
    fs_route_match_clear(&m);
}

static void cors_preflight(fs_http_server_t *srv, fs_req_t *req, const char *origin, const char *method)
{
    bool allowed = origin_ok(srv, origin), method_ok = method_listed(method);
    label_route(srv, req);
    fs_reply_header(req, "Vary", "Origin");
    if (allowed) {
        const char *headers = fs_req_header(req, "Access-Control-Request-Headers");
        fs_reply_header(req, "Access-Control-Allow-Origin", origin);
        fs_reply_header(req, "Access-Control-Allow-Credentials", "true");
        fs_reply_header(req, "Access-Control-Allow-Methods", CORS_METHODS);
        fs_reply_header(req, "Access-Control-Max-Age", CORS_MAX_AGE);
        if (headers)
            fs_reply_header(req, "Access-Control-Allow-Headers", headers);
    }
    const char *text = !allowed && !method_ok ? "Disallowed CORS origin, method"
                       : !allowed             ? "Disallowed CORS origin"
                       : !method_ok           ? "Disallowed CORS method"
                                              : "OK";
    fs_reply_raw(req, allowed && method_ok ? 200 : 400, "text/plain; charset=utf-8", text, strlen(text));
}

static void route(fs_http_server_t *srv, fs_req_t *req)
{
    switch (fs_router_match(srv->router, req->method, req->path, &req->match)) {
    case FS_ROUTE_FOUND:
        req->route = req->match.route;
        req->match.fn(req);
        return;
    case FS_ROUTE_NOT_ALLOWED:
        req->route = req->match.route;
        fs_reply_header(req, "Allow", req->match.allow);
        fs_reply_detail(req, 405, "Method Not Allowed");
        return;
    case FS_ROUTE_NOT_FOUND:
        fs_reply_detail(req, 404, "Not Found");
        return;
    case FS_ROUTE_BAD_ESCAPE:
        fs_reply_detail(req, 400, "Invalid percent-encoding in URL path");
        return;
    case FS_ROUTE_BAD_UTF8:
        fs_reply_detail(req, 400, "Invalid UTF-8 in URL path");
        return;
    }
}

void fs_http_dispatch(fs_http_server_t *srv, fs_req_t *req)
{
    const char *origin = fs_req_header(req, "Origin");
    if (origin && strcmp(req->method, "OPTIONS") == 0) {
        const char *method = fs_req_header(req, "Access-Control-Request-Method");
        if (method) {
            cors_preflight(srv, req, origin, method);
            return;
        }
    }
    if (origin_ok(srv, origin))
        cors_simple(req, origin);
    if (req->bad_input) {
        fs_reply_detail(req, 400, "%s", req->bad_input);
        return;
    }
    route(srv, req);
}
