/* The benchmark harness (bench/): histogram, coordinated-omission correction, scenario files,
 * error accounting against misbehaving local servers, and the flightshark-bench binary. */
#include <criterion/criterion.h>

#ifdef FS_BENCH_UNAVAILABLE
Test(bench, unavailable, .disabled = true)
{
}
#else

#include "bench/hist.h"
#include "bench/loadgen.h"
#include "bench/report.h"
#include "bench/scenario.h"
#include "runtime/alloc.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- histogram ---------------------------------------------------------------------------- */

static bool near(uint64_t got, uint64_t want, double rel)
{
    double d = (double)got - (double)want;
    return (d < 0 ? -d : d) <= rel * (double)want + 1;
}

Test(bench_hist, uniform_percentiles)
{
    fs_hist_t *h = fs_hist_new();
    for (uint64_t v = 1; v <= 10000; v++)
        fs_hist_record(h, v);
    cr_assert_eq(h->count, 10000);
    cr_assert_eq(h->min, 1);
    cr_assert_eq(h->max, 10000);
    uint64_t p50 = fs_hist_percentile(h, 50), p99 = fs_hist_percentile(h, 99),
             p999 = fs_hist_percentile(h, 99.9);
    cr_assert(near(p50, 5000, 1.0 / 1024), "p50 %lu", (unsigned long)p50);
    cr_assert(near(p99, 9900, 1.0 / 1024), "p99 %lu", (unsigned long)p99);
    cr_assert(near(p999, 9990, 1.0 / 1024), "p99.9 %lu", (unsigned long)p999);
    cr_assert_eq(fs_hist_percentile(h, 100), 10000);
    cr_assert_float_eq(fs_hist_mean(h), 5000.5, 0.01);
    fs_hist_free(h);
}

Test(bench_hist, buckets_hold_three_significant_digits)
{
    for (uint64_t v = 0; v < (UINT64_C(1) << 36); v = v * 3 / 2 + 1) {
        int i = fs_hist_index(v);
        cr_assert(fs_hist_lowest(i) <= v && v <= fs_hist_highest(i), "value %lu bucket %d", (unsigned long)v,
                  i);
        cr_assert(fs_hist_highest(i) - fs_hist_lowest(i) <= v / 1024, "bucket of %lu too wide",
                  (unsigned long)v);
    }
    cr_assert_eq(fs_hist_index(2047), 2047);
    cr_assert_eq(fs_hist_index(2048), 2048);
}

Test(bench_hist, empty_merge_and_clamp)
{
    fs_hist_t *a = fs_hist_new(), *b = fs_hist_new();
    cr_assert_eq(fs_hist_percentile(a, 99), 0);
    fs_hist_record_n(a, 100, 99);
    fs_hist_record(b, 1000000);
    fs_hist_record(b, UINT64_MAX);
    fs_hist_merge(a, b);
    cr_assert_eq(a->count, 101);
    cr_assert_eq(a->clamped, 1);
    cr_assert_eq(fs_hist_percentile(a, 50), 100);
    cr_assert(near(fs_hist_percentile(a, 99), 1000000, 1.0 / 1024));
    cr_assert_eq(a->max, (UINT64_C(1) << 36) - 1);
    fs_hist_free(a);
    fs_hist_free(b);
}

/* A 1 s stall seen by a client that meant to send every 10 ms: the correction adds the 99
 * requests that would have waited 990, 980, ... 10 ms. */
Test(bench_hist, corrected_recording_fills_a_stall)
{
    fs_hist_t *h = fs_hist_new();
    for (int i = 0; i < 100; i++)
        fs_hist_record_corrected(h, 1000, 10000); /* fast: nothing added */
    cr_assert_eq(h->count, 100);
    fs_hist_record_corrected(h, 1000000, 10000);
    cr_assert_eq(h->count, 200);
    cr_assert_eq(h->max, 1000000);
    cr_assert(near(fs_hist_percentile(h, 75), 500000, 0.03), "p75 %lu",
              (unsigned long)fs_hist_percentile(h, 75));
    cr_assert_eq(fs_hist_percentile(h, 50), 1000);
    fs_hist_free(h);
}

