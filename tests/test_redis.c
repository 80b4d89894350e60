/* Redis client against real servers: the shared test instance (REDIS_URL) for normal
 * behaviour, private redis-server processes for timeouts, outages and AUTH/SELECT. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/redis.h"
#include "tests/support/harness.h"

typedef struct {
    int calls;
    bool had_reply;
    int type;
    long long integer;
    char str[256];
    char error[256];
    double at_ms;
} result_t;

static struct event_base *base;
static struct event *tick;

static void on_tick(evutil_socket_t fd, short what, void *arg) {}

static void setup(void)
{
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
}

static void teardown(void)
{
    event_free(tick);
    event_base_free(base);
}

static void on_result(redisReply *reply, const char *error, void *arg)
{
    result_t *r = arg;
    r->calls++;
    r->at_ms = fs_test_now_ms();
    r->had_reply = reply != NULL;
    if (reply) {
        r->type = reply->type;
        r->integer = reply->integer;
        if (reply->str) {
            size_t n = reply->len < sizeof r->str - 1 ? reply->len : sizeof r->str - 1;
            memcpy(r->str, reply->str, n);
            r->str[n] = '\0';
        }
    }
    if (error)
        snprintf(r->error, sizeof r->error, "%s", error);
}

static bool spin(const int *count, int want, int timeout_ms)
{
    double end = fs_test_now_ms() + timeout_ms;
    while (*count < want && fs_test_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return *count >= want;
}

static void spin_ms(int ms)
{
    double end = fs_test_now_ms() + ms;
    while (fs_test_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

static bool wait_connected(fs_redis_t *r, bool want, int timeout_ms)
{
    double end = fs_test_now_ms() + timeout_ms;
    while (fs_redis_connected(r) != want && fs_test_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return fs_redis_connected(r) == want;
}

static fs_redis_t *client_for(const char *url, int timeout_ms, int heartbeat_ms)
{
    fs_redis_opts_t o = {.url = url, .timeout_ms = timeout_ms, .heartbeat_ms = heartbeat_ms};
    fs_redis_t *r = fs_redis_new(base, &o);
    cr_assert_not_null(r, "cannot create client for %s", url);
    return r;
}

#define RUN(r, ...)                                                                                \
    ({                                                                                             \
        result_t res_ = {0};                                                                       \
        fs_redis_command((r), on_result, &res_, __VA_ARGS__);                                     \
        cr_assert(spin(&res_.calls, 1, 10000), "no answer");                                      \
        res_;                                                                                      \
    })

TestSuite(redis, .init = setup, .fini = teardown, .timeout = 60);

Test(redis, set_get_and_commands_wait_for_first_connect)
{
    fs_redis_t *r = client_for(fs_test_env("REDIS_URL"), 1000, 0);
    char key[64];
    snprintf(key, sizeof key, "fs-test:%d:k", getpid());
    /* issued before the connection is up: queued behind the handshake */
    result_t set = RUN(r, "SET %s %b EX 60", key, "v\0x", (size_t)3);
    cr_assert(set.had_reply, "%s", set.error);
    cr_assert_str_eq(set.str, "OK");
    result_t get = RUN(r, "GET %s", key);
    cr_assert_eq(get.type, REDIS_REPLY_STRING);
    cr_assert_eq(memcmp(get.str, "v\0x", 3), 0);
    const char *argv[] = {"DEL", key};
    result_t del = {0};
    fs_redis_commandargv(r, on_result, &del, 2, argv, NULL);
    cr_assert(spin(&del.calls, 1, 2000));
    cr_assert_eq(del.integer, 1);
    result_t missing = RUN(r, "GET %s", key);
    cr_assert_eq(missing.type, REDIS_REPLY_NIL);
    cr_assert(fs_redis_connected(r));
    fs_redis_stats_t st;
    fs_redis_get_stats(r, &st);
    cr_assert(st.connected);
    cr_assert_eq(st.commands, 4);
    cr_assert_eq(st.errors, 0);
    cr_assert_eq(st.pending, 0);
    fs_redis_free(r);
}

