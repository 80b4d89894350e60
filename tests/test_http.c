/* The HTTP layer over real sockets: an event loop in a background thread of the test process
 * serves test handlers through fs_http_server_listen on 127.0.0.1, and the tests drive it with
 * libcurl (fs_test_http) and raw bytes (fs_test_raw and a small keep-alive client below). */
#include "api/http.h"
#include "runtime/metrics.h"
#include "tests/support/harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the server under test ------------------------------------------------------------------ */

static struct {
    struct event_base *base;
    fs_router_t *router;
    fs_metrics_t *metrics;
    fs_http_server_t *srv;
    pthread_t thread;
    int stop_pipe[2];
    struct event *stop_ev;
    int port;
    char url[64];
} S;

static atomic_int slow_replies;

static bool allow_localhost(const char *origin, size_t len)
{
    return len == 21 && strncmp(origin, "http://localhost:3000", len) == 0;
}

static void h_hello(fs_req_t *req)
{
    fs_reply_json(req, 200, json_pack("{s:s}", "hello", "world"));
}

static void h_item(fs_req_t *req)
{
    fs_reply_json(req, 200,
                  json_pack("{s:s,s:s}", "id", fs_req_param(req, "id"), "route", fs_req_route(req)));
}

static void h_special(fs_req_t *req)
{
    fs_reply_json(req, 200, json_pack("{s:b}", "special", 1));
}

static void h_create(fs_req_t *req)
{
    json_t *body = fs_req_json_or_reply(req);
    if (body)
        fs_reply_json(req, 201, body);
}

typedef struct {
    fs_req_t *req;
    struct event *timer;
    bool count;
} later_t;

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    later_t *l = arg;
    event_free(l->timer);
    fs_reply_json(l->req, 200, json_pack("{s:b}", "async", 1));
    if (l->count)
        atomic_fetch_add(&slow_replies, 1);
    free(l);
}

static void reply_later(fs_req_t *req, int ms, bool count)
{
    later_t *l = calloc(1, sizeof *l);
    l->req = req;
    l->count = count;
    l->timer = evtimer_new(S.base, on_later, l);
    struct timeval tv = {0, ms * 1000};
    evtimer_add(l->timer, &tv);
}

static void h_async(fs_req_t *req)
{
    reply_later(req, 50, false);
}

static void h_slow(fs_req_t *req)
{
    reply_later(req, 400, true);
}

static void h_validate(fs_req_t *req)
{
    static const char *const strategies[] = {"fallback", "parallel", "best_price", NULL};
    fs_errors_t *e = fs_errors_new();
    long limit;
    bool direct;
    const char *origin = NULL, *strategy;
    int y = 0, m = 0, d = 0;
    bool has_date;
    fs_query_int(req, e, "limit", 10, 1, 50, &limit);
    fs_query_str(req, e, "origin", true, 3, 3, &origin);
    fs_query_bool(req, e, "direct", false, &direct);
    fs_query_enum(req, e, "strategy", "fallback", strategies, &strategy);
    fs_query_date(req, e, "dep", true, &y, &m, &d, &has_date);
    if (fs_errors_reply(req, e))
        return;
    fs_reply_json(req, 200,
                  json_pack("{s:I,s:s,s:b,s:s,s:[i,i,i]}", "limit", (json_int_t)limit, "origin", origin,
                            "direct", direct, "strategy", strategy, "dep", y, m, d));
}

static void h_query(fs_req_t *req)
{
    const char *all[8];
    size_t n = fs_req_query_all(req, "q", all, 8);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(all[i]));
    const char *x = fs_req_query(req, "x");
    fs_reply_json(req, 200, json_pack("{s:o,s:s?}", "q", list, "x", x));
}

static void h_whoami(fs_req_t *req)
{
    const char *t = fs_req_header(req, "X-Test");
    fs_reply_header(req, "X-Custom", "yes");
    fs_reply_json(req, 200,
                  json_pack("{s:s?,s:s,s:b,s:s,s:s}", "x_test", t, "peer", fs_req_peer_ip(req), "loopback",
                            fs_req_from_loopback(req), "method", fs_req_method(req), "path",
                            fs_req_path(req)));
}

static void h_unavailable(fs_req_t *req)
{
    fs_reply_unavailable(req, 5, "Database unavailable");
}

static void h_twice(fs_req_t *req)
{
    fs_reply_detail(req, 409, "first %s", "reply");
    fs_reply_detail(req, 200, "second");
}

static void h_inflight(fs_req_t *req)
{
    fs_reply_json(req, 200, json_pack("{s:I}", "inflight", (json_int_t)fs_http_server_inflight(S.srv)));
}

static void h_stop(fs_req_t *req)
{
    fs_http_server_stop_accepting(S.srv);
    fs_reply_json(req, 200, json_pack("{s:b}", "stopping", 1));
}

static void h_accept_errors(fs_req_t *req)
{
    fs_metric_series_t *s =
        fs_metrics_simple(S.metrics, FS_METRIC_COUNTER, "flightshark_http_accept_errors_total", "");
    fs_reply_json(req, 200, json_pack("{s:f}", "errors", fs_metric_value(s)));
}

/* Holds the loop (test only), so that events of other connections pile up for one loop turn. */
static void h_block(fs_req_t *req)
{
    usleep(300 * 1000);
    fs_reply_json(req, 200, json_pack("{s:b}", "blocked", 1));
}

static void routes(fs_router_t *r)
{
    fs_router_add(r, "GET", "/hello", h_hello);
    fs_router_add(r, "GET", "/items/{id}", h_item);
    fs_router_add(r, "PUT", "/items/{id}", h_item);
    fs_router_add(r, "GET", "/items/special", h_special);
    fs_router_add(r, "POST", "/items", h_create);
    fs_router_add(r, "GET", "/async", h_async);
    fs_router_add(r, "GET", "/slow", h_slow);
    fs_router_add(r, "GET", "/validate", h_validate);
    fs_router_add(r, "GET", "/query", h_query);
    fs_router_add(r, "POST", "/query", h_query);
    fs_router_add(r, "GET", "/whoami", h_whoami);
    fs_router_add(r, "GET", "/unavailable", h_unavailable);
    fs_router_add(r, "GET", "/twice", h_twice);
    fs_router_add(r, "GET", "/inflight", h_inflight);
    fs_router_add(r, "POST", "/stop", h_stop);
    fs_router_add(r, "GET", "/accept-errors", h_accept_errors);
    fs_router_add(r, "GET", "/block", h_block);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(S.base);
}

