/* The evhtp server of a worker: listening socket, connections, the request-head gate, paused
 * (asynchronous) requests, graceful close.
 *
 * evhtp 1.2.18 is used for what it does well (HTTP/1.1 parsing of checked heads, keep-alive,
 * buffering) and guarded where it does not (docs/HTTP.md has the list):
 *   - every connection's read callback is wrapped: at a request boundary the bytes are held
 *     until the whole head is there and checked by fs_http_head_check, so evhtp never parses a
 *     head we would not accept (it would close without a response) nor a long URI split over
 *     two reads (the parser bug of #128/#131);
 *   - refusals (400, 413, 414, 431, 501, 505) take the socket over from evhtp, write the
 *     answer, half-close and drain briefly before closing, so the client reads the status;
 *   - a request whose handler has not answered is paused; while paused evhtp stops reading,
 *     so we watch the socket ourselves (MSG_PEEK) to notice a client that leaves;
 *   - the listener gets an error callback that pauses accept on EMFILE instead of spinning.
 * No evhtp threads: everything runs on the worker's loop.
 */
#include "api/http_int.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_PAUSE_MS         100  /* after EMFILE & co: long enough for fds to be released */
#define LINGER_MS               2000 /* how long a refused connection may keep sending before we close */
#define PIPELINE_BATCH          32   /* pipelined requests of one connection handled per loop turn */
#define DRAIN_SILENCE_MS        1000 /* while draining, a silent new connection gets this long to speak */
#define DEFAULT_MAX_BODY        (1024 * 1024)
#define DEFAULT_MAX_URI         4096
#define DEFAULT_READ_TIMEOUT_MS 30000
#define DEFAULT_IDLE_TIMEOUT_MS 60000

struct fs_closing {
    fs_http_server_t *srv;
    struct bufferevent *bev;
    struct timespec since;
    bool flushed;
    fs_closing_t *prev, *next;
};

static struct timeval ms_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

static double ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) * 1e3 + (double)(now.tv_nsec - t->tv_nsec) / 1e6;
}

/* Doubly linked lists with a head pointer: connections, closing sockets, pending requests. */
#define LIST_LINK(head, x)                                                                                   \
    do {                                                                                                     \
        (x)->prev = NULL;                                                                                    \
        (x)->next = (head);                                                                                  \
        if (head)                                                                                            \
            (head)->prev = (x);                                                                              \
        (head) = (x);                                                                                        \
    } while (0)
#define LIST_UNLINK(head, x)                                                                                 \
    do {                                                                                                     \
        if ((x)->prev)                                                                                       \
            (x)->prev->next = (x)->next;                                                                     \
        else                                                                                                 \
            (head) = (x)->next;                                                                              \
        if ((x)->next)                                                                                       \
            (x)->next->prev = (x)->prev;                                                                     \
        (x)->prev = (x)->next = NULL;                                                                        \
    } while (0)

/* ---- closing sockets taken over from evhtp ------------------------------------------------- */

static void closing_free(fs_closing_t *cl)
{
    LIST_UNLINK(cl->srv->closing, cl);
    bufferevent_free(cl->bev);
    free(cl);
}

/* Drains what the client still sends (a body we refused) for a while, so that closing does
 * not turn into a reset that destroys our response before the client has read it. */
static void closing_on_read(struct bufferevent *bev, void *arg)
{
    fs_closing_t *cl = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (ms_since(&cl->since) > LINGER_MS)
        closing_free(cl);
}

