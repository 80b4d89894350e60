/* The internal RPC over real TCP against the real server (issue #7, docs/RPC.md): methods,
 * pipelining with answers out of order, deadlines, malformed frames (after each of which the
 * worker must still answer and must not have been restarted), the shared-secret token, drain,
 * metrics and the `flightshark rpc` command. */
#include "actors/search/search.h"
#include "api/rpc_methods.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/peer.h"
#include "runtime/rpc.h"
#include "runtime/rpc_client.h"
#include "runtime/worker.h"
#include "schemas/prices.pb-c.h"
#include "schemas/rpc.pb-c.h"
#include "schemas/search.pb-c.h"
#include "tests/support/harness.h"
#include "tests/support/refdata_fixture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET  "test-secret-key-0123456789abcdef"
#define TOKEN   "rpc-shared-secret-for-tests"
#define WORKERS 2

static const char *const server_env[] = {"SECRET_KEY=" SECRET, NULL};
static const char *const token_env[] = {"SECRET_KEY=" SECRET, "RPC_TOKEN=" TOKEN, NULL};
static fs_test_server_t srv;
static pid_t workers_at_start[WORKERS];

/*--- helpers --------------------------------------------------------------------------------*/

static int ping(fs_rpc_client_t *c);
static int call(fs_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply, char *error, size_t size);

/* GetAirport answers UNAVAILABLE until the worker's first load has finished, and the fixture
 * waits for one worker only: wait until fresh connections (spread over the workers by the
 * kernel) find the data 16 times in a row. */
static void wait_all_workers_loaded(const char *token)
{
    int streak = 0;
    for (double deadline = fs_test_now_ms() + 20000; streak < 16 && fs_test_now_ms() < deadline;) {
        char *err = NULL;
        fs_rpc_client_t *c = fs_rpc_client_connect("127.0.0.1", srv.rpc_port, 2000, &err);
        cr_assert_not_null(c, "connect: %s", err);
        fs_rpc_client_set_token(c, token);
        Fs__Rpc__GetAirportRequest req = FS__RPC__GET_AIRPORT_REQUEST__INIT;
        req.code = "DUB";
        int st = call(c, "GetAirport", &req.base, NULL, NULL, NULL, 0);
        fs_rpc_client_close(c);
        streak = st == FS_RPC_OK ? streak + 1 : 0;
        if (st != FS_RPC_OK)
            usleep(50000);
    }
    cr_assert_eq(streak, 16, "the workers never all loaded the reference data; see %s", srv.log_path);
}

static void start(const char *const *env, const char *token)
{
    fs_test_start_refdata_server(&srv, WORKERS, env);
    cr_assert_eq(fs_test_server_workers(&srv, workers_at_start, WORKERS), WORKERS);
    wait_all_workers_loaded(token);
}

static void setup(void)
{
    start(server_env, NULL);
}

static void teardown(void)
{
    if (srv.pid > 0)
        fs_test_server_stop(&srv);
}

static fs_rpc_client_t *connect_rpc(void)
{
    char *err = NULL;
    fs_rpc_client_t *c = fs_rpc_client_connect("127.0.0.1", srv.rpc_port, 2000, &err);
    cr_assert_not_null(c, "connect: %s", err);
    return c;
}

static Fs__Rpc__RpcResponse *recv_ok(fs_rpc_client_t *c)
{
    Fs__Rpc__RpcResponse *r = NULL;
    char *err = NULL;
    cr_assert_eq(fs_rpc_client_recv(c, 5000, &r, &err), 0, "recv: %s", err);
    return r;
}

/* The status of a call; the error text, if any, in `error` (may be NULL). */
static int call(fs_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply, char *error, size_t size)
{
    ProtobufCMessage *r = NULL;
    char *err = NULL;
    int st = fs_rpc_client_call(c, method, req, desc, 5000, &r, &err);
    if (error)
        snprintf(error, size, "%s", err ? err : "");
    free(err);
    if (reply)
        *reply = r;
    else if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    return st;
}

static int ping(fs_rpc_client_t *c)
{
    Fs__Rpc__Ping p = FS__RPC__PING__INIT;
    return call(c, "Ping", &p.base, &fs__rpc__pong__descriptor, NULL, NULL, 0);
}