static void *loop_main(void *arg)
{
    event_base_dispatch(S.base);
    return NULL;
}

static fs_http_opts_t test_opts(void)
{
    return (fs_http_opts_t){
        .max_body_bytes = 1024,
        .max_uri_bytes = 4096,
        .read_timeout_ms = 2000,
        .idle_timeout_ms = 5000,
        .max_keepalive_requests = 0,
        .log_requests = false,
    };
}

/* Serves on `fd` (an already listening socket, as the master hands over) when fd >= 0. */
static void server_start_on(fs_http_opts_t o, int fd)
{
    S.base = event_base_new();
    cr_assert_eq(pipe(S.stop_pipe), 0);
    S.stop_ev = event_new(S.base, S.stop_pipe[0], EV_READ, on_stop, NULL);
    event_add(S.stop_ev, NULL);
    S.router = fs_router_new();
    routes(S.router);
    S.metrics = fs_metrics_new();
    o.metrics = S.metrics;
    o.origin_allowed = allow_localhost;
    S.srv = fs_http_server_new(S.base, S.router, &o);
    if (fd >= 0)
        cr_assert_eq(fs_http_server_accept_fd(S.srv, fd), 0);
    else
        cr_assert_eq(fs_http_server_listen(S.srv, "127.0.0.1", 0), 0);
    S.port = fs_http_server_port(S.srv);
    cr_assert_gt(S.port, 0);
    snprintf(S.url, sizeof S.url, "http://127.0.0.1:%d", S.port);
    pthread_create(&S.thread, NULL, loop_main, NULL);
}

static void server_start_with(fs_http_opts_t o)
{
    server_start_on(o, -1);
}

static void server_start(void)
{
    server_start_with(test_opts());
}

/* Stops the loop; the registry stays readable until server_cleanup. */
static void server_stop(void)
{
    if (!S.srv)
        return;
    ssize_t w = write(S.stop_pipe[1], "x", 1);
    (void)w;
    pthread_join(S.thread, NULL);
    fs_http_server_free(S.srv);
    S.srv = NULL;
}

static void server_cleanup(void)
{
    server_stop();
    if (!S.base)
        return;
    event_free(S.stop_ev);
    close(S.stop_pipe[0]);
    close(S.stop_pipe[1]);
    fs_router_free(S.router);
    fs_metrics_free(S.metrics);
    event_base_free(S.base);
    memset(&S, 0, sizeof S);
}

TestSuite(http, .init = server_start, .fini = server_cleanup, .timeout = 60);
/* Tests that start the server themselves with other options. */
TestSuite(http_opts, .fini = server_cleanup, .timeout = 60);

/* ---- client helpers ------------------------------------------------------------------------- */

static fs_test_resp_t get(const char *path, const char *const *headers)
{
    char url[8192];
    snprintf(url, sizeof url, "%s%s", S.url, path);
    fs_test_resp_t r;
    fs_test_http("GET", url, NULL, headers, &r);
    return r;
}

static fs_test_resp_t req(const char *method, const char *path, const char *body, const char *const *headers)
{
    char url[8192];
    snprintf(url, sizeof url, "%s%s", S.url, path);
    fs_test_resp_t r;
    fs_test_http(method, url, body, headers, &r);
    return r;
}

static json_t *body_json(const fs_test_resp_t *r)
{
    json_t *j = fs_test_resp_json(r);
    cr_assert_not_null(j, "not JSON: %s", r->body);
    return j;
}

static void assert_detail(const fs_test_resp_t *r, long status, const char *detail)
{
    cr_assert_eq(r->status, status, "status %ld, expected %ld (%s)", r->status, status, r->body);
    json_t *j = body_json(r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "detail")), detail);
    json_decref(j);
}

static const char *header(const fs_test_resp_t *r, const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    return fs_test_resp_header(r, name, buf[i], sizeof buf[i]);
}

/* A keep-alive connection that reads one response at a time (Content-Length framing). */
typedef struct {
    int fd;
    char *buf;
    size_t len;
} conn_t;

static conn_t conn_open(void)
{
    conn_t c = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(c.fd, (struct sockaddr *)&a, sizeof a), 0);
    return c;
}

static void conn_send(conn_t *c, const char *s)
{
    size_t n = strlen(s), sent = 0;
    while (sent < n) {
        ssize_t w = send(c->fd, s + sent, n - sent, MSG_NOSIGNAL);
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        sent += (size_t)w;
    }
}

static size_t content_length(const char *head)
{
    const char *p = strcasestr(head, "\r\nContent-Length:");
    return p ? (size_t)strtoul(p + 17, NULL, 10) : 0;
}

/* One whole response, or NULL at end of stream / after timeout_ms. */
static char *conn_read(conn_t *c, int timeout_ms)
{
    double deadline = fs_test_now_ms() + timeout_ms;
    for (;;) {
        if (c->buf) {
            char *end = strstr(c->buf, "\r\n\r\n");
            if (end) {
                size_t total = (size_t)(end + 4 - c->buf) + content_length(c->buf);
                if (c->len >= total) {
                    char *resp = strndup(c->buf, total);
                    memmove(c->buf, c->buf + total, c->len - total + 1);
                    c->len -= total;
                    return resp;
                }
            }
        }
        int left = (int)(deadline - fs_test_now_ms());
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return NULL;
        char chunk[8192];
        ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            return NULL;
        c->buf = realloc(c->buf, c->len + (size_t)n + 1);
        memcpy(c->buf + c->len, chunk, (size_t)n);
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    }
}