static void closing_on_write(struct bufferevent *bev, void *arg)
{
    fs_closing_t *cl = arg;
    if (cl->flushed || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    cl->flushed = true;
    shutdown(bufferevent_getfd(bev), SHUT_WR);
    bufferevent_enable(bev, EV_READ);
}

static void closing_on_event(struct bufferevent *bev, short what, void *arg)
{
    closing_free(arg);
}

static void closing_start(fs_http_server_t *srv, struct bufferevent *bev, struct evbuffer *response)
{
    fs_closing_t *cl = FS_NEW(fs_closing_t);
    cl->srv = srv;
    cl->bev = bev;
    clock_gettime(CLOCK_MONOTONIC, &cl->since);
    LIST_LINK(srv->closing, cl);
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setcb(bev, closing_on_read, closing_on_write, closing_on_event, cl);
    struct timeval linger = ms_tv(LINGER_MS / 2), wt = ms_tv(srv->opts.read_timeout_ms);
    bufferevent_set_timeouts(bev, &linger, &wt);
    bufferevent_disable(bev, EV_READ);
    bufferevent_write_buffer(bev, response);
    bufferevent_enable(bev, EV_WRITE);
}

/* ---- connections --------------------------------------------------------------------------- */

static fs_conn_t *conn_of(evhtp_connection_t *c)
{
    return c && c->hooks ? c->hooks->on_connection_fini_arg : NULL;
}

/* evhtp has no request in progress: the next bytes start a new request head. */
static bool at_boundary(const evhtp_connection_t *c)
{
    return !c->request || (c->request->flags & EVHTP_REQ_FLAG_FINISHED);
}

/* Nothing in progress and nothing buffered in either direction. */
static bool conn_idle(const fs_conn_t *fc)
{
    struct bufferevent *bev = evhtp_connection_get_bev(fc->ev);
    return at_boundary(fc->ev) && bev && evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
           evbuffer_get_length(bufferevent_get_input(bev)) == 0 &&
           !(fc->stash && evbuffer_get_length(fc->stash));
}

static void set_read_timeout(fs_conn_t *fc, int ms)
{
    struct bufferevent *bev = evhtp_connection_get_bev(fc->ev);
    struct timeval rt = ms_tv(ms), wt = ms_tv(fc->srv->opts.read_timeout_ms);
    if (bev)
        bufferevent_set_timeouts(bev, &rt, &wt);
}

/* The latest request of a connection that goes away without evhtp's hooks (take-over). */
static void conn_drop_request(fs_conn_t *fc)
{
    fs_req_t *req = fc->req;
    if (!req)
        return;
    fc->req = NULL;
    req->conn = NULL;
    req->ev = NULL;
    if (req->replied)
        fs_req_free(req);
}

/* Our state outlives evhtp's connection until the next loop turn, so that code which called
 * into evhtp can test `dead` afterwards instead of touching freed memory. */
static void conn_free(fs_conn_t *fc)
{
    fs_http_server_t *srv = fc->srv;
    LIST_UNLINK(srv->conns, fc);
    if (fc->watch)
        event_free(fc->watch);
    if (fc->pump)
        event_free(fc->pump);
    if (fc->stash)
        evbuffer_free(fc->stash);
    fc->watch = fc->pump = NULL;
    fc->stash = NULL;
    fc->ev = NULL;
    fc->dead = true;
    LIST_LINK(srv->graveyard, fc);
    event_active(srv->reaper, 0, 0);
}

static void conn_reap(evutil_socket_t fd, short what, void *arg)
{
    fs_http_server_t *srv = arg;
    while (srv->graveyard) {
        fs_conn_t *fc = srv->graveyard;
        LIST_UNLINK(srv->graveyard, fc);
        free(fc);
    }
}

/* evhtp frees a connection: hooks run before the request is freed (evhtp_connection_free),
 * so the request only loses its connection here; req_on_fini follows. */
static evhtp_res conn_on_fini(evhtp_connection_t *c, void *arg)
{
    fs_conn_t *fc = arg;
    if (fc->req)
        fc->req->conn = NULL;
    conn_free(fc);
    return EVHTP_RES_OK;
}

/* Refuses a request with `status` and closes the connection. `inside_evhtp` is true when
 * called from an evhtp hook: evhtp then notices that it no longer owns the socket and frees
 * its connection itself when the hook returns. */
static void conn_reject(fs_conn_t *fc, int status, const char *detail, const char *method, bool inside_evhtp)
{
    fs_http_server_t *srv = fc->srv;
    evhtp_connection_t *c = fc->ev;
    char id[72];
    fs_http_make_id(srv, id, sizeof id);
    json_t *j = json_pack("{s:s}", "detail", detail);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    fs_response_t r = {.status = status,
                       .minor = 1,
                       .content_type = "application/json",
                       .body = body,
                       .len = strlen(body),
                       .request_id = id};
    struct evbuffer *resp = evbuffer_new();
    fs_http_write_response(resp, &r);
    free(body);
    fs_http_observe(srv, method && *method ? method : "other", NULL, "-", status, 0, id, fc->peer);

    conn_drop_request(fc);
    conn_free(fc);
    struct bufferevent *bev = evhtp_connection_take_ownership(c);
    closing_start(srv, bev, resp);
    evbuffer_free(resp);
    if (!inside_evhtp)
        evhtp_connection_free(c);
}

typedef enum { GATE_PASS, GATE_WAIT, GATE_GONE } gate_t;

/* Holds a new request until its head is complete and acceptable. On GATE_PASS, *msg_len is
 * the length of the whole request (head and body), or -1 when it is not known (chunked). */
static gate_t conn_gate(fs_conn_t *fc, struct evbuffer *in, long long *msg_len)
{
    fs_http_server_t *srv = fc->srv;
    fs_head_limits_t lim = {.max_uri = srv->opts.max_uri_bytes, .max_body = srv->opts.max_body_bytes};
    size_t look = evbuffer_get_length(in);
    if (look > FS_HTTP_HEAD_MAX + FS_HTTP_URI_HARD_MAX + 1024)
        look = FS_HTTP_HEAD_MAX + FS_HTTP_URI_HARD_MAX + 1024;
    const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)look);
    fs_head_verdict_t v;
    switch (fs_http_head_check(buf, look, &lim, &v)) {
    case FS_HEAD_OK:
        evbuffer_drain(in, v.skip);
        *msg_len = v.body_len < 0 ? -1 : (long long)(v.head_len - v.skip) + v.body_len;
        return GATE_PASS;
    case FS_HEAD_NEED_MORE:
        set_read_timeout(fc, srv->opts.read_timeout_ms);
        return GATE_WAIT;
    case FS_HEAD_REJECT:
        break;
    }
    conn_reject(fc, v.status, v.detail, v.method, false);
    return GATE_GONE;
}

