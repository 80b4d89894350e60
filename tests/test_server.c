/* The real server binary over loopback: process model, health, failure handling. */
#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static fs_test_server_t srv;

static void start_default(void)
{
    cr_assert_eq(fs_test_server_start(&srv, 2, NULL), 0, "server did not start; see %s", srv.log_path);
}

static void stop_default(void)
{
    if (srv.pid > 0)
        fs_test_server_stop(&srv);
}

static long get_status(const char *path, json_t **json)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    fs_test_resp_t r;
    fs_test_http("GET", url, NULL, NULL, &r);
    if (json)
        *json = fs_test_resp_json(&r);
    long status = r.status;
    fs_test_resp_free(&r);
    return status;
}

/* Private PostgreSQL + Redis for tests that stop or freeze them (the suite's shared ones must
 * stay up for the other tests). */
static char services[128];

static void start_private_services(void)
{
    snprintf(services, sizeof services, "/tmp/fs-server-test-%d", (int)getpid());
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh start %s >/dev/null", fs_test_env("FS_SOURCE_DIR"), services), 0);
}

static void stop_private_services(void)
{
    fs_test_sh("%s/scripts/services.sh stop %s >/dev/null 2>&1; rm -rf %s", fs_test_env("FS_SOURCE_DIR"), services,
               services);
}

static int start_with_private_services(void)
{
    static char db[512], redis[512];
    char *pg_user = getuid() == 0 ? "postgres" : getenv("USER");
    snprintf(db, sizeof db, "DATABASE_URL=postgresql:///flightshark?host=%s/pg&user=%s", services, pg_user);
    snprintf(redis, sizeof redis, "REDIS_URL=unix://%s/redis/redis.sock", services);
    const char *env[] = {db, redis, NULL};
    return fs_test_server_start(&srv, 2, env);
}

Test(server, root_and_liveness, .init = start_default, .fini = stop_default)
{
    json_t *body;
    cr_assert_eq(get_status("/", &body), 200);
    cr_assert_str_eq(json_string_value(json_object_get(body, "name")), "Flightshark API");
    cr_assert_str_eq(json_string_value(json_object_get(body, "status")), "running");
    json_decref(body);
    cr_assert_eq(get_status("/health/live", &body), 200);
    cr_assert_str_eq(json_string_value(json_object_get(body, "status")), "alive");
    json_decref(body);
}

Test(server, health_ok_with_both_servers_up, .init = start_default, .fini = stop_default)
{
    json_t *body;
    cr_assert_eq(get_status("/health", &body), 200);
    cr_assert_str_eq(json_string_value(json_object_get(body, "status")), "healthy");
    json_t *checks = json_object_get(body, "checks");
    cr_assert(json_is_true(json_object_get(checks, "postgres")));
    cr_assert(json_is_true(json_object_get(checks, "redis")));
    json_decref(body);
    cr_assert_eq(get_status("/health/ready", &body), 200);
    cr_assert_str_eq(json_string_value(json_object_get(body, "status")), "ready");
    json_decref(body);
}

Test(server, two_workers_serve_the_port, .init = start_default, .fini = stop_default)
{
    pid_t pids[8];
    cr_assert_eq(fs_test_server_workers(&srv, pids, 8), 2);
}

Test(server, health_503_while_postgres_is_down_and_recovers, .init = start_private_services,
     .fini = stop_private_services, .timeout = 90)
{
    cr_assert_eq(start_with_private_services(), 0, "server did not start; see %s", srv.log_path);
    json_t *body;
    cr_assert_eq(get_status("/health", &body), 200);
    json_decref(body);

    cr_assert_eq(fs_test_sh("%s/scripts/services.sh pg-stop %s", fs_test_env("FS_SOURCE_DIR"), services), 0);
    double t0 = fs_test_now_ms();
    long status = get_status("/health", &body);
    double took = fs_test_now_ms() - t0;
    cr_assert_eq(status, 503);
    cr_assert_lt(took, 2500, "a down database must be reported promptly (%.0f ms)", took);
    cr_assert_str_eq(json_string_value(json_object_get(body, "detail")), "PostgreSQL is unavailable");
    cr_assert(json_is_false(json_object_get(json_object_get(body, "checks"), "postgres")));
    cr_assert(json_is_true(json_object_get(json_object_get(body, "checks"), "redis")));
    json_decref(body);
    /* readiness keeps the original's contract: 200, "degraded" */
    cr_assert_eq(get_status("/health/ready", &body), 200);
    cr_assert_str_eq(json_string_value(json_object_get(body, "status")), "degraded");
    json_decref(body);

    cr_assert_eq(fs_test_sh("%s/scripts/services.sh pg-start %s", fs_test_env("FS_SOURCE_DIR"), services), 0);
    /* Both workers must recover by themselves: poll until several answers in a row are 200. */
    int ok_in_row = 0;
    double deadline = fs_test_now_ms() + 20000;
    while (ok_in_row < 10 && fs_test_now_ms() < deadline) {
        ok_in_row = get_status("/health", NULL) == 200 ? ok_in_row + 1 : 0;
        usleep(ok_in_row ? 20000 : 200000);
    }
    cr_assert_eq(ok_in_row, 10, "health did not recover after PostgreSQL came back");
    fs_test_server_stop(&srv);
}