/* The worker answers on a fresh connection, and none was restarted since the test began. */
static void assert_workers_alive(void)
{
    fs_rpc_client_t *c = connect_rpc();
    cr_assert_eq(ping(c), FS_RPC_OK, "Ping after the bad input failed");
    fs_rpc_client_close(c);
    pid_t now[WORKERS + 1];
    int n = fs_test_server_workers(&srv, now, WORKERS + 1);
    cr_assert_eq(n, WORKERS, "%d workers", n);
    for (int i = 0; i < WORKERS; i++)
        cr_assert(now[i] == workers_at_start[0] || now[i] == workers_at_start[1], "worker %d was replaced",
                  (int)now[i]);
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", srv.url);
    fs_test_resp_t m;
    cr_assert_eq(fs_test_http("GET", url, NULL, NULL, &m), 0);
    cr_assert_not_null(strstr(m.body, "flightshark_worker_restarts_total{worker=\"0\"} 0.0\n"),
                       "restart counted");
    cr_assert_not_null(strstr(m.body, "flightshark_worker_restarts_total{worker=\"1\"} 0.0\n"),
                       "restart counted");
    fs_test_resp_free(&m);
}

static void send_bytes(fs_rpc_client_t *c, const void *data, size_t len)
{
    char *err = NULL;
    cr_assert_eq(fs_rpc_client_send_raw(c, data, len, &err), 0, "send: %s", err);
}

static void send_frame(fs_rpc_client_t *c, const void *body, uint32_t len)
{
    uint32_t be = htonl(len);
    send_bytes(c, &be, 4);
    if (len)
        send_bytes(c, body, len);
}

/* The connection is closed by the server: the next read sees EOF (or a reset). */
static void assert_closed(fs_rpc_client_t *c)
{
    Fs__Rpc__RpcResponse *r = NULL;
    char *err = NULL;
    cr_assert_eq(fs_rpc_client_recv(c, 5000, &r, &err), -1, "a response came instead of a close");
    cr_assert(strstr(err, "closed") || strstr(err, "reset"), "not closed: %s", err);
    free(err);
}

static void assert_status(Fs__Rpc__RpcResponse *r, uint64_t id, int status)
{
    cr_assert_eq(r->id, id);
    cr_assert_eq((int)r->status, status, "status %s (%s), expected %s", fs_rpc_status_name((int)r->status),
                 r->error ? r->error : "", fs_rpc_status_name(status));
    fs__rpc__rpc_response__free_unpacked(r, NULL);
}

TestSuite(rpc, .init = setup, .fini = teardown, .timeout = 120);

/*--- methods --------------------------------------------------------------------------------*/

Test(rpc, ping_echoes_its_data)
{
    fs_rpc_client_t *c = connect_rpc();
    Fs__Rpc__Ping p = FS__RPC__PING__INIT;
    p.has_data = true;
    p.data = (ProtobufCBinaryData){5, (uint8_t *)"hello"};
    ProtobufCMessage *reply;
    cr_assert_eq(call(c, "Ping", &p.base, &fs__rpc__pong__descriptor, &reply, NULL, 0), FS_RPC_OK);
    Fs__Rpc__Pong *pong = (Fs__Rpc__Pong *)reply;
    cr_assert(pong->has_data && pong->data.len == 5 && memcmp(pong->data.data, "hello", 5) == 0);
    cr_assert(pong->has_worker && pong->worker < WORKERS);
    cr_assert_gt(pong->server_time_ms, 1700000000000LL);
    protobuf_c_message_free_unpacked(reply, NULL);
    fs_rpc_client_close(c);
}

Test(rpc, get_airport_found_and_not_found)
{
    fs_rpc_client_t *c = connect_rpc();
    Fs__Rpc__GetAirportRequest req = FS__RPC__GET_AIRPORT_REQUEST__INIT;
    req.code = "dub";
    ProtobufCMessage *reply;
    cr_assert_eq(call(c, "GetAirport", &req.base, &fs__rpc__airport__descriptor, &reply, NULL, 0), FS_RPC_OK);
    Fs__Rpc__Airport *a = (Fs__Rpc__Airport *)reply;
    cr_assert_str_eq(a->iata_code, "DUB");
    cr_assert_str_eq(a->city, "Dublin");
    cr_assert_str_eq(a->country_code, "IE");
    cr_assert(a->has_latitude && a->latitude > 53 && a->latitude < 54);
    cr_assert(a->is_major && a->is_active);
    protobuf_c_message_free_unpacked(reply, NULL);

    char error[256];
    req.code = "ZZZ";
    cr_assert_eq(call(c, "GetAirport", &req.base, &fs__rpc__airport__descriptor, NULL, error, sizeof error),
                 FS_RPC_NOT_FOUND);
    cr_assert(strstr(error, "ZZZ"), "%s", error);
    req.code = "ZZQ"; /* inactive: not in the index */
    cr_assert_eq(call(c, "GetAirport", &req.base, &fs__rpc__airport__descriptor, NULL, NULL, 0),
                 FS_RPC_NOT_FOUND);
    req.code = NULL;
    cr_assert_eq(call(c, "GetAirport", &req.base, &fs__rpc__airport__descriptor, NULL, NULL, 0),
                 FS_RPC_INVALID_ARGUMENT);
    fs_rpc_client_close(c);
}

