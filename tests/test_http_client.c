/* Outbound HTTP client (libcurl multi on libevent) against a local scripted server: answers,
 * headers both ways, bodies, timeouts, size cap, refused connections, concurrency without
 * blocking the loop, and cancellation on free. */
#include "runtime/http_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct event_base *base;
static fs_fake_upstream_t *up;
static fs_http_client_t *client;

static void setup(void)
{
    base = event_base_new();
    up = fs_fake_upstream_start();
    cr_assert_not_null(up);
    client = fs_http_client_new(base);
}

static void teardown(void)
{
    fs_http_client_free(client);
    fs_fake_upstream_stop(up);
    event_base_free(base);
}

TestSuite(http_client, .init = setup, .fini = teardown, .timeout = 30);

typedef struct {
    int calls;
    int status;
    char *body;
    char *error;
    char content_type[64], custom[64];
    bool timed_out;
    double elapsed_ms;
    bool *returned; /* set by the test after send returns */
    bool early;     /* answered before send returned */
} result_t;

static void on_done(const fs_http_response_t *r, void *arg)
{
    result_t *res = arg;
    res->calls++;
    res->status = r->status;
    free(res->body);
    res->body = strdup(r->body);
    free(res->error);
    res->error = r->error ? strdup(r->error) : NULL;
    res->timed_out = r->timed_out;
    res->elapsed_ms = r->elapsed_ms;
    const char *ct = r->header(r, "content-type"), *x = r->header(r, "X-Custom");
    snprintf(res->content_type, sizeof res->content_type, "%s", ct ? ct : "");
    snprintf(res->custom, sizeof res->custom, "%s", x ? x : "");
    if (res->returned && !*res->returned)
        res->early = true;
}

static void result_free(result_t *r)
{
    free(r->body);
    free(r->error);
}

static void noop(evutil_socket_t fd, short w, void *a) {}

/* Runs the loop until `*count` reaches `want` or `ms` passed. */
static void run_until(const int *count, int want, int ms)
{
    struct event *hb = event_new(base, -1, EV_PERSIST, noop, NULL);
    struct timeval tv = {0, 5000};
    event_add(hb, &tv);
    double t0 = fs_test_now_ms();
    while (*count < want && fs_test_now_ms() - t0 < ms)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(hb);
}

static char *url(const char *path)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s%s", fs_fake_upstream_url(up), path);
    return buf;
}

Test(http_client, get_answers_status_body_and_headers_never_before_send_returns)
{
    fs_fake_answer_t a = {200, "{\"ok\":true}", "X-Custom: hello\nContent-Type: application/json; charset=utf-8", 0};
    fs_fake_upstream_set(up, "GET", "/v1/thing", &a);
    bool returned = false;
    result_t r = {.returned = &returned};
    const char *hdrs[] = {"Authorization: Bearer abc", "Accept: application/json", NULL};
    fs_http_request_t req = {.method = "GET", .url = url("/v1/thing?x=1&y=two"), .headers = hdrs};
    fs_http_client_send(client, &req, on_done, &r);
    returned = true;
    cr_assert_eq(fs_http_client_inflight(client), 1);
    run_until(&r.calls, 1, 5000);
    cr_assert_eq(r.calls, 1);
    cr_assert_not(r.early, "answered inside send");
    cr_assert_null(r.error, "error: %s", r.error);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"ok\":true}");
    cr_assert_str_eq(r.custom, "hello");
    cr_assert_str_eq(r.content_type, "application/json; charset=utf-8");
    cr_assert_eq(fs_http_client_inflight(client), 0);

    fs_fake_request_t *got = fs_fake_upstream_last(up, "/v1/thing");
    cr_assert_not_null(got);
    char buf[128];
    cr_assert_str_eq(got->method, "GET");
    cr_assert_str_eq(fs_fake_request_param(got, "y", buf, sizeof buf), "two");
    cr_assert_str_eq(fs_fake_request_header(got, "authorization", buf, sizeof buf), "Bearer abc");
    cr_assert_null(fs_fake_request_header(got, "Expect", buf, sizeof buf));
    fs_fake_request_free(got);
    result_free(&r);
}