typedef struct {
    const char *url;
    volatile int stop;
    int total, failed;
} stream_t;

static void *request_stream(void *arg)
{
    stream_t *s = arg;
    while (!s->stop) {
        fs_test_resp_t r;
        fs_test_http("GET", s->url, NULL, NULL, &r);
        s->total++;
        if (r.status != 200)
            s->failed++;
        fs_test_resp_free(&r);
    }
    return NULL;
}

Test(server, killed_worker_is_replaced_without_losing_requests, .init = start_default, .fini = stop_default,
     .timeout = 60)
{
    char url[128];
    snprintf(url, sizeof url, "%s/health/live", srv.url);
    stream_t streams[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        streams[i] = (stream_t){.url = url};
        pthread_create(&threads[i], NULL, request_stream, &streams[i]);
    }
    usleep(500000);
    pid_t before[8];
    cr_assert_eq(fs_test_server_workers(&srv, before, 8), 2);
    kill(before[0], SIGKILL);
    double killed_at = fs_test_now_ms();
    double replaced_after = -1;
    while (fs_test_now_ms() - killed_at < 3000) {
        pid_t now[8];
        int n = fs_test_server_workers(&srv, now, 8);
        bool has_new = false;
        for (int i = 0; i < n; i++)
            has_new |= now[i] != before[0] && now[i] != before[1];
        if (n == 2 && has_new) {
            replaced_after = fs_test_now_ms() - killed_at;
            break;
        }
        usleep(5000);
    }
    usleep(1500000);
    int total = 0, failed = 0;
    for (int i = 0; i < 4; i++) {
        streams[i].stop = 1;
        pthread_join(threads[i], NULL);
        total += streams[i].total;
        failed += streams[i].failed;
    }
    cr_assert_geq(replaced_after, 0, "the killed worker was not replaced");
    cr_assert_lt(replaced_after, 1000, "replacement took %.0f ms", replaced_after);
    cr_assert_gt(total, 200, "too few requests to judge (%d)", total);
    cr_assert_lt(failed * 100, total, "%d of %d requests failed", failed, total);

    json_t *body;
    cr_assert_eq(get_status("/metrics", &body), 200);
    char murl[128];
    snprintf(murl, sizeof murl, "%s/metrics", srv.url);
    fs_test_resp_t r;
    /* Either worker may answer; the counter is per slot, so look for the series at all. */
    fs_test_http("GET", murl, NULL, NULL, &r);
    cr_assert(strstr(r.body, "flightshark_worker_restarts_total{worker=") != NULL);
    fs_test_resp_free(&r);
}

typedef struct {
    const char *url;
    long status;
    json_t *body;
} pending_t;

static void *one_request(void *arg)
{
    pending_t *p = arg;
    fs_test_resp_t r;
    fs_test_http("GET", p->url, NULL, NULL, &r);
    p->status = r.status;
    p->body = fs_test_resp_json(&r);
    fs_test_resp_free(&r);
    return NULL;
}

/* An in-flight request is one whose handler waits: freezing our private Redis makes /health
 * wait for its 2 s deadline. SIGTERM during that wait must still deliver the answer. */