Test(rpc, method_payload_checks)
{
    fs_rpc_client_t *c = connect_rpc();
    char error[256];
    /* an IngestPrices with no rows is refused before any actor is asked */
    Fs__Prices__PriceBatch empty = FS__PRICES__PRICE_BATCH__INIT;
    cr_assert_eq(call(c, "IngestPrices", &empty.base, NULL, NULL, error, sizeof error),
                 FS_RPC_INVALID_ARGUMENT);
    cr_assert(strstr(error, "empty"), "%s", error);
    /* a Ping whose delay is over the limit */
    Fs__Rpc__Ping p = FS__RPC__PING__INIT;
    p.has_delay_ms = true;
    p.delay_ms = 60000;
    cr_assert_eq(call(c, "Ping", &p.base, NULL, NULL, NULL, 0), FS_RPC_INVALID_ARGUMENT);
    /* a payload that is not the method's message (a string where Ping has bytes is fine; a
     * truncated varint is not) */
    static const uint8_t bad[] = {0x10, 0xff};
    Fs__Rpc__RpcRequest req = FS__RPC__RPC_REQUEST__INIT;
    req.method = "SearchFlights";
    req.has_id = true;
    req.id = 9;
    req.has_payload = true;
    req.payload = (ProtobufCBinaryData){sizeof bad, (uint8_t *)bad};
    uint8_t buf[128];
    size_t n = fs__rpc__rpc_request__pack(&req, buf);
    send_frame(c, buf, (uint32_t)n);
    Fs__Rpc__RpcResponse *r = recv_ok(c);
    cr_assert(r->error && strstr(r->error, "fs.search.SearchRequest"), "%s", r->error);
    assert_status(r, 9, FS_RPC_INVALID_ARGUMENT);
    fs_rpc_client_close(c);
}

/*--- pipelining and deadlines ---------------------------------------------------------------*/

Test(rpc, pipelined_requests_are_answered_out_of_order)
{
    fs_rpc_client_t *c = connect_rpc();
    char *err = NULL;
    Fs__Rpc__Ping slow = FS__RPC__PING__INIT, fast = FS__RPC__PING__INIT;
    slow.has_delay_ms = true;
    slow.delay_ms = 300;
    Fs__Rpc__GetAirportRequest dub = FS__RPC__GET_AIRPORT_REQUEST__INIT;
    dub.code = "DUB";
    cr_assert_eq(fs_rpc_client_send(c, "Ping", 1, &slow.base, 0, &err), 0);
    cr_assert_eq(fs_rpc_client_send(c, "Ping", 2, &fast.base, 0, &err), 0);
    cr_assert_eq(fs_rpc_client_send(c, "GetAirport", 3, &dub.base, 0, &err), 0);
    cr_assert_eq(fs_rpc_client_send(c, "NoSuchMethod", 4, NULL, 0, &err), 0);
    double t0 = fs_test_now_ms();
    uint64_t order[4];
    for (int i = 0; i < 4; i++) {
        Fs__Rpc__RpcResponse *r = recv_ok(c);
        order[i] = r->id;
        cr_assert_eq((int)r->status, r->id == 4 ? FS_RPC_UNIMPLEMENTED : FS_RPC_OK, "id %lu: %s",
                     (unsigned long)r->id, r->error ? r->error : "");
        fs__rpc__rpc_response__free_unpacked(r, NULL);
    }
    cr_assert_eq(order[0], 2);
    cr_assert_eq(order[1], 3);
    cr_assert_eq(order[2], 4);
    cr_assert_eq(order[3], 1, "the delayed Ping should come last");
    cr_assert_geq(fs_test_now_ms() - t0, 250);
    fs_rpc_client_close(c);
}

Test(rpc, deadline_exceeded_and_the_connection_stays_usable)
{
    fs_rpc_client_t *c = connect_rpc();
    char *err = NULL;
    Fs__Rpc__Ping slow = FS__RPC__PING__INIT;
    slow.has_delay_ms = true;
    slow.delay_ms = 1500;
    double t0 = fs_test_now_ms();
    cr_assert_eq(fs_rpc_client_send(c, "Ping", 7, &slow.base, 100, &err), 0);
    assert_status(recv_ok(c), 7, FS_RPC_DEADLINE_EXCEEDED);
    double took = fs_test_now_ms() - t0;
    cr_assert(took >= 90 && took < 1000, "answered after %.0f ms", took);
    cr_assert_eq(ping(c), FS_RPC_OK);
    fs_rpc_client_close(c);
}

/*--- malformed frames -----------------------------------------------------------------------*/

