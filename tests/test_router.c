/* Router, URL decoding and request-head checks (api/router.c, api/head.c): pure functions,
 * no sockets. */
#include "api/http_int.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void h_list(fs_req_t *r)
{
    (void)r;
}
static void h_code(fs_req_t *r)
{
    (void)r;
}
static void h_popular(fs_req_t *r)
{
    (void)r;
}
static void h_routes(fs_req_t *r)
{
    (void)r;
}
static void h_post(fs_req_t *r)
{
    (void)r;
}
static void h_root(fs_req_t *r)
{
    (void)r;
}
static void h_members(fs_req_t *r)
{
    (void)r;
}
static void h_head(fs_req_t *r)
{
    (void)r;
}

static fs_router_t *R;

static void setup(void)
{
    R = fs_router_new();
    fs_router_add(R, "GET", "/", h_root);
    fs_router_add(R, "GET", "/airlines/", h_list);
    fs_router_add(R, "GET", "/airlines/{code}", h_code);
    fs_router_add(R, "GET", "/airlines/{code}/routes", h_routes);
    fs_router_add(R, "GET", "/airlines/routes/search", h_popular);
    fs_router_add(R, "GET", "/airports/popular/", h_popular);
    fs_router_add(R, "GET", "/airports/{code}", h_code);
    fs_router_add(R, "POST", "/airports/{code}", h_post);
    fs_router_add(R, "DELETE", "/trips/{trip_id}/members/{member_id}", h_members);
    fs_router_add(R, "GET", "/trips/{trip_id}", h_code);
    fs_router_add(R, "HEAD", "/only-head", h_head);
}

static void teardown(void)
{
    fs_router_free(R);
}

TestSuite(router, .init = setup, .fini = teardown);

static fs_route_status_t match(const char *method, const char *path, fs_route_match_t *m)
{
    return fs_router_match(R, method, path, m);
}