Test(server, sigterm_completes_in_flight_requests, .init = start_private_services, .fini = stop_private_services,
     .timeout = 60)
{
    cr_assert_eq(start_with_private_services(), 0, "server did not start; see %s", srv.log_path);
    char pidfile[256], url[128];
    snprintf(pidfile, sizeof pidfile, "%s/redis/redis.pid", services);
    FILE *f = fopen(pidfile, "r");
    int redis_pid = 0;
    cr_assert(f && fscanf(f, "%d", &redis_pid) == 1);
    fclose(f);

    snprintf(url, sizeof url, "%s/health", srv.url);
    kill(redis_pid, SIGSTOP);
    pending_t p = {.url = url};
    pthread_t t;
    pthread_create(&t, NULL, one_request, &p);
    usleep(400000);
    pid_t master = srv.pid;
    kill(master, SIGTERM);
    pthread_join(t, NULL);
    kill(redis_pid, SIGCONT);
    int st;
    cr_assert_eq(waitpid(master, &st, 0), master);
    srv.pid = 0;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "master did not exit cleanly");
    cr_assert_eq(p.status, 200, "the in-flight request was not completed (status %ld)", p.status);
    cr_assert_str_eq(json_string_value(json_object_get(p.body, "status")), "degraded");
    cr_assert_str_eq(json_string_value(json_object_get(p.body, "detail")),
                     "Redis is unavailable: searches are served without the shared cache");
    json_decref(p.body);
}

Test(server, bad_requests_get_clear_answers_and_never_crash_a_worker, .init = start_default, .fini = stop_default)
{
    pid_t before[8], after[8];
    cr_assert_eq(fs_test_server_workers(&srv, before, 8), 2);
    json_t *body;

    cr_assert_eq(get_status("/no/such/route", &body), 404);
    cr_assert_str_eq(json_string_value(json_object_get(body, "detail")), "Not Found");
    json_decref(body);

    char url[256];
    fs_test_resp_t r;
    snprintf(url, sizeof url, "%s/health", srv.url);
    fs_test_http("DELETE", url, NULL, NULL, &r);
    cr_assert_eq(r.status, 405);
    fs_test_resp_free(&r);

    /* 2 MiB body to a route: over MAX_BODY_BYTES (1 MiB) */
    size_t big = 2u << 20;
    char *payload = malloc(big + 1);
    memset(payload, 'x', big);
    payload[big] = '\0';
    snprintf(url, sizeof url, "%s/", srv.url);
    fs_test_http("POST", url, payload, NULL, &r);
    free(payload);
    cr_assert(r.status == 413, "oversized body answered %ld", r.status);
    fs_test_resp_free(&r);

    /* 6 KB query string: 414, not evhtp's long-URI parser bug */
    char *longq = malloc(7000);
    int n = snprintf(longq, 7000, "%s/health/live?q=", srv.url);
    memset(longq + n, 'a', 6144);
    longq[n + 6144] = '\0';
    fs_test_http("GET", longq, NULL, NULL, &r);
    free(longq);
    cr_assert_eq(r.status, 414);
    fs_test_resp_free(&r);

    /* What RFC 9110 prescribes, or a closed connection where no answer is possible; never 500. */
    const struct {
        const char *bytes, *expect; /* expected status prefix; "" = a 4xx or a close */
    } bad[] = {
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 binary junk\r\n\r\n", ""},
        {"GET / HTTP/9.9\r\n\r\n", "HTTP/1.1 505"},
        {"NOT A REQUEST\r\n\r\n", "HTTP/1.1 501"},
        {"GET /health HTTP/1.1\r\nContent-Length: x\r\n\r\n", ""},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *answer = fs_test_raw(srv.port, bad[i].bytes, strlen(bad[i].bytes), 1000);
        if (*bad[i].expect)
            cr_assert(strncmp(answer, bad[i].expect, strlen(bad[i].expect)) == 0, "case %zu got: %.80s", i, answer);
        else
            cr_assert(*answer == '\0' || strncmp(answer, "HTTP/1.1 4", 10) == 0, "case %zu got: %.80s", i, answer);
        free(answer);
    }
    cr_assert_eq(get_status("/health/live", NULL), 200);
    cr_assert_eq(fs_test_server_workers(&srv, after, 8), 2);
    cr_assert((after[0] == before[0] && after[1] == before[1]) || (after[0] == before[1] && after[1] == before[0]),
              "a worker was replaced: it crashed on bad input");
}

