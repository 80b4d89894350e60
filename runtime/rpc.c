/* The internal RPC server (runtime/rpc.h, docs/RPC.md): listener, connections, frames, calls.
 *
 * A connection's requests are read in batches of READ_BATCH frames per loop turn (the rest
 * waits for the next turn, so one pipelining client cannot starve the loop), and only while
 * the connection has fewer than max_inflight unanswered requests and less than max_outbuf of
 * unsent output: a client that does not read its answers stops being read, it never grows the
 * worker's memory. Bufferevent callbacks are not deferred (as in api/http.c): freeing the
 * server then frees every connection at once.
 */
#include "runtime/rpc.h"

#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "schemas/rpc.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BATCH               64  /* frames of one connection handled per loop turn */
#define ACCEPT_PAUSE_MS          100 /* after EMFILE & co */
#define ARENA_SLACK              512 /* envelope bytes beyond the frame's own (struct, NULs) */
#define DEFAULT_READ_TIMEOUT_MS  30000
#define DEFAULT_IDLE_TIMEOUT_MS  60000
#define DEFAULT_WRITE_TIMEOUT_MS 30000
#define PACK_STACK               1024 /* replies up to this size are packed on the stack */
#define LINGER_MS                2000 /* after an error that closes: how long the client may still send */

#define SAME_STATUS(n) ((int)FS_RPC_##n == (int)FS__RPC__STATUS__##n)
_Static_assert(SAME_STATUS(OK) && SAME_STATUS(INVALID_ARGUMENT) && SAME_STATUS(DEADLINE_EXCEEDED) &&
                   SAME_STATUS(NOT_FOUND) && SAME_STATUS(RESOURCE_EXHAUSTED) && SAME_STATUS(UNIMPLEMENTED) &&
                   SAME_STATUS(INTERNAL) && SAME_STATUS(UNAVAILABLE) && SAME_STATUS(UNAUTHENTICATED),
               "fs_rpc_status_t must match schemas/rpc.proto");

/*--- status codes ----------------------------------------------------------------------------*/

