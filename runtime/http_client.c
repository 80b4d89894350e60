/* Outbound HTTP: libcurl's multi interface driven by the worker's libevent loop.
 *
 * libcurl tells us which sockets to watch (socket callback) and when to wake it (timer
 * callback); libevent tells libcurl when a socket is ready (curl_multi_socket_action). Name
 * resolution uses libcurl's threaded resolver, so the loop never waits on DNS; nothing else
 * in libcurl blocks once a handle is in a multi.
 *
 * Every answer is delivered from a loop callback (the multi timer, a socket event, or the
 * transfer's own deferred event), never from inside fs_http_client_send. A transfer lives on
 * the client's list from send to answer, so free can cancel it.
 */
#include "runtime/http_client.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_RESPONSE (8u << 20)
#define MAX_HEADER_BYTES (64u << 10) /* response header block kept for header() */

static const char ERR_CANCELED[] = "canceled";
static const char ERR_TIMEOUT[] = "timeout";
static const char ERR_REFUSED[] = "connection refused";
static const char ERR_TOO_LARGE[] = "response too large";

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

typedef struct xfer {
    fs_http_client_t *c;
    CURL *easy;                 /* NULL when the request failed before reaching libcurl */
    struct curl_slist *hdrs;
    buf_t body, head;           /* head: "name: value\0" records of the final response */
    size_t max_body;
    bool too_large;
    const char *fail;           /* set when the answer is decided without libcurl */
    struct event *defer;        /* delivers `fail` on the next loop turn */
    double t0_ms;
    fs_http_done_fn done;
    void *arg;
    struct xfer *prev, *next;
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

typedef struct sock {
    struct event *ev;
    fs_http_client_t *c;
    struct sock *prev, *next;
} sock_t;

struct fs_http_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    xfer_t *xfers;
    sock_t *socks;
    size_t inflight;
    bool closing;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool buf_put(buf_t *b, const char *p, size_t n, size_t limit)
{
    if (b->len + n + 1 > limit + 1)
        return false;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = fs_realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

/* ---- list bookkeeping --------------------------------------------------------------------- */

static void xfer_link(fs_http_client_t *c, xfer_t *x)
{
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    c->inflight++;
}

static void xfer_unlink(xfer_t *x)
{
    fs_http_client_t *c = x->c;
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    c->inflight--;
}

static void xfer_free(xfer_t *x)
{
    if (x->easy) {
        curl_multi_remove_handle(x->c->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->hdrs);
    if (x->defer)
        event_free(x->defer);
    free(x->body.p);
    free(x->head.p);
    free(x);
}

/* ---- the answer --------------------------------------------------------------------------- */

static const char *resp_header(const fs_http_response_t *r, const char *name)
{
    const xfer_t *x = r->_priv;
    size_t nlen = strlen(name);
    const char *found = NULL;
    for (size_t at = 0; at < x->head.len;) {
        const char *rec = x->head.p + at;
        if (strncasecmp(rec, name, nlen) == 0 && rec[nlen] == ':') {
            const char *v = rec + nlen + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            found = v; /* the last occurrence wins */
        }
        at += strlen(rec) + 1;
    }
    return found;
}

static const char *curl_reason(xfer_t *x, CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return ERR_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
        return ERR_REFUSED;
    case CURLE_FILESIZE_EXCEEDED:
        return ERR_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        if (x->too_large)
            return ERR_TOO_LARGE;
        break;
    default:
        break;
    }
    return x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
}

/* Runs the callback and frees the transfer. */
static void xfer_answer(xfer_t *x, CURLcode rc)
{
    fs_http_response_t r = {0};
    r.header = resp_header;
    r._priv = x;
    r.elapsed_ms = now_ms() - x->t0_ms;
    r.body = x->body.p ? x->body.p : "";
    r.body_len = x->body.len;
    if (x->fail) {
        r.error = x->fail;
        r.timed_out = x->fail == ERR_TIMEOUT;
    } else if (rc != CURLE_OK) {
        r.error = curl_reason(x, rc);
        r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    } else {
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        r.status = (int)status;
    }
    if (r.error) { /* a partial body is not an answer */
        r.body = "";
        r.body_len = 0;
    }
    xfer_unlink(x);
    x->done(&r, x->arg);
    xfer_free(x);
}

static void check_done(fs_http_client_t *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        xfer_answer(x, msg->data.result);
    }
}

/* ---- libcurl <-> libevent ----------------------------------------------------------------- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    fs_http_client_t *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    sock_t *s = arg;
    fs_http_client_t *c = s->c;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, action, &running);
    /* No evtimer_del when nothing runs: a callback run by check_done may have added a transfer
     * whose first wake-up is that timer. libcurl clears it itself (timeout -1). */
    check_done(c);
}