Test(server, metrics_use_route_templates, .init = start_default, .fini = stop_default)
{
    for (int i = 0; i < 10; i++)
        get_status("/health/live", NULL);
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", srv.url);
    /* Each worker keeps its own registry; ask until the one that served the requests answers. */
    bool seen = false;
    for (int i = 0; i < 20 && !seen; i++) {
        fs_test_resp_t r;
        fs_test_http("GET", url, NULL, NULL, &r);
        cr_assert_eq(r.status, 200);
        seen = strstr(r.body, "http_requests_total{") && strstr(r.body, "endpoint=\"/health/live\"");
        cr_assert(strstr(r.body, "# TYPE http_request_duration_seconds histogram"));
        cr_assert(strstr(r.body, "flightshark_pg_connections{"));
        cr_assert(strstr(r.body, "flightshark_redis_connected{"));
        cr_assert(strstr(r.body, "flightshark_memory_allocated_bytes{"));
        fs_test_resp_free(&r);
    }
    cr_assert(seen);
}

Test(server, responses_carry_process_time_and_request_id, .init = start_default, .fini = stop_default)
{
    char url[128], buf[128];
    snprintf(url, sizeof url, "%s/health/live", srv.url);
    fs_test_resp_t r;
    const char *hdrs[] = {"X-Request-ID: abc-123", NULL};
    fs_test_http("GET", url, NULL, hdrs, &r);
    cr_assert_not_null(fs_test_resp_header(&r, "X-Process-Time", buf, sizeof buf));
    cr_assert_gt(atof(buf), 0.0);
    cr_assert_str_eq(fs_test_resp_header(&r, "X-Request-ID", buf, sizeof buf), "abc-123");
    fs_test_resp_free(&r);
}

/* SIGHUP: every worker is replaced while requests keep flowing; none of them fails. */
Test(server, sighup_replaces_workers_without_failing_requests, .init = start_default, .fini = stop_default,
     .timeout = 60)
{
    char url[128];
    snprintf(url, sizeof url, "%s/health/live", srv.url);
    stream_t streams[2];
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        streams[i] = (stream_t){.url = url};
        pthread_create(&threads[i], NULL, request_stream, &streams[i]);
    }
    pid_t before[8], after[8];
    cr_assert_eq(fs_test_server_workers(&srv, before, 8), 2);
    usleep(300000);
    kill(srv.pid, SIGHUP);
    int n = 0;
    bool replaced = false;
    for (double t0 = fs_test_now_ms(); !replaced && fs_test_now_ms() - t0 < 15000; usleep(50000)) {
        n = fs_test_server_workers(&srv, after, 8);
        replaced = n == 2;
        for (int i = 0; i < n; i++)
            replaced &= after[i] != before[0] && after[i] != before[1];
    }
    usleep(500000);
    int total = 0, failed = 0;
    for (int i = 0; i < 2; i++) {
        streams[i].stop = 1;
        pthread_join(threads[i], NULL);
        total += streams[i].total;
        failed += streams[i].failed;
    }
    cr_assert(replaced, "workers were not replaced after SIGHUP (%d children)", n);
    cr_assert_gt(total, 100);
    cr_assert_eq(failed, 0, "%d of %d requests failed during the reload", failed, total);
}

Test(server, sighup_with_broken_configuration_keeps_serving, .fini = stop_default)
{
    const char *env[] = {"FLIGHTSHARK_CONFIG=/tmp/fs-reload-test.conf", NULL};
    FILE *f = fopen("/tmp/fs-reload-test.conf", "w");
    fprintf(f, "LOG_LEVEL=info\n");
    fclose(f);
    cr_assert_eq(fs_test_server_start(&srv, 1, env), 0);
    pid_t before[4], after[4];
    cr_assert_eq(fs_test_server_workers(&srv, before, 4), 1);
    f = fopen("/tmp/fs-reload-test.conf", "w");
    fprintf(f, "LOG_LEVEL=chatty\n");
    fclose(f);
    kill(srv.pid, SIGHUP);
    usleep(500000);
    remove("/tmp/fs-reload-test.conf");
    cr_assert_eq(get_status("/health/live", NULL), 200);
    cr_assert_eq(fs_test_server_workers(&srv, after, 4), 1);
    cr_assert_eq(after[0], before[0], "an invalid configuration must not replace the workers");
}