static const struct {
    int code;
    const char *name;
} status_names[] = {
    {FS_RPC_OK, "OK"},
    {FS_RPC_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
    {FS_RPC_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"},
    {FS_RPC_NOT_FOUND, "NOT_FOUND"},
    {FS_RPC_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"},
    {FS_RPC_UNIMPLEMENTED, "UNIMPLEMENTED"},
    {FS_RPC_INTERNAL, "INTERNAL"},
    {FS_RPC_UNAVAILABLE, "UNAVAILABLE"},
    {FS_RPC_UNAUTHENTICATED, "UNAUTHENTICATED"},
};
#define N_STATUS (sizeof status_names / sizeof status_names[0])

/* Index of a status in status_names (metrics slots); an unknown value counts as INTERNAL. */
static size_t status_slot(int status)
{
    for (size_t i = 0; i < N_STATUS; i++)
        if (status_names[i].code == status)
            return i;
    return 6;
}

const char *fs_rpc_status_name(int status)
{
    for (size_t i = 0; i < N_STATUS; i++)
        if (status_names[i].code == status)
            return status_names[i].name;
    return "UNKNOWN";
}

int fs_rpc_status_valid(int status)
{
    return strcmp(fs_rpc_status_name(status), "UNKNOWN") != 0;
}

fs_rpc_status_t fs_rpc_status_from_fs(int fs_status)
{
    switch (fs_status) {
    case FS_OK:
        return FS_RPC_OK;
    case FS_EFULL:
        return FS_RPC_RESOURCE_EXHAUSTED;
    case FS_ETIMEOUT:
        return FS_RPC_DEADLINE_EXCEEDED;
    case FS_ENOACTOR:
    case FS_EUNAVAIL:
    case FS_ESTOPPED:
    case FS_ECANCELED:
        return FS_RPC_UNAVAILABLE;
    default:
        return FS_RPC_INTERNAL;
    }
}

/*--- method table ----------------------------------------------------------------------------*/

typedef struct method {
    char name[64];
    fs_rpc_handler_fn fn;
} method_t;

static method_t methods[FS_RPC_MAX_METHODS];
static int n_methods;

/* Metrics label slots beyond the registered methods. */
enum { SLOT_UNKNOWN = FS_RPC_MAX_METHODS, SLOT_INVALID, N_SLOTS };

int fs_rpc_register(const char *method, fs_rpc_handler_fn fn)
{
    if (!method || !fn || strlen(method) >= sizeof methods[0].name)
        return -1;
    for (int i = 0; i < n_methods; i++)
        if (strcmp(methods[i].name, method) == 0)
            return methods[i].fn == fn ? 0 : -1;
    if (n_methods == FS_RPC_MAX_METHODS)
        return -1;
    snprintf(methods[n_methods].name, sizeof methods[0].name, "%s", method);
    methods[n_methods++].fn = fn;
    return 0;
}

void fs_rpc_unregister_all(void)
{
    n_methods = 0;
}

static int method_find(const char *name)
{
    for (int i = 0; i < n_methods; i++)
        if (strcmp(methods[i].name, name) == 0)
            return i;
    return -1;
}

/*--- types -----------------------------------------------------------------------------------*/

typedef struct conn conn_t;

typedef struct chunk {
    struct chunk *next;
    max_align_t data[];
} chunk_t;

struct fs_rpc_call {
    fs_rpc_server_t *srv;         /* NULL once the server is freed */
    conn_t *conn;                 /* NULL once the connection is closed */
    fs_rpc_call_t *sprev, *snext; /* the server's unfinished calls */
    fs_rpc_call_t *cprev, *cnext; /* the connection's unfinished calls */
    Fs__Rpc__RpcRequest *req;     /* in the arena; NULL when the envelope did not unpack */
    int slot;                     /* method index, SLOT_UNKNOWN or SLOT_INVALID */
    uint64_t id;
    int64_t deadline_ms; /* fs_now_ms clock */
    double started;      /* seconds, monotonic */
    struct event *timer; /* deadline, armed when the handler went asynchronous */
    struct event *defer; /* fs_rpc_call_defer */
    fs_rpc_handler_fn deferred_fn;
    bool answered; /* a response was written (or discarded: no connection) */
    bool done;     /* the handler has answered */
    bool in_dispatch;
    /* arena: the envelope unpacks into the bytes after this struct, then into chunks */
    ProtobufCAllocator alloc;
    char *cur, *end;
    chunk_t *chunks;
    size_t chunk_bytes, chunk_limit;
    max_align_t arena[];
};

struct conn {
    fs_rpc_server_t *srv;
    struct bufferevent *bev;
    struct event *resume; /* next batch of buffered frames, on the next loop turn */
    conn_t *prev, *next;
    fs_rpc_call_t *calls; /* unfinished */
    int unanswered;       /* calls without a response yet */
    int timeout_ms;       /* the read timeout in force (-1: none) */
    bool reading;
    bool closing; /* flush what is queued, half-close, discard input, then close */
    bool shut;    /* closing, and our side is shut down */
    bool eof;     /* the client shut its side: answer what came, then close */
};

struct fs_rpc_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *accept_retry;
    fs_rpc_opts_t opts;
    bool draining;
    bool has_token;
    unsigned char token_digest[SHA256_DIGEST_LENGTH];
    conn_t *conns;
    fs_rpc_call_t *calls;
    size_t n_calls;
    /* metrics */
    fs_metric_family_t *m_requests, *m_duration, *m_bad;
    fs_metric_series_t *s_requests[N_SLOTS][N_STATUS], *s_duration[N_SLOTS];
    fs_metric_series_t *s_connections, *s_late, *s_accept_errors;
};

static struct timeval ms_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*--- metrics ---------------------------------------------------------------------------------*/

static const char *slot_label(int slot)
{
    return slot == SLOT_UNKNOWN ? "unknown" : slot == SLOT_INVALID ? "invalid" : methods[slot].name;
}

static void create_metrics(fs_rpc_server_t *s, fs_metrics_t *m)
{
    static const char *const req_labels[] = {"method", "status", NULL};
    static const char *const dur_labels[] = {"method", NULL};
    static const char *const bad_labels[] = {"reason", NULL};
    static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
    if (!m)
        return;
    s->m_requests = fs_metrics_family(m, FS_METRIC_COUNTER, "flightshark_rpc_requests_total",
                                      "RPC requests answered, by method and status", req_labels, NULL, 0);
    s->m_duration = fs_metrics_family(m, FS_METRIC_HISTOGRAM, "flightshark_rpc_request_duration_seconds",
                                      "RPC latency from the frame read to the answer written", dur_labels,
                                      buckets, sizeof buckets / sizeof buckets[0]);
    s->m_bad = fs_metrics_family(m, FS_METRIC_COUNTER, "flightshark_rpc_bad_frames_total",
                                 "RPC frames refused: oversized, unpack, truncated", bad_labels, NULL, 0);
    s->s_connections =
        fs_metrics_simple(m, FS_METRIC_GAUGE, "flightshark_rpc_connections", "Open RPC connections");
    s->s_late = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_rpc_late_answers_total",
                                  "Handler answers discarded because the deadline had been answered");
    s->s_accept_errors = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_rpc_accept_errors_total",
                                           "accept() failures that paused the RPC listener (EMFILE, ...)");
}