Test(http_client, post_sends_the_body_and_any_status_is_a_completed_exchange)
{
    fs_fake_upstream_json(up, "POST", "/submit", 500, "{\"errors\":[{\"title\":\"boom\"}]}");
    result_t r = {0};
    const char body[] = "{\"data\":{\"a\":1}}";
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    fs_http_request_t req = {.method = "POST", .url = url("/submit"), .headers = hdrs, .body = body,
                             .body_len = strlen(body)};
    fs_http_client_send(client, &req, on_done, &r);
    run_until(&r.calls, 1, 5000);
    cr_assert_eq(r.calls, 1);
    cr_assert_null(r.error);
    cr_assert_eq(r.status, 500);
    cr_assert(strstr(r.body, "boom"));
    fs_fake_request_t *got = fs_fake_upstream_last(up, "/submit");
    cr_assert_str_eq(got->method, "POST");
    cr_assert_str_eq(got->body, body);
    fs_fake_request_free(got);
    result_free(&r);
}

Test(http_client, custom_method_and_empty_post)
{
    fs_fake_upstream_json(up, "DELETE", "/x", 204, "");
    fs_fake_upstream_json(up, "POST", "/empty", 201, "{}");
    result_t a = {0}, b = {0};
    fs_http_request_t del = {.method = "DELETE", .url = url("/x")};
    fs_http_client_send(client, &del, on_done, &a);
    fs_http_request_t post = {.method = "POST", .url = url("/empty")};
    fs_http_client_send(client, &post, on_done, &b);
    run_until(&a.calls, 1, 3000);
    run_until(&b.calls, 1, 3000);
    cr_assert_eq(a.status, 204, "calls %d error %s b %d %s", a.calls, a.error, b.status, b.error);
    cr_assert_eq(b.status, 201);
    cr_assert_eq(fs_fake_upstream_count(up, "/empty"), 1);
    result_free(&a);
    result_free(&b);
}

Test(http_client, timeout_answers_timed_out_in_time)
{
    fs_fake_answer_t slow = {200, "{}", NULL, 3000};
    fs_fake_upstream_set(up, "GET", "/slow", &slow);
    result_t r = {0};
    fs_http_request_t req = {.url = url("/slow"), .timeout_ms = 200};
    double t0 = fs_test_now_ms();
    fs_http_client_send(client, &req, on_done, &r);
    run_until(&r.calls, 1, 5000);
    double took = fs_test_now_ms() - t0;
    cr_assert_eq(r.calls, 1);
    cr_assert(r.timed_out);
    cr_assert_str_eq(r.error, "timeout");
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.body, "");
    cr_assert(took >= 190 && took < 1500, "took %.0f ms", took);
    result_free(&r);
}

Test(http_client, response_size_cap)
{
    char *big = malloc(20001);
    memset(big, 'a', 20000);
    big[20000] = '\0';
    fs_fake_upstream_json(up, "GET", "/big", 200, big);
    result_t r = {0}, ok = {0};
    fs_http_request_t req = {.url = url("/big"), .max_response_bytes = 1000};
    fs_http_client_send(client, &req, on_done, &r);
    fs_http_request_t req2 = {.url = url("/big"), .max_response_bytes = 20000};
    fs_http_client_send(client, &req2, on_done, &ok);
    run_until(&r.calls, 1, 5000);
    run_until(&ok.calls, 1, 5000);
    cr_assert_str_eq(r.error, "response too large");
    cr_assert_eq(r.status, 0);
    cr_assert_null(ok.error);
    cr_assert_eq(strlen(ok.body), 20000);
    free(big);
    result_free(&r);
    result_free(&ok);
}

Test(http_client, refused_connection)
{
    int port = fs_test_free_port();
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", port);
    result_t r = {0};
    fs_http_request_t req = {.url = u, .timeout_ms = 2000};
    fs_http_client_send(client, &req, on_done, &r);
    run_until(&r.calls, 1, 5000);
    cr_assert_eq(r.calls, 1);
    cr_assert_str_eq(r.error, "connection refused");
    cr_assert_not(r.timed_out);
    result_free(&r);
}

Test(http_client, bad_url_is_answered_on_the_loop)
{
    bool returned = false;
    result_t r = {.returned = &returned};
    fs_http_request_t req = {.url = "gopher://127.0.0.1/x"};
    fs_http_client_send(client, &req, on_done, &r);
    returned = true;
    run_until(&r.calls, 1, 3000);
    cr_assert_eq(r.calls, 1);
    cr_assert_not(r.early);
    cr_assert_not_null(r.error);
    result_free(&r);
}

static int ticks;
static void on_tick(evutil_socket_t fd, short w, void *a)
{
    ticks++;
}