Test(rpc, zero_length_frame_is_an_empty_request)
{
    fs_rpc_client_t *c = connect_rpc();
    send_frame(c, NULL, 0);
    Fs__Rpc__RpcResponse *r = recv_ok(c);
    cr_assert(r->error && strstr(r->error, "method"), "%s", r->error);
    assert_status(r, 0, FS_RPC_INVALID_ARGUMENT);
    cr_assert_eq(ping(c), FS_RPC_OK, "the connection should stay usable");
    fs_rpc_client_close(c);
    assert_workers_alive();
}

Test(rpc, oversized_length_is_refused_and_closes)
{
    fs_rpc_client_t *c = connect_rpc();
    uint32_t be = htonl(FS_RPC_MAX_FRAME + 1);
    send_bytes(c, &be, 4);
    send_bytes(c, "abcdefgh", 8);
    Fs__Rpc__RpcResponse *r = recv_ok(c);
    cr_assert(r->error && strstr(r->error, "limit"), "%s", r->error);
    assert_status(r, 0, FS_RPC_RESOURCE_EXHAUSTED);
    assert_closed(c);
    fs_rpc_client_close(c);
    assert_workers_alive();
}

Test(rpc, garbage_that_does_not_unpack)
{
    fs_rpc_client_t *c = connect_rpc();
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    send_frame(c, garbage, sizeof garbage);
    Fs__Rpc__RpcResponse *r = recv_ok(c);
    cr_assert(r->error && strstr(r->error, "unpack"), "%s", r->error);
    assert_status(r, 0, FS_RPC_INVALID_ARGUMENT);
    /* a length-delimited field that claims more bytes than the frame has */
    static const uint8_t short_string[] = {0x0a, 0x7f, 'P', 'i', 'n', 'g'};
    send_frame(c, short_string, sizeof short_string);
    assert_status(recv_ok(c), 0, FS_RPC_INVALID_ARGUMENT);
    cr_assert_eq(ping(c), FS_RPC_OK, "the frame length kept the stream in sync");
    fs_rpc_client_close(c);
    assert_workers_alive();
}

Test(rpc, unknown_method_is_unimplemented)
{
    fs_rpc_client_t *c = connect_rpc();
    char error[256];
    cr_assert_eq(call(c, "DropAllTables", NULL, NULL, NULL, error, sizeof error), FS_RPC_UNIMPLEMENTED);
    cr_assert(strstr(error, "DropAllTables"), "%s", error);
    cr_assert_eq(ping(c), FS_RPC_OK);
    fs_rpc_client_close(c);
    assert_workers_alive();
}

Test(rpc, truncated_frame_then_close)
{
    fs_rpc_client_t *c = connect_rpc();
    uint32_t be = htonl(100);
    send_bytes(c, &be, 4);
    send_bytes(c, "0123456789", 10);
    shutdown(fs_rpc_client_fd(c), SHUT_WR);
    assert_closed(c); /* nothing to answer: the server just closes */
    fs_rpc_client_close(c);
    /* half a length prefix, then a hard close */
    c = connect_rpc();
    send_bytes(c, "\x00\x00", 2);
    fs_rpc_client_close(c);
    assert_workers_alive();
}

Test(rpc, http_on_the_rpc_port_is_refused)
{
    fs_rpc_client_t *c = connect_rpc();
    static const char req[] = "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    send_bytes(c, req, sizeof req - 1);
    assert_status(recv_ok(c), 0, FS_RPC_RESOURCE_EXHAUSTED); /* "GET " read as a length */
    assert_closed(c);
    fs_rpc_client_close(c);
    assert_workers_alive();
}

Test(rpc, requests_counted_in_metrics)
{
    fs_rpc_client_t *c = connect_rpc();
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ping(c), FS_RPC_OK);
    cr_assert_eq(call(c, "Nope", NULL, NULL, NULL, NULL, 0), FS_RPC_UNIMPLEMENTED);
    fs_rpc_client_close(c);
    char url[128];
    snprintf(url, sizeof url, "%s/metrics", srv.url);
    fs_test_resp_t m;
    cr_assert_eq(fs_test_http("GET", url, NULL, NULL, &m), 0);
    /* one connection, one worker: its series carry all four requests */
    cr_assert_not_null(strstr(m.body, ",method=\"Ping\",status=\"OK\"} 3.0\n"), "%s", m.body);
    cr_assert_not_null(strstr(m.body, ",method=\"unknown\",status=\"UNIMPLEMENTED\"} 1.0\n"));
    cr_assert_not_null(strstr(m.body, "flightshark_rpc_request_duration_seconds_count{worker=\""));
    fs_test_resp_free(&m);
}

/*--- drain ----------------------------------------------------------------------------------*/