static void count_request(fs_rpc_server_t *s, int slot, int status, double seconds)
{
    if (!s->m_requests)
        return;
    size_t st = status_slot(status);
    if (!s->s_requests[slot][st]) {
        const char *labels[] = {slot_label(slot), status_names[st].name};
        s->s_requests[slot][st] = fs_metrics_series(s->m_requests, labels);
    }
    if (!s->s_duration[slot]) {
        const char *labels[] = {slot_label(slot)};
        s->s_duration[slot] = fs_metrics_series(s->m_duration, labels);
    }
    fs_metric_inc(s->s_requests[slot][st], 1);
    fs_metric_observe(s->s_duration[slot], seconds);
}

static void count_bad(fs_rpc_server_t *s, const char *reason)
{
    if (s->m_bad) {
        const char *labels[] = {reason};
        fs_metric_inc(fs_metrics_series(s->m_bad, labels), 1);
    }
}

static void count(fs_metric_series_t *series, double by)
{
    if (series)
        fs_metric_inc(series, by);
}

/*--- call arena ------------------------------------------------------------------------------*/

static size_t round_up(size_t n)
{
    return (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
}

/* Bump allocation in the call's own block, then in chunks up to a bound (an envelope needs
 * little more than its frame; the bound stops a crafted one from asking for much more). */
static void *arena_alloc(void *data, size_t size)
{
    fs_rpc_call_t *c = data;
    size = round_up(size ? size : 1);
    if (size <= (size_t)(c->end - c->cur)) {
        void *p = c->cur;
        c->cur += size;
        return p;
    }
    if (c->chunk_bytes + size > c->chunk_limit)
        return NULL;
    chunk_t *ch = fs_malloc(sizeof(chunk_t) + size);
    ch->next = c->chunks;
    c->chunks = ch;
    c->chunk_bytes += size;
    return ch->data;
}

static void arena_free(void *data, void *p)
{
}

static fs_rpc_call_t *call_new(conn_t *c, size_t frame_len)
{
    size_t arena = round_up(frame_len + ARENA_SLACK);
    fs_rpc_call_t *call = fs_malloc(sizeof(fs_rpc_call_t) + arena);
    memset(call, 0, sizeof *call);
    call->srv = c->srv;
    call->conn = c;
    call->slot = SLOT_INVALID;
    call->started = now_s();
    call->alloc = (ProtobufCAllocator){.alloc = arena_alloc, .free = arena_free, .allocator_data = call};
    call->cur = (char *)call->arena;
    call->end = call->cur + arena;
    call->chunk_limit = 4 * frame_len + 65536;
    /* unfinished until its handler answers */
    fs_rpc_server_t *s = c->srv;
    call->snext = s->calls;
    if (s->calls)
        s->calls->sprev = call;
    s->calls = call;
    s->n_calls++;
    call->cnext = c->calls;
    if (c->calls)
        c->calls->cprev = call;
    c->calls = call;
    c->unanswered++;
    return call;
}

static void call_unlink_conn(fs_rpc_call_t *call)
{
    conn_t *c = call->conn;
    if (!c)
        return;
    if (call->cprev)
        call->cprev->cnext = call->cnext;
    else
        c->calls = call->cnext;
    if (call->cnext)
        call->cnext->cprev = call->cprev;
    if (!call->answered)
        c->unanswered--;
    call->conn = NULL;
}

static void call_unlink_srv(fs_rpc_call_t *call)
{
    fs_rpc_server_t *s = call->srv;
    if (!s)
        return;
    if (call->sprev)
        call->sprev->snext = call->snext;
    else
        s->calls = call->snext;
    if (call->snext)
        call->snext->sprev = call->sprev;
    s->n_calls--;
    call->srv = NULL;
}

static void call_free(fs_rpc_call_t *call)
{
    call_unlink_conn(call);
    call_unlink_srv(call);
    if (call->timer)
        event_free(call->timer);
    if (call->defer)
        event_free(call->defer);
    for (chunk_t *ch = call->chunks, *next; ch; ch = next) {
        next = ch->next;
        free(ch);
    }
    free(call);
}

/*--- connections -----------------------------------------------------------------------------*/

static void conn_process(conn_t *c);

static void conn_close(conn_t *c)
{
    fs_rpc_server_t *s = c->srv;
    while (c->calls)
        call_unlink_conn(c->calls);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    event_free(c->resume);
    bufferevent_free(c->bev);
    if (s->s_connections)
        fs_metric_inc(s->s_connections, -1);
    free(c);
}

static size_t conn_outbuf(const conn_t *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Is a whole frame (or a length over the limit, which is handled at once) buffered? */
static bool has_whole_frame(const conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t avail = evbuffer_get_length(in);
    if (avail < 4)
        return false;
    uint32_t be;
    evbuffer_copyout(in, &be, 4);
    size_t len = ntohl(be);
    return len > c->srv->opts.max_frame_bytes || avail >= len + 4;
}

/* The read timeout that fits the connection's state: a started frame must finish within the
 * read timeout; a connection waiting for answers has none (the client is right to be silent);
 * an idle one is closed after the idle timeout; a closing one lingers briefly. */
static void conn_set_timeout(conn_t *c)
{
    const fs_rpc_opts_t *o = &c->srv->opts;
    size_t in = evbuffer_get_length(bufferevent_get_input(c->bev));
    int ms = c->shut             ? LINGER_MS
             : c->closing        ? -1
             : in > 0            ? o->read_timeout_ms
             : c->unanswered > 0 ? -1
                                 : o->idle_timeout_ms;
    if (ms == c->timeout_ms)
        return;
    c->timeout_ms = ms;
    struct timeval rt = ms_tv(ms > 0 ? ms : 0), wt = ms_tv(o->write_timeout_ms);
    bufferevent_set_timeouts(c->bev, ms > 0 ? &rt : NULL, &wt);
}

/* Nothing left to do on a connection that is closing, at EOF or draining: close it (a closing
 * one is half-closed first, so the client reads the error before the connection goes). Returns
 * true when it was freed. */
static bool conn_maybe_finish(conn_t *c)
{
    bool wind_down = c->closing || c->eof || c->srv->draining;
    if (!wind_down || c->unanswered > 0 || conn_outbuf(c) > 0)
        return false;
    if (c->closing) {
        if (!c->shut) {
            c->shut = true;
            shutdown(bufferevent_getfd(c->bev), SHUT_WR);
            conn_set_timeout(c);
        }
        return false;
    }
    if (has_whole_frame(c) && !c->srv->draining)
        return false; /* at EOF with whole frames still buffered: answer them first */
    conn_close(c);
    return true;
}

/* Reads while the connection keeps up with its answers, pauses otherwise (backpressure), and
 * schedules the next batch when whole frames are already buffered. A closing connection keeps
 * reading only to discard. */
static void conn_flow(conn_t *c)
{
    const fs_rpc_opts_t *o = &c->srv->opts;
    bool can = !c->closing && c->unanswered < o->max_inflight && conn_outbuf(c) < o->max_outbuf_bytes;
    bool want = c->closing || (can && !c->eof);
    if (want && !c->reading) {
        c->reading = true;
        bufferevent_enable(c->bev, EV_READ);
    } else if (!want && c->reading) {
        c->reading = false;
        bufferevent_disable(c->bev, EV_READ);
    }
    if (can && has_whole_frame(c))
        event_active(c->resume, 0, 0);
}

/* Queues one response frame. */
static void conn_write(conn_t *c, const Fs__Rpc__RpcResponse *r)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t size = fs__rpc__rpc_response__get_packed_size(r);
    struct evbuffer_iovec iov;
    if (evbuffer_reserve_space(out, (ev_ssize_t)(size + 4), &iov, 1) < 1)
        return;
    uint8_t *p = iov.iov_base;
    uint32_t be = htonl((uint32_t)size);
    memcpy(p, &be, 4);
    fs__rpc__rpc_response__pack(r, p + 4);
    iov.iov_len = size + 4;
    evbuffer_commit_space(out, &iov, 1);
}

/* Closes after the queued output is flushed (or the write timeout). */
static void conn_close_after_flush(conn_t *c)
{
    c->closing = true;
    conn_flow(c);
    if (!conn_maybe_finish(c))
        conn_set_timeout(c);
}

/*--- answers ---------------------------------------------------------------------------------*/

/* Writes the call's response (once) and counts it. */
static void call_respond(fs_rpc_call_t *call, int status, const char *error, const uint8_t *payload,
                         size_t len)
{
    call->answered = true;
    if (call->srv)
        count_request(call->srv, call->slot, status, now_s() - call->started);
    conn_t *c = call->conn;
    if (!c)
        return;
    c->unanswered--;
    Fs__Rpc__RpcResponse r = FS__RPC__RPC_RESPONSE__INIT;
    r.has_id = true;
    r.id = call->id;
    r.has_status = true;
    r.status = (Fs__Rpc__Status)status;
    r.error = status != FS_RPC_OK && error ? (char *)error : NULL;
    if (payload) {
        r.has_payload = true;
        r.payload.data = (uint8_t *)payload;
        r.payload.len = len;
    }
    conn_write(c, &r);
}

/* After an answer: the connection may read again, or be done. Deferred to the next loop turn
 * through `resume`, so an answer never runs handlers of other requests inside its caller. */
static void conn_after_answer(conn_t *c)
{
    if (!c)
        return;
    if (conn_maybe_finish(c))
        return;
    conn_flow(c);
    conn_set_timeout(c);
}

/* The handler's answer. */
static void call_end(fs_rpc_call_t *call, int status, const char *error, const uint8_t *payload, size_t len)
{
    if (call->done) {
        fs_error("rpc: %s answered twice", slot_label(call->slot));
        return;
    }
    call->done = true;
    conn_t *c = call->conn;
    if (!call->answered)
        call_respond(call, status, error, payload, len);
    else if (call->srv)
        count(call->srv->s_late, 1);
    if (call->in_dispatch)
        return; /* dispatch frees it */
    call_free(call);
    conn_after_answer(c);
}

void fs_rpc_reply(fs_rpc_call_t *call, const ProtobufCMessage *reply)
{
    if (!reply) {
        call_end(call, FS_RPC_OK, NULL, (const uint8_t *)"", 0);
        return;
    }
    uint8_t stack[PACK_STACK];
    size_t size = protobuf_c_message_get_packed_size(reply);
    uint8_t *buf = size <= sizeof stack ? stack : fs_malloc(size);
    protobuf_c_message_pack(reply, buf);
    call_end(call, FS_RPC_OK, NULL, buf, size);
    if (buf != stack)
        free(buf);
}

void fs_rpc_fail(fs_rpc_call_t *call, fs_rpc_status_t status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    call_end(call, status == FS_RPC_OK ? FS_RPC_INTERNAL : (int)status, msg, NULL, 0);
}

const char *fs_rpc_call_method(const fs_rpc_call_t *call)
{
    return call->req && call->req->method ? call->req->method : "";
}

uint64_t fs_rpc_call_id(const fs_rpc_call_t *call)
{
    return call->id;
}

const uint8_t *fs_rpc_call_payload(const fs_rpc_call_t *call, size_t *len)
{
    bool has = call->req && call->req->has_payload;
    *len = has ? call->req->payload.len : 0;
    return has && call->req->payload.data ? call->req->payload.data : (const uint8_t *)"";
}

int fs_rpc_call_remaining_ms(const fs_rpc_call_t *call)
{
    int64_t left = call->deadline_ms - fs_now_ms();
    return left > 0 ? (int)left : 0;
}

void *fs_rpc_unpack_or_fail(fs_rpc_call_t *call, const ProtobufCMessageDescriptor *desc)
{
    size_t len;
    const uint8_t *data = fs_rpc_call_payload(call, &len);
    void *msg = protobuf_c_message_unpack(desc, NULL, len, data);
    if (!msg)
        fs_rpc_fail(call, FS_RPC_INVALID_ARGUMENT, "payload is not a valid %s", desc->name);
    return msg;
}

static void on_call_deadline(evutil_socket_t fd, short what, void *arg)
{
    fs_rpc_call_t *call = arg;
    conn_t *c = call->conn;
    if (call->answered)
        return;
    call_respond(call, FS_RPC_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
    conn_after_answer(c);
}

static void on_call_defer(evutil_socket_t fd, short what, void *arg)
{
    fs_rpc_call_t *call = arg;
    call->deferred_fn(call);
}

void fs_rpc_call_defer(fs_rpc_call_t *call, int delay_ms, fs_rpc_handler_fn fn)
{
    if (!call->srv) {
        call_end(call, FS_RPC_UNAVAILABLE, "server stopped", NULL, 0);
        return;
    }
    if (!call->defer)
        call->defer = evtimer_new(call->srv->base, on_call_defer, call);
    call->deferred_fn = fn;
    struct timeval tv = ms_tv(delay_ms > 0 ? delay_ms : 0);
    evtimer_add(call->defer, &tv);
}

/*--- requests --------------------------------------------------------------------------------*/

static bool token_ok(const fs_rpc_server_t *s, const char *token)
{
    if (!s->has_token)
        return true;
    if (!token)
        return false;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), digest);
    /* digests of equal length: the comparison time says nothing about the token */
    return CRYPTO_memcmp(digest, s->token_digest, sizeof digest) == 0;
}