/* libevent freezes the end of a bufferevent's input buffer (only it may append there), so
 * stashed bytes always go back in front: prepend, never add. */
static void stash_all(fs_conn_t *fc, struct evbuffer *in)
{
    if (!fc->stash)
        fc->stash = evbuffer_new();
    evbuffer_prepend_buffer(fc->stash, in);
}

/* Moves everything after the first `keep` bytes of `in` to the front of the stash. */
static void stash_after(fs_conn_t *fc, struct evbuffer *in, size_t keep)
{
    struct evbuffer *first = evbuffer_new();
    evbuffer_remove_buffer(in, first, keep);
    stash_all(fc, in);
    evbuffer_prepend_buffer(in, first);
    evbuffer_free(first);
}

/* Puts the stash back behind what is left in `in`. */
static void unstash(fs_conn_t *fc, struct evbuffer *in)
{
    if (!fc->stash || evbuffer_get_length(fc->stash) == 0)
        return;
    evbuffer_prepend_buffer(fc->stash, in);
    evbuffer_prepend_buffer(in, fc->stash);
}

static void conn_on_pump(evutil_socket_t fd, short what, void *arg);

/* Feeds evhtp one request at a time. htparser stops after each message, and evhtp 1.2.18
 * cannot go on by itself with pipelined bytes (its resume is a no-op unless paused: the
 * "ODDITY" log), so whatever follows the current request waits in our stash. This also sends
 * every request head through the gate, and leaves nothing unchecked for evhtp to parse when it
 * resumes a paused request. */