/* True when the server closed the connection (end of stream) within timeout_ms. */
static bool conn_closed(conn_t *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return false;
    char b;
    return recv(c->fd, &b, 1, MSG_PEEK) <= 0;
}

/* Everything received until `needle` shows up (the buffer is owned by the connection). */
static char *conn_read_until(conn_t *c, const char *needle, int timeout_ms)
{
    double deadline = fs_test_now_ms() + timeout_ms;
    while (!(c->buf && strstr(c->buf, needle))) {
        int left = (int)(deadline - fs_test_now_ms());
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return NULL;
        char chunk[8192];
        ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            return NULL;
        c->buf = realloc(c->buf, c->len + (size_t)n + 1);
        memcpy(c->buf + c->len, chunk, (size_t)n);
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    }
    return c->buf;
}

static void conn_close(conn_t *c)
{
    close(c->fd);
    free(c->buf);
}

static int status_of(const char *resp)
{
    return resp && strncmp(resp, "HTTP/1.", 7) == 0 ? atoi(resp + 9) : 0;
}

static char *raw(const char *data)
{
    return fs_test_raw(S.port, data, strlen(data), 2000);
}

static void assert_still_serving(void)
{
    fs_test_resp_t r = get("/hello", NULL);
    cr_assert_eq(r.status, 200, "server stopped answering: %s", r.error);
    fs_test_resp_free(&r);
}

/* ---- basic replies -------------------------------------------------------------------------- */

Test(http, json_reply_carries_standard_headers)
{
    fs_test_resp_t r = get("/hello", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"hello\":\"world\"}");
    cr_assert_str_eq(header(&r, "Content-Type"), "application/json");
    cr_assert_eq(atoi(header(&r, "Content-Length")), (int)strlen(r.body));
    const char *t = header(&r, "X-Process-Time");
    cr_assert_not_null(t);
    char *end;
    double secs = strtod(t, &end);
    cr_assert(*end == '\0' && secs >= 0 && secs < 5, "X-Process-Time: %s", t);
    const char *id = header(&r, "X-Request-ID");
    cr_assert_not_null(id);
    cr_assert_eq(strlen(id), 36, "generated id %s", id);
    cr_assert_eq(id[14], '4');
    cr_assert_not_null(header(&r, "Date"));
    fs_test_resp_t r2 = get("/hello", NULL);
    cr_assert_str_neq(header(&r2, "X-Request-ID"), id, "ids are unique");
    fs_test_resp_free(&r);
    fs_test_resp_free(&r2);
}

Test(http, client_request_id_is_kept_when_sane)
{
    const char *ok[] = {"X-Request-ID: trace-42.abc", NULL};
    fs_test_resp_t r = get("/hello", ok);
    cr_assert_str_eq(header(&r, "X-Request-ID"), "trace-42.abc");
    fs_test_resp_free(&r);
    const char *bad[] = {"X-Request-ID: a\"b<script>", NULL};
    r = get("/hello", bad);
    cr_assert_eq(strlen(header(&r, "X-Request-ID")), 36, "an unsafe id is replaced");
    fs_test_resp_free(&r);
}

Test(http, handler_sees_request_details)
{
    const char *h[] = {"X-Test: value 1", NULL};
    fs_test_resp_t r = get("/whoami?x=1", h);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(header(&r, "X-Custom"), "yes");
    json_t *j = body_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "x_test")), "value 1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "peer")), "127.0.0.1");
    cr_assert(json_is_true(json_object_get(j, "loopback")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "method")), "GET");
    cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "/whoami");
    json_decref(j);
    fs_test_resp_free(&r);
}

Test(http, unavailable_and_double_reply)
{
    fs_test_resp_t r = get("/unavailable", NULL);
    assert_detail(&r, 503, "Database unavailable");
    cr_assert_str_eq(header(&r, "Retry-After"), "5");
    fs_test_resp_free(&r);
    r = get("/twice", NULL);
    assert_detail(&r, 409, "first reply");
    fs_test_resp_free(&r);
    assert_still_serving();
}

/* ---- routing ---------------------------------------------------------------------------------- */

Test(http, path_params_and_precedence)
{
    fs_test_resp_t r = get("/items/42", NULL);
    json_t *j = body_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "42");
    cr_assert_str_eq(json_string_value(json_object_get(j, "route")), "/items/{id}");
    json_decref(j);
    fs_test_resp_free(&r);
    r = get("/items/special", NULL);
    cr_assert_str_eq(r.body, "{\"special\":true}");
    fs_test_resp_free(&r);
    r = get("/items/S%C3%A3o%20Paulo/", NULL);
    j = body_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "S\xc3\xa3o Paulo");
    json_decref(j);
    fs_test_resp_free(&r);
    r = get("/hello/", NULL);
    cr_assert_eq(r.status, 200, "a trailing slash is not significant");
    fs_test_resp_free(&r);
}

Test(http, not_found_and_method_not_allowed)
{
    fs_test_resp_t r = get("/nowhere", NULL);
    assert_detail(&r, 404, "Not Found");
    cr_assert_str_eq(header(&r, "Content-Type"), "application/json");
    cr_assert_not_null(header(&r, "X-Process-Time"));
    fs_test_resp_free(&r);
    r = req("DELETE", "/items/1", NULL, NULL);
    assert_detail(&r, 405, "Method Not Allowed");
    cr_assert_str_eq(header(&r, "Allow"), "GET, HEAD, PUT");
    fs_test_resp_free(&r);
    r = req("OPTIONS", "/hello", NULL, NULL);
    assert_detail(&r, 405, "Method Not Allowed");
    fs_test_resp_free(&r);
}

Test(http, bad_url_encoding_is_400)
{
    fs_test_resp_t r = get("/items/%zz", NULL);
    assert_detail(&r, 400, "Invalid percent-encoding in URL path");
    fs_test_resp_free(&r);
    r = get("/items/%FF", NULL);
    assert_detail(&r, 400, "Invalid UTF-8 in URL path");
    fs_test_resp_free(&r);
    r = get("/query?q=%E2%28", NULL);
    assert_detail(&r, 400, "Invalid UTF-8 in query string");
    fs_test_resp_free(&r);
    r = get("/query?q=100%", NULL);
    assert_detail(&r, 400, "Invalid percent-encoding in query string");
    fs_test_resp_free(&r);
}