Test(http_client, concurrent_slow_requests_do_not_block_the_loop)
{
    fs_fake_answer_t slow = {200, "{\"n\":1}", NULL, 300};
    fs_fake_upstream_set(up, "GET", "/slow", &slow);
    enum { N = 40 };
    result_t r[N] = {{0}};
    int done = 0;
    for (int i = 0; i < N; i++) {
        fs_http_request_t req = {.url = url("/slow"), .timeout_ms = 5000};
        fs_http_client_send(client, &req, on_done, &r[i]);
    }
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    double t0 = fs_test_now_ms();
    while (done < N && fs_test_now_ms() - t0 < 5000) {
        event_base_loop(base, EVLOOP_ONCE);
        done = 0;
        for (int i = 0; i < N; i++)
            done += r[i].calls;
    }
    double took = fs_test_now_ms() - t0;
    event_free(tick);
    cr_assert_eq(done, N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(r[i].status, 200);
    /* all in parallel: about one delay, not N of them; the loop kept ticking meanwhile */
    cr_assert(took < 2000, "took %.0f ms", took);
    cr_assert(ticks >= 15, "ticks %d", ticks);
    cr_assert_eq(fs_fake_upstream_count(up, "/slow"), N);
    for (int i = 0; i < N; i++)
        result_free(&r[i]);
}

typedef struct {
    int calls;
    char error[32];
    fs_http_client_t *c;
    bool resend;
} cancel_t;

static void on_cancel(const fs_http_response_t *r, void *arg)
{
    cancel_t *x = arg;
    x->calls++;
    snprintf(x->error, sizeof x->error, "%s", r->error ? r->error : "");
    if (x->resend) { /* sending from a cancellation callback is answered too */
        x->resend = false;
        fs_http_request_t req = {.url = "http://127.0.0.1:1/"};
        fs_http_client_send(x->c, &req, on_cancel, x);
    }
}

Test(http_client, free_cancels_pending_requests)
{
    fs_fake_answer_t slow = {200, "{}", NULL, 3000};
    fs_fake_upstream_set(up, "GET", "/slow", &slow);
    cancel_t a = {0}, b = {0};
    fs_http_client_t *c = fs_http_client_new(base);
    b.c = c;
    b.resend = true;
    fs_http_request_t req = {.url = url("/slow")};
    fs_http_client_send(c, &req, on_cancel, &a);
    fs_http_client_send(c, &req, on_cancel, &b);
    int none = 0;
    run_until(&none, 1, 200); /* the requests reach the server */
    cr_assert_eq(a.calls, 0);
    cr_assert_eq(fs_http_client_inflight(c), 2);
    fs_http_client_free(c);
    cr_assert_eq(a.calls, 1);
    cr_assert_str_eq(a.error, "canceled");
    cr_assert_eq(b.calls, 2);
    cr_assert_str_eq(b.error, "canceled");
    /* nothing fires later on the loop */
    run_until(&none, 1, 100);
    cr_assert_eq(a.calls, 1);
}

Test(http_client, sequential_requests_on_one_client)
{
    fs_fake_upstream_json(up, "GET", "/a", 200, "{}");
    for (int i = 0; i < 5; i++) {
        result_t r = {0};
        fs_http_request_t req = {.url = url("/a")};
        fs_http_client_send(client, &req, on_done, &r);
        run_until(&r.calls, 1, 3000);
        cr_assert_eq(r.status, 200);
        result_free(&r);
    }
    cr_assert_eq(fs_fake_upstream_count(up, "/a"), 5);
}

typedef struct {
    int calls;
    int status;
} chain_t;

static void on_chained(const fs_http_response_t *r, void *arg)
{
    chain_t *c = arg;
    c->calls++;
    c->status = r->status;
    if (c->calls < 3) { /* the next request starts from inside this completion */
        fs_http_request_t req = {.url = url("/a"), .timeout_ms = 2000};
        fs_http_client_send(client, &req, on_chained, c);
    }
}

/* Regression: a request sent from a completion callback, while nothing else runs, used to
 * lose its first wake-up and hang. */
Test(http_client, request_sent_from_a_completion_runs)
{
    fs_fake_upstream_json(up, "GET", "/a", 200, "{}");
    chain_t c = {0};
    fs_http_request_t req = {.url = url("/a")};
    fs_http_client_send(client, &req, on_chained, &c);
    run_until(&c.calls, 3, 3000);
    cr_assert_eq(c.calls, 3);
    cr_assert_eq(c.status, 200);
    cr_assert_eq(fs_fake_upstream_count(up, "/a"), 3);
}