static void conn_pump(fs_conn_t *fc)
{
    evhtp_connection_t *c = fc->ev;
    struct bufferevent *bev = evhtp_connection_get_bev(c);
    struct evbuffer *in = bufferevent_get_input(bev);
    if (fc->stash)
        evbuffer_prepend_buffer(in, fc->stash);
    for (int n = 0; n < PIPELINE_BATCH; n++) {
        if (c->flags & EVHTP_CONN_FLAG_PAUSED) {
            stash_all(fc, in);
            return;
        }
        if (evbuffer_get_length(in) == 0)
            return;
        if (at_boundary(c) && conn_gate(fc, in, &fc->msg_left) != GATE_PASS)
            return;
        if (fc->msg_left >= 0 && (size_t)fc->msg_left < evbuffer_get_length(in))
            stash_after(fc, in, (size_t)fc->msg_left);
        size_t before = evbuffer_get_length(in);
        fc->srv->evhtp_readcb(bev, c);
        if (fc->dead)
            return;
        size_t consumed = before - evbuffer_get_length(in);
        if (fc->msg_left >= 0)
            fc->msg_left = consumed >= (size_t)fc->msg_left ? 0 : fc->msg_left - (long long)consumed;
        if (c->flags & EVHTP_CONN_FLAG_PAUSED) {
            stash_all(fc, in);
            return;
        }
        unstash(fc, in);
        if (!at_boundary(c) || consumed == 0)
            return; /* the rest of this request has not arrived yet */
    }
    if (evbuffer_get_length(in) > 0) {
        if (!fc->pump)
            fc->pump = event_new(fc->srv->base, -1, 0, conn_on_pump, fc);
        event_active(fc->pump, 0, 0);
    }
}

static void conn_on_pump(evutil_socket_t fd, short what, void *arg)
{
    fs_conn_t *fc = arg;
    if (!fc->dead)
        conn_pump(fc);
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
    evhtp_connection_t *c = arg;
    fs_conn_t *fc = conn_of(c);
    if (fc)
        conn_pump(fc);
    else
        ((fs_http_server_t *)c->htp->arg)->evhtp_readcb(bev, arg);
}

/* evhtp closes a non-keep-alive connection after a reply only on its synchronous path; after
 * a paused request it forgets to (its "waiting" branch), so we close here for both. Once a
 * paused request is answered, the pipelined requests behind it are taken up here. */
static void conn_on_write(struct bufferevent *bev, void *arg)
{
    evhtp_connection_t *c = arg;
    fs_conn_t *fc = conn_of(c);
    fs_http_server_t *srv = c->htp->arg;
    if (fc && fc->close_after_flush && at_boundary(c) &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        evhtp_connection_free(c);
        return;
    }
    srv->evhtp_writecb(bev, arg);
    if (fc && !fc->dead && !(c->flags & EVHTP_CONN_FLAG_PAUSED) && at_boundary(c) && fc->stash &&
        evbuffer_get_length(fc->stash) > 0)
        conn_pump(fc);
}

/* A paused request: evhtp reads nothing, so a departed client would go unnoticed until the
 * reply. We peek: end of stream or an error means the client is gone, and the connection is
 * freed now (the request is orphaned and its eventual reply discarded). */
static void conn_on_watch(evutil_socket_t fd, short what, void *arg)
{
    fs_conn_t *fc = arg;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return; /* a pipelined request: evhtp reads it after the reply */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(fc->watch, NULL);
        return;
    }
    evhtp_connection_free(fc->ev);
}

static void conn_watch(fs_conn_t *fc)
{
    struct bufferevent *bev = evhtp_connection_get_bev(fc->ev);
    if (!fc->watch)
        fc->watch = event_new(fc->srv->base, bufferevent_getfd(bev), EV_READ, conn_on_watch, fc);
    event_add(fc->watch, NULL);
}