Test(http, head_is_get_without_body)
{
    fs_test_resp_t g = get("/hello", NULL);
    fs_test_resp_t h = req("HEAD", "/hello", NULL, NULL);
    cr_assert_eq(h.status, 200);
    cr_assert_eq(h.len, 0);
    cr_assert_str_eq(header(&h, "Content-Length"), header(&g, "Content-Length"));
    cr_assert_str_eq(header(&h, "Content-Type"), "application/json");
    fs_test_resp_free(&g);
    fs_test_resp_free(&h);
    /* the connection stays usable after a bodiless response that announced a length */
    conn_t c = conn_open();
    conn_send(&c, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    char *all = conn_read_until(&c, "world\"}", 2000);
    cr_assert_not_null(all);
    char *gap = strstr(all, "\r\n\r\n");
    cr_assert(strncmp(gap + 4, "HTTP/1.1 200 OK\r\n", 17) == 0, "no body after the HEAD response: %s", all);
    conn_close(&c);
}

/* ---- query and body --------------------------------------------------------------------------- */

Test(http, query_values_are_decoded)
{
    fs_test_resp_t r = get("/query?q=a+b&q=c%26d&x=&q=%E2%82%AC", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"q\":[\"a b\",\"c&d\",\"\xe2\x82\xac\"],\"x\":\"\"}");
    fs_test_resp_free(&r);
    r = get("/query?x=1&x=2&flag", NULL);
    cr_assert_str_eq(r.body, "{\"q\":[],\"x\":\"2\"}", "the last value wins");
    fs_test_resp_free(&r);
}

Test(http, form_body_is_not_a_query)
{
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    fs_test_resp_t r = req("POST", "/query", "q=from-body&x=1", h);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"q\":[],\"x\":null}");
    fs_test_resp_free(&r);
    r = req("POST", "/query?q=url", "q=from-body", h);
    cr_assert_str_eq(r.body, "{\"q\":[\"url\"],\"x\":null}");
    fs_test_resp_free(&r);
}

Test(http, json_bodies)
{
    fs_test_resp_t r = req("POST", "/items", "{\"a\":[1,2],\"b\":\"\xc3\xa9\"}", NULL);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(r.body, "{\"a\":[1,2],\"b\":\"\xc3\xa9\"}");
    fs_test_resp_free(&r);

    r = req("POST", "/items", "{\"a\":", NULL);
    cr_assert_eq(r.status, 422);
    json_t *j = body_json(&r);
    json_t *e = json_array_get(json_object_get(j, "detail"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), "json_invalid");
    cr_assert_str_eq(json_string_value(json_object_get(e, "msg")), "JSON decode error");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(e, "loc"), 0)), "body");
    cr_assert(json_is_integer(json_array_get(json_object_get(e, "loc"), 1)));
    cr_assert(json_is_string(json_object_get(json_object_get(e, "ctx"), "error")));
    json_decref(j);
    fs_test_resp_free(&r);

    r = req("POST", "/items", "[1]", NULL);
    j = body_json(&r);
    e = json_array_get(json_object_get(j, "detail"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), "model_attributes_type");
    cr_assert_str_eq(json_string_value(json_object_get(e, "msg")),
                     "Input should be a valid dictionary or object to extract fields from");
    json_t *want = json_pack("[i]", 1);
    cr_assert(json_equal(json_object_get(e, "input"), want));
    json_decref(want);
    json_decref(j);
    fs_test_resp_free(&r);

    r = req("POST", "/items", NULL, NULL);
    j = body_json(&r);
    e = json_array_get(json_object_get(j, "detail"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), "missing");
    cr_assert(json_is_null(json_object_get(e, "input")));
    json_decref(j);
    fs_test_resp_free(&r);
}

/* ---- validation (pydantic v2 shapes) ----------------------------------------------------------- */

static json_t *error_for(json_t *detail, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(detail, i, e)
    {
        json_t *loc = json_object_get(e, "loc");
        if (strcmp(json_string_value(json_array_get(loc, 0)), "query") == 0 &&
            strcmp(json_string_value(json_array_get(loc, 1)), field) == 0)
            return e;
    }
    cr_assert_fail("no error for %s", field);
    return NULL;
}

static void assert_error(json_t *detail, const char *field, const char *type, const char *msg,
                         const char *ctx_json)
{
    json_t *e = error_for(detail, field);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), type);
    cr_assert_str_eq(json_string_value(json_object_get(e, "msg")), msg);
    char url[128];
    snprintf(url, sizeof url, "https://errors.pydantic.dev/2.5/v/%s", type);
    cr_assert_str_eq(json_string_value(json_object_get(e, "url")), url);
    if (ctx_json) {
        json_t *want = json_loads(ctx_json, 0, NULL);
        cr_assert(json_equal(json_object_get(e, "ctx"), want), "ctx of %s", field);
        json_decref(want);
    } else {
        cr_assert_null(json_object_get(e, "ctx"));
    }
}

Test(http, validation_missing_fields)
{
    fs_test_resp_t r = get("/validate", NULL);
    cr_assert_eq(r.status, 422);
    json_t *j = body_json(&r);
    json_t *d = json_object_get(j, "detail");
    cr_assert_eq(json_array_size(d), 2);
    assert_error(d, "origin", "missing", "Field required", NULL);
    assert_error(d, "dep", "missing", "Field required", NULL);
    cr_assert(json_is_null(json_object_get(error_for(d, "origin"), "input")));
    json_decref(j);
    fs_test_resp_free(&r);
}

