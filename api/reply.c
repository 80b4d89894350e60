/* Replies: every response is written here, with X-Process-Time, X-Request-ID, Date, the CORS
 * headers chosen at dispatch, and one log line plus the two HTTP metrics per exchange.
 *
 * We write the status line and headers ourselves rather than through evhtp_send_reply: evhtp
 * knows no reason phrase for 422 or 429 (it prints "DERP") and adds "Content-Type: text/plain"
 * on its own. evhtp_send_reply_end then marks the request finished, so evhtp's keep-alive and
 * pause/resume logic runs exactly as for its own replies.
 */
#include "api/http_int.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Request Entity Too Large"},
    {414, "Request-URI Too Long"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *fs_http_reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}

static bool has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

static void free_owned_body(const void *data, size_t len, void *arg)
{
    free((void *)data);
}

void fs_http_write_response(struct evbuffer *out, const fs_response_t *r)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);

    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", r->minor, r->status, fs_http_reason(r->status));
    evbuffer_add_printf(out, "Date: %s\r\n", date);
    if (r->content_type)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", r->content_type);
    if (has_body(r->status))
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", r->len);
    evbuffer_add_printf(out, "X-Process-Time: %.6f\r\n", r->seconds);
    if (r->request_id)
        evbuffer_add_printf(out, "X-Request-ID: %s\r\n", r->request_id);
    for (size_t i = 0; i < r->n_headers; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", r->headers[i].key, r->headers[i].val);
    if (r->minor >= 1 && !r->keepalive)
        evbuffer_add(out, "Connection: close\r\n", 19);
    else if (r->minor == 0 && r->keepalive)
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    evbuffer_add(out, "\r\n", 2);
    bool send_body = !r->head_only && has_body(r->status) && r->len;
    if (send_body && r->owned)
        evbuffer_add_reference(out, r->body, r->len, free_owned_body, NULL);
    else if (send_body)
        evbuffer_add(out, r->body, r->len);
    else if (r->owned)
        free((void *)r->body);
}

/* ---- log line and metrics ------------------------------------------------------------------ */

static json_t *lossy_string(const char *s)
{
    json_t *j = json_string(s);
    return j ? j : json_string("(not utf-8)");
}

static void log_exchange(const char *method, const char *route, const char *path, int status, double seconds,
                         const char *request_id, const char *peer)
{
    json_t *o = json_object();
    json_object_set_new(o, "method", lossy_string(method));
    json_object_set_new(o, "route", route ? lossy_string(route) : json_null());
    json_object_set_new(o, "path", lossy_string(path));
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "duration_ms", json_real((double)(long long)(seconds * 1e6) / 1e3));
    json_object_set_new(o, "request_id", lossy_string(request_id));
    json_object_set_new(o, "peer", lossy_string(peer));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!s)
        return;
    size_t n = strlen(s);
    s[n - 1] = '\0'; /* fs_log_json takes the pairs without the braces */
    fs_log_json(status >= 500 ? FS_LOG_WARN : FS_LOG_INFO, "request", s + 1);
    free(s);
}

/* The endpoint label is the route template, never the raw path, so that a scan of random
 * URLs cannot create unbounded series. /metrics itself is not counted, as in the original. */
void fs_http_observe(fs_http_server_t *srv, const char *method, const char *route, const char *path,
                     int status, double seconds, const char *request_id, const char *peer)
{
    if (srv->opts.metrics && !(route && strcmp(route, "/metrics") == 0)) {
        char code[16];
        snprintf(code, sizeof code, "%d", status);
        const char *endpoint = route ? route : "unmatched";
        const char *v3[] = {method, endpoint, code};
        fs_metric_inc(fs_metrics_series(srv->m_requests, v3), 1);
        const char *v2[] = {method, endpoint};
        fs_metric_observe(fs_metrics_series(srv->m_duration, v2), seconds);
    }
    if (srv->opts.log_requests)
        log_exchange(method, route, path, status, seconds, request_id, peer);
}

/* ---- replies ------------------------------------------------------------------------------- */

/* `owned`: body is malloc'd and belongs to the reply from here on. */
static void send_reply_body(fs_req_t *req, int status, const char *content_type, const char *body, size_t len,
                            bool owned)
{
    if (req->replied) {
        fs_warn("request %s answered twice; the second reply (%d) is dropped", req->id, status);
        if (owned)
            free((void *)body);
        return;
    }
    req->replied = true;
    double seconds = fs_req_elapsed(req);
    if (req->srv) {
        /* 499 (nginx's "client closed request") when nobody is left to read the answer */
        fs_http_pending_remove(req->srv, req);
        fs_http_observe(req->srv, req->method, req->route, req->path, req->ev ? status : 499, seconds,
                        req->id, req->peer);
    }
    if (!req->ev) { /* the client left while the handler worked */
        if (owned)
            free((void *)body);
        fs_req_free(req);
        return;
    }
    evhtp_request_t *ev = req->ev;
    fs_response_t r = {
        .status = status,
        .minor = ev->proto == EVHTP_PROTO_10 ? 0 : 1,
        .keepalive = fs_http_conn_keepalive(req->conn, ev),
        .head_only = req->head,
        .content_type = content_type,
        .body = body,
        .len = len,
        .request_id = req->id,
        .seconds = seconds,
        .headers = req->headers_out,
        .n_headers = req->n_headers_out,
        .owned = owned,
    };
    fs_http_write_response(bufferevent_get_output(evhtp_connection_get_bev(ev->conn)), &r);
    fs_http_conn_replied(req->conn, req);
}

static void send_reply(fs_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    send_reply_body(req, status, content_type, body, len, false);
}

void fs_reply_take(fs_req_t *req, int status, const char *content_type, char *body, size_t len)
{
    send_reply_body(req, status, content_type, body, len, true);
}

void fs_reply_header(fs_req_t *req, const char *name, const char *value)
{
    if (req->replied)
        return;
    req->headers_out = fs_realloc(req->headers_out, (req->n_headers_out + 1) * sizeof *req->headers_out);
    req->headers_out[req->n_headers_out++] = (fs_kv_t){fs_strdup(name), fs_strdup(value)};
}

void fs_reply_raw(fs_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    send_reply(req, status, content_type, body, len);
}

void fs_reply_json(fs_req_t *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (!text) {
        fs_error("request %s: reply body could not be encoded", req->id);
        send_reply(req, 500, "text/plain; charset=utf-8", "Internal Server Error", 21);
        return;
    }
    send_reply(req, status, "application/json", text, strlen(text));
    free(text);
}

/* Replaces bytes that are not UTF-8 so that a detail quoting user input can always be sent. */
static json_t *detail_string(const char *msg)
{
    if (fs_utf8_valid(msg, strlen(msg)))
        return json_string(msg);
    char *copy = fs_strdup(msg);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    json_t *j = json_string(copy);
    free(copy);
    return j;
}

void fs_reply_detail(fs_req_t *req, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    json_t *body = json_object();
    json_object_set_new(body, "detail", detail_string(msg ? msg : ""));
    free(msg);
    fs_reply_json(req, status, body);
}

void fs_reply_unavailable(fs_req_t *req, int retry_after_s, const char *detail)
{
    char v[16];
    snprintf(v, sizeof v, "%d", retry_after_s > 0 ? retry_after_s : 1);
    fs_reply_header(req, "Retry-After", v);
    fs_reply_detail(req, 503, "%s", detail ? detail : "Service temporarily unavailable");
}