static evhtp_res req_on_headers_start(evhtp_request_t *ev, void *arg)
{
    fs_conn_t *fc = arg;
    fs_http_server_t *srv = fc->srv;
    fc->body_bytes = 0;
    ev->conn->body_bytes_read = 0; /* evhtp resets it only on its synchronous keep-alive path */
    fc->hdr_seen = true;
    fc->query_at_head = ev->uri && ev->uri->query_raw;
    set_read_timeout(fc, srv->opts.read_timeout_ms);
    /* Pipelined requests reach evhtp without the gate; their URI is checked here at least. */
    size_t ulen = 0;
    if (ev->uri && ev->uri->path && ev->uri->path->full)
        ulen += strlen(ev->uri->path->full);
    if (ev->uri && ev->uri->query_raw)
        ulen += strlen((const char *)ev->uri->query_raw) + 1;
    size_t max =
        srv->opts.max_uri_bytes < FS_HTTP_URI_HARD_MAX ? srv->opts.max_uri_bytes : FS_HTTP_URI_HARD_MAX;
    if (ulen > max) {
        conn_reject(fc, 414, "URI too long", htparser_get_methodstr_m(ev->method), true);
        return EVHTP_RES_ERROR;
    }
    return EVHTP_RES_OK;
}

/* Bodies with a Content-Length are refused by the gate; chunked ones are counted here. */
static evhtp_res req_on_body(evhtp_request_t *ev, struct evbuffer *buf, void *arg)
{
    fs_conn_t *fc = arg;
    fc->body_bytes += evbuffer_get_length(buf);
    if (fc->body_bytes > fc->srv->opts.max_body_bytes) {
        conn_reject(fc, 413, "Request body too large", htparser_get_methodstr_m(ev->method), true);
        return EVHTP_RES_ERROR;
    }
    return EVHTP_RES_OK;
}

static void format_peer(const struct sockaddr *sa, char *out, size_t size)
{
    snprintf(out, size, "unknown");
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)size);
    else if (sa->sa_family == AF_UNIX)
        snprintf(out, size, "unix");
}