Test(http, validation_bad_values)
{
    fs_test_resp_t r =
        get("/validate?origin=DUBX&dep=2024-13-01&limit=0&direct=maybe&strategy=cheapest", NULL);
    cr_assert_eq(r.status, 422);
    json_t *j = body_json(&r);
    json_t *d = json_object_get(j, "detail");
    cr_assert_eq(json_array_size(d), 5, "%s", r.body);
    assert_error(d, "origin", "string_too_long", "String should have at most 3 characters",
                 "{\"max_length\":3}");
    assert_error(d, "limit", "greater_than_equal", "Input should be greater than or equal to 1",
                 "{\"ge\":1}");
    assert_error(d, "direct", "bool_parsing", "Input should be a valid boolean, unable to interpret input",
                 NULL);
    assert_error(d, "strategy", "enum", "Input should be 'fallback', 'parallel' or 'best_price'",
                 "{\"expected\":\"'fallback', 'parallel' or 'best_price'\"}");
    assert_error(d, "dep", "date_from_datetime_parsing",
                 "Input should be a valid date or datetime, month value is outside expected range of 1-12",
                 "{\"error\":\"month value is outside expected range of 1-12\"}");
    cr_assert_str_eq(json_string_value(json_object_get(error_for(d, "limit"), "input")), "0");
    json_decref(j);
    fs_test_resp_free(&r);

    r = get("/validate?origin=D&dep=tomorrow&limit=51", NULL);
    j = body_json(&r);
    d = json_object_get(j, "detail");
    assert_error(d, "origin", "string_too_short", "String should have at least 3 characters",
                 "{\"min_length\":3}");
    assert_error(d, "limit", "less_than_equal", "Input should be less than or equal to 50", "{\"le\":50}");
    assert_error(d, "dep", "date_from_datetime_parsing",
                 "Input should be a valid date or datetime, input is too short",
                 "{\"error\":\"input is too short\"}");
    json_decref(j);
    fs_test_resp_free(&r);

    r = get("/validate?origin=DUB&dep=2024-02-29&limit=x", NULL);
    j = body_json(&r);
    d = json_object_get(j, "detail");
    cr_assert_eq(json_array_size(d), 1);
    assert_error(d, "limit", "int_parsing",
                 "Input should be a valid integer, unable to parse string as an integer", NULL);
    json_decref(j);
    fs_test_resp_free(&r);
}

Test(http, validation_accepts_good_values)
{
    fs_test_resp_t r =
        get("/validate?origin=S%C3%A3o&dep=2024-02-29&limit=%2050%20&direct=YES&strategy=parallel", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.body, "{\"limit\":50,\"origin\":\"S\xc3\xa3o\",\"direct\":true,\"strategy\":"
                             "\"parallel\",\"dep\":[2024,2,29]}");
    fs_test_resp_free(&r);
    r = get("/validate?origin=DUB&dep=2024-03-01T00:00:00", NULL);
    cr_assert_str_eq(
        r.body,
        "{\"limit\":10,\"origin\":\"DUB\",\"direct\":false,\"strategy\":\"fallback\",\"dep\":[2024,3,1]}");
    fs_test_resp_free(&r);
    r = get("/validate?origin=DUB&dep=2024-03-01T10:30", NULL);
    json_t *j = body_json(&r);
    assert_error(json_object_get(j, "detail"), "dep", "date_from_datetime_inexact",
                 "Datetimes provided to dates should have zero time - e.g. be exact dates", NULL);
    json_decref(j);
    fs_test_resp_free(&r);
}

/* ---- asynchronous handlers ---------------------------------------------------------------------- */

Test(http, async_reply_after_timer)
{
    double t0 = fs_test_now_ms();
    fs_test_resp_t r = get("/async", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"async\":true}");
    cr_assert_geq(fs_test_now_ms() - t0, 45);
    cr_assert_geq(strtod(header(&r, "X-Process-Time"), NULL), 0.045);
    fs_test_resp_free(&r);
    r = get("/inflight", NULL);
    cr_assert_str_eq(r.body, "{\"inflight\":1}", "only the /inflight request itself");
    fs_test_resp_free(&r);
}