Test(redis, error_reply_carries_reply_and_text)
{
    fs_redis_t *r = client_for(fs_test_env("REDIS_URL"), 1000, 0);
    result_t bad = RUN(r, "NOSUCHCOMMAND x");
    cr_assert(bad.had_reply);
    cr_assert_eq(bad.type, REDIS_REPLY_ERROR);
    cr_assert(strstr(bad.error, "unknown command"), "%s", bad.error);
    char key[64];
    snprintf(key, sizeof key, "fs-test:%d:s", getpid());
    RUN(r, "SET %s notanumber EX 60", key);
    result_t incr = RUN(r, "INCR %s", key);
    cr_assert_eq(incr.type, REDIS_REPLY_ERROR);
    cr_assert(strstr(incr.error, "not an integer"), "%s", incr.error);
    result_t ok = RUN(r, "PING");
    cr_assert_str_eq(ok.str, "PONG");
    fs_redis_free(r);
}

Test(redis, null_callback_is_safe)
{
    fs_redis_t *r = client_for(fs_test_env("REDIS_URL"), 1000, 0);
    char key[64];
    snprintf(key, sizeof key, "fs-test:%d:n", getpid());
    fs_redis_command(r, NULL, NULL, "SET %s fire-and-forget EX 60", key);
    fs_redis_command(r, NULL, NULL, "NOSUCHCOMMAND");
    result_t get = RUN(r, "GET %s", key);
    cr_assert_str_eq(get.str, "fire-and-forget");
    fs_redis_free(r);
}

Test(redis, free_runs_pending_callbacks)
{
    fs_redis_t *r = client_for(fs_test_env("REDIS_URL"), 1000, 0);
    cr_assert(wait_connected(r, true, 3000));
    result_t a = {0}, b = {0};
    fs_redis_command(r, on_result, &a, "PING");
    fs_redis_command(r, on_result, &b, "PING");
    fs_redis_free(r);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 1);
    cr_assert_not(a.had_reply);
    cr_assert(a.error[0]);
}

static fs_redis_t *self_freeing;

static void on_free_self(redisReply *reply, const char *error, void *arg)
{
    on_result(reply, error, arg);
    fs_redis_free(self_freeing); /* inside a hiredis callback: deferred */
}

Test(redis, free_from_inside_a_callback_is_deferred)
{
    self_freeing = client_for(fs_test_env("REDIS_URL"), 1000, 0);
    result_t a = {0}, b = {0};
    fs_redis_command(self_freeing, on_free_self, &a, "PING");
    fs_redis_command(self_freeing, on_result, &b, "PING");
    cr_assert(spin(&b.calls, 1, 3000));
    cr_assert_eq(a.calls, 1);
    cr_assert_str_eq(a.str, "PONG");
    spin_ms(50);
    cr_assert_eq(b.calls, 1);
}

Test(redis, unreachable_server_fails_fast_and_once)
{
    int port = fs_test_free_port();
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    fs_redis_t *r = client_for(url, 1000, 0);
    result_t first = {0};
    double t0 = fs_test_now_ms();
    fs_redis_command(r, on_result, &first, "PING");
    cr_assert_eq(first.calls, 0, "never synchronous");
    cr_assert(spin(&first.calls, 1, 2000));
    cr_assert_not(first.had_reply);
    cr_assert(first.error[0]);
    cr_assert_lt(first.at_ms - t0, 500);
    spin_ms(300);
    result_t later = {0};
    t0 = fs_test_now_ms();
    fs_redis_command(r, on_result, &later, "PING");
    cr_assert_eq(later.calls, 0, "never synchronous");
    cr_assert(spin(&later.calls, 1, 1000));
    cr_assert_not(later.had_reply);
    cr_assert_lt(later.at_ms - t0, 300);
    spin_ms(100);
    cr_assert_eq(first.calls + later.calls, 2);
    fs_redis_free(r);
}