/* Checks the envelope; returns OK or the status to answer with (and the message in `why`). */
static int admit(fs_rpc_call_t *call, char *why, size_t size)
{
    fs_rpc_server_t *s = call->srv;
    Fs__Rpc__RpcRequest *req = call->req;
    if (!req->method || !req->method[0]) {
        snprintf(why, size, "request has no method");
        return FS_RPC_INVALID_ARGUMENT;
    }
    int m = method_find(req->method);
    call->slot = m >= 0 ? m : SLOT_UNKNOWN;
    if (s->draining) {
        snprintf(why, size, "server is draining; retry on a new connection");
        return FS_RPC_UNAVAILABLE;
    }
    if (!token_ok(s, req->token)) {
        snprintf(why, size, req->token ? "wrong token" : "token required");
        return FS_RPC_UNAUTHENTICATED;
    }
    if (m < 0) {
        snprintf(why, size, "unknown method '%.64s'", req->method);
        return FS_RPC_UNIMPLEMENTED;
    }
    return FS_RPC_OK;
}

static void dispatch(fs_rpc_call_t *call)
{
    char why[128];
    int st = admit(call, why, sizeof why);
    if (st != FS_RPC_OK) {
        call->in_dispatch = true;
        call_end(call, st, why, NULL, 0);
        call->in_dispatch = false;
        call_free(call);
        return;
    }
    fs_rpc_server_t *s = call->srv;
    uint32_t budget = call->req->deadline_ms ? call->req->deadline_ms : (uint32_t)s->opts.default_deadline_ms;
    if (budget > FS_RPC_MAX_DEADLINE_MS)
        budget = FS_RPC_MAX_DEADLINE_MS;
    call->deadline_ms = fs_now_ms() + budget;
    call->in_dispatch = true;
    methods[call->slot].fn(call);
    call->in_dispatch = false;
    if (call->done) {
        call_free(call);
        return;
    }
    if (!call->answered) {
        call->timer = evtimer_new(s->base, on_call_deadline, call);
        struct timeval tv = ms_tv(fs_rpc_call_remaining_ms(call));
        evtimer_add(call->timer, &tv);
    }
}