Test(http, async_requests_keep_alive_and_pipeline_in_order)
{
    conn_t c = conn_open();
    conn_send(&c, "GET /async HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                  "GET /items/7 HTTP/1.1\r\nHost: t\r\n\r\n");
    char *a = conn_read(&c, 3000), *b = conn_read(&c, 3000), *d = conn_read(&c, 3000);
    cr_assert(a && b && d, "three responses");
    cr_assert_not_null(strstr(a, "{\"async\":true}"));
    cr_assert_not_null(strstr(b, "{\"hello\":\"world\"}"));
    cr_assert_not_null(strstr(d, "\"id\":\"7\""));
    free(a);
    free(b);
    free(d);
    for (int i = 0; i < 3; i++) {
        conn_send(&c, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
        char *x = conn_read(&c, 3000);
        cr_assert_eq(status_of(x), 200);
        free(x);
    }
    conn_close(&c);
}

Test(http, client_disconnect_while_async_pending)
{
    conn_t c = conn_open();
    conn_send(&c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(50 * 1000);
    conn_close(&c);
    /* and once more, closing before the handler even had the request for long */
    char *out = fs_test_raw(S.port, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", 32, 10);
    free(out);
    double deadline = fs_test_now_ms() + 3000;
    while (atomic_load(&slow_replies) < 2 && fs_test_now_ms() < deadline)
        usleep(10 * 1000);
    cr_assert_eq(atomic_load(&slow_replies), 2, "the handlers replied (into the void)");
    fs_test_resp_t r = get("/inflight", NULL);
    cr_assert_str_eq(r.body, "{\"inflight\":1}");
    fs_test_resp_free(&r);
}

/* ---- keep-alive ---------------------------------------------------------------------------------- */

Test(http, many_requests_on_one_connection)
{
    conn_t c = conn_open();
    for (int i = 0; i < 200; i++) {
        char rq[128];
        snprintf(rq, sizeof rq, "GET /items/%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        conn_send(&c, rq);
        char *resp = conn_read(&c, 2000);
        cr_assert_eq(status_of(resp), 200, "request %d: %s", i, resp ? resp : "(none)");
        char want[32];
        snprintf(want, sizeof want, "\"id\":\"%d\"", i);
        cr_assert_not_null(strstr(resp, want));
        cr_assert_null(strcasestr(resp, "Connection: close"));
        free(resp);
    }
    conn_close(&c);
}

Test(http, expect_100_continue)
{
    conn_t c = conn_open();
    conn_send(&c, "POST /items HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n");
    cr_assert_not_null(conn_read_until(&c, "100 Continue\r\n\r\n", 2000));
    free(c.buf);
    c.buf = NULL;
    c.len = 0;
    conn_send(&c, "{\"a\":1}");
    char *resp = conn_read(&c, 2000);
    cr_assert_eq(status_of(resp), 201, "%s", resp);
    free(resp);
    conn_close(&c);
    /* a body that is too large is refused before the client sends it */
    char *out =
        raw("POST /items HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
    cr_assert_eq(status_of(out), 413, "%s", out);
    free(out);
}

Test(http, http10_closes_after_reply)
{
    char *out = raw("GET /hello HTTP/1.0\r\n\r\n");
    cr_assert(strncmp(out, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", out);
    cr_assert_not_null(strstr(out, "{\"hello\":\"world\"}"));
    free(out);
    out = raw("GET /query?q=1 HTTP/1.0\r\n\r\n");
    cr_assert_not_null(strstr(out, "{\"q\":[\"1\"],\"x\":null}"), "%s", out);
    free(out);
    conn_t c = conn_open();
    conn_send(&c, "GET /async HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    char *resp = conn_read(&c, 2000);
    cr_assert_eq(status_of(resp), 200);
    cr_assert_not_null(strcasestr(resp, "Connection: close"));
    cr_assert(conn_closed(&c, 1000), "closed after an asynchronous reply too");
    free(resp);
    conn_close(&c);
}

Test(http_opts, max_keepalive_requests)
{
    fs_http_opts_t o = test_opts();
    o.max_keepalive_requests = 3;
    server_start_with(o);
    conn_t c = conn_open();
    for (int i = 1; i <= 3; i++) {
        conn_send(&c, i == 2 ? "GET /async HTTP/1.1\r\nHost: t\r\n\r\n"
                             : "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        char *resp = conn_read(&c, 2000);
        cr_assert_eq(status_of(resp), 200);
        cr_assert_eq(strcasestr(resp, "Connection: close") != NULL, i == 3, "request %d", i);
        free(resp);
    }
    cr_assert(conn_closed(&c, 1000));
    conn_close(&c);
}

/* The worker's path: the master made and bound the socket and called listen(). */
Test(http_opts, accept_fd_serves_a_listening_socket)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 64), 0);
    server_start_on(test_opts(), fd);
    fs_test_resp_t r = get("/hello", NULL);
    cr_assert_eq(r.status, 200);
    fs_test_resp_free(&r);
    r = get("/async", NULL);
    cr_assert_eq(r.status, 200);
    fs_test_resp_free(&r);
}

Test(http_opts, idle_connections_time_out)
{
    fs_http_opts_t o = test_opts();
    o.idle_timeout_ms = 300;
    o.read_timeout_ms = 300;
    server_start_with(o);
    conn_t c = conn_open();
    conn_send(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    char *resp = conn_read(&c, 1000);
    cr_assert_eq(status_of(resp), 200);
    free(resp);
    double t0 = fs_test_now_ms();
    cr_assert(conn_closed(&c, 3000), "idle keep-alive connection closed");
    cr_assert_lt(fs_test_now_ms() - t0, 2000);
    conn_close(&c);
    /* a head that never completes is dropped too */
    c = conn_open();
    conn_send(&c, "GET /hello HTTP/1.1\r\nHost:");
    cr_assert(conn_closed(&c, 3000));
    conn_close(&c);
    assert_still_serving();
}

/* ---- limits ---------------------------------------------------------------------------------------- */

Test(http, body_too_large_is_413)
{
    char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fs_test_resp_t r = req("POST", "/items", big, NULL);
    assert_detail(&r, 413, "Request body too large");
    cr_assert_not_null(header(&r, "X-Request-ID"));
    fs_test_resp_free(&r);
    /* exactly at the limit is fine (422: not JSON, but read) */
    char edge[1025];
    memset(edge, ' ', 1024);
    edge[0] = '{';
    edge[1023] = '}';
    edge[1024] = '\0';
    r = req("POST", "/items", edge, NULL);
    cr_assert_eq(r.status, 201, "%s", r.body);
    fs_test_resp_free(&r);
    assert_still_serving();
}

Test(http, chunked_body_too_large_is_413)
{
    char rq[4096];
    int n = snprintf(rq, sizeof rq,
                     "POST /items HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n");
    memset(rq + n, 'y', 2048);
    strcpy(rq + n + 2048, "\r\n0\r\n\r\n");
    char *out = raw(rq);
    cr_assert_eq(status_of(out), 413, "%s", out);
    cr_assert_not_null(strstr(out, "{\"detail\":\"Request body too large\"}"));
    free(out);
    out = raw(
        "POST /items HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n");
    cr_assert_eq(status_of(out), 201, "%s", out);
    free(out);
    assert_still_serving();
}

static char *long_path(size_t query_len)
{
    char *p = malloc(query_len + 32);
    strcpy(p, "/query?q=");
    memset(p + 9, 'a', query_len);
    p[9 + query_len] = '\0';
    return p;
}

Test(http, uri_too_long_is_414)
{
    char *p = long_path(6 * 1024);
    fs_test_resp_t r = get(p, NULL);
    assert_detail(&r, 414, "URI too long");
    fs_test_resp_free(&r);
    free(p);
    p = long_path(3 * 1024);
    r = get(p, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 3 * 1024 + 19);
    fs_test_resp_free(&r);
    free(p);
    assert_still_serving();
}

/* The evhtp bug of #128/#131: a long URI arriving in two reads. The gate holds the first part. */
Test(http, long_uri_split_across_reads)
{
    char *p = long_path(3500);
    conn_t c = conn_open();
    char first[2000];
    snprintf(first, sizeof first, "GET %.1500s", p);
    conn_send(&c, first);
    usleep(100 * 1000);
    conn_send(&c, p + 1500);
    conn_send(&c, " HTTP/1.1\r\nHost: t\r\n\r\n");
    char *resp = conn_read(&c, 2000);
    cr_assert_eq(status_of(resp), 200, "%s", resp ? resp : "(none)");
    cr_assert_not_null(strstr(resp, "aaaa\"],\"x\":null}"));
    free(resp);
    conn_close(&c);
    free(p);
}

/* ---- malformed input --------------------------------------------------------------------------------- */

static void assert_raw_status(const char *data, int status, const char *detail)
{
    char *out = raw(data);
    cr_assert_eq(status_of(out), status, "for %.40s: got %s", data, out);
    if (detail) {
        char want[256];
        snprintf(want, sizeof want, "{\"detail\":\"%s\"}", detail);
        cr_assert_not_null(strstr(out, want), "%s", out);
    }
    cr_assert_not_null(strcasestr(out, "Connection: close"));
    free(out);
}

Test(http, malformed_requests_get_clear_errors)
{
    assert_raw_status("GARBAGE\r\n\r\n", 400, "Invalid request line");
    assert_raw_status("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400,
                      "Invalid request line"); /* TLS hello */
    assert_raw_status("GET /hello HTTP/9.9\r\n\r\n", 505, "HTTP Version Not Supported");
    assert_raw_status("GET /hello HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, "Invalid Content-Length");
    assert_raw_status("BREW /hello HTTP/1.1\r\n\r\n", 501, "Method Not Implemented");
    assert_raw_status("GET /hello HTTP/1.1\r\nBad Header: 1\r\n\r\n", 400, "Invalid header name");
    assert_raw_status("GET /he llo HTTP/1.1\r\n\r\n", 400, NULL);
    assert_raw_status("POST /items HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, NULL);
    assert_still_serving();
}

Test(http, garbage_never_kills_the_server)
{
    unsigned seed = 12345;
    for (int i = 0; i < 30; i++) {
        char junk[512];
        size_t n = 1 + rand_r(&seed) % (sizeof junk - 1);
        for (size_t k = 0; k < n; k++)
            junk[k] = (char)(rand_r(&seed) & 0xff);
        if (i % 3 == 0)
            memcpy(junk, "GET /", n > 5 ? 5 : n);
        char *out = fs_test_raw(S.port, junk, n, 200);
        free(out);
    }
    /* a valid request line followed by a bad chunked body: evhtp closes, no crash */
    char *out = raw("POST /items HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n");
    free(out);
    assert_still_serving();
}

/* ---- CORS ------------------------------------------------------------------------------------------- */

Test(http, cors_simple_requests)
{
    const char *ok[] = {"Origin: http://localhost:3000", NULL};
    fs_test_resp_t r = get("/hello", ok);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(header(&r, "Access-Control-Allow-Origin"), "http://localhost:3000");
    cr_assert_str_eq(header(&r, "Access-Control-Allow-Credentials"), "true");
    cr_assert_str_eq(header(&r, "Vary"), "Origin");
    fs_test_resp_free(&r);
    r = get("/nowhere", ok);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(header(&r, "Access-Control-Allow-Origin"), "http://localhost:3000",
                     "errors carry CORS too");
    fs_test_resp_free(&r);
    const char *evil[] = {"Origin: http://evil.example", NULL};
    r = get("/hello", evil);
    cr_assert_eq(r.status, 200);
    cr_assert_null(header(&r, "Access-Control-Allow-Origin"));
    cr_assert_null(header(&r, "Access-Control-Allow-Credentials"));
    fs_test_resp_free(&r);
}

Test(http, cors_preflight)
{
    const char *ok[] = {"Origin: http://localhost:3000", "Access-Control-Request-Method: POST",
                        "Access-Control-Request-Headers: content-type, x-custom", NULL};
    fs_test_resp_t r = req("OPTIONS", "/items", NULL, ok);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "OK");
    cr_assert_str_eq(header(&r, "Access-Control-Allow-Origin"), "http://localhost:3000");
    cr_assert_str_eq(header(&r, "Access-Control-Allow-Headers"), "content-type, x-custom");
    cr_assert_str_eq(header(&r, "Access-Control-Allow-Methods"),
                     "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
    cr_assert_str_eq(header(&r, "Access-Control-Max-Age"), "600");
    cr_assert_str_eq(header(&r, "Access-Control-Allow-Credentials"), "true");
    cr_assert_not_null(header(&r, "X-Process-Time"));
    fs_test_resp_free(&r);
    const char *evil[] = {"Origin: http://evil.example", "Access-Control-Request-Method: GET", NULL};
    r = req("OPTIONS", "/hello", NULL, evil);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(r.body, "Disallowed CORS origin");
    cr_assert_null(header(&r, "Access-Control-Allow-Origin"));
    cr_assert_null(header(&r, "Access-Control-Allow-Methods"));
    fs_test_resp_free(&r);
}

/* ---- observability -------------------------------------------------------------------------------- */

Test(http, metrics_are_recorded_per_route)
{
    fs_test_resp_t r;
    for (int i = 0; i < 3; i++) {
        r = get("/items/1", NULL);
        fs_test_resp_free(&r);
    }
    r = get("/nowhere/at/all", NULL);
    fs_test_resp_free(&r);
    r = get("/another/unknown", NULL);
    fs_test_resp_free(&r);
    r = req("DELETE", "/items/2", NULL, NULL);
    fs_test_resp_free(&r);
    char *out = raw("GARBAGE\r\n\r\n");
    free(out);
    server_stop();
    size_t len;
    char *text = fs_metrics_render(S.metrics, &len);
    cr_assert_not_null(
        strstr(text, "http_requests_total{method=\"GET\",endpoint=\"/items/{id}\",status=\"200\"} 3.0\n"),
        "%s", text);
    cr_assert_not_null(
        strstr(text, "http_requests_total{method=\"GET\",endpoint=\"unmatched\",status=\"404\"} 2.0\n"));
    cr_assert_not_null(
        strstr(text, "http_requests_total{method=\"DELETE\",endpoint=\"/items/{id}\",status=\"405\"} 1.0\n"));
    cr_assert_not_null(
        strstr(text, "http_requests_total{method=\"other\",endpoint=\"unmatched\",status=\"400\"} 1.0\n"));
    cr_assert_not_null(
        strstr(text, "http_request_duration_seconds_count{method=\"GET\",endpoint=\"/items/{id}\"} 3.0\n"));
    cr_assert_not_null(strstr(
        text,
        "http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/items/{id}\",le=\"+Inf\"} 3.0\n"));
    cr_assert_not_null(strstr(text, "# TYPE http_request_duration_seconds histogram\n"));
    cr_assert_null(strstr(text, "/nowhere"), "raw paths never become labels");
    free(text);
}

Test(http_opts, one_log_line_per_request)
{
    char path[] = "/tmp/fs-http-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    dup2(fd, 2);
    fs_http_opts_t o = test_opts();
    o.log_requests = true;
    server_start_with(o);
    const char *h[] = {"X-Request-ID: log-test-1", NULL};
    fs_test_resp_t r = get("/items/abc?secret=1", h);
    fs_test_resp_free(&r);
    server_stop();
    dup2(saved, 2);
    close(saved);
    char buf[8192] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    cr_assert_gt(n, 0);
    char *line = strstr(buf, "\"request_id\":\"log-test-1\"");
    cr_assert_not_null(line, "%s", buf);
    while (line > buf && line[-1] != '\n')
        line--;
    char *end = strchr(line, '\n');
    *end = '\0';
    json_t *j = json_loads(line, 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", line);
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "request");
    cr_assert_str_eq(json_string_value(json_object_get(j, "method")), "GET");
    cr_assert_str_eq(json_string_value(json_object_get(j, "route")), "/items/{id}");
    cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "/items/abc");
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), 200);
    cr_assert(json_is_number(json_object_get(j, "duration_ms")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "peer")), "127.0.0.1");
    json_decref(j);
}

/* ---- listener ------------------------------------------------------------------------------------- */

Test(http, stop_accepting_keeps_busy_connections)
{
    conn_t c = conn_open();
    conn_send(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    char *resp = conn_read(&c, 2000);
    free(resp);
    conn_t silent = conn_open(); /* accepted, never speaks */
    usleep(50 * 1000);
    fs_test_resp_t r = req("POST", "/stop", "", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(header(&r, "Connection"), "close", "no keep-alive while draining");
    fs_test_resp_free(&r);
    cr_assert(conn_closed(&c, 1000), "the idle keep-alive connection was closed");
    conn_close(&c);
    double t0 = fs_test_now_ms();
    cr_assert(conn_closed(&silent, 3000), "a silent new connection gets a short grace, then is closed");
    cr_assert_lt(fs_test_now_ms() - t0, 2000);
    conn_close(&silent);
    char *out = fs_test_raw(S.port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", 32, 300);
    cr_assert_str_eq(out, "", "new connections are not served");
    free(out);
}

/* The descriptor limit that leaves exactly `spare` descriptor numbers free. */
static rlim_t limit_leaving(int spare)
{
    static bool used[65536];
    memset(used, 0, sizeof used);
    DIR *d = opendir("/proc/self/fd");
    int own = dirfd(d);
    for (struct dirent *e; (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != own && fd < 65536)
            used[fd] = true;
    }
    closedir(d);
    int l = 0;
    for (int free_seen = 0; free_seen < spare || (l < 65536 && used[l]); l++)
        if (!used[l])
            free_seen++;
    return (rlim_t)l;
}

/* EMFILE on accept must pause the listener (not spin) and resume when descriptors free up. */
Test(http, accept_pauses_on_emfile)
{
    struct rlimit old;
    getrlimit(RLIMIT_NOFILE, &old);
    /* room for: client 1, its accepted socket, client 2; the accept of client 2 fails */
    struct rlimit lim = {limit_leaving(3), old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
    conn_t c1 = conn_open();
    conn_send(&c1, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    char *resp = conn_read(&c1, 2000);
    cr_assert_eq(status_of(resp), 200);
    free(resp);
    conn_t c2 = conn_open();
    conn_send(&c2, "GET /accept-errors HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(300 * 1000); /* several retry periods pass while descriptors are exhausted */
    cr_assert_null(conn_read(&c2, 100), "not accepted while out of descriptors");
    conn_close(&c1); /* frees our descriptor and, once the server sees the close, its own */
    resp = conn_read(&c2, 3000);
    cr_assert_eq(status_of(resp), 200, "accepted once descriptors were free");
    json_t *j = json_loads(strstr(resp, "\r\n\r\n") + 4, 0, NULL);
    double errors = json_real_value(json_object_get(j, "errors"));
    cr_assert_geq(errors, 1);
    cr_assert_lt(errors, 50, "accept paused between attempts instead of spinning (%g errors)", errors);
    json_decref(j);
    free(resp);
    conn_close(&c2);
    setrlimit(RLIMIT_NOFILE, &old);
}

/* The loop stops in the turn in which a connection's socket became readable. evhtp's default
 * (deferred bufferevent callbacks) left a callback queued for the next turn that pinned the
 * bufferevent: fs_http_server_free and event_base_free then never freed it nor closed its
 * socket. Every socket the server accepted must be closed once server and base are freed. */
Test(http, teardown_frees_connections_with_events_in_flight)
{
    conn_t b = conn_open();
    conn_send(&b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    char *resp = conn_read(&b, 2000);
    cr_assert_eq(status_of(resp), 200);
    free(resp);
    conn_t a = conn_open();
    conn_send(&a, "GET /block HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(100 * 1000); /* the loop is inside h_block now */
    conn_send(&b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(50 * 1000); /* b is readable before the stop pipe is */
    server_cleanup();  /* the next loop turn sees b, then the stop */
    cr_assert(conn_closed(&b, 1000), "the server's end of a connection was never closed");
    conn_close(&a);
    conn_close(&b);
}