Test(redis, bad_urls_give_a_client_that_fails_with_the_reason)
{
    const char *urls[] = {"http://x", "rediss://127.0.0.1", "redis://no-such-host.invalid:6379",
                          "redis://127.0.0.1/notadb", "unix://relative/path", ""};
    const char *reasons[] = {"must start with", "rediss", "no-such-host.invalid", "notadb", "absolute", "empty"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        fs_redis_opts_t o = {.url = urls[i]};
        fs_redis_t *r = fs_redis_new(base, &o);
        cr_assert_not_null(r);
        result_t res = {0};
        fs_redis_command(r, on_result, &res, "PING");
        cr_assert_eq(res.calls, 0);
        cr_assert(spin(&res.calls, 1, 500));
        cr_assert_not(res.had_reply);
        cr_assert(strstr(res.error, reasons[i]), "%s: %s", urls[i], res.error);
        cr_assert_not(fs_redis_connected(r));
        fs_redis_free(r);
    }
}

/*--- private redis-server instances ----------------------------------------------------*/

static char priv_dir[64];
static char priv_url[128];

static pid_t priv_pid(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/redis/redis.pid", priv_dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    int pid = 0;
    cr_assert_eq(fscanf(f, "%d", &pid), 1);
    fclose(f);
    return pid;
}

static void priv_start(void)
{
    setup();
    snprintf(priv_dir, sizeof priv_dir, "/tmp/fs-test-redis-XXXXXX");
    cr_assert_not_null(mkdtemp(priv_dir));
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh redis-start %s", FS_SOURCE_DIR, priv_dir), 0);
    snprintf(priv_url, sizeof priv_url, "unix://%s/redis/redis.sock", priv_dir);
}

static void priv_stop(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/redis/redis.pid", priv_dir);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f && fscanf(f, "%d", &pid) == 1 && pid > 0)
        kill(pid, SIGCONT);
    if (f)
        fclose(f);
    fs_test_sh("%s/scripts/services.sh redis-stop %s; rm -rf %s", FS_SOURCE_DIR, priv_dir, priv_dir);
    teardown();
}

Test(redis_private, command_timeout_then_reconnect, .init = priv_start, .fini = priv_stop)
{
    fs_redis_t *r = client_for(priv_url, 200, 0);
    cr_assert(wait_connected(r, true, 3000));
    pid_t pid = priv_pid();
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    result_t a = {0}, b = {0};
    double t0 = fs_test_now_ms();
    fs_redis_command(r, on_result, &a, "PING");
    fs_redis_command(r, on_result, &b, "PING");
    cr_assert(spin(&a.calls, 1, 2000));
    cr_assert(spin(&b.calls, 1, 100), "every pending command fails with the timeout");
    cr_assert_not(a.had_reply);
    cr_assert(strstr(a.error, "timed out"), "%s", a.error);
    cr_assert_geq(a.at_ms - t0, 150);
    cr_assert_lt(a.at_ms - t0, 1500);
    cr_assert_not(fs_redis_connected(r));

    /* while the server is still stopped, commands fail at once */
    result_t c = {0};
    t0 = fs_test_now_ms();
    fs_redis_command(r, on_result, &c, "PING");
    cr_assert(spin(&c.calls, 1, 1000));
    cr_assert_not(c.had_reply);
    cr_assert_lt(c.at_ms - t0, 300);

    cr_assert_eq(kill(pid, SIGCONT), 0);
    cr_assert(wait_connected(r, true, 8000), "did not reconnect");
    result_t ok = RUN(r, "PING");
    cr_assert_str_eq(ok.str, "PONG");
    spin_ms(50);
    cr_assert_eq(a.calls + b.calls + c.calls, 3, "each callback exactly once");
    fs_redis_stats_t st;
    fs_redis_get_stats(r, &st);
    cr_assert_geq(st.timeouts, 1);
    cr_assert_geq(st.reconnects, 1);
    cr_assert_eq(st.pending, 0);
    fs_redis_free(r);
}