/* One complete frame of `len` bytes at `data`. */
static void handle_frame(conn_t *c, const uint8_t *data, size_t len)
{
    fs_rpc_call_t *call = call_new(c, len);
    call->req = fs__rpc__rpc_request__unpack(&call->alloc, len, data);
    if (!call->req) {
        count_bad(c->srv, "unpack");
        call->in_dispatch = true;
        call_end(call, FS_RPC_INVALID_ARGUMENT, "request envelope does not unpack as fs.rpc.RpcRequest", NULL,
                 0);
        call->in_dispatch = false;
        call_free(call);
        return;
    }
    call->id = call->req->has_id ? call->req->id : 0;
    dispatch(call);
}

/* Reads the length prefix. Returns the frame length, or -1 when fewer than 4 bytes wait. */
static long peek_length(struct evbuffer *in)
{
    if (evbuffer_get_length(in) < 4)
        return -1;
    uint32_t be;
    evbuffer_copyout(in, &be, 4);
    return (long)ntohl(be);
}

/* Handles up to READ_BATCH buffered frames; schedules itself again when more are waiting. */
static void conn_process(conn_t *c)
{
    fs_rpc_server_t *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (int n = 0; n < READ_BATCH; n++) {
        if (c->closing || c->unanswered >= s->opts.max_inflight || conn_outbuf(c) >= s->opts.max_outbuf_bytes)
            break;
        long len = peek_length(in);
        if (len < 0)
            break;
        if ((size_t)len > s->opts.max_frame_bytes) {
            count_bad(s, "oversized");
            Fs__Rpc__RpcResponse r = FS__RPC__RPC_RESPONSE__INIT;
            char msg[128];
            snprintf(msg, sizeof msg, "frame of %ld bytes is over the limit of %zu", len,
                     s->opts.max_frame_bytes);
            r.has_id = r.has_status = true;
            r.status = FS__RPC__STATUS__RESOURCE_EXHAUSTED;
            r.error = msg;
            conn_write(c, &r);
            evbuffer_drain(in, evbuffer_get_length(in));
            count_request(s, SLOT_INVALID, FS_RPC_RESOURCE_EXHAUSTED, 0);
            conn_close_after_flush(c);
            return;
        }
        if (evbuffer_get_length(in) < (size_t)len + 4)
            break;
        const uint8_t *frame = evbuffer_pullup(in, len + 4);
        handle_frame(c, frame + 4, (size_t)len);
        evbuffer_drain(in, (size_t)len + 4);
    }
    if (conn_maybe_finish(c))
        return;
    conn_flow(c);
    conn_set_timeout(c);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    conn_process(arg);
}