Test(router, static_and_root)
{
    fs_route_match_t m;
    cr_assert_eq(match("GET", "/", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_root);
    cr_assert_str_eq(m.route, "/");
    fs_route_match_clear(&m);
    cr_assert_eq(match("GET", "/airlines", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_list);
    cr_assert_str_eq(m.route, "/airlines/");
    cr_assert_eq(m.n_params, 0);
    fs_route_match_clear(&m);
}

Test(router, trailing_slash_is_not_significant)
{
    fs_route_match_t m;
    cr_assert_eq(match("GET", "/airlines/", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_list);
    fs_route_match_clear(&m);
    cr_assert_eq(match("GET", "/airports/popular", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_popular, "the static segment must win over {code}");
    fs_route_match_clear(&m);
    cr_assert_eq(match("GET", "/airports/DUB/", &m), FS_ROUTE_FOUND);
    cr_assert_str_eq(m.values[0], "DUB");
    fs_route_match_clear(&m);
    /* two slashes are an empty segment, not a trailing slash */
    cr_assert_eq(match("GET", "/airports//", &m), FS_ROUTE_NOT_FOUND);
}

Test(router, params_are_captured_and_named)
{
    fs_route_match_t m;
    cr_assert_eq(match("DELETE", "/trips/t-1/members/m-2", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.n_params, 2);
    cr_assert_str_eq(m.names[0], "trip_id");
    cr_assert_str_eq(m.values[0], "t-1");
    cr_assert_str_eq(m.names[1], "member_id");
    cr_assert_str_eq(m.values[1], "m-2");
    cr_assert_str_eq(m.route, "/trips/{trip_id}/members/{member_id}");
    fs_route_match_clear(&m);
}

Test(router, static_precedence_with_backtracking)
{
    fs_route_match_t m;
    /* "routes" is static under /airlines, but "/airlines/routes" alone exists only as {code} */
    cr_assert_eq(match("GET", "/airlines/routes", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_code);
    cr_assert_str_eq(m.values[0], "routes");
    fs_route_match_clear(&m);
    cr_assert_eq(match("GET", "/airlines/routes/search", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_popular);
    fs_route_match_clear(&m);
    /* static "routes" node has no "routes" child: backtrack to {code}/routes */
    cr_assert_eq(match("GET", "/airlines/routes/routes", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_routes);
    cr_assert_str_eq(m.values[0], "routes");
    fs_route_match_clear(&m);
}

Test(router, not_found_versus_not_allowed)
{
    fs_route_match_t m;
    cr_assert_eq(match("GET", "/nowhere", &m), FS_ROUTE_NOT_FOUND);
    cr_assert_eq(match("GET", "/airlines/x/y/z", &m), FS_ROUTE_NOT_FOUND);
    cr_assert_eq(match("GET", "relative", &m), FS_ROUTE_NOT_FOUND);
    cr_assert_eq(match("PUT", "/airports/DUB", &m), FS_ROUTE_NOT_ALLOWED);
    cr_assert_str_eq(m.allow, "GET, HEAD, POST");
    cr_assert_str_eq(m.route, "/airports/{code}");
    fs_route_match_clear(&m);
    cr_assert_eq(match("GET", "/trips/1/members/2", &m), FS_ROUTE_NOT_ALLOWED);
    cr_assert_str_eq(m.allow, "DELETE");
    fs_route_match_clear(&m);
}

Test(router, head_falls_back_to_get)
{
    fs_route_match_t m;
    cr_assert_eq(match("HEAD", "/airports/DUB", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_code);
    fs_route_match_clear(&m);
    cr_assert_eq(match("HEAD", "/only-head", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_head);
    fs_route_match_clear(&m);
    cr_assert_eq(match("GET", "/only-head", &m), FS_ROUTE_NOT_ALLOWED);
    cr_assert_str_eq(m.allow, "HEAD");
}

Test(router, segments_are_percent_decoded)
{
    fs_route_match_t m;
    cr_assert_eq(match("GET", "/airports/S%C3%A3o%20Paulo", &m), FS_ROUTE_FOUND);
    cr_assert_str_eq(m.values[0], "S\xc3\xa3o Paulo");
    fs_route_match_clear(&m);
    /* an escaped slash stays inside the parameter */
    cr_assert_eq(match("GET", "/airports/a%2Fb", &m), FS_ROUTE_FOUND);
    cr_assert_str_eq(m.values[0], "a/b");
    fs_route_match_clear(&m);
    /* '+' is literal in a path */
    cr_assert_eq(match("GET", "/airports/a+b", &m), FS_ROUTE_FOUND);
    cr_assert_str_eq(m.values[0], "a+b");
    fs_route_match_clear(&m);
    /* static segments compare decoded */
    cr_assert_eq(match("GET", "/airports/popul%61r", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_popular);
    fs_route_match_clear(&m);
    cr_assert_eq(match("GET", "/airports/%zz", &m), FS_ROUTE_BAD_ESCAPE);
    cr_assert_eq(match("GET", "/airports/%4", &m), FS_ROUTE_BAD_ESCAPE);
    cr_assert_eq(match("GET", "/airports/%00", &m), FS_ROUTE_BAD_ESCAPE);
    cr_assert_eq(match("GET", "/airports/%FF", &m), FS_ROUTE_BAD_UTF8);
    cr_assert_eq(match("GET", "/airports/%C0%AF", &m), FS_ROUTE_BAD_UTF8, "overlong encoding");
}

Test(router, too_many_segments_is_not_found)
{
    char path[256] = "";
    for (int i = 0; i < 40; i++)
        strcat(path, "/a");
    fs_route_match_t m;
    cr_assert_eq(match("GET", path, &m), FS_ROUTE_NOT_FOUND);
}

Test(router, duplicate_registration_replaces)
{
    fs_router_add(R, "GET", "/airports/{iata}", h_post);
    fs_route_match_t m;
    cr_assert_eq(match("GET", "/airports/ORK", &m), FS_ROUTE_FOUND);
    cr_assert_eq(m.fn, h_post);
    cr_assert_str_eq(m.names[0], "iata");
    fs_route_match_clear(&m);
}

Test(router, bad_pattern_aborts, .signal = SIGABRT)
{
    fs_router_add(R, "GET", "no-slash", h_root);
}

/* ---- decoding ------------------------------------------------------------------------------ */

Test(decode, query_rules)
{
    char *out;
    cr_assert_eq(fs_http_decode("a+b%20c", 7, true, &out), FS_DECODE_OK);
    cr_assert_str_eq(out, "a b c");
    free(out);
    cr_assert_eq(fs_http_decode("a+b", 3, false, &out), FS_DECODE_OK);
    cr_assert_str_eq(out, "a+b");
    free(out);
    cr_assert_eq(fs_http_decode("%e2%82%ac", 9, true, &out), FS_DECODE_OK);
    cr_assert_str_eq(out, "\xe2\x82\xac");
    free(out);
    cr_assert_eq(fs_http_decode("", 0, true, &out), FS_DECODE_OK);
    cr_assert_str_eq(out, "");
    free(out);
    cr_assert_eq(fs_http_decode("100%", 4, true, &out), FS_DECODE_BAD_ESCAPE);
    cr_assert_null(out);
    cr_assert_eq(fs_http_decode("%g0", 3, true, &out), FS_DECODE_BAD_ESCAPE);
    cr_assert_eq(fs_http_decode("%ed%a0%80", 9, true, &out), FS_DECODE_BAD_UTF8, "surrogate");
    cr_assert_eq(fs_http_decode("%f4%90%80%80", 12, true, &out), FS_DECODE_BAD_UTF8, "above U+10FFFF");
    cr_assert_eq(fs_http_decode("%e2%82", 6, true, &out), FS_DECODE_BAD_UTF8, "truncated");
}

Test(decode, utf8_length_counts_code_points)
{
    cr_assert_eq(fs_utf8_length("abc"), 3);
    cr_assert_eq(fs_utf8_length("S\xc3\xa3o"), 3);
    cr_assert_eq(fs_utf8_length("\xf0\x9f\x9b\xab"), 1);
    cr_assert(fs_utf8_valid("\xf0\x9f\x9b\xab", 4));
    cr_assert(!fs_utf8_valid("\xf0\x9f\x9b", 3));
}

/* ---- head checks ----------------------------------------------------------------------------- */

static const fs_head_limits_t LIM = {.max_uri = 100, .max_body = 1000};

static fs_head_rc_t head(const char *s, fs_head_verdict_t *v)
{
    return fs_http_head_check(s, strlen(s), &LIM, v);
}

Test(head, complete_heads_pass)
{
    fs_head_verdict_t v;
    const char *h = "GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\nBODY";
    cr_assert_eq(head(h, &v), FS_HEAD_OK);
    cr_assert_eq(v.head_len, strlen(h) - 4);
    cr_assert_str_eq(v.method, "GET");
    cr_assert_eq(head("\r\nPOST / HTTP/1.0\nContent-Length: 1000\n\n", &v), FS_HEAD_OK,
                 "bare LF, leading CRLF");
    cr_assert_eq(v.skip, 2);
    cr_assert_eq(head("GET http://example.com/a HTTP/1.1\r\n\r\n", &v), FS_HEAD_OK);
    cr_assert_eq(head("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &v), FS_HEAD_OK);
}

Test(head, incomplete_heads_wait)
{
    fs_head_verdict_t v;
    cr_assert_eq(head("", &v), FS_HEAD_NEED_MORE);
    cr_assert_eq(head("GE", &v), FS_HEAD_NEED_MORE);
    cr_assert_eq(head("GET /aaaa", &v), FS_HEAD_NEED_MORE);
    cr_assert_eq(head("GET / HTTP/1.1\r\nHost: x\r\n", &v), FS_HEAD_NEED_MORE);
}

static void assert_reject(const char *h, int status)
{
    fs_head_verdict_t v;
    cr_assert_eq(head(h, &v), FS_HEAD_REJECT, "expected a refusal of %s", h);
    cr_assert_eq(v.status, status, "%s: status %d, expected %d", h, v.status, status);
    cr_assert_not_null(v.detail);
}

Test(head, malformed_heads_are_refused)
{
    assert_reject("\x01\x02garbage", 400);
    assert_reject("GARBAGE\r\n\r\n", 400);
    assert_reject("get / HTTP/1.1\r\n\r\n", 400);
    assert_reject("GET\r\n\r\n", 400);
    assert_reject("GET /\r\n\r\n", 400);
    assert_reject("GET relative HTTP/1.1\r\n\r\n", 400);
    assert_reject("GET /a\x7f HTTP/1.1\r\n\r\n", 400);
    assert_reject("GET /a b HTTP/1.1\r\n\r\n", 400);
    assert_reject("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400);
    assert_reject("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400);
    assert_reject("GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400);
    assert_reject("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400);
    assert_reject("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400);
    assert_reject("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    assert_reject("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
    assert_reject("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    assert_reject("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    assert_reject("BREW / HTTP/1.1\r\n\r\n", 501);
    assert_reject("GET / HTTP/2.0\r\n\r\n", 505);
    assert_reject("GET / FTP/1.0\r\n\r\n", 400);
}

Test(head, limits)
{
    char big[400];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    char line[600];
    snprintf(line, sizeof line, "GET /%s HTTP/1.1\r\n\r\n", big);
    assert_reject(line, 414);
    snprintf(line, sizeof line, "GET /%s", big); /* no end of line yet, already too long */
    assert_reject(line, 414);
    assert_reject("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413);
    assert_reject("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400);
    /* a header line longer than the parser's buffer */
    size_t n = FS_HTTP_HEADER_LINE_MAX + 100;
    char *h = malloc(n + 64);
    strcpy(h, "GET / HTTP/1.1\r\nX-Big: ");
    size_t at = strlen(h);
    memset(h + at, 'b', n);
    strcpy(h + at + n, "\r\n\r\n");
    fs_head_verdict_t v;
    cr_assert_eq(fs_http_head_check(h, strlen(h), &LIM, &v), FS_HEAD_REJECT);
    cr_assert_eq(v.status, 431);
    free(h);
}