Test(redis_private, heartbeat_notices_a_silent_server, .init = priv_start, .fini = priv_stop)
{
    fs_redis_t *r = client_for(priv_url, 200, 100);
    cr_assert(wait_connected(r, true, 3000));
    pid_t pid = priv_pid();
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    double t0 = fs_test_now_ms();
    cr_assert(wait_connected(r, false, 2000), "heartbeat did not notice");
    cr_assert_lt(fs_test_now_ms() - t0, 1500);
    cr_assert_eq(kill(pid, SIGCONT), 0);
    cr_assert(wait_connected(r, true, 8000));
    fs_redis_free(r);
}

Test(redis_private, stopped_server_fails_fast_then_reconnects, .init = priv_start, .fini = priv_stop,
     .timeout = 60)
{
    fs_redis_t *r = client_for(priv_url, 1000, 0);
    result_t ok = RUN(r, "SET k v");
    cr_assert_str_eq(ok.str, "OK");
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh redis-stop %s", FS_SOURCE_DIR, priv_dir), 0);
    cr_assert(wait_connected(r, false, 2000));
    for (int i = 0; i < 3; i++) {
        double t0 = fs_test_now_ms();
        result_t down = RUN(r, "GET k");
        cr_assert_not(down.had_reply);
        cr_assert(strstr(down.error, "unavailable"), "%s", down.error);
        cr_assert_lt(down.at_ms - t0, 300);
        spin_ms(200);
    }
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh redis-start %s", FS_SOURCE_DIR, priv_dir), 0);
    cr_assert(wait_connected(r, true, 8000), "did not reconnect");
    result_t again = RUN(r, "PING");
    cr_assert_str_eq(again.str, "PONG");
    fs_redis_stats_t st;
    fs_redis_get_stats(r, &st);
    cr_assert_geq(st.reconnects, 1);
    fs_redis_free(r);
}

static int tcp_port;

static void tcp_start(void)
{
    setup();
    snprintf(priv_dir, sizeof priv_dir, "/tmp/fs-test-redis-XXXXXX");
    cr_assert_not_null(mkdtemp(priv_dir));
    tcp_port = fs_test_free_port();
    cr_assert_eq(fs_test_sh("mkdir -p %s/redis && redis-server --port %d --bind 127.0.0.1 --requirepass 's3cret!' "
                            "--save '' --appendonly no --daemonize yes --pidfile %s/redis/redis.pid "
                            "--logfile %s/redis/redis.log --dir %s/redis",
                            priv_dir, tcp_port, priv_dir, priv_dir, priv_dir),
                 0);
    for (int i = 0; i < 100 && fs_test_sh("redis-cli -p %d -a 's3cret!' --no-auth-warning PING >/dev/null 2>&1",
                                           tcp_port) != 0;
         i++)
        usleep(50000);
}

Test(redis_private, auth_select_and_name_resolution, .init = tcp_start, .fini = priv_stop)
{
    char url[128];
    snprintf(url, sizeof url, "redis://:s3cret%%21@localhost:%d/3", tcp_port);
    fs_redis_t *r = client_for(url, 1000, 0);
    result_t info = RUN(r, "CLIENT INFO");
    cr_assert(info.had_reply, "%s", info.error);
    cr_assert(strstr(info.str, " db=3 "), "%s", info.str);
    fs_redis_free(r);

    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d/0", tcp_port);
    r = client_for(url, 1000, 0);
    result_t denied = RUN(r, "PING");
    /* NOAUTH error reply, or NULL when the refused handshake already dropped the context */
    cr_assert(denied.error[0], "AUTH failure surfaces as an error");
    cr_assert_str_neq(denied.str, "PONG");
    spin_ms(100);
    cr_assert_not(fs_redis_connected(r));
    fs_redis_free(r);
}