static evhtp_res conn_on_accept(evhtp_connection_t *c, void *arg)
{
    fs_http_server_t *srv = arg;
    struct bufferevent *bev = evhtp_connection_get_bev(c);
    bufferevent_data_cb rcb, wcb;
    bufferevent_event_cb ecb;
    void *cbarg;
    bufferevent_getcb(bev, &rcb, &wcb, &ecb, &cbarg);
    srv->evhtp_readcb = rcb;
    srv->evhtp_writecb = wcb;
    bufferevent_setcb(bev, conn_on_read, conn_on_write, ecb, cbarg);
    /* Without this, a response leaving in several segments waits for the client's delayed
     * ACK (Nagle): 40 ms per large answer on Linux. Unix sockets refuse the option; fine. */
    int one = 1;
    setsockopt(c->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    fs_conn_t *fc = FS_NEW(fs_conn_t);
    fc->srv = srv;
    fc->ev = c;
    format_peer(c->saddr, fc->peer, sizeof fc->peer);
    LIST_LINK(srv->conns, fc);
    evhtp_connection_set_hook(c, evhtp_hook_on_connection_fini, (evhtp_hook)conn_on_fini, fc);
    evhtp_connection_set_hook(c, evhtp_hook_on_headers_start, (evhtp_hook)req_on_headers_start, fc);
    evhtp_connection_set_hook(c, evhtp_hook_on_read, (evhtp_hook)req_on_body, fc);
    set_read_timeout(fc, srv->opts.idle_timeout_ms);
    return EVHTP_RES_OK;
}

/* ---- requests ------------------------------------------------------------------------------ */

static void pending_add(fs_http_server_t *srv, fs_req_t *req)
{
    LIST_LINK(srv->pending, req);
    srv->n_pending++;
}

void fs_http_pending_remove(fs_http_server_t *srv, fs_req_t *req)
{
    LIST_UNLINK(srv->pending, req);
    srv->n_pending--;
}

/* evhtp frees its request: after our reply has been sent, or when the connection dies. In
 * the second case the handler still owns the fs_req_t and its reply will free it. */
static evhtp_res req_on_fini(evhtp_request_t *ev, void *arg)
{
    fs_req_t *req = arg;
    req->ev = NULL;
    if (req->conn && req->conn->req == req)
        req->conn->req = NULL;
    req->conn = NULL;
    if (req->replied)
        fs_req_free(req);
    return EVHTP_RES_OK;
}

static void on_request(evhtp_request_t *ev, void *arg)
{
    fs_http_server_t *srv = arg;
    fs_conn_t *fc = conn_of(ev->conn);
    /* evhtp turns a form body into query arguments when the URL has none; FastAPI does not. */
    bool use_query = !fc || !fc->hdr_seen || fc->query_at_head;
    fs_req_t *req = fs_req_new(srv, fc, ev, use_query);
    pending_add(srv, req);
    evhtp_request_set_hook(ev, evhtp_hook_on_request_fini, (evhtp_hook)req_on_fini, req);
    if (fc) {
        fc->hdr_seen = false;
        fc->req = req;
        set_read_timeout(fc, srv->opts.idle_timeout_ms);
    }
    fs_http_dispatch(srv, req);
    if (!req->replied) {
        req->paused = true;
        evhtp_request_pause(ev);
        if (fc)
            conn_watch(fc);
    }
}

bool fs_http_conn_keepalive(fs_conn_t *fc, evhtp_request_t *ev)
{
    bool keep = (ev->flags & EVHTP_REQ_FLAG_KEEPALIVE) && fc && fc->srv->accepting;
    if (fc) {
        fc->n_requests++;
        int max = fc->srv->opts.max_keepalive_requests;
        if (max > 0 && fc->n_requests >= (unsigned)max)
            keep = false;
        if (!keep)
            fc->close_after_flush = true;
    }
    if (!keep)
        ev->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
    return keep;
}

void fs_http_conn_replied(fs_conn_t *fc, fs_req_t *req)
{
    evhtp_send_reply_end(req->ev);
    if (!req->paused)
        return;
    req->paused = false;
    if (fc && fc->watch)
        event_del(fc->watch);
    evhtp_request_resume(req->ev);
}

/* ---- listener ------------------------------------------------------------------------------ */

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    fs_http_server_t *srv = arg;
    if (srv->accepting && srv->htp->server)
        evconnlistener_enable(srv->htp->server);
}

/* libevent retries EAGAIN/EINTR/ECONNABORTED itself; anything reaching here (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM) would make the loop spin on a readable listener, so accept pauses. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    fs_http_server_t *srv = ((evhtp_t *)arg)->arg; /* the listener's argument is evhtp's */
    int err = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(l);
    if (srv->m_accept_errors)
        fs_metric_inc(fs_metrics_series(srv->m_accept_errors, NULL), 1);
    static struct timespec last;
    if (last.tv_sec == 0 || ms_since(&last) > 1000) {
        clock_gettime(CLOCK_MONOTONIC, &last);
        fs_warn("accept failed: %s; pausing accept for %d ms", evutil_socket_error_to_string(err),
                ACCEPT_PAUSE_MS);
    }
    struct timeval tv = ms_tv(ACCEPT_PAUSE_MS);
    evtimer_add(srv->accept_retry, &tv);
}

static int listener_ready(fs_http_server_t *srv)
{
    evconnlistener_set_error_cb(srv->htp->server, on_accept_error);
    srv->accepting = true;
    return 0;
}