/*--- bufferevent callbacks -------------------------------------------------------------------*/

static void on_read(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    if (c->closing) {
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    conn_process(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    if (conn_maybe_finish(c))
        return;
    conn_flow(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn_t *c = arg;
    fs_rpc_server_t *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->closing || (what & BEV_EVENT_ERROR)) {
        conn_close(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        /* a frame that stopped half way, an idle connection, or a client that does not read */
        if ((what & BEV_EVENT_READING) && evbuffer_get_length(in) > 0)
            count_bad(s, "truncated");
        conn_close(c);
        return;
    }
    /* EOF: the client shut its side; whole frames that came before it are still answered */
    c->eof = true;
    if (has_whole_frame(c)) {
        conn_process(c);
        return;
    }
    if (evbuffer_get_length(in) > 0) {
        count_bad(s, "truncated");
        evbuffer_drain(in, evbuffer_get_length(in));
    }
    if (!conn_maybe_finish(c))
        conn_flow(c);
}

/*--- listener --------------------------------------------------------------------------------*/

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                      void *arg)
{
    fs_rpc_server_t *s = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_t *c = FS_NEW(conn_t);
    c->srv = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->resume = event_new(s->base, -1, 0, on_resume, c);
    c->timeout_ms = 0;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (s->s_connections)
        fs_metric_inc(s->s_connections, 1);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    c->reading = true;
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_set_timeout(c);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    fs_rpc_server_t *s = arg;
    if (!s->draining)
        evconnlistener_enable(s->listener);
}

/* libevent retries EAGAIN/EINTR/ECONNABORTED itself; anything reaching here (EMFILE, ENFILE)
 * would make the loop spin on a readable listener, so accept pauses. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    fs_rpc_server_t *s = arg;
    evconnlistener_disable(l);
    count(s->s_accept_errors, 1);
    fs_warn("rpc: accept failed: %s; pausing accept for %d ms",
            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), ACCEPT_PAUSE_MS);
    struct timeval tv = ms_tv(ACCEPT_PAUSE_MS);
    evtimer_add(s->accept_retry, &tv);
}

/*--- server ----------------------------------------------------------------------------------*/

static void apply_defaults(fs_rpc_opts_t *o)
{
    if (!o->max_frame_bytes)
        o->max_frame_bytes = FS_RPC_MAX_FRAME;
    if (!o->max_outbuf_bytes)
        o->max_outbuf_bytes = FS_RPC_MAX_OUTBUF;
    if (o->max_inflight <= 0)
        o->max_inflight = FS_RPC_MAX_INFLIGHT;
    if (o->read_timeout_ms <= 0)
        o->read_timeout_ms = DEFAULT_READ_TIMEOUT_MS;
    if (o->idle_timeout_ms <= 0)
        o->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    if (o->write_timeout_ms <= 0)
        o->write_timeout_ms = DEFAULT_WRITE_TIMEOUT_MS;
    if (o->default_deadline_ms <= 0)
        o->default_deadline_ms = FS_RPC_DEFAULT_DEADLINE_MS;
}

fs_rpc_server_t *fs_rpc_server_new_opts(struct event_base *base, int fd, const fs_rpc_opts_t *opts)
{
    if (fd < 0)
        return NULL;
    /* A write to a socket the peer has closed must be an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    if (evutil_make_socket_nonblocking(fd) != 0) {
        close(fd);
        return NULL;
    }
    evutil_make_socket_closeonexec(fd);
    fs_rpc_server_t *s = FS_NEW(fs_rpc_server_t);
    s->base = base;
    if (opts)
        s->opts = *opts;
    apply_defaults(&s->opts);
    s->opts.token = NULL; /* only its digest is kept */
    if (opts && opts->token && opts->token[0]) {
        s->has_token = true;
        SHA256((const unsigned char *)opts->token, strlen(opts->token), s->token_digest);
    }
    /* backlog 0: the master already called listen() */
    s->listener = evconnlistener_new(base, on_accept, s, LEV_OPT_CLOSE_ON_FREE, 0, fd);
    if (!s->listener) {
        close(fd);
        free(s);
        return NULL;
    }
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    s->accept_retry = evtimer_new(base, on_accept_retry, s);
    create_metrics(s, s->opts.metrics);
    return s;
}

fs_rpc_server_t *fs_rpc_server_new(struct event_base *base, int fd, fs_metrics_t *metrics)
{
    const char *token = fs_cfg ? fs_cfg->rpc_token : NULL;
    fs_rpc_opts_t o = {
        .read_timeout_ms = fs_cfg ? fs_cfg->read_timeout_ms : 0,
        .idle_timeout_ms = fs_cfg ? fs_cfg->idle_timeout_ms : 0,
        .write_timeout_ms = fs_cfg ? fs_cfg->read_timeout_ms : 0,
        .token = token,
        .metrics = metrics,
    };
    return fs_rpc_server_new_opts(base, fd, &o);
}

void fs_rpc_server_stop_accepting(fs_rpc_server_t *s)
{
    s->draining = true;
    evconnlistener_disable(s->listener);
    evtimer_del(s->accept_retry);
    for (conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->unanswered == 0 && conn_outbuf(c) == 0)
            conn_close(c);
    }
}

size_t fs_rpc_server_inflight(const fs_rpc_server_t *s)
{
    size_t n = s->n_calls;
    for (const conn_t *c = s->conns; c; c = c->next)
        n += conn_outbuf(c) > 0;
    return n;
}

int fs_rpc_server_port(const fs_rpc_server_t *s)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

void fs_rpc_server_free(fs_rpc_server_t *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_close(s->conns);
    /* Handlers still working keep their calls; their answers are discarded and free them. A
     * call paused by fs_rpc_call_defer has no handler holding it: it ends here. */
    while (s->calls) {
        fs_rpc_call_t *call = s->calls;
        if (call->defer && evtimer_pending(call->defer, NULL)) {
            call_free(call);
            continue;
        }
        if (call->timer) {
            event_free(call->timer);
            call->timer = NULL;
        }
        call->answered = true;
        call_unlink_srv(call);
    }
    evconnlistener_free(s->listener);
    event_free(s->accept_retry);
    free(s);
}