/* ---- tiny local servers ------------------------------------------------------------------- */

typedef enum { SRV_OK, SRV_500, SRV_CLOSE, SRV_SILENT, SRV_GARBAGE, SRV_STALL } srv_mode_t;

typedef struct srv {
    int fd, port;
    srv_mode_t mode;
    int stall_at, stall_ms; /* SRV_STALL: request number stall_at waits stall_ms */
    atomic_int requests;
    pthread_t tid;
} srv_t;

typedef struct srv_conn {
    srv_t *s;
    int fd;
} srv_conn_t;

static const char ok_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
static const char err_resp[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops";

static void srv_reply(srv_conn_t *c, int n)
{
    srv_t *s = c->s;
    const char *r = s->mode == SRV_500       ? err_resp
                    : s->mode == SRV_GARBAGE ? "NOT HTTP AT ALL\r\n\r\n"
                                             : ok_resp;
    if (s->mode == SRV_STALL && n == s->stall_at)
        usleep((useconds_t)s->stall_ms * 1000);
    if (send(c->fd, r, strlen(r), MSG_NOSIGNAL) < 0)
        return;
}

/* One thread per connection: answers each request (ended by a blank line) as the mode says. */
static void *srv_conn_main(void *arg)
{
    srv_conn_t *c = arg;
    char buf[8192];
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(c->fd, buf + len, sizeof buf - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n"))) {
            int num = atomic_fetch_add(&c->s->requests, 1) + 1;
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, len - used + 1);
            len -= used;
            if (c->s->mode == SRV_CLOSE)
                goto done;
            if (c->s->mode != SRV_SILENT)
                srv_reply(c, num);
        }
    }
done:
    close(c->fd);
    free(c);
    return NULL;
}

static void *srv_accept_main(void *arg)
{
    srv_t *s = arg;
    for (;;) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        srv_conn_t *c = fs_calloc(1, sizeof *c);
        c->s = s;
        c->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, srv_conn_main, c);
        pthread_detach(t);
    }
}

static void srv_start(srv_t *s, srv_mode_t mode)
{
    s->mode = mode;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(s->fd, 128), 0);
    socklen_t len = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->tid, NULL, srv_accept_main, s);
}

static void srv_stop(srv_t *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->tid, NULL);
    close(s->fd);
}

/* ---- running the engine in-process -------------------------------------------------------- */

typedef struct run {
    fs_scenario_t scn;
    struct sockaddr_in addr;
    fs_bench_opts_t o;
    fs_bench_result_t r;
} run_t;