Test(rpc, drain_finishes_calls_in_flight)
{
    fs_rpc_client_t *c = connect_rpc();
    char *err = NULL;
    Fs__Rpc__Ping slow = FS__RPC__PING__INIT;
    slow.has_delay_ms = true;
    slow.delay_ms = 700;
    cr_assert_eq(fs_rpc_client_send(c, "Ping", 5, &slow.base, 5000, &err), 0);
    usleep(100000);
    kill(srv.pid, SIGTERM);
    assert_status(recv_ok(c), 5, FS_RPC_OK);
    assert_closed(c); /* nothing else in flight: the draining worker closes */
    fs_rpc_client_close(c);
    int st = fs_test_server_stop(&srv);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
}

/*--- command line ---------------------------------------------------------------------------*/

Test(rpc, cli_ping_airport_and_errors)
{
    const char *bin = fs_test_env("FS_BINARY");
    cr_assert_eq(fs_test_sh("%s rpc ping --port %d >/dev/null", bin, srv.rpc_port), 0);
    char out[256];
    snprintf(out, sizeof out, "/tmp/fs-test-rpc-cli-%d.json", (int)getpid());
    cr_assert_eq(fs_test_sh("%s rpc airport dub --port %d >%s", bin, srv.rpc_port, out), 0);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    unlink(out);
    cr_assert_not_null(j, "not JSON: %s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "iata_code")), "DUB");
    json_decref(j);
    cr_assert_eq(fs_test_sh("%s rpc airport ZZZ --port %d 2>/dev/null", bin, srv.rpc_port), 1);
    int free_port = fs_test_free_port();
    cr_assert_eq(fs_test_sh("%s rpc ping --port %d 2>/dev/null", bin, free_port), 3, "a closed port");
    cr_assert_eq(fs_test_sh("%s rpc frobnicate --port %d 2>/dev/null", bin, srv.rpc_port), 2);
    cr_assert_eq(fs_test_sh("%s rpc search --origin DUB --port %d 2>/dev/null", bin, srv.rpc_port), 2);
    cr_assert_eq(fs_test_sh("%s rpc --help | grep -q ingest", bin), 0);
}

Test(rpc, cli_ingest_refuses_a_bad_file_before_sending)
{
    const char *bin = fs_test_env("FS_BINARY");
    char path[128];
    snprintf(path, sizeof path, "/tmp/fs-test-rpc-%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    fprintf(f, "time,origin,destination,airline,departure_date,cabin,price,currency,source\n"
               "2026-05-01T10:00:00Z,DUB,BCN,FR,2026-06-01,economy,49.99,EUR,test\n"
               "yesterday,DUB,BCN,FR,2026-06-01,economy,49.99,EUR,test\n");
    fclose(f);
    cr_assert_eq(fs_test_sh("%s rpc ingest %s --port %d 2>/dev/null", bin, path, srv.rpc_port), 2);
    unlink(path);
}

/*--- token ----------------------------------------------------------------------------------*/

static void setup_token(void)
{
    start(token_env, TOKEN);
}

TestSuite(rpc_token, .init = setup_token, .fini = teardown, .timeout = 120);

Test(rpc_token, missing_or_wrong_token_is_unauthenticated)
{
    fs_rpc_client_t *c = connect_rpc();
    char error[256];
    cr_assert_eq(call(c, "Ping", NULL, NULL, NULL, error, sizeof error), FS_RPC_UNAUTHENTICATED);
    cr_assert(strstr(error, "token"), "%s", error);
    /* even an unknown method is not revealed without the token */
    cr_assert_eq(call(c, "NoSuchMethod", NULL, NULL, NULL, NULL, 0), FS_RPC_UNAUTHENTICATED);
    fs_rpc_client_set_token(c, "rpc-shared-secret-for-testz");
    cr_assert_eq(call(c, "Ping", NULL, NULL, NULL, NULL, 0), FS_RPC_UNAUTHENTICATED);
    fs_rpc_client_set_token(c, "short");
    cr_assert_eq(call(c, "Ping", NULL, NULL, NULL, NULL, 0), FS_RPC_UNAUTHENTICATED);
    fs_rpc_client_set_token(c, TOKEN);
    cr_assert_eq(ping(c), FS_RPC_OK);
    fs_rpc_client_close(c);

    const char *bin = fs_test_env("FS_BINARY");
    cr_assert_eq(fs_test_sh("env -u RPC_TOKEN %s rpc ping --port %d 2>/dev/null", bin, srv.rpc_port), 1);
    cr_assert_eq(fs_test_sh("%s rpc ping --port %d --token %s >/dev/null", bin, srv.rpc_port, TOKEN), 0);
    cr_assert_eq(fs_test_sh("RPC_TOKEN=%s %s rpc ping --port %d >/dev/null", TOKEN, bin, srv.rpc_port), 0);
}

/*--- in-process: status mapping of the actor-backed methods, backpressure --------------------
 * The server, an actor system and stand-ins for the `search` and `price-ingest` actors in this
 * process, the loop on a thread of its own, the blocking client on the test's thread. */

static struct {
    struct event_base *base;
    fs_actor_system_t *actors;
    fs_peer_t *peer;
    int peer_other_end;
    fs_rpc_server_t *rpc;
    fs_worker_t worker;
    int stop_pipe[2];
    struct event *stop_ev;
    pthread_t thread;
    int port;
} L;

static void on_loop_stop(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(L.base);
}

static void *loop_main(void *arg)
{
    event_base_loop(L.base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* Stand-in for the search actor: the origin says how to answer. */
static int fake_search(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    Fs__Search__SearchRequest *req = fs_msg_body(msg, &fs__search__search_request__descriptor);
    cr_assert_not_null(req);
    cr_assert_eq(msg->type, FS_MSG_SEARCH_REQUEST);
    const char *o = req->origin ? req->origin : "";
    if (strcmp(o, "SLOW") == 0)
        return FS_OK; /* never answers: the asker's deadline does */
    if (strcmp(o, "FAIL") == 0)
        return FS_EFAIL;
    Fs__Search__SearchReply *r = fs_pb_new(&fs__search__search_reply__descriptor);
    r->has_status = true;
    r->status = strcmp(o, "BAD") == 0 ? 422 : strcmp(o, "DOWN") == 0 ? 503 : 200;
    if (r->status == 200) {
        r->has_body = true;
        r->body.data = (uint8_t *)fs_strdup("{\"flights\":[]}");
        r->body.len = strlen((char *)r->body.data);
    } else {
        r->detail = fs_strdup(r->status == 422 ? "origin: not an airport" : "providers unavailable");
    }
    fs_actor_reply(msg, FS_MSG_SEARCH_REPLY, &r->base);
    return FS_OK;
}

/* Stand-in for price-ingest: the first row's airline says how to answer. */
static int fake_ingest(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    Fs__Prices__PriceBatch *b = fs_msg_body(msg, &fs__prices__price_batch__descriptor);
    cr_assert_not_null(b);
    cr_assert(b->has_wait_commit && b->wait_commit, "IngestPrices must wait for the commit");
    const char *airline = b->n_observations ? b->observations[0]->airline : "";
    Fs__Prices__PriceBatchReply *r = fs_pb_new(&fs__prices__price_batch_reply__descriptor);
    r->has_status = true;
    if (strcmp(airline, "FULL") == 0) {
        r->status = FS_EFULL;
        r->error = fs_strdup("resource exhausted: the buffer is full");
    } else if (strcmp(airline, "FUL2") == 0) {
        r->status = 99; /* not a known code, but the text says what happened */
        r->error = fs_strdup("resource exhausted");
    } else if (strcmp(airline, "DOWN") == 0) {
        r->status = FS_RPC_UNAVAILABLE;
        r->error = fs_strdup("database down");
    } else {
        r->status = 0;
        r->has_accepted = true;
        r->accepted = (int32_t)b->n_observations;
    }
    fs_actor_reply(msg, FS_MSG_PRICE_BATCH_REPLY, &r->base);
    return FS_OK;
}

static int listen_loopback(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 64), 0);
    return fd;
}

static void local_start(const fs_rpc_opts_t *opts, bool with_actors, size_t search_mailbox)
{
    signal(SIGPIPE, SIG_IGN);
    fs_runtime_register_types();
    fs_api_rpc_register();
    L.base = event_base_new();
    L.actors = fs_actor_system_new(L.base, &(fs_actor_system_opts_t){.worker = 0});
    int fds[2];
    cr_assert_eq(fs_peer_socketpair(fds), 0);
    L.peer = fs_peer_new(L.actors, fds[1], NULL, NULL);
    L.peer_other_end = fds[0];
    L.worker = (fs_worker_t){.index = 0, .count = 1, .base = L.base, .actors = L.actors, .peer = L.peer};
    fs_worker = &L.worker;
    if (with_actors) {
        fs_actor_spawn(L.actors, &(fs_actor_spec_t){.name = FS_SEARCH_ACTOR,
                                                    .behaviour = fake_search,
                                                    .mailbox_capacity = search_mailbox,
                                                    .restart_limit = 100});
        fs_actor_spawn(L.actors, &(fs_actor_spec_t){.name = FS_PRICE_INGEST_ACTOR, .behaviour = fake_ingest});
    }
    L.rpc = fs_rpc_server_new_opts(L.base, listen_loopback(), opts);
    cr_assert_not_null(L.rpc);
    L.port = fs_rpc_server_port(L.rpc);
    cr_assert_eq(pipe(L.stop_pipe), 0);
    L.stop_ev = event_new(L.base, L.stop_pipe[0], EV_READ, on_loop_stop, NULL);
    event_add(L.stop_ev, NULL);
    pthread_create(&L.thread, NULL, loop_main, NULL);
}

static void local_stop(void)
{
    if (!L.base)
        return;
    ssize_t w = write(L.stop_pipe[1], "x", 1);
    (void)w;
    pthread_join(L.thread, NULL);
    fs_rpc_server_free(L.rpc);
    fs_peer_free(L.peer);
    fs_actor_system_free(L.actors);
    close(L.peer_other_end);
    event_free(L.stop_ev);
    event_base_free(L.base);
    close(L.stop_pipe[0]);
    close(L.stop_pipe[1]);
    fs_worker = NULL;
    memset(&L, 0, sizeof L);
}

static fs_rpc_client_t *local_connect(void)
{
    char *err = NULL;
    fs_rpc_client_t *c = fs_rpc_client_connect("127.0.0.1", L.port, 2000, &err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

static int search_status(fs_rpc_client_t *c, const char *origin, char *error, size_t size, int timeout_ms)
{
    Fs__Search__SearchRequest req = FS__SEARCH__SEARCH_REQUEST__INIT;
    req.origin = (char *)origin;
    ProtobufCMessage *reply = NULL;
    char *err = NULL;
    int st = fs_rpc_client_call(c, "SearchFlights", &req.base, &fs__search__search_reply__descriptor,
                                timeout_ms, &reply, &err);
    snprintf(error, size, "%s", err ? err : "");
    free(err);
    if (reply) {
        Fs__Search__SearchReply *r = (Fs__Search__SearchReply *)reply;
        cr_assert(r->has_body && strstr((char *)r->body.data, "flights"));
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    return st;
}

static int ingest_status(fs_rpc_client_t *c, const char *airline, int rows, char *error, size_t size)
{
    Fs__Prices__PriceObservation obs[8], *list[8];
    for (int i = 0; i < rows; i++) {
        fs__prices__price_observation__init(&obs[i]);
        obs[i].airline = (char *)airline;
        list[i] = &obs[i];
    }
    Fs__Prices__PriceBatch b = FS__PRICES__PRICE_BATCH__INIT;
    b.n_observations = (size_t)rows;
    b.observations = list;
    ProtobufCMessage *reply = NULL;
    char *err = NULL;
    int st = fs_rpc_client_call(c, "IngestPrices", &b.base, &fs__prices__price_batch_reply__descriptor, 2000,
                                &reply, &err);
    snprintf(error, size, "%s", err ? err : "");
    free(err);
    if (reply) {
        cr_assert_eq(((Fs__Prices__PriceBatchReply *)reply)->accepted, rows);
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    return st;
}

static void local_fini(void)
{
    local_stop();
}

TestSuite(rpc_local, .fini = local_fini, .timeout = 60);

Test(rpc_local, search_statuses_map_to_rpc_statuses)
{
    local_start(NULL, true, 0);
    fs_rpc_client_t *c = local_connect();
    char error[256];
    cr_assert_eq(search_status(c, "DUB", error, sizeof error, 2000), FS_RPC_OK, "%s", error);
    cr_assert_eq(search_status(c, "BAD", error, sizeof error, 2000), FS_RPC_INVALID_ARGUMENT);
    cr_assert_str_eq(error, "origin: not an airport");
    cr_assert_eq(search_status(c, "DOWN", error, sizeof error, 2000), FS_RPC_UNAVAILABLE);
    cr_assert_eq(search_status(c, "FAIL", error, sizeof error, 2000), FS_RPC_INTERNAL);
    double t0 = fs_test_now_ms();
    cr_assert_eq(search_status(c, "SLOW", error, sizeof error, 200), FS_RPC_DEADLINE_EXCEEDED, "%s", error);
    cr_assert_lt(fs_test_now_ms() - t0, 1000);
    fs_rpc_client_close(c);
}

Test(rpc_local, ingest_statuses_map_to_rpc_statuses)
{
    local_start(NULL, true, 0);
    fs_rpc_client_t *c = local_connect();
    char error[256];
    cr_assert_eq(ingest_status(c, "FR", 3, error, sizeof error), FS_RPC_OK, "%s", error);
    cr_assert_eq(ingest_status(c, "FULL", 1, error, sizeof error), FS_RPC_RESOURCE_EXHAUSTED);
    cr_assert(strstr(error, "buffer is full"), "%s", error);
    cr_assert_eq(ingest_status(c, "FUL2", 1, error, sizeof error), FS_RPC_RESOURCE_EXHAUSTED);
    cr_assert_eq(ingest_status(c, "DOWN", 1, error, sizeof error), FS_RPC_UNAVAILABLE);
    cr_assert(strstr(error, "database down"), "%s", error);
    fs_rpc_client_close(c);
}

Test(rpc_local, actors_not_running_are_unavailable)
{
    local_start(NULL, false, 0);
    fs_rpc_client_t *c = local_connect();
    char error[256];
    cr_assert_eq(search_status(c, "DUB", error, sizeof error, 2000), FS_RPC_UNAVAILABLE);
    cr_assert_eq(ingest_status(c, "FR", 1, error, sizeof error), FS_RPC_UNAVAILABLE);
    cr_assert(strstr(error, "not running"), "%s", error);
    fs_rpc_client_close(c);
}

/* Requests pipelined in one write reach the search actor within one loop turn: past its
 * mailbox bound, the ask is refused at once and the client hears RESOURCE_EXHAUSTED. */
Test(rpc_local, full_mailbox_is_resource_exhausted)
{
    local_start(NULL, true, 2);
    fs_rpc_client_t *c = local_connect();
    Fs__Search__SearchRequest req = FS__SEARCH__SEARCH_REQUEST__INIT;
    req.origin = "SLOW";
    char *err = NULL;
    for (uint64_t id = 1; id <= 6; id++)
        cr_assert_eq(fs_rpc_client_send(c, "SearchFlights", id, &req.base, 300, &err), 0);
    int exhausted = 0, deadline = 0;
    for (int i = 0; i < 6; i++) {
        Fs__Rpc__RpcResponse *r = NULL;
        cr_assert_eq(fs_rpc_client_recv(c, 3000, &r, &err), 0, "%s", err);
        exhausted += r->status == FS__RPC__STATUS__RESOURCE_EXHAUSTED;
        deadline += r->status == FS__RPC__STATUS__DEADLINE_EXCEEDED;
        fs__rpc__rpc_response__free_unpacked(r, NULL);
    }
    cr_assert_eq(deadline, 2, "the two queued asks time out");
    cr_assert_eq(exhausted, 4, "the others are refused at once");
    fs_rpc_client_close(c);
}

/* A client that writes requests and never reads the answers: the server stops reading it
 * once its unsent answers pass the bound, so the client's writes stall instead of the
 * worker's memory growing; when the client reads, every request is answered. */
Test(rpc_local, slow_reader_is_paused_not_buffered)
{
    fs_rpc_opts_t o = {.max_outbuf_bytes = 64 * 1024, .max_inflight = 16};
    local_start(&o, false, 0);
    fs_rpc_client_t *c = local_connect();
    int fd = fs_rpc_client_fd(c);
    static uint8_t data[16384];
    Fs__Rpc__Ping p = FS__RPC__PING__INIT;
    p.has_data = true;
    p.data = (ProtobufCBinaryData){sizeof data, data};
    Fs__Rpc__RpcRequest req = FS__RPC__RPC_REQUEST__INIT;
    req.method = "Ping";
    uint8_t payload[sizeof data + 16];
    req.has_payload = true;
    req.payload = (ProtobufCBinaryData){fs__rpc__ping__pack(&p, payload), payload};
    uint8_t frame[sizeof data + 64];
    size_t n = fs__rpc__rpc_request__pack(&req, frame + 4);
    uint32_t be = htonl((uint32_t)n);
    memcpy(frame, &be, 4);
    /* write without reading until the kernel refuses for 300 ms */
    /* 64 MB of requests and as much of answers: far more than the kernel's socket buffers
     * (a few MB each way) can hold, so most of it must wait for the server to read */
    const int total = 4000;
    int sent = 0;
    size_t off = 0;
    double quiet_since = fs_test_now_ms();
    while (sent < total && fs_test_now_ms() - quiet_since < 300) {
        ssize_t w = send(fd, frame + off, n + 4 - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            quiet_since = fs_test_now_ms();
            off += (size_t)w;
            if (off == n + 4) {
                off = 0;
                sent++;
            }
        } else {
            usleep(1000);
        }
    }
    cr_assert_lt(sent, total / 4, "the server kept reading a client that does not read (%d sent)", sent);
    /* now read everything while sending the rest */
    int answered = 0;
    while (answered < sent + (off ? 1 : 0) || sent < total) {
        struct pollfd pf = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
        cr_assert_gt(poll(&pf, 1, 5000), 0, "stalled with %d of %d answered", answered, sent);
        if (pf.revents & POLLOUT) {
            ssize_t w = send(fd, frame + off, n + 4 - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0 && (off += (size_t)w) == n + 4) {
                off = 0;
                sent++;
            }
        }
        if (pf.revents & POLLIN) {
            Fs__Rpc__RpcResponse *r = NULL;
            char *err = NULL;
            cr_assert_eq(fs_rpc_client_recv(c, 5000, &r, &err), 0, "%s", err);
            cr_assert_eq(r->status, FS__RPC__STATUS__OK);
            answered++;
            fs__rpc__rpc_response__free_unpacked(r, NULL);
        }
    }
    cr_assert_eq(answered, total);
    fs_rpc_client_close(c);
}