/* The socket becomes the server's (closed by fs_http_server_free). libevent's listener
 * accepts in a loop until EAGAIN, so a blocking socket would hang the loop: made non-blocking
 * here whatever the master did. */
int fs_http_server_accept_fd(fs_http_server_t *s, int fd)
{
    if (fd < 0 || evutil_make_socket_nonblocking(fd) != 0)
        return -1;
    evutil_make_socket_closeonexec(fd);
    /* backlog 0: libevent leaves the socket's listen() alone, the master already called it. */
    if (evhtp_accept_socket(s->htp, fd, 0) != 0)
        return -1;
    return listener_ready(s);
}

int fs_http_server_listen(fs_http_server_t *s, const char *addr, int port)
{
    char spec[128];
    snprintf(spec, sizeof spec, "%s%s", strchr(addr, ':') && strncmp(addr, "ipv6:", 5) != 0 ? "ipv6:" : "",
             addr);
    if (port < 0 || port > 65535 || evhtp_bind_socket(s->htp, spec, (uint16_t)port, 1024) != 0)
        return -1;
    return listener_ready(s);
}

int fs_http_server_port(const fs_http_server_t *s)
{
    if (!s->htp->server)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(evconnlistener_get_fd(s->htp->server), (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* Idle keep-alive connections are closed at once (as nginx does on a graceful stop); busy
 * ones finish their request and close after the response (keep-alive is refused). A connection
 * accepted but still silent is left alone: its client is about to send a request. */
void fs_http_server_stop_accepting(fs_http_server_t *s)
{
    s->accepting = false;
    if (s->htp->server)
        evconnlistener_disable(s->htp->server);
    evtimer_del(s->accept_retry);
    for (fs_conn_t *fc = s->conns, *next; fc; fc = next) {
        next = fc->next;
        if (!conn_idle(fc))
            continue;
        if (fc->n_requests > 0)
            evhtp_connection_free(fc->ev);
        else /* a pre-connect that never sends must not hold the drain until its deadline */
            set_read_timeout(fc, s->opts.read_timeout_ms < DRAIN_SILENCE_MS ? s->opts.read_timeout_ms
                                                                            : DRAIN_SILENCE_MS);
    }
}

/* Requests not answered yet, responses not yet handed to the kernel, and connections accepted
 * whose first request has not arrived: the drain waits for all three, so that neither the
 * last responses nor requests already on their way are cut off when the loop exits. */
size_t fs_http_server_inflight(const fs_http_server_t *s)
{
    size_t n = s->n_pending;
    for (const fs_conn_t *fc = s->conns; fc; fc = fc->next) {
        struct bufferevent *bev = evhtp_connection_get_bev(fc->ev);
        if ((bev && evbuffer_get_length(bufferevent_get_output(bev)) > 0) ||
            (fc->n_requests == 0 && !fc->req))
            n++;
    }
    for (const fs_closing_t *cl = s->closing; cl; cl = cl->next)
        if (!cl->flushed)
            n++;
    return n;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void apply_defaults(fs_http_opts_t *o)
{
    if (!o->max_body_bytes)
        o->max_body_bytes = DEFAULT_MAX_BODY;
    if (!o->max_uri_bytes)
        o->max_uri_bytes = DEFAULT_MAX_URI;
    if (o->read_timeout_ms <= 0)
        o->read_timeout_ms = DEFAULT_READ_TIMEOUT_MS;
    if (o->idle_timeout_ms <= 0)
        o->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    if (o->max_keepalive_requests < 0)
        o->max_keepalive_requests = 0;
}

static void create_metrics(fs_http_server_t *srv, fs_metrics_t *m)
{
    static const char *const req_labels[] = {"method", "endpoint", "status", NULL};
    static const char *const dur_labels[] = {"method", "endpoint", NULL};
    if (!m)
        return;
    srv->m_requests = fs_metrics_family(m, FS_METRIC_COUNTER, "http_requests_total", "Total HTTP requests",
                                        req_labels, NULL, 0);
    srv->m_duration = fs_metrics_family(m, FS_METRIC_HISTOGRAM, "http_request_duration_seconds",
                                        "HTTP request latency in seconds", dur_labels, NULL, 0);
    srv->m_accept_errors =
        fs_metrics_family(m, FS_METRIC_COUNTER, "flightshark_http_accept_errors_total",
                          "accept() failures that paused the listener (EMFILE, ENFILE, ...)", NULL, NULL, 0);
    fs_metrics_series(srv->m_accept_errors, NULL);
}

static void configure_evhtp(fs_http_server_t *srv)
{
    evhtp_t *htp = srv->htp;
    const fs_http_opts_t *o = &srv->opts;
    evhtp_set_gencb(htp, on_request, srv);
    evhtp_set_post_accept_cb(htp, conn_on_accept, srv);
    /* The lenient query flags make evhtp's own query parsing infallible; we parse query_raw. */
    evhtp_set_parser_flags(htp, EVHTP_PARSE_QUERY_FLAG_LENIENT);
    /* evhtp's default adds BEV_OPT_DEFER_CALLBACKS. A deferred callback holds a reference to its
     * bufferevent until it runs on the next loop turn; when the loop stops first (shutdown),
     * bufferevent_free drops only evhtp's reference and event_base_free cancels the callback
     * without dropping the other, so the bufferevent, its buffers and its socket are never
     * freed. Nothing here needs deferral: libevent holds its own reference while a callback
     * runs, so freeing a connection from inside one stays safe. */
    evhtp_set_bev_flags(htp, BEV_OPT_CLOSE_ON_FREE);
    struct timeval rt = ms_tv(o->idle_timeout_ms), wt = ms_tv(o->read_timeout_ms);
    evhtp_set_timeouts(htp, &rt, &wt);
    evhtp_set_max_keepalive_requests(htp, (uint64_t)o->max_keepalive_requests);
    /* A backstop only: our own check (gate and req_on_body) answers 413 first, while evhtp's
     * would close the connection without a response. */
    evhtp_set_max_body_size(htp, (uint64_t)o->max_body_bytes * 2 + 65536);
}

fs_http_server_t *fs_http_server_new(struct event_base *base, fs_router_t *router, const fs_http_opts_t *opts)
{
    /* A write to a socket the peer has closed must be an error, not a signal that kills the
     * worker; evhtp_bind_socket does the same, but the master's socket path does not. */
    signal(SIGPIPE, SIG_IGN);
    fs_http_server_t *srv = FS_NEW(fs_http_server_t);
    srv->base = base;
    srv->router = router;
    if (opts)
        srv->opts = *opts;
    apply_defaults(&srv->opts);
    srv->htp = evhtp_new(base, srv);
    configure_evhtp(srv);
    srv->accept_retry = evtimer_new(base, on_accept_retry, srv);
    srv->reaper = event_new(base, -1, 0, conn_reap, srv);
    if (getrandom(&srv->id_seed, sizeof srv->id_seed, GRND_NONBLOCK) != (ssize_t)sizeof srv->id_seed)
        srv->id_seed = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    create_metrics(srv, srv->opts.metrics);
    return srv;
}

void fs_http_server_free(fs_http_server_t *s)
{
    if (!s)
        return;
    s->accepting = false;
    evhtp_unbind_socket(s->htp);
    while (s->conns)
        evhtp_connection_free(s->conns->ev);
    while (s->closing)
        closing_free(s->closing);
    conn_reap(-1, 0, s);
    /* Handlers still working own their requests; their replies are discarded and free them. */
    while (s->pending) {
        fs_req_t *req = s->pending;
        fs_http_pending_remove(s, req);
        req->srv = NULL;
    }
    event_free(s->accept_retry);
    event_free(s->reaper);
    evhtp_free(s->htp);
    free(s);
}