static void run_setup(run_t *t, int port, const char *target)
{
    memset(t, 0, sizeof *t);
    fs_scn_single(&t->scn, target);
    char *err = NULL;
    cr_assert_eq(fs_scn_render(&t->scn, &fs_bench_proto_http, "127.0.0.1", &err), 0, "%s", err);
    t->addr = (struct sockaddr_in){
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    t->o = (fs_bench_opts_t){.scn = &t->scn,
                             .proto = &fs_bench_proto_http,
                             .addr = (struct sockaddr *)&t->addr,
                             .addrlen = sizeof t->addr,
                             .connections = 2,
                             .threads = 1,
                             .duration_s = 0.5,
                             .warmup_s = 0,
                             .timeout_s = 2,
                             .seed = 1};
}

static void run_go(run_t *t)
{
    char *err = NULL;
    cr_assert_eq(fs_bench_run(&t->o, &t->r, &err), 0, "%s", err);
}

static void run_done(run_t *t)
{
    fs_bench_result_free(&t->r);
    fs_scn_free(&t->scn);
}

Test(bench_run, closed_loop_counts_responses_and_excludes_warmup)
{
    srv_t s = {0};
    srv_start(&s, SRV_OK);
    run_t t;
    run_setup(&t, s.port, "/health/live");
    t.o.warmup_s = 0.3;
    t.o.threads = 2;
    run_go(&t);
    cr_assert_gt(t.r.responses, 100);
    cr_assert_eq(t.r.ok, t.r.responses);
    cr_assert_gt(t.r.warmup_responses, 0, "the warm-up produced responses that must not be counted");
    cr_assert_eq(t.r.latency->count, t.r.responses);
    cr_assert_eq(t.r.bytes, 2 * t.r.responses);
    cr_assert_eq(t.r.status_class[2], t.r.responses);
    cr_assert_eq(fs_bench_error_total(&t.r), 0);
    cr_assert_gt(fs_bench_throughput(&t.r), 0);
    run_done(&t);
    srv_stop(&s);
}

Test(bench_run, requests_mode_sends_exactly_n)
{
    srv_t s = {0};
    srv_start(&s, SRV_OK);
    run_t t;
    run_setup(&t, s.port, "/");
    t.o.connections = 1;
    t.o.requests = 500;
    t.o.duration_s = 60;
    run_go(&t);
    cr_assert_eq(t.r.responses, 500);
    cr_assert_eq(atomic_load(&s.requests), 500);
    cr_assert_lt(t.r.elapsed_s, 30);
    run_done(&t);
    srv_stop(&s);
}

Test(bench_run, non_2xx_are_counted)
{
    srv_t s = {0};
    srv_start(&s, SRV_500);
    run_t t;
    run_setup(&t, s.port, "/boom");
    run_go(&t);
    cr_assert_gt(t.r.responses, 10);
    cr_assert_eq(t.r.ok, 0);
    cr_assert_eq(t.r.errors[FS_BENCH_ERR_STATUS], t.r.responses);
    cr_assert_eq(t.r.status_class[5], t.r.responses);
    cr_assert_eq(t.r.errors[FS_BENCH_ERR_CLOSED] + t.r.errors[FS_BENCH_ERR_CONNECT], 0);
    run_done(&t);
    srv_stop(&s);
}

Test(bench_run, closed_connections_are_counted)
{
    srv_t s = {0};
    srv_start(&s, SRV_CLOSE);
    run_t t;
    run_setup(&t, s.port, "/");
    run_go(&t);
    cr_assert_eq(t.r.responses, 0);
    cr_assert_gt(t.r.errors[FS_BENCH_ERR_CLOSED] + t.r.errors[FS_BENCH_ERR_READ], 10, "closed %lu read %lu",
                 (unsigned long)t.r.errors[FS_BENCH_ERR_CLOSED],
                 (unsigned long)t.r.errors[FS_BENCH_ERR_READ]);
    cr_assert_gt(t.r.errors[FS_BENCH_ERR_CLOSED], 0);
    run_done(&t);
    srv_stop(&s);
}

Test(bench_run, refused_connections_are_counted)
{
    srv_t s = {0};
    srv_start(&s, SRV_OK);
    srv_stop(&s); /* the port is now closed */
    run_t t;
    run_setup(&t, s.port, "/");
    t.o.duration_s = 0.3;
    run_go(&t);
    cr_assert_eq(t.r.responses, 0);
    cr_assert_gt(t.r.errors[FS_BENCH_ERR_CONNECT], 2);
    run_done(&t);

    /* --requests against a dead target ends after N attempts, not at the time cap */
    run_setup(&t, s.port, "/");
    t.o.connections = 1;
    t.o.requests = 5;
    t.o.duration_s = 60;
    double t0 = (double)fs_bench_now_us();
    run_go(&t);
    cr_assert_eq(t.r.errors[FS_BENCH_ERR_CONNECT], 5);
    cr_assert_lt(((double)fs_bench_now_us() - t0) / 1e6, 5);
    run_done(&t);
}

Test(bench_run, timeouts_and_parse_errors_are_counted)
{
    srv_t silent = {0}, garbage = {0};
    srv_start(&silent, SRV_SILENT);
    srv_start(&garbage, SRV_GARBAGE);
    run_t t;
    run_setup(&t, silent.port, "/");
    t.o.timeout_s = 0.1;
    run_go(&t);
    cr_assert_eq(t.r.responses, 0);
    cr_assert_geq(t.r.errors[FS_BENCH_ERR_TIMEOUT], 4);
    run_done(&t);

    run_setup(&t, garbage.port, "/");
    run_go(&t);
    cr_assert_eq(t.r.responses, 0);
    cr_assert_gt(t.r.errors[FS_BENCH_ERR_PARSE], 10);
    run_done(&t);
    srv_stop(&silent);
    srv_stop(&garbage);
}

/* Open loop at 1000 req/s on one connection; the server holds request 200 for 300 ms. About 300
 * requests were due during the stall, so measured from their intended send times the slowest
 * 10 % waited more than 100 ms, although only one request was slow to serve. */
Test(bench_run, open_loop_charges_a_stall_to_every_delayed_request)
{
    srv_t s = {.stall_at = 200, .stall_ms = 300};
    srv_start(&s, SRV_STALL);
    run_t t;
    run_setup(&t, s.port, "/");
    t.o.connections = 1;
    t.o.rate = 1000;
    t.o.duration_s = 1.0;
    run_go(&t);
    uint64_t p90 = fs_hist_percentile(t.r.latency, 90), max = t.r.latency->max;
    uint64_t svc_p90 = fs_hist_percentile(t.r.service, 90);
    cr_assert_gt(t.r.responses, 800);
    cr_assert_gt(p90, 100000, "corrected p90 %lu µs", (unsigned long)p90);
    cr_assert_gt(max, 280000, "corrected max %lu µs", (unsigned long)max);
    cr_assert_lt(svc_p90, 50000, "service-time p90 %lu µs hides the stall", (unsigned long)svc_p90);
    cr_assert_gt(t.r.late, 200, "late sends %lu", (unsigned long)t.r.late);
    run_done(&t);
    srv_stop(&s);
}

/* ---- scenario files ----------------------------------------------------------------------- */

static char *write_tmp(const char *content)
{
    char *path = fs_strdup("/tmp/fs-bench-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

Test(bench_scenario, parses_a_good_file)
{
    char *queries = write_tmp("# comment\nNew Y\n\nlon\r\nJFK\n");
    char *text = fs_sprintf("# a comment\nname = mix\ndescription = two endpoints  # trailing comment\n"
                            "connections = 16\nthreads = 2\nduration = 1500ms\nwarmup = 2s\nrate = 500\n"
                            "timeout = 1m\nreference_size = 321\nqueries = %s\n\n"
                            "[request]\nweight = 3\npath = /airports/search?q={q}&limit=10\n"
                            "header = Accept: application/json\n\n"
                            "[request]\nmethod = POST\npath = /echo\nbody = {\"q\":\"{q}\"}\n",
                            queries);
    fs_scenario_t s;
    char *err = NULL;
    cr_assert_eq(fs_scn_parse(text, "mix.scn", "/tmp", &s, &err), 0, "%s", err);
    cr_assert_str_eq(s.name, "mix");
    cr_assert_str_eq(s.description, "two endpoints");
    cr_assert_eq(s.connections, 16);
    cr_assert_eq(s.threads, 2);
    cr_assert_float_eq(s.duration_s, 1.5, 1e-9);
    cr_assert_float_eq(s.warmup_s, 2, 1e-9);
    cr_assert_float_eq(s.timeout_s, 60, 1e-9);
    cr_assert_float_eq(s.rate, 500, 1e-9);
    cr_assert_eq(s.reference_size, 321);
    cr_assert_eq(s.nreqs, 2);
    cr_assert_eq(s.total_weight, 4);
    cr_assert_str_eq(s.reqs[0].method, "GET");
    cr_assert_eq(s.reqs[0].nheaders, 1);
    cr_assert_str_eq(s.reqs[1].method, "POST");

    char *first = fs_scn_first_target(&s, &err);
    cr_assert_str_eq(first, "/airports/search?q=New%20Y&limit=10");
    cr_assert_eq(fs_scn_render(&s, &fs_bench_proto_http, "127.0.0.1:9", &err), 0, "%s", err);
    cr_assert_eq(s.reqs[0].nrendered, 3);
    cr_assert_str_eq(s.reqs[0].rendered[1].data, "GET /airports/search?q=lon&limit=10 HTTP/1.1\r\nHost: "
                                                 "127.0.0.1:9\r\nAccept: application/json\r\n\r\n");
    cr_assert(strstr(s.reqs[1].rendered[2].data, "Content-Length: 11\r\n\r\n{\"q\":\"JFK\"}"), "%s",
              s.reqs[1].rendered[2].data);
    free(first);
    fs_scn_free(&s);
    unlink(queries);
    free(queries);
    free(text);
}

static void expect_error(const char *text, const char *want)
{
    fs_scenario_t s;
    char *err = NULL;
    cr_assert_eq(fs_scn_parse(text, "bad.scn", NULL, &s, &err), -1, "accepted: %s", text);
    cr_assert(strstr(err, want), "error '%s' does not contain '%s'", err, want);
    free(err);
}

Test(bench_scenario, malformed_files_name_the_line)
{
    expect_error("name = x\nconections = 3\n[request]\npath = /\n", "bad.scn:2: unknown key 'conections'");
    expect_error("duration = soon\n[request]\npath = /\n", "bad.scn:1: 'duration' needs a duration");
    expect_error("connections = -1\n[request]\npath = /\n", "bad.scn:1: 'connections' needs a whole number");
    expect_error("[request]\nmethod = GET\n\n[request]\npath = /x\n", "bad.scn:1: [request] has no path");
    expect_error("name = nothing to send\n", "bad.scn:2: no [request] section");
    expect_error("[requests]\npath = /\n", "bad.scn:1: unknown section '[requests]'");
    expect_error("[request]\npath = /\njust words\n", "bad.scn:3: expected 'key = value'");
    expect_error("[request]\npath = /\nconnections = 3\n",
                 "bad.scn:3: unknown key 'connections' in [request]");
    expect_error("[request]\npath = relative\n", "bad.scn:2: path 'relative' must start with '/'");
    expect_error("protocol = gopher\n[request]\npath = /\n", "bad.scn:1: unknown protocol 'gopher'");
}

Test(bench_scenario, template_without_query_list_fails_at_render)
{
    fs_scenario_t s;
    char *err = NULL;
    cr_assert_eq(fs_scn_parse("[request]\npath = /a?q={q}\n", "q.scn", NULL, &s, &err), 0);
    cr_assert_eq(fs_scn_render(&s, &fs_bench_proto_http, "h:1", &err), -1);
    cr_assert(strstr(err, "q.scn:1: the request uses {q} but no 'queries' file"), "%s", err);
    free(err);
    fs_scn_free(&s);
}

Test(bench_scenario, shipped_scenarios_load_and_render)
{
    const char *names[] = {"health-live",      "health",          "airports-search",
                           "airports-grouped", "airport-by-code", "airports-search-open"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *path = fs_sprintf("%s/bench/scenarios/%s.scn", FS_SOURCE_DIR, names[i]);
        fs_scenario_t s;
        char *err = NULL;
        cr_assert_eq(fs_scn_load(path, &s, &err), 0, "%s", err);
        cr_assert_str_eq(s.name, names[i]);
        cr_assert_eq(fs_scn_render(&s, &fs_bench_proto_http, "127.0.0.1:8000", &err), 0, "%s", err);
        cr_assert_gt(s.reference_size, 0, "%s has no reference_size", names[i]);
        fs_scn_free(&s);
        free(path);
    }
}

Test(bench_scenario, query_list_has_200_autocomplete_prefixes)
{
    char *path = fs_sprintf("%s/bench/scenarios/autocomplete-queries.txt", FS_SOURCE_DIR), *err = NULL, **qs;
    long n = fs_scn_read_queries(path, &qs, &err);
    cr_assert_eq(n, 200, "%s", err ? err : "");
    for (long i = 0; i < n; i++) {
        size_t len = strlen(qs[i]);
        cr_assert(len >= 2 && len <= 5, "query '%s' is not 2-5 characters", qs[i]);
        free(qs[i]);
    }
    free(qs);
    free(path);
}

/* ---- the binary --------------------------------------------------------------------------- */

static char *bench_binary(void)
{
    const char *env = getenv("FS_BENCH_BINARY");
    if (env)
        return fs_strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert_gt(n, 0);
    exe[n] = '\0';
    return fs_sprintf("%s/bench/flightshark-bench", dirname(exe));
}

static char *run_cmd(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *out = NULL;
    size_t cap = 0;
    FILE *m = open_memstream(&out, &cap);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        fwrite(buf, 1, n, m);
    fclose(m);
    *status = pclose(p);
    return out;
}

Test(bench_binary, end_to_end_json)
{
    srv_t s = {0};
    srv_start(&s, SRV_OK);
    char *bin = bench_binary();
    char *cmd = fs_sprintf("%s -c 4 -t 2 -d 500ms -w 200ms --label local --json http://127.0.0.1:%d/health",
                           bin, s.port);
    int status;
    char *out = run_cmd(cmd, &status);
    cr_assert_eq(status, 0, "%s exited %d", cmd, status);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    cr_assert_not_null(j, "not JSON (%s): %s", jerr.text, out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "mode")), "closed");
    cr_assert_str_eq(json_string_value(json_object_get(j, "label")), "local");
    cr_assert_gt(json_real_value(json_object_get(j, "throughput_rps")), 0);
    cr_assert_gt(json_integer_value(json_object_get(j, "requests")), 0);
    json_t *lat = json_object_get(j, "latency_us");
    cr_assert_gt(json_integer_value(json_object_get(lat, "max")), 0);
    cr_assert_leq(json_integer_value(json_object_get(lat, "p50")),
                  json_integer_value(json_object_get(lat, "p99_9")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "errors"), "total")), 0);
    json_decref(j);
    free(out);
    free(cmd);

    cmd = fs_sprintf("%s --scenario %s/bench/scenarios/airports-search.scn --describe", bin, FS_SOURCE_DIR);
    out = run_cmd(cmd, &status);
    cr_assert_eq(status, 0);
    cr_assert(strstr(out, "NAME='airports-search'") && strstr(out, "FIRST_PATH='/airports/search?q="), "%s",
              out);
    free(out);
    free(cmd);

    cmd = fs_sprintf("%s -c 1 -n 50 --tsv http://127.0.0.1:%d/ 2>&1", bin, s.port);
    out = run_cmd(cmd, &status);
    cr_assert_eq(status, 0);
    cr_assert(strstr(out, "\t0\t50\n"), "tsv line: %s", out);
    free(out);
    free(cmd);
    free(bin);
    srv_stop(&s);
}

Test(bench_binary, bad_arguments_fail_clearly)
{
    char *bin = bench_binary();
    char *cmd = fs_sprintf("%s -d soon http://127.0.0.1:1/ 2>&1", bin);
    int status;
    char *out = run_cmd(cmd, &status);
    cr_assert_neq(status, 0);
    cr_assert(strstr(out, "bad duration 'soon'"), "%s", out);
    free(out);
    free(cmd);
    cmd = fs_sprintf("%s https://example.org/ 2>&1", bin);
    out = run_cmd(cmd, &status);
    cr_assert_neq(status, 0);
    cr_assert(strstr(out, "URL must look like http://"), "%s", out);
    free(out);
    free(cmd);
    free(bin);
}

#endif