/* libcurl asks for a wake-up in timeout_ms (-1: none). Calling curl back from here is not
 * allowed, so even 0 goes through the loop. */
static int curl_on_timer(CURLM *multi, long timeout_ms, void *arg)
{
    fs_http_client_t *c = arg;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return 0;
}

static void sock_free(sock_t *s)
{
    fs_http_client_t *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    event_free(s->ev);
    free(s);
}

static int curl_on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
    fs_http_client_t *c = arg;
    sock_t *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(s);
        curl_multi_assign(c->multi, fd, NULL);
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (!s) {
        s = FS_NEW(sock_t);
        s->c = c;
        s->ev = event_new(c->base, fd, kind, on_socket, s);
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    } else {
        event_del(s->ev);
        event_assign(s->ev, c->base, fd, kind, on_socket, s);
    }
    event_add(s->ev, NULL);
    return 0;
}

/* ---- transfer setup ----------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    if (!buf_put(&x->body, p, size * n, x->max_body)) {
        x->too_large = true;
        return 0; /* aborts with CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* Keeps the header lines of the last response only (an interim 1xx or a proxy's answer
 * starts a new block with its status line). */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        x->head.len = 0;
        return len;
    }
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
        len--;
    if (len > 0 && memchr(p, ':', len) && buf_put(&x->head, p, len, MAX_HEADER_BYTES))
        buf_put(&x->head, "", 1, MAX_HEADER_BYTES);
    return size * n;
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    xfer_answer(arg, CURLE_OK);
}

/* Answers on the next loop turn without going through libcurl. */
static void xfer_fail_later(xfer_t *x, const char *why)
{
    x->fail = why;
    x->defer = evtimer_new(x->c->base, on_defer, x);
    struct timeval tv = {0, 0};
    evtimer_add(x->defer, &tv);
}

static void set_method(CURL *e, const fs_http_request_t *req)
{
    const char *m = req->method ? req->method : "GET";
    if (strcmp(m, "GET") == 0 && !req->body)
        return;
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (req->body || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
    }
    if (strcmp(m, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
}

static CURL *easy_for(xfer_t *x, const fs_http_request_t *req)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    int timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding libcurl decodes */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "flightshark/" FS_VERSION);
    set_method(e, req);
    /* No "Expect: 100-continue" round trip before a body. */
    x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    for (const char *const *h = req->headers; h && *h; h++)
        x->hdrs = curl_slist_append(x->hdrs, *h);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    return e;
}

/* ---- public ------------------------------------------------------------------------------- */

fs_http_client_t *fs_http_client_new(struct event_base *base)
{
    pthread_once(&global_once, global_init);
    fs_http_client_t *c = FS_NEW(fs_http_client_t);
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer, c);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

void fs_http_client_send(fs_http_client_t *c, const fs_http_request_t *req, fs_http_done_fn done, void *arg)
{
    xfer_t *x = FS_NEW(xfer_t);
    x->c = c;
    x->done = done;
    x->arg = arg;
    x->t0_ms = now_ms();
    x->max_body = req->max_response_bytes ? req->max_response_bytes : DEFAULT_MAX_RESPONSE;
    xfer_link(c, x);
    if (c->closing) { /* sent from a callback run by fs_http_client_free: the free loop answers it */
        x->fail = ERR_CANCELED;
        return;
    }
    if (!req->url) {
        xfer_fail_later(x, "no url");
        return;
    }
    x->easy = easy_for(x, req);
    if (!x->easy) {
        xfer_fail_later(x, "libcurl: cannot create a transfer");
        return;
    }
    CURLMcode mc = curl_multi_add_handle(c->multi, x->easy);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        xfer_fail_later(x, curl_multi_strerror(mc));
    }
}

size_t fs_http_client_inflight(const fs_http_client_t *c)
{
    return c->inflight;
}

void fs_http_client_free(fs_http_client_t *c)
{
    if (!c)
        return;
    c->closing = true;
    /* A callback may send again; those transfers are answered "canceled" by this loop too. */
    while (c->xfers) {
        xfer_t *x = c->xfers;
        x->fail = ERR_CANCELED;
        xfer_answer(x, CURLE_OK);
    }
    curl_multi_cleanup(c->multi);
    while (c->socks) /* sockets libcurl did not report removed during cleanup */
        sock_free(c->socks);
    event_free(c->timer);
    free(c);
}
